"""Text helpers every cleaner shares: run once per distinct value, fold accents, mask patterns."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Callable, Iterable, Union

import numpy as np
import pandas as pd

Frame = Union[pd.Series, pd.DataFrame]

PLACEHOLDER = "placeholder"  # the one reason code profile.py counts apart from the invalid ones
MASKED_WIDTH = 20  # long enough to show a shape, too short to carry a whole address


def per_unique(clean: Callable[[pd.Series], Frame]) -> Callable[[pd.Series], Frame]:
    """Run a vectorised cleaner on the distinct values only and spread the result back.

    Council extracts repeat the same names, dates and postcodes many times over, so this is
    where most of the speed comes from. The cleaner sees a Series of str/None with a RangeIndex
    and returns a Series or DataFrame of the same length.
    """

    @functools.wraps(clean)
    def run(values: pd.Series) -> Frame:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        distinct = pd.Series(np.append(np.asarray(uniques, dtype=object), [None]), dtype=object)
        result = _none_for_nan(clean(as_text(distinct)))
        codes = np.where(codes < 0, len(uniques), codes)
        spread = result.iloc[codes]
        spread.index = values.index
        return spread

    return run


def _none_for_nan(result: Frame) -> Frame:
    """Object columns hold None for a missing value, as schema.py says (extract gives NaN)."""
    if isinstance(result, pd.Series):
        return result.where(result.notna(), None) if result.dtype == object else result
    for column in result.columns:
        if result[column].dtype == object:
            result[column] = result[column].where(result[column].notna(), None)
    return result


def map_distinct(func: Callable, values: pd.Series) -> pd.Series:
    """Apply a plain Python function to each distinct non-null value (for libraries with no
    vectorised form: phonenumbers, jellyfish, nicknames)."""
    return per_unique(lambda distinct: distinct.map(func, na_action="ignore").astype(object))(values)


def as_text(values: pd.Series) -> pd.Series:
    """Anything -> trimmed str, with blanks and non-values as None."""
    values = values.astype(object, copy=False)
    present = values.notna()
    text = values
    if pd.api.types.infer_dtype(values, skipna=True) != "string":  # str() only what needs it
        text = values.where(~present, values[present].map(str) if present.any() else values)
    text = pd.Series(text, dtype=object).str.strip()
    return text.where(present & (text != ""), None).astype(object)


def squash(values: pd.Series) -> pd.Series:
    """Upper case with runs of whitespace made single spaces; empty -> None."""
    # str.split/join through map: the same result as a regex pass at a quarter of the cost,
    # and this runs on every text field.
    text = values.map(_squash_one, na_action="ignore")
    return nullify(text, text == "")


def _squash_one(text: str) -> str:
    return " ".join(text.upper().split())


def extract(values: pd.Series, pattern: str) -> pd.Series:
    """The first group of `pattern` in each value (None where it does not match), always as
    text: pandas gives a float column when nothing matches, which would break the next step."""
    return values.astype(object, copy=False).str.extract(pattern, expand=False).astype(object, copy=False)


def extract_groups(values: pd.Series, pattern: str) -> pd.DataFrame:
    """The named groups of `pattern` as text columns (see `extract`)."""
    return values.astype(object, copy=False).str.extract(pattern, expand=True).astype(object, copy=False)


def extract_where(candidates: pd.Series, values: pd.Series, pattern: str) -> pd.Series:
    """`extract`, run only where `candidates` is true (None elsewhere): for a costly pattern that
    a cheap test shows most values cannot match."""
    found = pd.Series(None, index=values.index, dtype=object)
    found[candidates] = extract(values[candidates], pattern)
    return found


def extract_groups_where(candidates: pd.Series, values: pd.Series, pattern: str) -> pd.DataFrame:
    """`extract_groups`, run only where `candidates` is true (None elsewhere)."""
    return extract_groups(values[candidates], pattern).reindex(values.index)


def replace_where(candidates: pd.Series, values: pd.Series, pattern: str, replacement: str) -> pd.Series:
    """`pattern` replaced by `replacement`, only where `candidates` is true (see `extract_where`)."""
    replaced = values.astype(object).copy()
    replaced[candidates] = values[candidates].str.replace(pattern, replacement, regex=True)
    return replaced


def coalesce(*candidates: pd.Series) -> pd.Series:
    """The first non-null value of each row across `candidates`, as text."""
    out = candidates[0].astype(object, copy=False)
    for candidate in candidates[1:]:
        out = out.where(out.notna(), candidate.astype(object, copy=False))
    return out


def as_flag(mask) -> pd.Series:
    """A boolean Series with missing as False."""
    mask = pd.Series(mask)
    if mask.dtype == bool:
        return mask
    return mask.astype(object).where(mask.notna(), False).astype(bool)


def nullify(values: pd.Series, mask) -> pd.Series:
    """`values` with None wherever `mask` is true (or the value is missing)."""
    mask = as_flag(pd.Series(mask, index=values.index))
    return values.astype(object, copy=False).where(~mask & values.notna(), None)


def fold_accents(values: pd.Series) -> pd.Series:
    """É -> E, Ø -> O...: compatibility-decompose and drop what is not ASCII."""
    return map_distinct(_fold_one, values)


def _fold_one(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSABLE))
    return decomposed.encode("ascii", "ignore").decode("ascii")


# Letters NFKD leaves whole; without these Ø, Ł and ß would vanish from matching keys.
_UNDECOMPOSABLE = str.maketrans(
    {"Ø": "O", "ø": "o", "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "ß": "SS", "Æ": "AE", "æ": "ae",
     "Œ": "OE", "œ": "oe", "Þ": "TH", "þ": "th", "Ð": "D", "ð": "d", "ı": "i"}
)


def word_alternation(words: Iterable[str]) -> str:
    """A regex alternation matching any of `words`, longest first so 'MRS' wins over 'MR'."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@per_unique
def masked_pattern(values: pd.Series) -> pd.Series:
    """The shape of a value with no personal data left: letters -> A, digits -> 9."""
    shape = values.str.replace(r"[^\W\d_]", "A", regex=True).str.replace(r"\d", "9", regex=True)
    return shape.str.slice(0, MASKED_WIDTH)


def with_reason(value: pd.Series, reason: pd.Series, **parts: pd.Series) -> pd.DataFrame:
    """The frame every `parse_*` cleaner returns: the canonical value (None when absent, and
    wherever there is a reason), the reason code when invalid, and any derived parts."""
    return pd.DataFrame({"value": nullify(value, reason.notna()), "reason": reason.astype(object), **parts})


def reasons(*rules: tuple[pd.Series, str], present: pd.Series) -> pd.Series:
    """The first failing rule's code for each present value (rules in priority order)."""
    conditions = [as_flag(pd.Series(c, index=present.index)) & present for c, _ in rules]
    codes = np.select([c.to_numpy() for c in conditions], [code for _, code in rules], default="")
    out = pd.Series(codes, index=present.index, dtype=object)
    return out.where(out != "", None)

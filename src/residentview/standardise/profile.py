"""The data-quality profile: one row per (source, field) of what each source's data is like.

For every value a source wrote: present or blank; valid, placeholder, or invalid with a reason
code. n_present = n_valid + n_invalid + n_placeholder. `invalid_reasons` counts the invalid
values by reason (placeholders have their own count), and `top_invalid_patterns` shows the
shapes of the commonest invalid values with letters as A and digits as 9, so the profile never
holds a name, date or number.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from residentview.standardise.text import PLACEHOLDER, masked_pattern

QUALITY_COLUMNS = [
    "source", "field", "n_records", "n_present", "completeness", "n_valid", "n_invalid",
    "n_placeholder", "n_distinct", "invalid_reasons", "top_invalid_patterns",
]
TOP_PATTERNS = 10


def _counts_as_json(keys: pd.Series, sources: pd.Series, limit: int | None = None) -> pd.Series:
    """Per source, a JSON object of key -> count, commonest first."""
    if keys.notna().sum() == 0:
        return pd.Series(dtype=object)
    counts = (
        pd.DataFrame({"source": sources, "key": keys}).dropna()
        .groupby(["source", "key"]).size().rename("n").reset_index()
        .sort_values(["source", "n", "key"], ascending=[True, False, True])
    )
    if limit is not None:
        counts = counts.groupby("source").head(limit)
    return counts.groupby("source").apply(
        lambda g: json.dumps({str(k): int(n) for k, n in zip(g["key"], g["n"])}), include_groups=False
    )


def profile_field(
    field: str, sources: pd.Series, written: pd.Series, value: pd.Series, reason: pd.Series
) -> pd.DataFrame:
    """The profile rows of one field. `written` is the raw text, `value` the standardised value
    and `reason` the reason code of each value that is not valid; a value is present when it is
    either valid or has a reason."""
    source_codes, source_names = pd.factorize(sources, sort=True)
    n_sources = len(source_names)
    has_reason = reason.notna().to_numpy()
    valid = value.notna().to_numpy() & ~has_reason
    placeholder = (reason == PLACEHOLDER).to_numpy()
    invalid = has_reason & ~placeholder

    def per_source(mask: np.ndarray) -> np.ndarray:
        return np.bincount(source_codes[mask], minlength=n_sources)

    # Only the valid values are hashed: most fields are filled in by one or two sources.
    value_codes, distinct_values = pd.factorize(value.to_numpy()[valid])
    # Each (source, value) pair as one integer, so distinct counts need no groupby on text.
    stride = len(distinct_values) + 1
    distinct_pairs = pd.unique(source_codes[valid].astype(np.int64) * stride + value_codes)
    rows = pd.DataFrame({
        "source": np.asarray(source_names, dtype=object),
        "field": field,
        "n_records": np.bincount(source_codes, minlength=n_sources),
        "n_present": per_source(valid | has_reason),
        "n_valid": per_source(valid),
        "n_invalid": per_source(invalid),
        "n_placeholder": per_source(placeholder),
        "n_distinct": np.bincount(distinct_pairs // stride, minlength=n_sources),
    })
    invalid_sources = sources[invalid].astype(object)
    reasons_json = _counts_as_json(reason[invalid], invalid_sources)
    patterns_json = _counts_as_json(masked_pattern(written[invalid]), invalid_sources, limit=TOP_PATTERNS)
    rows["invalid_reasons"] = rows["source"].map(reasons_json).fillna("{}")
    rows["top_invalid_patterns"] = rows["source"].map(patterns_json).fillna("{}")
    rows["completeness"] = rows["n_present"] / rows["n_records"].where(rows["n_records"] > 0)
    return rows[QUALITY_COLUMNS]


def empty_profile() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in QUALITY_COLUMNS})


def combine_profiles(rows: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack field profiles into the `quality` frame with stable types and order."""
    if not rows:
        return empty_profile()
    quality = pd.concat(rows, ignore_index=True).sort_values("source", kind="mergesort")
    ints = ["n_records", "n_present", "n_valid", "n_invalid", "n_placeholder", "n_distinct"]
    quality[ints] = quality[ints].astype("int64")
    quality["completeness"] = quality["completeness"].astype(float)
    return quality.reset_index(drop=True)

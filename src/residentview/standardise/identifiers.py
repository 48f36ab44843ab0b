"""Reference numbers: National Insurance number, NHS number, UPRN, phone, email and the named
identifiers a config declares. Each `parse_*` returns value + reason (see `text.with_reason`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import phonenumbers

from residentview.standardise.text import (
    PLACEHOLDER, coalesce, extract, map_distinct, per_unique, reasons, replace_where, squash, with_reason,
)

_GENERIC_PLACEHOLDERS = r"^(?:UNKNOWN|NOT KNOWN|NK|N/?K|N/?A|NONE|NULL|TBC|TBA|-+|\.+|\?+|0+|X+)$"


# National Insurance number -------------------------------------------------------------------
# HMRC: two prefix letters, six digits, suffix A-D. First letter never D F I Q U V; second
# never D F I O Q U V; the pairs BG GB KN NK NT TN ZZ are never issued (TN marks a temporary
# number). A number written without its suffix is treated as invalid (`no_suffix`): the
# canonical form is nine characters, and guessing a suffix would invent data.
_NINO_SHAPE = r"^[A-Z]{2}[0-9]{6}[A-Z]?$"
_NINO_PREFIX = r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
# AB123456C is the example HMRC prints on every form; 000000 is never issued.
_NINO_PLACEHOLDER = r"^(?:AB123456C|QQ123456C|[A-Z]{2}000000[A-Z]?)$"


@per_unique
def parse_nino(values: pd.Series) -> pd.DataFrame:
    """'ab 12 34 56 c' -> 'AB123456C'; reasons bad_format, bad_prefix, temporary, no_suffix,
    bad_suffix, placeholder."""
    present = values.notna()
    compact = values.str.upper().str.replace(r"[\s\-./]", "", regex=True)
    # Digits are sometimes typed in the letter positions; only 0/1 for O/I are unambiguous.
    compact = compact.str.replace(r"^0", "O", regex=True)
    shape = compact.str.match(_NINO_SHAPE, na=False)
    reason = reasons(
        (compact.str.match(f"{_GENERIC_PLACEHOLDERS}|{_NINO_PLACEHOLDER}", na=False), PLACEHOLDER),
        (~shape, "bad_format"),
        (compact.str.startswith("TN", na=False), "temporary"),
        (~compact.str.match(_NINO_PREFIX, na=False), "bad_prefix"),
        (compact.str.len() == 8, "no_suffix"),
        (~compact.str.match(r".*[A-D]$", na=False), "bad_suffix"),
        present=present,
    )
    return with_reason(compact, reason)


def clean_nino(values: pd.Series) -> pd.Series:
    return parse_nino(values)["value"]


# NHS number --------------------------------------------------------------------------------
_NHS_WEIGHTS = np.arange(10, 1, -1)


def _nhs_check_digit_ok(ten_digits: pd.Series) -> np.ndarray:
    """Modulus 11 over the first nine digits (weights 10..2); 11 means 0, 10 is never valid."""
    if ten_digits.empty:
        return np.zeros(0, dtype=bool)
    digits = np.frombuffer("".join(ten_digits).encode("ascii"), dtype=np.uint8).reshape(-1, 10) - 48
    check = 11 - (digits[:, :9].astype(np.int64) @ _NHS_WEIGHTS) % 11
    check = np.where(check == 11, 0, check)
    return (check != 10) & (check == digits[:, 9])


@per_unique
def parse_nhs_number(values: pd.Series) -> pd.DataFrame:
    """'943 476 5919' -> '9434765919'; reasons bad_format, placeholder, check_digit.

    A numpy modulus 11 rather than the `nhs-number` package: the rule is a few lines and this
    checks a million numbers in milliseconds.
    """
    present = values.notna()
    compact = values.str.replace(r"[\s\-]", "", regex=True)
    shape = compact.str.fullmatch(r"[0-9]{10}", na=False)
    check_ok = pd.Series(False, index=values.index)
    check_ok[shape] = _nhs_check_digit_ok(compact[shape])
    reason = reasons(
        (compact.str.match(rf"(\d)\1{{9}}$|{_GENERIC_PLACEHOLDERS}", na=False), PLACEHOLDER),
        (~shape, "bad_format"),
        (~check_ok, "check_digit"),
        present=present,
    )
    return with_reason(compact, reason)


def clean_nhs_number(values: pd.Series) -> pd.Series:
    return parse_nhs_number(values)["value"]


# UPRN ------------------------------------------------------------------------------------------
@per_unique
def parse_uprn(values: pd.Series) -> pd.DataFrame:
    """'000100023336956' -> '100023336956'; reasons bad_format, too_long, placeholder."""
    present = values.notna()
    # UPRNs are mostly bare digits already; the clean-up passes run only on the rest.
    compact = replace_where(~values.str.isdigit().eq(True), values, r"\s", "")
    compact = replace_where(compact.str.contains(".", regex=False, na=False), compact, r"\.0+$", "")
    digits = compact.str.fullmatch(r"[0-9]+", na=False)
    stripped = compact.str.lstrip("0")
    reason = reasons(
        (digits & (stripped == ""), PLACEHOLDER),
        (compact.str.upper().str.match(_GENERIC_PLACEHOLDERS, na=False), PLACEHOLDER),
        (~digits, "bad_format"),
        (stripped.str.len() > 12, "too_long"),
        present=present,
    )
    return with_reason(stripped, reason)


def clean_uprn(values: pd.Series) -> pd.Series:
    return parse_uprn(values)["value"]


# Named identifiers -----------------------------------------------------------------------------
@per_unique
def parse_identifier(values: pd.Series) -> pd.DataFrame:
    """Pupil numbers, housing refs…: trimmed, upper case, single spaces; placeholders -> None."""
    present = values.notna()
    text = squash(values)
    placeholder = text.str.match(_GENERIC_PLACEHOLDERS, na=False) | text.isna()
    reason = reasons((placeholder, PLACEHOLDER), present=present)
    return with_reason(text, reason)


def clean_identifier(values: pd.Series) -> pd.Series:
    return parse_identifier(values)["value"]


# Phone ------------------------------------------------------------------------------------------
# Most council numbers are UK numbers in a handful of shapes; those are converted with a regex,
# and only the rest go through `phonenumbers` (about 15 µs a number), so a million rows stay fast.
_UK_NATIONAL = re.compile(r"^(?:\+44|0044|44)?0?([1-9][0-9]{8,9})$")


def _phone_digits(values: pd.Series) -> pd.Series:
    text = values.str.replace(r"\(0\)", "", regex=True).str.replace(r"[\s\-().]", "", regex=True)
    return text.str.replace(r"^00", "+", regex=True)


def _e164_with_library(text: str):
    try:
        number = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@per_unique
def parse_phone(values: pd.Series) -> pd.DataFrame:
    """'07700 900123' / '+44 (0)7700 900123' -> '+447700900123'; reasons bad_format, placeholder."""
    present = values.notna()
    compact = _phone_digits(values)
    national = extract(compact, _UK_NATIONAL)
    # UK significant numbers: 10 digits, or 9 for a few old geographic codes (01xxx).
    uk_ok = national.str.fullmatch(r"[0-9]{10}|1[0-9]{8}", na=False)
    fast = ("+44" + national).where(uk_ok)
    slow = compact.where(fast.isna() & present & compact.str.fullmatch(r"\+?[0-9]{6,17}", na=False))
    value = coalesce(fast, map_distinct(_e164_with_library, slow))
    significant = value.str.replace(r"^\+44", "", regex=True)
    reason = reasons(
        (compact.str.fullmatch(r"\+?(\d)\1+", na=False), PLACEHOLDER),
        (significant.str.fullmatch(r"7?(\d)\1+", na=False), PLACEHOLDER),  # 07777777777
        (values.str.upper().str.match(_GENERIC_PLACEHOLDERS, na=False), PLACEHOLDER),
        (value.isna(), "bad_format"),
        present=present,
    )
    return with_reason(value, reason)


def normalise_phone(values: pd.Series) -> pd.Series:
    return parse_phone(values)["value"]


# Email ------------------------------------------------------------------------------------------
_EMAIL = r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$"
_EMAIL_PLACEHOLDER = (
    r"^(?:(?:no|none|noemail|no\.email|na|n/a|unknown|test|nobody|noreply|x+)@.*"
    r"|.*@(?:example\.(?:com|org|co\.uk)|test\.com|none\.com|noemail\.com))$"
)


@per_unique
def parse_email(values: pd.Series) -> pd.DataFrame:
    """' Jo.Bloggs@Example.CO.UK ' -> 'jo.bloggs@example.co.uk'; reasons bad_format, placeholder."""
    present = values.notna()
    text = values.str.strip().str.lower().str.replace(r"^mailto:", "", regex=True)
    reason = reasons(
        (text.str.match(_EMAIL_PLACEHOLDER, na=False), PLACEHOLDER),
        (~text.str.match(_EMAIL, na=False), "bad_format"),
        present=present,
    )
    return with_reason(text, reason)


def clean_email(values: pd.Series) -> pd.Series:
    return parse_email(values)["value"]

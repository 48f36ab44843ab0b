"""Dates (of birth, of a record's last confirmation): the source's format, else ISO then UK
day-first. Impossible, future and placeholder dates become null with a reason code."""

from __future__ import annotations

from typing import Optional

import pandas as pd

from residentview.errors import ConfigError
from residentview.standardise.text import PLACEHOLDER, extract, per_unique, reasons

# Tried in order when a source gives no format. Day-first before month-first, always: these
# are UK extracts, and 03/04/1980 is the 3rd of April.
ISO_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
DEFAULT_FORMATS = ISO_FORMATS + (
    "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %m %Y",
    "%d %b %Y", "%d-%b-%Y", "%d %B %Y", "%d-%B-%Y", "%d %b %y", "%d-%b-%y",
    "%d/%m/%y", "%d-%m-%y", "%d.%m.%y",
)
EARLIEST_PLAUSIBLE = pd.Timestamp("1880-01-01")

# Default dates systems fill in when nobody knew the real one (compared as digits only, so
# 01/01/1900, 1900-01-01 and 19000101 are all caught, and years pandas cannot hold too).
_PLACEHOLDER_DIGITS = (
    r"^(?:19000101|01011900|1011900|111900|18000101|01011800|111800|18991231|31121899|"
    r"99991231|31129999|99990101|01019999|00000000|0000000|000000|11111111|01010001|00010101)$"
)
# The same placeholders once parsed, whatever the source's format ("01-Jan-1900", "1 JAN 1900").
PLACEHOLDER_DATES = pd.to_datetime(["1900-01-01", "1800-01-01", "1899-12-31"])
_PLACEHOLDER_TEXT = r"^(?:UNKNOWN|NOT KNOWN|NK|N/?K|N/?A|NONE|NULL|TBC|TBA|-+|\?+|0+|[0 /.\-]+)$"
_DATE_SHAPE = r"^\d{1,4}[-/. ]\d{1,2}[-/. ]\d{1,4}$"
_TIME_OF_DAY = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)$"


def _parse_formats(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        attempt = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        if "%y" in fmt:
            # strptime puts 00-68 in the 2000s; a two-digit year that lands in the future meant 19xx.
            attempt = attempt.where(attempt <= pd.Timestamp.today(), attempt - pd.DateOffset(years=100))
        parsed[todo] = attempt
    return parsed


def _check_format(date_format: str, sources: Optional[list[str]] = None) -> None:
    """A directive strptime does not know (%Q) is the config's fault: one line, naming the source."""
    try:
        pd.to_datetime(pd.Series(["2000-01-01"]), format=date_format, errors="coerce")
    except ValueError as exc:
        where = f"source {', '.join(sources)}: " if sources else ""
        raise ConfigError(f"{where}date format {date_format!r} is not a strptime format ({exc})") from None


def parse_date(values: pd.Series, date_format: Optional[str] = None) -> pd.DataFrame:
    """value (datetime64, None when invalid), reason: bad_format, impossible, future, placeholder.

    `date_format` is a strptime format (from the config); without one, ISO then UK day-first
    forms are tried, a trailing time of day is ignored, and month names are understood. With
    one, ISO dates are still accepted.
    """

    @per_unique
    def parse_distinct(text: pd.Series) -> pd.DataFrame:
        present = text.notna()
        squashed = text.str.upper().str.replace(r"\s+", " ", regex=True)
        without_time = squashed.str.replace(_TIME_OF_DAY, "", regex=True).str.strip()
        if date_format:
            # ISO dates are unambiguous, so one that slipped into a formatted column still counts.
            _check_format(date_format)
            value = pd.to_datetime(text, format=date_format, errors="coerce")
            value = value.fillna(_parse_formats(without_time.where(value.isna()), ISO_FORMATS))
        else:
            value = _parse_formats(without_time, DEFAULT_FORMATS)
        value = pd.Series(value, index=text.index).dt.normalize()
        digits = text.str.replace(r"\D", "", regex=True)
        # Years past 2262 are beyond what pandas can hold; they are still plainly future dates.
        year = pd.to_numeric(extract(text, r"(?<!\d)(\d{4})(?!\d)"), errors="coerce")
        reason = reasons(
            (digits.str.match(_PLACEHOLDER_DIGITS, na=False)
             | squashed.str.match(_PLACEHOLDER_TEXT, na=False)
             | value.isin(PLACEHOLDER_DATES), PLACEHOLDER),
            (value.isna() & (year > pd.Timestamp.today().year), "future"),
            (value.isna() & squashed.str.match(_DATE_SHAPE, na=False), "impossible"),
            (value.isna(), "bad_format"),
            (value < EARLIEST_PLAUSIBLE, "impossible"),
            (value > pd.Timestamp.today(), "future"),
            present=present,
        )
        return pd.DataFrame({"value": value.where(reason.isna()), "reason": reason})

    return parse_distinct(values)


def parse_dates_by_source(
    values: pd.Series, sources: pd.Series, formats: dict[str, Optional[str]]
) -> pd.DataFrame:
    """`parse_date` with each source's own configured format (a loop over formats, not rows)."""
    source_format = sources.map({source: formats.get(source) or "" for source in pd.unique(sources)})
    by_format = {fmt: source_format == fmt for fmt in pd.unique(source_format)}
    for fmt in by_format:
        if fmt:
            _check_format(fmt, [s for s, f in formats.items() if f == fmt])
    if len(by_format) <= 1:
        return parse_date(values, next(iter(by_format), None) or None)
    # Filled in place rather than concatenated: pandas checks an all-missing object column of a
    # concat value by value, which at a million rows costs more than the parsing.
    out = pd.DataFrame({
        "value": pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]"),
        "reason": pd.Series(None, index=values.index, dtype=object),
    })
    for fmt, rows in by_format.items():
        part = parse_date(values[rows], fmt or None)
        out.loc[rows, "value"] = part["value"]
        out.loc[rows, "reason"] = part["reason"]
    return out


def is_first_of_january(dates: pd.Series) -> pd.Series:
    """1 January is what systems record when only the year of birth was known."""
    return ((dates.dt.month == 1) & (dates.dt.day == 1)).astype(bool)


def clean_date(values: pd.Series, date_format: Optional[str] = None) -> pd.Series:
    return parse_date(values, date_format)["value"]


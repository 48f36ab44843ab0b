"""UK postcodes: Royal Mail's format rules, normalised to 'SW1A 1AA', with sector/district/area.

Formats (outward + inward): A9 9AA, A99 9AA, AA9 9AA, AA99 9AA, A9A 9AA, AA9A 9AA, and GIR 0AA.
Letters allowed per position: 1st not Q V X; 2nd not I J Z; the letter in A9A only
A B C D E F G H J K P S T U W; the letter in AA9A only A B E H M N P R V W X Y; the two inward
letters never C I K M O V.
"""

from __future__ import annotations

import pandas as pd

from residentview.standardise.text import PLACEHOLDER, extract, nullify, per_unique, reasons, with_reason

_FIRST = "[A-PR-UWYZ]"
_SECOND = "[A-HK-Y]"
OUTWARD = (
    f"(?:{_FIRST}[0-9][0-9]?|{_FIRST}{_SECOND}[0-9][0-9]?"
    f"|{_FIRST}[0-9][ABCDEFGHJKPSTUW]|{_FIRST}{_SECOND}[0-9][ABEHMNPRVWXY])"
)
INWARD = "[0-9][ABD-HJLNP-UW-Z]{2}"
_VALID_COMPACT = f"^(?:{OUTWARD}{INWARD}|GIR0AA)$"

# The looser shape used to spot a postcode written at the end of an address line.
TRAILING_POSTCODE = r"(?:^|[\s,]+)([A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2})[\s,]*$"

# NHS 'pseudo postcodes' (ZZ99 ...) stand for no fixed abode / not known, not a place.
_PLACEHOLDER_COMPACT = r"^(?:ZZ99\d[A-Z]{2}|NFA|NK|NA|UNKNOWN|NOTKNOWN|NONE|XX+|0+)$"


def _unconfuse(compact: pd.Series) -> pd.Series:
    """Swap O/0 and I/1 only where the position allows just one of letter or digit.

    Unambiguous positions: the first character (a letter), the first inward character (a
    digit), the second character of a 2-character outward code (a digit), and in a 4-character
    outward code the second (a letter) and third (a digit).
    """
    to_letter = {"0": "O", "1": "I"}
    to_digit = {"O": "0", "I": "1"}
    n = compact.str.len()
    first = compact.str[0].replace(to_letter)
    inward = compact.str[-3:]
    inward = inward.str[0].replace(to_digit) + inward.str[1:]
    outward = compact.str[1:-3]
    short = n == 5
    long_ = n == 7
    outward = outward.where(~short, outward.str[0].replace(to_digit))
    outward = outward.where(
        ~long_, outward.str[0].replace(to_letter) + outward.str[1].replace(to_digit) + outward.str[2:]
    )
    fixed = first + outward + inward
    return fixed.where(n.between(5, 7), compact)


@per_unique
def parse_postcode(values: pd.Series) -> pd.DataFrame:
    """value 'SW1A 1AA' (None if not a valid UK postcode), reason, sector, district, area, and
    the compacted text of a postcode in no UK format (postcode_as_written)."""
    present = values.notna()
    compact = values.str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    fixed = _unconfuse(compact)
    valid = fixed.str.match(_VALID_COMPACT, na=False)
    placeholder = compact.str.match(_PLACEHOLDER_COMPACT, na=False) | (compact == "")
    reason = reasons((placeholder, PLACEHOLDER), (~valid, "bad_format"), present=present)
    ok = valid & ~placeholder
    district = nullify(fixed.str[:-3], ~ok)
    value = nullify(district + " " + fixed.str[-3:], ~ok)
    # A postcode in no UK format (mistyped, or from abroad) is still the same text on every
    # record copied from one source: kept, compacted, for matching only.
    written = ~valid & ~placeholder & compact.str.contains(r"[0-9]", na=False) & (compact.str.len() >= 3)
    return with_reason(
        value,
        reason,
        postcode_sector=nullify(district + " " + fixed.str[-3], ~ok),
        postcode_district=district,
        postcode_area=nullify(extract(district, r"^([A-Z]+)"), ~ok),
        postcode_as_written=nullify(compact, ~written),
    )


def normalise_postcode(values: pd.Series) -> pd.Series:
    """'sw1a1aa' -> 'SW1A 1AA'; anything that is not a valid UK postcode -> None."""
    return parse_postcode(values)["value"]

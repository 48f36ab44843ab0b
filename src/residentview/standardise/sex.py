"""Sex as 'M' / 'F' from the spellings council systems use; anything else is left unknown."""

from __future__ import annotations

import pandas as pd

from residentview.standardise.text import PLACEHOLDER, per_unique, reasons, squash, with_reason

# 1 / 2 are the ONS and NHS codes for male / female. Other codes (indeterminate, not stated)
# are not a fact to match on, so they are kept out rather than guessed.
SEX_CODES = {
    "M": "M", "MALE": "M", "MAN": "M", "BOY": "M", "1": "M",
    "F": "F", "FEMALE": "F", "WOMAN": "F", "GIRL": "F", "2": "F",
}
_NOT_STATED = r"^(?:U|UNKNOWN|NOT KNOWN|NK|N/?K|N/?A|NOT STATED|NOT SPECIFIED|NS|0|9|X|-|\?)$"


@per_unique
def parse_sex(values: pd.Series) -> pd.DataFrame:
    """'Female' -> 'F', '1' -> 'M'; reasons placeholder (not known / not stated), unrecognised."""
    text = squash(values.str.replace(r"[.]", "", regex=True))
    sex = text.map(SEX_CODES)
    reason = reasons(
        (text.str.match(_NOT_STATED, na=False), PLACEHOLDER), (sex.isna(), "unrecognised"),
        present=values.notna(),
    )
    return with_reason(sex, reason)


def normalise_sex(values: pd.Series) -> pd.Series:
    return parse_sex(values)["value"]

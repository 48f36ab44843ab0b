"""The canonical fields a source can map, and the naming rules for names that reach SQL."""

import re

CANONICAL_FIELDS = (
    "title",
    "full_name",
    "first_name",
    "middle_names",
    "last_name",
    "previous_last_name",
    "date_of_birth",
    "sex",
    "address",
    "postcode",
    "uprn",
    "nhs_number",
    "ni_number",
    "phone",
    "email",
    "record_date",
    "identifiers",
)

NAME_FIELDS = ("full_name", "first_name", "middle_names", "last_name")
DATE_FIELDS = ("date_of_birth", "record_date")

# Source and identifier names become column values and derived column names; keeping them to
# this shape means nothing a user types is ever spliced into SQL unquoted.
SOURCE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
RUN_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

IDENTIFIER_PREFIX = "id_"


def identifier_column(name: str) -> str:
    """The column that carries a named identifier (`identifiers: {upn: ...}` -> `id_upn`)."""
    return f"{IDENTIFIER_PREFIX}{name.lower()}"

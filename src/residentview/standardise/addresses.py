"""Addresses: upper case, abbreviations expanded, a trailing postcode lifted out, and the flat
number, house number and building name read off for comparison."""

from __future__ import annotations

import re

import pandas as pd

from residentview.standardise.postcodes import TRAILING_POSTCODE
from residentview.standardise.text import (
    PLACEHOLDER, extract, extract_where, nullify, per_unique, reasons, replace_where, squash,
    word_alternation,
)

STREET_ABBREVIATIONS = {
    "RD": "ROAD", "AVE": "AVENUE", "AV": "AVENUE", "CRES": "CRESCENT", "CRESC": "CRESCENT",
    "GDNS": "GARDENS", "CT": "COURT", "CL": "CLOSE", "DR": "DRIVE", "LN": "LANE", "PL": "PLACE",
    "SQ": "SQUARE", "TER": "TERRACE", "TERR": "TERRACE", "GRN": "GREEN", "GRO": "GROVE",
    "PK": "PARK", "HSE": "HOUSE", "WLK": "WALK", "PDE": "PARADE", "BLDGS": "BUILDINGS",
    "MT": "MOUNT", "EST": "ESTATE", "HTS": "HEIGHTS", "CTGE": "COTTAGE", "COTT": "COTTAGE",
    "FLT": "FLAT", "APARTMENT": "FLAT", "APT": "FLAT", "APPT": "FLAT", "UNIT": "FLAT",
}
# "ST" before one of these is Saint (ST ALBANS, ST JOHNS ROAD); anywhere else it is STREET.
SAINTS = (
    "AGNES", "AIDAN", "ALBAN", "ALBANS", "ANDREW", "ANDREWS", "ANNE", "ANNES", "ANNS", "ASAPH",
    "AUGUSTINE", "AUGUSTINES", "AUSTELL", "BARNABAS", "BARTHOLOMEW", "BEDE", "BEDES", "BEES",
    "BRIDES", "CATHERINE", "CATHERINES", "CHADS", "CLEMENTS", "COLUMB", "CUTHBERTS", "DAVID",
    "DAVIDS", "DUNSTANS", "EDMUNDS", "EDWARDS", "GEORGE", "GEORGES", "GILES", "HELENS", "HELIER",
    "HILDA", "HILDAS", "IVES", "JAMES", "JOHN", "JOHNS", "JUDE", "JUDES", "LAWRENCE", "LEONARDS",
    "LUKE", "LUKES", "MARGARET", "MARGARETS", "MARK", "MARKS", "MARTIN", "MARTINS", "MARY",
    "MARYS", "MATTHEW", "MATTHEWS", "MAWES", "MICHAEL", "MICHAELS", "NEOTS", "NICHOLAS",
    "OSWALD", "OSWALDS", "PATRICK", "PATRICKS", "PAUL", "PAULS", "PETER", "PETERS", "SAVIOURS",
    "STEPHEN", "STEPHENS", "SWITHUNS", "THOMAS", "THOMASS", "VINCENT", "WILFRID", "WILFRIDS",
)
BUILDING_WORDS = (
    "HOUSE", "COURT", "LODGE", "COTTAGE", "COTTAGES", "FARM", "MANOR", "HALL", "BUILDINGS",
    "MANSIONS", "TOWER", "POINT", "CHAMBERS", "BARN", "MILL", "VILLA", "VILLAS", "BUNGALOW",
    "HEIGHTS", "WORKS", "CENTRE", "BLOCK", "RECTORY", "VICARAGE", "GRANGE",
)
_ADDRESS_PLACEHOLDERS = (
    r"^(?:UNKNOWN|NOT KNOWN|NK|N/?K|N/?A|NONE|NULL|NFA|NO FIXED ABODE|TBC|TBA|-+|\.+|\?+|X+)$"
)

_SAINT = word_alternation(SAINTS)
_ABBREVIATION = word_alternation(STREET_ABBREVIATIONS)
_NUMBER = r"\d+[A-Z]?(?:-\d+[A-Z]?)?"
_FLAT = rf"\bFLAT (?P<flat>{_NUMBER}|[A-Z])\b"
# A building name opens the address (after any flat): words ending in a building word before a
# comma or the house number ("MARLOW HOUSE, 12 HIGH STREET", "ROSE COTTAGE 3 MILL LANE"), or
# any words alone on the line before a numbered street ("HILLSIDE, 23 BLAKE MEWS").
_BUILDING = (
    rf"^([^\W\d_][^\d,]*?(?:\b(?:{word_alternation(BUILDING_WORDS)})(?=,|\s+\d|$)|(?=, \d)))"
)


_EXPANSIONS = {**STREET_ABBREVIATIONS, "ST": "STREET", "SAINT": "ST"}
# One pass: SAINT before a saint's name becomes ST, ST anywhere else becomes STREET, and the
# other abbreviations are spelt out.
_ABBREVIATED = re.compile(
    rf"\b(?:SAINT(?= (?:{_SAINT})\b)|ST(?! (?:{_SAINT})\b)|{_ABBREVIATION})\b"
)


def _expand_abbreviations(text: pd.Series) -> pd.Series:
    return text.str.replace(_ABBREVIATED, lambda m: _EXPANSIONS[m.group(0)], regex=True)


def standardise_address(values: pd.Series) -> pd.DataFrame:
    """'Flat 2, Rose Ct., 12 St Johns Rd, Leeds LS1 4AP' ->
    address 'FLAT 2, ROSE COURT, 12 ST JOHNS ROAD, LEEDS', postcode_found 'LS1 4AP',
    flat_number '2', house_number '12', building_name 'ROSE COURT', address_tokens [...]."""
    parts = address_parts(values)
    parts["address_tokens"] = address_tokens(parts["value"])
    return parts


@per_unique
def address_parts(values: pd.Series) -> pd.DataFrame:
    """`standardise_address` without the tokens (lists are slow to pass between processes)."""
    present = values.notna()
    text = squash(values)
    placeholder = text.str.match(_ADDRESS_PLACEHOLDERS, na=False)
    text = text.str.replace("'", "", regex=False)  # ST JOHN'S ROAD and ST JOHNS ROAD alike
    text = text.str.replace(r"[^\w\s,/&\-]|_", " ", regex=True)
    text = text.str.replace(r"\s*,[\s,]*", ", ", regex=True)
    # Few addresses carry their postcode, so the (slow, unanchored) postcode search runs only on
    # those that end the way a postcode does; the same holds for FLAT below.
    may_end_in_postcode = text.str.rstrip(" ,").str[-3:].str.match(r"[0-9][A-Z]{2}$", na=False)
    postcode_found = extract_where(may_end_in_postcode, text, TRAILING_POSTCODE)
    text = replace_where(may_end_in_postcode, text, TRAILING_POSTCODE, "")
    text = _expand_abbreviations(squash(text)).str.strip(" ,")
    placeholder |= text.str.match(_ADDRESS_PLACEHOLDERS, na=False)  # once more, punctuation gone
    text = nullify(text, placeholder | (text == "") | ~text.str.contains(r"[^\W\d_]", na=False))

    has_flat = text.str.contains("FLAT ", regex=False, na=False)
    flat = extract_where(has_flat, text, _FLAT)
    without_flat = replace_where(has_flat, text, rf"{_FLAT},?", "").str.strip(" ,")
    house = extract(without_flat, rf"(?:^|[\s,])(?P<house>{_NUMBER}) [^\W\d_]")
    building = extract(without_flat, _BUILDING)
    return pd.DataFrame({
        "value": text,
        "reason": reasons((placeholder, PLACEHOLDER), (text.isna(), "bad_format"), present=present),
        "postcode_found": postcode_found.astype(object),
        "flat_number": flat.astype(object),
        "house_number": house.astype(object),
        "building_name": building.astype(object),
    })


def address_tokens(address: pd.Series) -> pd.Series:
    """The words of a standardised address, for fuzzy and set comparisons (None when missing)."""
    tokens = address.str.replace(",", " ", regex=False).str.split()
    return tokens.where(address.notna(), None).astype(object)


def clean_address(values: pd.Series) -> pd.Series:
    return standardise_address(values)["value"]

"""Records and evidence in plain language: field names a council officer uses, dates written out,
whether two records' values agree, and a waterfall laid out as bars."""

from __future__ import annotations

import re
from typing import Iterable, Optional

import pandas as pd

from residentview.schema import GOLDEN_FIELDS

FIELD_LABELS = {
    "title": "Title", "first_name": "First name", "middle_names": "Middle names", "last_name": "Surname",
    "previous_last_name": "Previous surname", "date_of_birth": "Date of birth", "sex": "Sex",
    "address": "Address", "postcode": "Postcode", "uprn": "Property number (UPRN)", "nhs_number": "NHS number",
    "ni_number": "National Insurance number", "phone": "Phone", "email": "Email", "record_date": "Record date",
}
SEXES = {"M": "Male", "F": "Female"}
# Comparisons whose names say less than their fields do.
COMPARISON_LABELS = {"location": "Address (UPRN, address and postcode)", "prior": "Starting point",
                     "full_name": "Full name commoner than its parts", "tf_adjustments": "How common the values are",
                     "other": "Another adjustment"}


def field_label(field: str) -> str:
    if field in FIELD_LABELS:
        return FIELD_LABELS[field]
    if field.startswith("id_"):
        name = field[3:].replace("_", " ")
        return f"Reference: {name.upper() if len(name) <= 4 else name}"
    return field.replace("_", " ").capitalize()


def comparison_label(name: str) -> str:
    if name in COMPARISON_LABELS:
        return COMPARISON_LABELS[name]
    if name.startswith("tf_"):
        return f"How common the value is: {comparison_label(name[3:]).lower()}"
    return field_label(name)


def source_label(source: str) -> str:
    """'council_tax' -> 'Council tax'."""
    return str(source).replace("_", " ").capitalize()


def display_fields(columns: Iterable[str]) -> list[str]:
    """The fields a record is shown with, in the order of the golden record, then references."""
    columns = set(columns)
    return [f for f in GOLDEN_FIELDS if f in columns] + sorted(c for c in columns if c.startswith("id_") and c not in GOLDEN_FIELDS)


def plain_value(field: str, value) -> Optional[str]:
    """A record's value as a person reads it ('1973-08-15' -> '15 August 1973'); None when blank."""
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    if field in ("date_of_birth", "record_date"):
        when = pd.to_datetime(text, errors="coerce")
        return text if pd.isna(when) else f"{when.day} {when:%B %Y}"
    if field == "sex":
        return SEXES.get(text.upper(), text)
    return text


def _compared(value: str) -> str:
    """What is compared of a value: letters and digits, case ignored ('45 Norris Lane,' = '45 NORRIS LANE')."""
    return re.sub(r"[^0-9a-z]", "", value.casefold())


def agreement(left: Optional[str], right: Optional[str]) -> str:
    """'agree'; 'partly' when one holds the other (an initial and a name, an address with and
    without its county); 'differ'; or 'missing' (on one side or both)."""
    if left is None or right is None:
        return "missing"
    a, b = _compared(left), _compared(right)
    if a == b:
        return "agree"
    return "partly" if a and b and (a in b or b in a) else "differ"


def side_by_side(left: dict, right: dict, fields: list[str]) -> tuple[list[dict], list[str]]:
    """Rows of the two records' values with whether they agree, and the fields neither record has."""
    rows, absent = [], []
    for field in fields:
        a, b = plain_value(field, left.get(field)), plain_value(field, right.get(field))
        if a is None and b is None:
            absent.append(field_label(field))
            continue
        rows.append({"field": field, "label": field_label(field), "left": a, "right": b, "state": agreement(a, b)})
    return rows, absent


def waterfall_bars(steps, match_weight: float) -> dict:
    """A waterfall (explain's Steps) laid out for drawing: each bar's start and end on one axis
    (`lo`..`hi`, zero included) — the prior from zero, each comparison from where the last ended
    — and the final match weight from zero. Comparisons with no value on one side add nothing
    and are listed apart."""
    bars, running = [], 0.0
    for step in steps:
        if step.no_data:
            continue
        start = 0.0 if step.name == "prior" else running
        running = start + step.weight
        bars.append({"name": step.name, "label": comparison_label(step.name), "level": step.label,
                     "weight": round(float(step.weight), 3), "start": start, "end": running})
    ends = [0.0, float(match_weight), *(v for bar in bars for v in (bar["start"], bar["end"]))]
    return {"bars": bars, "lo": min(ends), "hi": max(ends), "match_weight": round(float(match_weight), 3),
            "no_data": [comparison_label(s.name) for s in steps if s.no_data]}

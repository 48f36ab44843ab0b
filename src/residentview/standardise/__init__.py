"""Stage 2 — standardise: raw canonical fields -> canonical forms (CONTRACT §1), matching keys
and a data-quality profile per source. See `residentview.schema` for the frames in and out.

One small module per field type, each a set of pure `Series -> Series/DataFrame` cleaners that
run once per distinct value: names, dates, postcodes, identifiers, addresses, sex; `profile`
turns their reason codes into the `quality` frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.config import Config
from residentview.fields import CANONICAL_FIELDS, IDENTIFIER_PREFIX, identifier_column
from residentview.schema import GOLDEN_FIELDS
from residentview.sources import ROW_HASH, row_hashes
from residentview.standardise.addresses import address_parts
from residentview.standardise.dates import is_first_of_january, parse_dates_by_source
from residentview.standardise.identifiers import (
    parse_email, parse_identifier, parse_nhs_number, parse_nino, parse_phone, parse_uprn,
)
from residentview.standardise.names import (
    clean_middle_names, clean_surname, clean_title, first_name_aliases, forename_keys, name_key, names_key,
    split_forenames, split_full_name, surname_keys,
)
from residentview.standardise.postcodes import parse_postcode
from residentview.standardise.profile import combine_profiles, profile_field
from residentview.standardise.sex import parse_sex
from residentview.standardise.text import coalesce
from residentview.standardise.worker import Beside
from residentview.memory import cycle_collector_paused

log = logging.getLogger(__name__)

# Below this many records a second process costs more (about half a second to start) than it saves.
WORKER_MIN_RECORDS = 200_000

PERSON_NAME_COLUMNS = (
    "title", "first_name", "middle_names", "last_name", "previous_last_name", "name_suffix",
)


@dataclass
class Standardised:
    records: pd.DataFrame
    quality: pd.DataFrame


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    if name in raw:
        return raw[name]
    return pd.Series(None, index=raw.index, dtype=object)


class _Fields:
    """Standardised columns and, per raw field, what the profile needs (value and reason)."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.columns: dict[str, pd.Series] = {}
        self.checked: dict[str, tuple[pd.Series, pd.Series]] = {}

    def check(self, field: str, value: pd.Series, reason: pd.Series) -> None:
        if field in self.raw:
            self.checked[field] = (value, reason)


def _names(raw: pd.DataFrame, fields: _Fields) -> None:
    full = split_full_name(_column(raw, "full_name"))
    fore = split_forenames(_column(raw, "first_name"))
    middle = clean_middle_names(_column(raw, "middle_names"))
    last = clean_surname(_column(raw, "last_name"))
    previous = clean_surname(_column(raw, "previous_last_name"))
    title = clean_title(_column(raw, "title"))

    parts = {
        "title": coalesce(title["title"], fore["title"], full["title"]),
        "first_name": coalesce(fore["first_name"], full["first_name"]),
        # Middle names from a full name only when no first-name column supplied the forenames.
        "middle_names": coalesce(
            middle["middle_names"], fore["middle_names"],
            full["middle_names"].where(fore["first_name"].isna()),
        ),
        "last_name": coalesce(last["last_name"], full["last_name"]),
        "previous_last_name": previous["last_name"],
        "name_suffix": coalesce(fore["name_suffix"], last["name_suffix"], full["name_suffix"]),
    }
    flagged = (full, fore, middle, last)
    is_person = pd.concat([f["is_person"] for f in flagged], axis=1).all(axis=1)
    # "OCCUPIER" or "OWNER" alone in the forename or surname column, with no other name: not a
    # person. With a forename beside it (JESSE TENANT) it is a surname.
    is_person &= ~(fore["occupier_word"] & last["last_name"].isna()) & ~(last["occupier_word"] & fore["first_name"].isna())
    is_deceased = pd.concat([f["is_deceased"] for f in flagged], axis=1).any(axis=1)
    # Organisations and "The Occupier" must never match a person, so no person name is kept.
    for column in PERSON_NAME_COLUMNS:
        fields.columns[column] = parts[column].where(is_person, None)
    fields.columns["is_person"] = is_person.astype(bool)
    fields.columns["is_deceased"] = is_deceased.astype(bool)

    fields.check("full_name", full["full_name"], full["reason"])
    fields.check("first_name", fore["first_name"], fore["reason"])
    fields.check("middle_names", middle["middle_names"], middle["reason"])
    fields.check("last_name", last["last_name"], last["reason"])
    fields.check("previous_last_name", previous["last_name"], previous["reason"])
    fields.check("title", title["title"], title["reason"])


def _name_keys(columns: dict[str, pd.Series], first_name_counts: Optional[dict] = None) -> dict[str, pd.Series]:
    first = forename_keys(columns["first_name"])
    last = surname_keys(columns["last_name"])
    return {
        "first_name_key": first["key"],
        "middle_names_key": names_key(columns["middle_names"]),
        "last_name_key": last["key"],
        "previous_last_name_key": name_key(columns["previous_last_name"]),
        "first_name_aliases": first_name_aliases(first["key"], first_name_counts),
        "first_name_phonetic": first["phonetic"],
        "last_name_phonetic": last["phonetic"],
    }


def _dates(raw: pd.DataFrame, config: Config, fields: _Fields) -> None:
    for field in ("date_of_birth", "record_date"):
        formats = {name: spec.date_format(field) for name, spec in config.sources.items()}
        parsed = parse_dates_by_source(_column(raw, field), raw["source"], formats)
        fields.columns[field] = parsed["value"].astype("datetime64[ns]")
        fields.check(field, parsed["value"], parsed["reason"])
        if field == "date_of_birth":
            fields.columns["dob_estimated"] = is_first_of_january(parsed["value"])
            fields.columns["dob_invalid_reason"] = parsed["reason"]


def _address_and_postcode(fields: _Fields, address: pd.DataFrame, postcode: pd.DataFrame) -> None:
    fields.check("address", address["value"], address["reason"])
    fields.check("postcode", postcode["value"], postcode["reason"])
    # A postcode typed at the end of the address counts when the postcode field is empty.
    postcode_absent = postcode["value"].isna() & postcode["reason"].isna()
    from_address = parse_postcode(address["postcode_found"].where(postcode_absent))
    written = postcode["postcode_as_written"]
    postcode = postcode.where(postcode["value"].notna(), from_address)
    postcode["postcode_as_written"] = written.where(postcode["value"].isna(), None)
    fields.columns["address"] = address["value"]
    for column in ("postcode", "postcode_sector", "postcode_district", "postcode_area", "postcode_as_written"):
        fields.columns[column] = postcode["value" if column == "postcode" else column]
    for column in ("house_number", "flat_number", "building_name"):
        fields.columns[column] = address[column]


def _identifiers(raw: pd.DataFrame, fields: _Fields) -> None:
    """Every identifier but the UPRN, which the worker cleans with the address."""
    parsers = {
        "sex": parse_sex, "nhs_number": parse_nhs_number, "ni_number": parse_nino,
        "phone": parse_phone, "email": parse_email,
    }
    named = {c: parse_identifier for c in raw.columns if c.startswith(IDENTIFIER_PREFIX)}
    for field, parse in {**parsers, **named}.items():
        parsed = parse(_column(raw, field))
        fields.columns[field] = parsed["value"]
        fields.check(field, parsed["value"], parsed["reason"])


def _mapped_fields(config: Config, source: str, available: list[str]) -> list[str]:
    """The raw fields a source maps (all available ones for a source the config does not know)."""
    spec = config.sources.get(source)
    if spec is None:
        return available
    mapped = list(spec.fields.mapped()) + [identifier_column(n) for n in spec.fields.identifiers]
    return [f for f in mapped if f in available]


def _profile(raw: pd.DataFrame, config: Config, fields: _Fields) -> pd.DataFrame:
    sources = raw["source"].astype("category")  # factorised once, not once per field
    def canonical_position(field: str) -> int:
        return CANONICAL_FIELDS.index(field) if field in CANONICAL_FIELDS else len(CANONICAL_FIELDS)

    in_canonical_order = sorted(fields.checked, key=canonical_position)
    rows = [
        profile_field(field, sources, raw[field], *fields.checked[field]) for field in in_canonical_order
    ]
    quality = combine_profiles(rows)
    if len(quality):
        keep = [
            field in _mapped_fields(config, source, list(fields.checked))
            for source, field in zip(quality["source"], quality["field"])
        ]
        quality = quality[keep].reset_index(drop=True)
    return quality


def record_order(frame: pd.DataFrame) -> np.ndarray:
    """The row positions of `frame` in (source, record_id) order.

    Arrow sorts the text by its UTF-8 bytes, which orders as Python orders strings (by code
    point), in half the time numpy's lexsort takes over fixed-width text; text Arrow cannot
    hold (a lone surrogate) is sorted by numpy."""
    try:
        keys = pa.table({"source": pa.array(frame["source"], type=pa.string(), from_pandas=True),
                         "record_id": pa.array(frame["record_id"], type=pa.string(), from_pandas=True)})
    except (pa.ArrowException, UnicodeError):
        return np.lexsort((frame["record_id"].to_numpy(dtype=str), frame["source"].to_numpy(dtype=str)))
    return pc.sort_indices(keys, sort_keys=[("source", "ascending"), ("record_id", "ascending")]).to_numpy()


def in_record_order(raw: pd.DataFrame) -> pd.DataFrame:
    """Sorted by (source, record_id), so any input row order gives the same unique_ids."""
    order = record_order(raw)
    if (order == np.arange(len(raw))).all():  # already so: no copy of every column
        return raw.set_axis(pd.RangeIndex(len(raw)), axis=0, copy=False)
    # set_axis, not reset_index: reset_index copies every column once more (a second at 1M rows).
    return raw.take(order).set_axis(pd.RangeIndex(len(raw)), axis=0, copy=False)


def standardise(raw: pd.DataFrame, config: Config, first_name_counts: Optional[dict] = None) -> Standardised:
    """Standardise every canonical field and profile each source's data (see the module doc).

    `first_name_counts` (first_name_key -> records): how often each first name occurs among
    all the records, when `raw` is only some of them (an update's new and changed records);
    by default, counted in `raw`."""
    with cycle_collector_paused():
        return _standardise(raw, config, first_name_counts)


def _standardise(raw: pd.DataFrame, config: Config, first_name_counts: Optional[dict] = None) -> Standardised:
    raw = in_record_order(raw)
    fields = _Fields(raw)
    # Addresses, postcodes and UPRNs (about a third of the work) are cleaned by a second
    # process on large inputs while this one does the rest.
    tasks = {
        "address": (address_parts, _column(raw, "address")),
        "postcode": (parse_postcode, _column(raw, "postcode")),
        "uprn": (parse_uprn, _column(raw, "uprn")),
    }
    with Beside(tasks, use_worker=len(raw) >= WORKER_MIN_RECORDS) as beside:
        _names(raw, fields)
        _dates(raw, config, fields)
        _identifiers(raw, fields)
        keys = _name_keys(fields.columns, first_name_counts)
        cleaned = beside.results()
    _address_and_postcode(fields, cleaned["address"], cleaned["postcode"])
    fields.columns["uprn"] = uprn = cleaned["uprn"]["value"]
    fields.check("uprn", uprn, cleaned["uprn"]["reason"])
    columns = fields.columns

    records = pd.DataFrame({
        "unique_id": pd.Series(range(len(raw)), dtype="int64"),
        "source": raw["source"].astype(object),
        "record_id": raw["record_id"].astype(object),
    })
    golden = [*GOLDEN_FIELDS, "record_date", "name_suffix"]
    named = sorted(c for c in columns if c.startswith(IDENTIFIER_PREFIX))
    matching = [
        "postcode_sector", "postcode_district", "postcode_area", "postcode_as_written", "house_number", "flat_number",
        "building_name", "is_person", "is_deceased", "dob_estimated", "dob_invalid_reason",
    ]
    for column in golden + named:
        records[column] = columns[column].to_numpy()
    for column, values in keys.items():
        records[column] = values.to_numpy()
    for column in matching:
        records[column] = columns[column].to_numpy()
    records[ROW_HASH] = row_hashes(raw, config)

    quality = _profile(raw, config, fields)
    log.info(
        "standardised %d records from %d sources; %d field profiles",
        len(records), raw["source"].nunique(), len(quality),
    )
    return Standardised(records, quality)


__all__ = ["Standardised", "in_record_order", "record_order", "standardise"]

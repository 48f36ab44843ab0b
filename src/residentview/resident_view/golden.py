"""Golden records: one row per resident, each field surviving from the resident's records.

Survivorship, per field, among the resident's records:
    1. a valid value beats none (invalid values are already null in `records`); for first and
       middle names a full name also beats a bare initial ("MARYAM" over "M")
    2. then the most recent `record_date` (records without one come last)
    3. then the source priority of the config (`resident_view: source_priority`; unlisted sources
       share the lowest priority)
    4. then the value held by most of the resident's records
    5. then the alphabetically first value, so the outcome never depends on row order.

The address is one unit: address, postcode and uprn come from the same record, so a golden address
is one the resident actually gave (never one source's street with another's postcode). Records
with both address and postcode beat partial ones before recency applies. When the winning record
has no UPRN, the UPRN another of the resident's records gives for the same address is used.

Besides the golden values: `other_names` (every distinct "FIRST LAST", previous surnames too),
`addresses` (every distinct "ADDRESS, POSTCODE"), `sources`, `n_records`, `first_seen` /
`last_seen` (earliest / latest `record_date`; NaT when no record has one), `is_person` (any record
names a person) and `is_deceased` (any record says so).

Every value is coded first: an integer per record, numbered in the values' sorted order (`Coded`,
coding.py). Survivorship is then DuckDB aggregating integers — each field to (resident, value)
first, so the ranking and the counting of step 4 happen once per distinct value — and the golden
values and the lists are looked up from the codes: no text is sorted, grouped or copied per
record, and a resident of one record (most of them) needs no query at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.resident_view.coding import Coded, arrow_text, coded, combined, distinct_lists, lookup, stacked
from residentview.schema import GOLDEN_FIELDS

ADDRESS_UNIT = ("address", "postcode", "uprn")
NAMES_WITH_INITIALS = ("first_name", "middle_names")
LIST_COLUMNS = ("other_names", "addresses", "sources")
_COUNTS = ("n_records", "first_seen", "last_seen", "is_person", "is_deceased")


def golden_value_columns(records: pd.DataFrame) -> list[str]:
    """The canonical fields plus the config's named identifiers (`id_<name>`)."""
    return list(GOLDEN_FIELDS) + sorted(c for c in records.columns if c.startswith("id_"))


def record_dates(records: pd.DataFrame) -> pd.Series:
    """`record_date` as naive datetimes (all NaT when the column is absent)."""
    dates = pd.to_datetime(_column(records, "record_date"))
    return dates.dt.tz_localize(None) if dates.dt.tz is not None else dates


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def recency_rank(records: pd.DataFrame, source_priority: Sequence[str]) -> np.ndarray:
    """Per record, its place in the tie-breaks shared by every field (lower is better): most
    recent record_date first (undated last), then source priority. Equal records share a rank."""
    dates = record_dates(records)
    nanoseconds = dates.to_numpy("datetime64[ns]").astype(np.int64)
    staleness = np.where(dates.isna().to_numpy(), np.iinfo(np.int64).max, -nanoseconds)
    rank = {source: position for position, source in enumerate(source_priority)}
    priority = records["source"].map(rank).fillna(len(rank)).to_numpy(np.int64)
    order = np.lexsort([priority, staleness])
    changes = np.r_[True, (np.diff(staleness[order]) != 0) | (np.diff(priority[order]) != 0)] if len(order) else order
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.cumsum(changes) - 1
    return ranks


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _initial_column(field: str) -> str:
    return f"{field} is an initial"


def _survivor_sql(field: str) -> str:
    """resident, value (the field's code): best rank, then commonest, then first value."""
    initial_last = f"{_q(_initial_column(field))}, " if field in NAMES_WITH_INITIALS else ""
    return (
        f"WITH per_value AS (SELECT resident, {_q(field)} AS value, {initial_last}min(rank) AS best, count(*) AS n "
        f"FROM shared_records WHERE {_q(field)} IS NOT NULL GROUP BY ALL) "
        f"SELECT resident, arg_min(value, ({initial_last}best, -n, value)) AS value FROM per_value GROUP BY resident"
    )


# The address unit: the winning (address | postcode) key brings its record's address, postcode and
# uprn; ties between records with the same key go to the earliest row, as a stable sort would.
# Returns resident, row (the winning record), same_address_uprn (-1 when none).
_ADDRESS_SQL = """
    WITH a_rows AS (
        SELECT resident, row, rank, uprn, address_key,
               (address IS NOT NULL)::INT + (postcode IS NOT NULL)::INT AS completeness
        FROM shared_records WHERE address IS NOT NULL OR postcode IS NOT NULL OR uprn IS NOT NULL),
    a_values AS (
        SELECT resident, address_key, count(*) AS n,
               min((-completeness, rank)) AS best, arg_min(row, (-completeness, rank, row)) AS row
        FROM a_rows GROUP BY ALL),
    a_golden AS (
        SELECT resident, arg_min(address_key, (best, -n, address_key)) AS address_key,
               arg_min(row, (best, -n, address_key)) AS row
        FROM a_values GROUP BY resident),
    u_values AS (
        SELECT resident, address_key, uprn AS value, min(rank) AS best, count(*) AS n
        FROM a_rows WHERE uprn IS NOT NULL GROUP BY ALL),
    u_golden AS (
        SELECT resident, address_key, arg_min(value, (best, -n, value)) AS uprn
        FROM u_values GROUP BY resident, address_key)
    SELECT resident, row, coalesce(u.uprn, -1) AS same_address_uprn
    FROM a_golden LEFT JOIN u_golden u USING (resident, address_key)
"""


def _survivors(
    values: dict[str, Coded], address_key: Coded, resident: np.ndarray, rank: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Per field, and for the "address key", each resident's surviving code (-1 when none). A
    resident of one record keeps that record's values; the others' survivors are found by DuckDB."""
    shared = np.bincount(resident, minlength=n)[resident] > 1
    single = np.flatnonzero(~shared)
    winners = {}
    for field in values:
        winners[field] = np.full(n, -1, dtype=np.int64)
        winners[field][resident[single]] = values[field].codes[single]
    address_row = np.full(n, -1, dtype=np.int64)  # the record giving the golden address
    address_row[resident[single]] = single
    same_address_uprn = np.full(n, -1, dtype=np.int64)

    rows = np.flatnonzero(shared)
    columns = {"resident": resident[rows], "rank": rank[rows], "row": rows}
    columns |= {field: Coded(column.codes[rows], column.values).as_arrow() for field, column in values.items()}
    for field in NAMES_WITH_INITIALS:
        is_initial = pc.utf8_length(arrow_text(values[field].values)).to_numpy(zero_copy_only=False) <= 1
        columns[_initial_column(field)] = np.append(is_initial, False)[values[field].codes[rows]]
    columns["address_key"] = address_key.codes[rows]
    with duckdb.connect() as con:
        con.register("shared_records", pa.table(columns))
        for field in values:
            if field not in ADDRESS_UNIT:
                found = con.sql(_survivor_sql(field)).fetchnumpy()
                winners[field][found["resident"]] = found["value"]
        found = con.sql(_ADDRESS_SQL).fetchnumpy()
    address_row[found["resident"]] = found["row"]
    same_address_uprn[found["resident"]] = found["same_address_uprn"]
    for field in ADDRESS_UNIT:
        winners[field] = lookup(values[field].codes, address_row)
    winners["uprn"] = np.where(winners["uprn"] >= 0, winners["uprn"], same_address_uprn)
    winners["address key"] = lookup(address_key.codes, address_row)
    return winners


def _lists(values: dict[str, Coded], addresses: Coded, resident: np.ndarray, n: int) -> dict[str, pd.Series]:
    """other_names, addresses (from each record's "ADDRESS, POSTCODE") and sources of each resident."""
    first, last, previous = (values[f] for f in ("first_name", "last_name", "previous_last_name"))
    names = combined(stacked(first, first), stacked(last, previous), name="concat_ws(' ', a, b)")["name"]
    names.codes[len(resident):][previous.codes < 0] = -1  # a maiden name only when there is one
    has_address = (values["address"].codes >= 0) | (values["postcode"].codes >= 0)
    lists = {
        "other_names": distinct_lists(np.r_[resident, resident], names, n),
        "addresses": distinct_lists(resident, Coded(np.where(has_address, addresses.codes, -1), addresses.values), n),
        "sources": distinct_lists(resident, values["source"], n),
    }
    # Kept from the SQL of earlier versions: a resident of several records none of which has an
    # address has no list of addresses (None), where a resident of one such record has [].
    without = (np.bincount(resident, minlength=n) > 1) & (np.bincount(resident, weights=has_address, minlength=n) == 0)
    lists["addresses"][without] = None
    return lists


@dataclass
class GoldenAddresses:
    """The residents' golden addresses, coded (a code per resident): what households group by,
    without coding the text again."""

    address: Coded
    postcode: Coded
    uprn: Coded
    key: Coded  # "ADDRESS|POSTCODE", a missing part empty (-1 for a resident of no address at all)
    record_keys: Coded  # the same key for each record (-1 for a record of no address at all)


def golden_records(
    records: pd.DataFrame, resident: np.ndarray, resident_ids: np.ndarray, source_priority: Sequence[str] = ()
) -> tuple[pd.DataFrame, GoldenAddresses]:
    """`records` (schema.py) and each record's resident (a position in `resident_ids`) -> one golden
    row per resident, in the order of `resident_ids`, and their addresses coded."""
    n = len(resident_ids)
    resident = np.asarray(resident, dtype=np.int64)
    fields = golden_value_columns(records)
    values = {name: coded(_column(records, name)) for name in dict.fromkeys([*fields, "source"])}
    address = combined(values["address"], values["postcode"],
                        key="coalesce(a, '') || '|' || coalesce(b, '')", label="concat_ws(', ', a, b)")
    winners = _survivors({f: values[f] for f in fields}, address["key"], resident,
                         recency_rank(records, source_priority), n)
    golden = {"resident_id": np.asarray(resident_ids, dtype=object)}
    golden |= {field: values[field].decoded(winners[field]) for field in fields}
    golden |= _lists(values, address["label"], resident, n)
    has_address = (values["address"].codes >= 0) | (values["postcode"].codes >= 0)

    per_resident = pd.DataFrame({
        "record_date": record_dates(records).to_numpy(),
        "is_person": _column(records, "is_person").astype("boolean").fillna(True).to_numpy(bool),
        "is_deceased": _column(records, "is_deceased").astype("boolean").fillna(False).to_numpy(bool),
    }).groupby(resident)
    golden |= {
        "n_records": np.bincount(resident, minlength=n).astype(np.int64),
        "first_seen": per_resident["record_date"].min().to_numpy(),
        "last_seen": per_resident["record_date"].max().to_numpy(),
        "is_person": per_resident["is_person"].any().to_numpy(),
        "is_deceased": per_resident["is_deceased"].any().to_numpy(),
    }
    addresses = GoldenAddresses(
        *(Coded(winners[field], values[field].values) for field in ADDRESS_UNIT),
        key=Coded(winners["address key"], address["key"].values),
        record_keys=Coded(np.where(has_address, address["key"].codes, -1), address["key"].values),
    )
    # Not copied into one block per dtype: at a million residents that copy costs a second.
    return pd.DataFrame(golden, copy=False), addresses

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
record, and a resident of one record (most of them) needs no query at all. The SQL is written
once (`survivor_sql`, `address_sql`) and spelled per engine (`SqlDialect`): with `engine: spark`
the same rules run in Spark SQL over the text itself (`engines/spark/resident_view.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.memory import duckdb_connect
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


@dataclass(frozen=True)
class SqlDialect:
    """How the survivorship SQL is spelled for one engine, so DuckDB (here, over codes) and Spark
    (engines/spark/resident_view.py, over the text itself) run the very same rules: a value's code
    orders as its text does (coding.py), so ranking either gives the same survivor."""

    quote: str  # around identifiers
    arg_min: str  # the aggregate: the value at the least key
    row: str  # the tuple constructor ("" for a bare parenthesised list)
    no_uprn: str  # same_address_uprn where the address has none ("{}" is the uprn)

    def q(self, name: str) -> str:
        return self.quote + name.replace(self.quote, self.quote * 2) + self.quote

    def tuple(self, *items: str) -> str:
        return f"{self.row}({', '.join(items)})"

    def least(self, value: str, *keys: str) -> str:
        return f"{self.arg_min}({value}, {self.tuple(*keys)})"


DUCKDB = SqlDialect(quote='"', arg_min="arg_min", row="", no_uprn="coalesce({}, -1)")


def _initial_column(field: str) -> str:
    return f"{field} is an initial"


def survivor_sql(field: str, sql: SqlDialect = DUCKDB, by: Sequence[str] = ("resident",),
                 initial: Optional[str] = None, table: str = "shared_records") -> str:
    """`by` (the resident), value (the field's code): best rank, then commonest, then first value.
    A full name beats an initial first: `initial` is the column saying which is one (by default
    the field's own, for first and middle names). Spark runs it over all fields stacked, `by`
    resident and field."""
    initial = _initial_column(field) if initial is None and field in NAMES_WITH_INITIALS else initial
    keys, flag = ", ".join(by), [sql.q(initial)] if initial else []
    return (
        f"WITH per_value AS (SELECT {keys}, {sql.q(field)} AS value, {''.join(f'{c}, ' for c in flag)}"
        f"min(rank) AS best, count(*) AS n FROM {table} WHERE {sql.q(field)} IS NOT NULL GROUP BY ALL) "
        f"SELECT {keys}, {sql.least('value', *flag, 'best', '-n', 'value')} AS value FROM per_value GROUP BY {keys}"
    )


def address_sql(sql: SqlDialect = DUCKDB) -> str:
    """The address unit: the winning (address | postcode) key brings its record's address,
    postcode and uprn; ties between records with the same key go to the earliest row, as a stable
    sort would. Returns resident, row (the winning record), same_address_uprn (the uprn another
    record gives for the same address: -1 when none, as a code; NULL in text)."""
    return f"""
    WITH a_rows AS (
        SELECT resident, row, rank, uprn, address_key,
               CAST(address IS NOT NULL AS INT) + CAST(postcode IS NOT NULL AS INT) AS completeness
        FROM shared_records WHERE address IS NOT NULL OR postcode IS NOT NULL OR uprn IS NOT NULL),
    a_values AS (
        SELECT resident, address_key, count(*) AS n,
               min({sql.tuple('-completeness', 'rank')}) AS best,
               {sql.least('row', '-completeness', 'rank', 'row')} AS row
        FROM a_rows GROUP BY ALL),
    a_golden AS (
        SELECT resident, {sql.least('address_key', 'best', '-n', 'address_key')} AS address_key,
               {sql.least('row', 'best', '-n', 'address_key')} AS row
        FROM a_values GROUP BY resident),
    u_values AS (
        SELECT resident, address_key, uprn AS value, min(rank) AS best, count(*) AS n
        FROM a_rows WHERE uprn IS NOT NULL GROUP BY ALL),
    u_golden AS (
        SELECT resident, address_key, {sql.least('value', 'best', '-n', 'value')} AS uprn
        FROM u_values GROUP BY resident, address_key)
    SELECT resident, row, {sql.no_uprn.format('u.uprn')} AS same_address_uprn
    FROM a_golden LEFT JOIN u_golden u USING (resident, address_key)
"""


def _survivors(
    values: dict[str, Coded], address_key: Coded, resident: np.ndarray, rank: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per field but the address unit's, each resident's surviving code (-1 when none); per
    resident, the record giving the golden address and the same_address_uprn (-1 when none). A
    resident of one record keeps that record's values; the others' survivors are found by DuckDB."""
    shared = np.bincount(resident, minlength=n)[resident] > 1
    single = np.flatnonzero(~shared)
    winners = {}
    for field in values:
        if field not in ADDRESS_UNIT:
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
    with duckdb_connect() as con:
        con.register("shared_records", pa.table(columns))
        for field in winners:
            found = con.sql(survivor_sql(field)).fetchnumpy()
            winners[field][found["resident"]] = found["value"]
        found = con.sql(address_sql()).fetchnumpy()
    address_row[found["resident"]] = found["row"]
    same_address_uprn[found["resident"]] = found["same_address_uprn"]
    return winners, address_row, same_address_uprn


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


ADDRESS_KEY = "coalesce(a, '') || '|' || coalesce(b, '')"  # of address a and postcode b (coding.combined)


def golden_addresses(
    unit: dict[str, Coded], key: Coded, address_row: np.ndarray, same_address_uprn: np.ndarray
) -> GoldenAddresses:
    """The residents' addresses from each record's address, postcode and uprn (`unit`, coded),
    address key, and per resident the record giving the golden address (`address_row`, -1 for
    none) and the uprn to use when that record has none (`same_address_uprn`, -1 for none)."""
    uprn = lookup(unit["uprn"].codes, address_row)
    has_address = (unit["address"].codes >= 0) | (unit["postcode"].codes >= 0)
    return GoldenAddresses(
        Coded(lookup(unit["address"].codes, address_row), unit["address"].values),
        Coded(lookup(unit["postcode"].codes, address_row), unit["postcode"].values),
        Coded(np.where(uprn >= 0, uprn, same_address_uprn), unit["uprn"].values),
        key=Coded(lookup(key.codes, address_row), key.values),
        record_keys=Coded(np.where(has_address, key.codes, -1), key.values),
    )


def golden_frame(
    resident_ids: np.ndarray, values: dict[str, np.ndarray], addresses: GoldenAddresses,
    lists: dict[str, pd.Series], counts: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The golden records' columns in their order: resident_id, the golden values (the address
    unit's from `addresses`), LIST_COLUMNS, then n_records, first_seen, last_seen, is_person,
    is_deceased."""
    unit = {field: getattr(addresses, field) for field in ADDRESS_UNIT}
    golden = {"resident_id": np.asarray(resident_ids, dtype=object)}
    golden |= {field: unit[field].decoded(unit[field].codes) if field in unit else values[field] for field in values}
    golden |= {name: lists[name] for name in LIST_COLUMNS}
    golden |= {name: counts[name] for name in _COUNTS}
    # Not copied into one block per dtype: at a million residents that copy costs a second.
    return pd.DataFrame(golden, copy=False)


def golden_records(
    records: pd.DataFrame, resident: np.ndarray, resident_ids: np.ndarray, source_priority: Sequence[str] = ()
) -> tuple[pd.DataFrame, GoldenAddresses]:
    """`records` (schema.py) and each record's resident (a position in `resident_ids`) -> one golden
    row per resident, in the order of `resident_ids`, and their addresses coded."""
    n = len(resident_ids)
    resident = np.asarray(resident, dtype=np.int64)
    fields = golden_value_columns(records)
    values = {name: coded(_column(records, name)) for name in dict.fromkeys([*fields, "source"])}
    address = combined(values["address"], values["postcode"], key=ADDRESS_KEY, label="concat_ws(', ', a, b)")
    winners, address_row, same_address_uprn = _survivors(
        {f: values[f] for f in fields}, address["key"], resident, recency_rank(records, source_priority), n)
    addresses = golden_addresses({f: values[f] for f in ADDRESS_UNIT}, address["key"], address_row, same_address_uprn)

    per_resident = pd.DataFrame({
        "record_date": record_dates(records).to_numpy(),
        "is_person": _column(records, "is_person").astype("boolean").fillna(True).to_numpy(bool),
        "is_deceased": _column(records, "is_deceased").astype("boolean").fillna(False).to_numpy(bool),
    }).groupby(resident)
    counts = {
        "n_records": np.bincount(resident, minlength=n).astype(np.int64),
        "first_seen": per_resident["record_date"].min().to_numpy(),
        "last_seen": per_resident["record_date"].max().to_numpy(),
        "is_person": per_resident["is_person"].any().to_numpy(),
        "is_deceased": per_resident["is_deceased"].any().to_numpy(),
    }
    golden = {field: None if field in ADDRESS_UNIT else values[field].decoded(winners[field]) for field in fields}
    return golden_frame(resident_ids, golden, addresses, _lists(values, address["label"], resident, n), counts), addresses

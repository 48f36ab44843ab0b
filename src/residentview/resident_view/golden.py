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

The work is one DuckDB query: each field aggregates to (resident, value) first, so the ranking
and the counting of step 4 happen once per distinct value rather than once per record.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.schema import GOLDEN_FIELDS
from residentview.memory import cycle_collector_paused

ADDRESS_UNIT = ("address", "postcode", "uprn")
NAMES_WITH_INITIALS = ("first_name", "middle_names")
LIST_COLUMNS = ("other_names", "addresses", "sources")
_COUNTS = ("n_records", "first_seen", "last_seen", "is_person", "is_deceased")
_SUMMARY_INPUTS = ("first_name", "last_name", "previous_last_name", "source", "is_person", "is_deceased")
_FLAGS = ("is_person", "is_deceased")


def golden_value_columns(records: pd.DataFrame) -> list[str]:
    """The canonical fields plus the config's named identifiers (`id_<name>`)."""
    return list(GOLDEN_FIELDS) + sorted(c for c in records.columns if c.startswith("id_"))


def record_dates(records: pd.DataFrame) -> pd.Series:
    """`record_date` as naive datetimes (all NaT when the column is absent)."""
    dates = pd.to_datetime(_column(records, "record_date"))
    return dates.dt.tz_localize(None) if dates.dt.tz is not None else dates


def nulls_as_none(values: pd.Series) -> pd.Series:
    """Missing values as None (not NaN), as text columns hold them."""
    return values.astype(object).where(values.notna(), None)


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


def best_rows(groups: np.ndarray, values: pd.Series, preferences: Sequence[np.ndarray] = ()):
    """For each group holding a non-null value: (group code, row position of its best row).

    Best by `preferences` (per-row arrays, lower is better, the first listed decides first), then
    the value most frequent in the group, then the alphabetically first value.
    """
    rows = np.flatnonzero(values.notna().to_numpy())
    if not len(rows):
        return np.array([], dtype=np.int64), rows
    value_codes = _alphabetical_codes(values.iloc[rows])
    group_codes = groups[rows]
    pair_codes, _ = pd.factorize(group_codes.astype(np.int64) * (int(value_codes.max()) + 1) + value_codes)
    frequency = np.bincount(pair_codes)[pair_codes]
    # np.lexsort sorts by its last key first.
    order = np.lexsort([value_codes, -frequency, *(p[rows] for p in reversed(preferences)), group_codes])
    sorted_groups = group_codes[order]
    first = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    return sorted_groups[first], rows[order][first]


def _alphabetical_codes(values: pd.Series) -> np.ndarray:
    """Codes that order values as their sorted order does (hashing first, then sorting the few uniques)."""
    codes, uniques = pd.factorize(values)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[pc.sort_indices(pa.array(np.asarray(uniques))).to_numpy()] = np.arange(len(uniques))
    return rank[codes]


def distinct_lists(codes: np.ndarray, values: pd.Series, n: int) -> pd.Series:
    """Sorted distinct non-empty values per group code 0..n-1, as Python lists (empty when none).

    Sorted numpy codes sliced per group: pandas' groupby(...).agg(list) costs a Series per group.
    """
    present = values.notna().to_numpy() & (values.astype(str) != "").to_numpy()
    value_codes = _alphabetical_codes(values[present])
    uniques = np.empty(int(value_codes.max()) + 1 if len(value_codes) else 0, dtype=object)
    uniques[value_codes] = values[present].to_numpy()
    width = max(len(uniques), 1)
    pairs = np.sort(pd.unique(codes[present].astype(np.int64) * width + value_codes))
    group_of, value_of = np.divmod(pairs, width)
    flat = uniques[value_of].tolist()
    starts = np.searchsorted(group_of, np.arange(n), side="left").tolist()
    ends = np.searchsorted(group_of, np.arange(n), side="right").tolist()
    with cycle_collector_paused():
        return pd.Series([flat[start:end] for start, end in zip(starts, ends)], dtype=object)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _survivor_sql(field: str) -> tuple[str, str]:
    """(CTE, select expression) of one field's survivor: best rank, then commonest, then first value."""
    initial_last = f"length(value) <= 1, " if field in NAMES_WITH_INITIALS else ""
    cte = (
        f"{_q('v_' + field)} AS (SELECT resident_id, {_q(field)} AS value, min(rank) AS best, count(*) AS n "
        f"FROM shared_records WHERE {_q(field)} IS NOT NULL GROUP BY ALL), "
        f"{_q('g_' + field)} AS (SELECT resident_id, arg_min(value, ({initial_last}best, -n, value)) AS {_q(field)} "
        f"FROM {_q('v_' + field)} GROUP BY resident_id)"
    )
    return cte, _q("g_" + field)


# The address unit: the winning (address | postcode) key brings its record's address, postcode and
# uprn; ties between records with the same key go to the earliest row, as a stable sort would.
_ADDRESS_SQL = """
    a_rows AS (
        SELECT resident_id, row, rank, uprn,
               (address IS NOT NULL)::INT + (postcode IS NOT NULL)::INT AS completeness,
               coalesce(address, '') || '|' || coalesce(postcode, '') AS address_key
        FROM shared_records WHERE address IS NOT NULL OR postcode IS NOT NULL OR uprn IS NOT NULL),
    a_values AS (
        SELECT resident_id, address_key, count(*) AS n,
               min((-completeness, rank)) AS best, arg_min(row, (-completeness, rank, row)) AS row
        FROM a_rows GROUP BY ALL),
    a_golden AS (
        SELECT resident_id, arg_min(address_key, (best, -n, address_key)) AS address_key,
               arg_min(row, (best, -n, address_key)) AS row
        FROM a_values GROUP BY resident_id),
    u_values AS (
        SELECT resident_id, address_key, uprn AS value, min(rank) AS best, count(*) AS n
        FROM a_rows WHERE uprn IS NOT NULL GROUP BY ALL),
    u_golden AS (
        SELECT resident_id, address_key, arg_min(value, (best, -n, value)) AS uprn
        FROM u_values GROUP BY resident_id, address_key),
    g_address AS (
        SELECT a.resident_id, w.address, w.postcode, coalesce(w.uprn, u.uprn) AS uprn
        FROM a_golden a JOIN shared_records w ON w.row = a.row
        LEFT JOIN u_golden u ON u.resident_id = a.resident_id AND u.address_key = a.address_key)
"""

_NOT_EMPTY = "lambda text: text <> ''"

_SUMMARY_SQL = f"""
    summaries AS (
        SELECT resident_id,
               list_filter(list_sort(list_distinct(list_concat(
                   list(concat_ws(' ', first_name, last_name)),
                   list(concat_ws(' ', first_name, previous_last_name)) FILTER (previous_last_name IS NOT NULL)
               ))), {_NOT_EMPTY}) AS other_names,
               list_filter(list_sort(list(DISTINCT concat_ws(', ', address, postcode))
                   FILTER (address IS NOT NULL OR postcode IS NOT NULL)), {_NOT_EMPTY}) AS addresses,
               list_filter(list_sort(list(DISTINCT source)), {_NOT_EMPTY}) AS sources,
               count(*) AS n_records,
               min(record_date) AS first_seen,
               max(record_date) AS last_seen,
               bool_or(coalesce(is_person, true)) AS is_person,
               bool_or(coalesce(is_deceased, false)) AS is_deceased
        FROM shared_records GROUP BY resident_id)
"""

# A resident of one record (most of them) needs no survivorship: the record is the golden record.
_SINGLE_SUMMARY_SQL = f"""
    list_filter(list_sort(list_distinct([
        concat_ws(' ', first_name, last_name),
        CASE WHEN previous_last_name IS NOT NULL THEN concat_ws(' ', first_name, previous_last_name) END
    ])), {_NOT_EMPTY}) AS other_names,
    list_filter(list_distinct([
        CASE WHEN address IS NOT NULL OR postcode IS NOT NULL THEN concat_ws(', ', address, postcode) END
    ]), {_NOT_EMPTY}) AS addresses,
    list_filter(list_distinct([source]), {_NOT_EMPTY}) AS sources,
    1::BIGINT AS n_records, record_date AS first_seen, record_date AS last_seen,
    coalesce(is_person, true) AS is_person, coalesce(is_deceased, false) AS is_deceased
"""


def python_lists(column: pa.ChunkedArray) -> pd.Series:
    """An Arrow list column as a Series of Python lists (None for a null list).

    Slices of one flat list of the values: a third quicker than `to_pylist`, which converts
    each value through an Arrow scalar."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    offsets = array.offsets.to_numpy().tolist()
    with cycle_collector_paused():
        flat = array.values.to_numpy(zero_copy_only=False).tolist()
        lists = [flat[start:end] for start, end in zip(offsets[:-1], offsets[1:])]
        if array.null_count:
            for position in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)).tolist():
                lists[position] = None
        return pd.Series(lists, dtype=object)


def _arrow_column(values: pd.Series | np.ndarray) -> pa.Array:
    """Text typed as text even when every value is missing, so the SQL types never vary."""
    if values.dtype == object:
        return pa.array(values, type=pa.string(), from_pandas=True)
    return pa.array(values, from_pandas=True)


def as_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table (text columns typed as text, see `_arrow_column`)."""
    return pa.table({name: _arrow_column(values) for name, values in frame.items()})


def golden_records(records: pd.DataFrame, resident_ids: pd.Series, source_priority: Sequence[str] = ()) -> pd.DataFrame:
    """`records` (schema.py) and each record's resident_id -> one golden row per resident, by resident_id."""
    fields = golden_value_columns(records)
    inputs = dict.fromkeys([*fields, *_SUMMARY_INPUTS])
    # Straight to Arrow, column by column: a pandas frame of these columns first would copy
    # every one of them once more.
    arrays = {name: _arrow_column(_column(records, name).to_numpy()) for name in inputs if name not in _FLAGS}
    for flag in _FLAGS:
        arrays[flag] = pa.array(_column(records, flag).astype("boolean"), type=pa.bool_())
    resident_ids = pd.Series(np.asarray(resident_ids, dtype=object))
    arrays["resident_id"] = _arrow_column(resident_ids.to_numpy())
    arrays["record_date"] = pa.array(record_dates(records).to_numpy(), from_pandas=True)
    arrays["rank"] = pa.array(recency_rank(records, source_priority))
    arrays["row"] = pa.array(np.arange(len(records), dtype=np.int64))
    shared = resident_ids.duplicated(keep=False).to_numpy()

    per_field = [_survivor_sql(f) for f in fields if f not in ADDRESS_UNIT]
    ctes = ", ".join([cte for cte, _ in per_field] + [_ADDRESS_SQL, _SUMMARY_SQL])
    joins = " ".join(f"LEFT JOIN {table} USING (resident_id)" for _, table in per_field)
    columns = ", ".join(_q(f) for f in fields)
    query = (
        f"WITH {ctes} "
        f"SELECT s.resident_id, {columns}, {', '.join(LIST_COLUMNS)}, {', '.join(_COUNTS)} "
        f"FROM summaries s LEFT JOIN g_address USING (resident_id) {joins} "
        f"UNION ALL SELECT resident_id, {columns}, {_SINGLE_SUMMARY_SQL} FROM single_records"
    )
    # Each copy is let go as soon as the next exists: at a million records every copy of these
    # columns is hundreds of megabytes, and this is the run's peak of memory.
    arrow = pa.table(arrays)
    del arrays
    shared_records, single_records = arrow.filter(shared), arrow.filter(~shared)
    del arrow
    with duckdb.connect() as con:
        con.register("shared_records", shared_records)
        con.register("single_records", single_records)
        table = con.sql(query).to_arrow_table()
    del shared_records, single_records
    # Sorting the finished rows in DuckDB would carry every column through the sort.
    table = table.take(pc.sort_indices(table["resident_id"]))
    golden = table.drop_columns(list(LIST_COLUMNS)).to_pandas(coerce_temporal_nanoseconds=True)
    for name in LIST_COLUMNS:
        golden[name] = python_lists(table[name])
    golden["n_records"] = golden["n_records"].astype(np.int64)
    return golden[["resident_id", *fields, *LIST_COLUMNS, *_COUNTS]]

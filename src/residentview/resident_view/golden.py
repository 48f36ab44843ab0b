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
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.schema import GOLDEN_FIELDS

ADDRESS_UNIT = ("address", "postcode", "uprn")
NAMES_WITH_INITIALS = ("first_name", "middle_names")
_NEVER_SEEN = np.iinfo(np.int64).max


def golden_value_columns(records: pd.DataFrame) -> list[str]:
    """The canonical fields plus the config's named identifiers (`id_<name>`)."""
    return list(GOLDEN_FIELDS) + sorted(c for c in records.columns if c.startswith("id_"))


class _Ranking:
    """The tie-breaks shared by every field: recency, then source priority."""

    def __init__(self, records: pd.DataFrame, source_priority: Sequence[str]):
        dates = record_dates(records)
        nanoseconds = dates.to_numpy("datetime64[ns]").astype(np.int64)
        self.staleness = np.where(dates.isna().to_numpy(), _NEVER_SEEN, -nanoseconds)
        rank = {source: position for position, source in enumerate(source_priority)}
        self.priority = records["source"].map(rank).fillna(len(rank)).to_numpy(np.int64)

    def winners(self, groups: np.ndarray, values: pd.Series, before_recency: Optional[np.ndarray] = None):
        """For each group holding a non-null value: (group code, row position of the winning record).

        `before_recency` (lower is better) outranks recency, e.g. a full name over an initial."""
        preferences = [self.staleness, self.priority]
        return best_rows(groups, values, preferences if before_recency is None else [before_recency, *preferences])


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


def record_dates(records: pd.DataFrame) -> pd.Series:
    """`record_date` as naive datetimes (all NaT when the column is absent)."""
    dates = pd.to_datetime(_column(records, "record_date"))
    return dates.dt.tz_localize(None) if dates.dt.tz is not None else dates


def nulls_as_none(values: pd.Series) -> pd.Series:
    """Missing values as None (not NaN), as text columns hold them."""
    return values.astype(object).where(values.notna(), None)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def _place(values: pd.Series, group_codes: np.ndarray, rows: np.ndarray, n_groups: int) -> pd.Series:
    """Values of the winning rows, one per group (missing groups: None / NaT)."""
    placed = pd.Series(values.iloc[rows].to_numpy(), index=group_codes).reindex(range(n_groups))
    if pd.api.types.is_datetime64_any_dtype(placed):
        return placed.reset_index(drop=True)
    return nulls_as_none(placed).reset_index(drop=True)


def golden_records(records: pd.DataFrame, source_priority: Sequence[str] = ()) -> pd.DataFrame:
    """`records` (schema.py) with a `resident_id` column -> one golden row per resident, by resident_id."""
    records = records.reset_index(drop=True)
    codes, resident_ids = pd.factorize(records["resident_id"])
    n = len(resident_ids)
    ranking = _Ranking(records, source_priority)
    golden = pd.DataFrame({"resident_id": np.asarray(resident_ids, dtype=object)})

    for field in golden_value_columns(records):
        if field in ADDRESS_UNIT:
            continue
        values = _column(records, field)
        fuller = -values.astype(object).str.len().gt(1).to_numpy(np.int64) if field in NAMES_WITH_INITIALS else None
        golden[field] = _place(values, *ranking.winners(codes, values, before_recency=fuller), n)

    _add_address_unit(golden, records, codes, ranking)
    golden = golden[["resident_id"] + golden_value_columns(records)]
    _add_summaries(golden, records, codes)
    return golden.sort_values("resident_id", kind="stable").reset_index(drop=True)


def _add_address_unit(golden: pd.DataFrame, records: pd.DataFrame, codes: np.ndarray, ranking: _Ranking) -> None:
    address, postcode, uprn = (_column(records, f) for f in ADDRESS_UNIT)
    has_any = address.notna() | postcode.notna() | uprn.notna()
    address_key = (address.fillna("") + "|" + postcode.fillna("")).where(has_any)
    completeness = address.notna().to_numpy(np.int64) + postcode.notna().to_numpy(np.int64)
    group_codes, rows = ranking.winners(codes, address_key, before_recency=-completeness)
    for field, values in zip(ADDRESS_UNIT, (address, postcode, uprn)):
        golden[field] = _place(values, group_codes, rows, len(golden))

    # The winning record may lack the UPRN another record gives for the very same address.
    address_codes, _ = pd.factorize(address_key)
    same_address, _ = pd.factorize(codes.astype(np.int64) * (int(address_codes.max(initial=-1)) + 2) + address_codes + 1)
    _, uprn_rows = ranking.winners(same_address, uprn)
    uprn_of_address = pd.Series(uprn.iloc[uprn_rows].to_numpy(), index=same_address[uprn_rows])
    chosen_address = pd.Series(same_address[rows], index=group_codes).reindex(range(len(golden)))
    golden["uprn"] = nulls_as_none(golden["uprn"].where(golden["uprn"].notna(), chosen_address.map(uprn_of_address)))


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
    return pd.Series([flat[start:end] for start, end in zip(starts, ends)], dtype=object)


def _joined(left: pd.Series, right: pd.Series, separator: str) -> pd.Series:
    """left + separator + right, or the side present when one is missing (None when both are)."""
    left_index = left.index
    left, right = (pa.array(side.to_numpy(object), type=pa.string(), from_pandas=True) for side in (left, right))
    joined = pc.coalesce(pc.binary_join_element_wise(left, right, separator), left, right)
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=left_index, dtype=object)


def _add_summaries(golden: pd.DataFrame, records: pd.DataFrame, codes: np.ndarray) -> None:
    n = len(golden)
    first, last, previous = (_column(records, f) for f in ("first_name", "last_name", "previous_last_name"))
    names = pd.concat([_joined(first, last, " "), _joined(first, previous, " ").where(previous.notna(), None)])
    golden["other_names"] = distinct_lists(np.concatenate([codes, codes]), names, n)
    golden["addresses"] = distinct_lists(codes, _joined(_column(records, "address"), _column(records, "postcode"), ", "), n)
    golden["sources"] = distinct_lists(codes, records["source"], n)
    by_resident = pd.Series(codes)
    golden["n_records"] = by_resident.value_counts().reindex(range(n), fill_value=0).to_numpy(np.int64)
    dates = record_dates(records)
    golden["first_seen"] = dates.groupby(codes).min().reindex(range(n)).to_numpy()
    golden["last_seen"] = dates.groupby(codes).max().reindex(range(n)).to_numpy()
    for flag, default in (("is_person", True), ("is_deceased", False)):
        values = _column(records, flag).astype("boolean").fillna(default).astype(bool)
        golden[flag] = values.groupby(codes).any().reindex(range(n), fill_value=default).to_numpy(bool)

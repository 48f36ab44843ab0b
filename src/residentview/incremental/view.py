"""The resident view after an update, built from the residents the update touched.

`build_resident_view` rebuilds every golden record, household, address history and event from
all the records: at a million records, a third of an update's time, for the few thousand
residents that changed. `updated_view` gives the same tables from less:

* resident ids are carried over for the re-clustered records only, against the previous
  residents they came from (every record of a resident an update touches is re-clustered, so
  no other previous resident shares a record with them);
* golden records are built for those residents only; every other resident's row is the
  previous run's, whose records are the same;
* households are grouped again where a touched resident lives or lived: every resident joined
  to such an address or UPRN through others at the same address or with the same UPRN (a
  household's members, and the one UPRN a household without one takes, never reach beyond
  that); the other households are the previous run's;
* the address history is rebuilt for the touched residents; the others' rows are the previous
  run's, seen again in tonight's extracts (`last_seen`);
* events are found among the touched residents, birthdays among all.

The result is the same as `build_resident_view` on the same records and clusters (tests compare
the two). When the previous run's outputs cannot be spliced (an older residentview wrote them,
or a setting the golden records depend on changed), `updated_view` returns None and the update
builds the view in full.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from residentview.resident_view import (LINK_COLUMNS, OnDriver, ResidentView, _as_utc, _log_changes,
                                        _records_with_clusters, _sources_of_residents_that_left, _surname_evidence,
                                        current_addresses, golden_in_id_order)
from residentview.resident_view.coding import coded
from residentview.resident_view.events import empty_events, life_events
from residentview.resident_view.golden import ADDRESS_KEY, GoldenAddresses
from residentview.resident_view.history import address_history, extracts_date, forget_records
from residentview.resident_view.households import HOUSEHOLD_COLUMNS, build_households
from residentview.resident_view.ids import RESIDENT_IDS, assign_persistent_ids
from residentview.resident_view.previous import ARROW_TEXT, as_python_strings, read_previous_run, record_members

log = logging.getLogger(__name__)


class CannotSplice(Exception):
    """The previous run's outputs do not allow the view to be spliced: build it in full."""


def _read_table(path: Path, needed: Sequence[str]) -> pa.Table:
    if not path.is_file():
        raise CannotSplice(f"{path.name} missing")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # the full build reads the folder again and names what is wrong with it
        raise CannotSplice(f"{path.name} unreadable ({type(exc).__name__})") from None
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise CannotSplice(f"{path.name} lacks {', '.join(missing)}")
    return table


def _text(values) -> np.ndarray:
    """Ids as an object array of Python strings (None for missing), however they were read."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_numpy(zero_copy_only=False)
    series = pd.Series(values)
    if isinstance(series.dtype, pd.ArrowDtype):
        return series.to_numpy(dtype=object, na_value=None)
    return series.to_numpy(dtype=object)


def _arrow_text(values) -> pa.Array:
    """Ids as one Arrow text array, however they are held (Arrow-backed frames are not copied)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(pa.string())
    if isinstance(values, pa.Array):
        return values.cast(pa.string())
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.ArrowDtype):
        return _arrow_text(pa.array(values))
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)


def _among(values, value_set: pa.Array) -> np.ndarray:
    """A mask of `values` (ids) found in `value_set`: Arrow's hash of the text, not a Python
    string per row."""
    return pc.is_in(_arrow_text(values), value_set=value_set).to_numpy(zero_copy_only=False)


def _as_schema(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A frame computed this run as the Arrow table of the previous run's file it is spliced into."""
    try:
        table = pa.Table.from_pandas(frame[schema.names], preserve_index=False)
        return table.cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise CannotSplice(f"this run's columns do not fit the previous run's ({type(exc).__name__}: {exc})") from None


def _spliced(before: pa.Table, keep: np.ndarray, fresh: pa.Table, column: str) -> tuple[pa.Table, np.ndarray]:
    """The rows of `before` where `keep`, and the rows of `fresh`, in one order by `column` (ids;
    both tables already in that order, no id in both), as a full build orders them; and a mask of
    the rows that came from `fresh`. One gather of the rows: filtering, then sorting every row
    (lists too), took seconds at a million."""
    kept_at = np.flatnonzero(keep)
    kept_keys = _arrow_text(before.column(column)).take(pa.array(kept_at)).to_numpy(zero_copy_only=False)
    fresh_keys = _arrow_text(fresh.column(column)).to_numpy(zero_copy_only=False)
    for keys in (kept_keys, fresh_keys):
        if len(keys) > 1 and not (keys[:-1] <= keys[1:]).all():
            raise CannotSplice(f"rows not in {column} order")
    # A fresh row goes after the kept rows of lower ids and the fresh rows before it.
    at = np.searchsorted(kept_keys, fresh_keys) + np.arange(len(fresh_keys))
    is_fresh = np.zeros(len(kept_at) + len(fresh_keys), dtype=bool)
    is_fresh[at] = True
    order = np.empty(len(is_fresh), dtype=np.int64)
    order[~is_fresh] = kept_at
    order[is_fresh] = before.num_rows + np.arange(len(fresh_keys))
    return pa.concat_tables([before, fresh]).take(pa.array(order)), is_fresh


def _address_keys(address: pa.Array, postcode: pa.Array) -> pa.Array:
    """ "ADDRESS|POSTCODE" per resident, as golden.ADDRESS_KEY writes it (a missing part empty)."""
    assert ADDRESS_KEY == "coalesce(a, '') || '|' || coalesce(b, '')"
    address, postcode = (pc.fill_null(part.cast(pa.string()), "") for part in (address, postcode))
    return pc.binary_join_element_wise(address, postcode, "|")


def _coded_addresses(address: pa.Array, postcode: pa.Array, uprn: pa.Array) -> GoldenAddresses:
    """Residents' golden addresses coded from their text, as `golden.golden_addresses` codes them
    (codes order as the text does, so every comparison and tie-break falls as in a full build)."""
    key = coded(_address_keys(address, postcode))
    return GoldenAddresses(coded(address), coded(postcode), coded(uprn), key, key)


def _neighbourhood(address: pa.Array, postcode: pa.Array, uprn: pa.Array, start_keys: pa.Array,
                   start_uprns: pa.Array, touched: np.ndarray) -> np.ndarray:
    """A mask of the residents whose household may change: the touched ones, and every resident
    connected to them or to a start address (full address and postcode) or start UPRN through
    residents sharing a full address or a UPRN. Grown a step at a time from the start: a few
    hash lookups over the residents, not a graph of all of them."""
    full = pc.and_(pc.is_valid(address), pc.is_valid(postcode))
    keys = pc.if_else(full, _address_keys(address, postcode), pa.scalar(None, pa.string()))
    near = np.asarray(touched, dtype=bool).copy()
    known_keys = pa.concat_arrays([start_keys, keys.filter(pa.array(near))]).drop_null().unique()
    known_uprns = pa.concat_arrays([start_uprns, uprn.filter(pa.array(near))]).drop_null().unique()
    while True:
        reached = pc.or_(pc.is_in(keys, value_set=known_keys), pc.is_in(uprn, value_set=known_uprns))
        grown = np.flatnonzero(reached.to_numpy(zero_copy_only=False) & ~near)
        if not len(grown):
            return near
        near[grown] = True
        more = pa.array(grown)
        known_keys = pa.concat_arrays([known_keys, keys.take(more).drop_null()]).unique()
        known_uprns = pa.concat_arrays([known_uprns, uprn.take(more).drop_null()]).unique()


def updated_view(
    records: pd.DataFrame,
    clusters: pd.DataFrame,
    reclustered: np.ndarray,
    previous_resident: np.ndarray,
    folder: Path,
    source_priority: Sequence[str] = (),
    run_timestamp: Optional[pd.Timestamp] = None,
    event_ages: Sequence[int] = (18,),
    fresh: Optional[np.ndarray] = None,
    forget: Sequence[str] = (),
) -> Optional[ResidentView]:
    """The resident view after an update, or None when it must be built in full.

    `records` (in unique_id order) and `clusters` as for `build_resident_view`; `reclustered`:
    per record, whether the update clustered it again; `previous_resident`: per record, the
    resident id it had in the previous run in `folder` (None for a new or changed record);
    `fresh`: per record, new or changed."""
    try:
        return _updated_view(records, clusters, np.asarray(reclustered, dtype=bool), previous_resident, Path(folder),
                             source_priority, _as_utc(run_timestamp), event_ages, fresh, forget)
    except CannotSplice as reason:
        log.info("update: the resident view is built in full (%s)", reason)
        return None


def _updated_view(records, clusters, reclustered, previous_resident, folder, source_priority, run_timestamp,
                  event_ages, fresh, forget) -> ResidentView:
    residents_before = _read_table(folder / "residents.parquet",
                                   ("resident_id", "household_id", "id_issued_at", "current_address_id", "address",
                                    "postcode", "uprn", "is_person", "is_deceased", "sources"))
    households_before = _read_table(folder / "households.parquet", HOUSEHOLD_COLUMNS)
    addresses_before = _read_table(folder / "addresses.parquet", ("resident_id", "n_records", "first_seen", "last_seen"))
    prior = read_previous_run(folder)
    if not prior.exists or prior.as_of is None:
        raise CannotSplice("the previous run's resident_links or run.json's extracts date missing")
    if prior.addresses is None:  # a history of no addresses at all
        prior.addresses = addresses_before.to_pandas(types_mapper=ARROW_TEXT.get)
    if prior.events is None:
        prior.events = empty_events()
    prior.addresses = forget_records(prior.addresses, prior.links, folder, forget)
    n = len(records)
    fresh = np.ones(n, dtype=bool) if fresh is None else np.asarray(fresh, dtype=bool)
    touched_rows = np.flatnonzero(reclustered)
    kept_rows = np.flatnonzero(~reclustered)

    # Previous residents: those whose records are all kept as they were, and the touched ones.
    kept_ids = _text(previous_resident[kept_rows]) if len(kept_rows) else np.array([], dtype=object)
    if any(r is None for r in kept_ids.tolist()):
        raise RuntimeError("a record new to this update was left out of re-clustering")
    untouched = _arrow_text(pd.unique(kept_ids))
    of_untouched = _among(prior.links["resident_id"], untouched)
    if of_untouched.sum() != len(kept_rows):  # cannot happen: re-clustering closes over previous residents
        raise RuntimeError("a resident left out of re-clustering lost or gained records")

    # Resident ids of the re-clustered records, against the previous residents they came from.
    linked = _records_with_clusters(records.iloc[touched_rows], clusters)
    members_before = prior.resident_members()
    assigned = assign_persistent_ids(
        pd.DataFrame({"group": linked["cluster_key"], "member": record_members(linked)}),
        members_before[~of_untouched].reset_index(drop=True), prior.resident_issued_at(), prior.resident_ids_issued(),
        RESIDENT_IDS, run_timestamp,
    )
    left = _sources_of_residents_that_left(prior, assigned.changes)
    prior.links = prior.links.iloc[:0]
    golden, addresses, resident_of_touched = golden_in_id_order(OnDriver(), records.iloc[touched_rows], assigned,
                                                                source_priority)
    touched_ids = golden["resident_id"].to_numpy(dtype=object)
    key_ids, current_key, golden["current_address_id"] = current_addresses(addresses)

    # Every resident after the update: the untouched as they were, the touched built again.
    staying = _among(residents_before.column("resident_id"), untouched)
    if staying.sum() != len(untouched):
        raise CannotSplice("residents.parquet and resident_links.parquet disagree")
    gone_residents = residents_before.filter(pa.array(~staying))
    golden["household_id"] = None
    touched_table = _as_schema(golden, residents_before.schema)
    residents, is_touched = _spliced(residents_before, staying, touched_table, "resident_id")
    del residents_before  # the previous run's tables go as soon as spliced: the update's peak is here

    # Households, where a touched resident lives or lived.
    column = lambda name: residents.column(name).combine_chunks().cast(pa.string())  # noqa: E731
    gone_address, gone_postcode = (gone_residents.column(c).combine_chunks() for c in ("address", "postcode"))
    gone_full = pc.and_(pc.is_valid(gone_address), pc.is_valid(gone_postcode))
    start_keys = _address_keys(gone_address, gone_postcode).filter(gone_full)
    start_uprns = gone_residents.column("uprn").combine_chunks().drop_null()
    near = np.flatnonzero(_neighbourhood(column("address"), column("postcode"), column("uprn"),
                                         start_keys.cast(pa.string()), start_uprns.cast(pa.string()), is_touched))
    near_table = residents.take(pa.array(near))  # in resident_id order, as a full build numbers residents
    near_ids = _text(near_table.column("resident_id"))
    households_of_near = pa.array(sorted(set(_text(near_table.column("household_id").drop_null())) |
                                         set(_text(gone_residents.column("household_id").drop_null()))),
                                  type=pa.string())
    previous_members = prior.household_members()
    previous_members = previous_members[_among(previous_members["old_id"], households_of_near)].reset_index(drop=True)
    reachable = pd.Index(near_ids).append(pd.Index(_text(gone_residents.column("resident_id"))))
    if not pd.Index(_text(previous_members["member"])).isin(reachable).all():
        raise CannotSplice("a previous household reaches beyond the residents grouped again")
    near_frame = pd.DataFrame({
        "resident_id": near_ids,
        "is_person": near_table.column("is_person").to_numpy(),
        "is_deceased": near_table.column("is_deceased").to_numpy(),
    })
    near_addresses = _coded_addresses(*(near_table.column(c).combine_chunks().cast(pa.string())
                                        for c in ("address", "postcode", "uprn")))
    grouped = build_households(near_frame, near_addresses, previous_members, prior.household_issued_at(),
                               prior.household_ids_issued(), run_timestamp)
    household_id = _text(residents.column("household_id"))
    household_id[near] = grouped.household_of
    field, values = residents.schema.field("household_id"), pa.array(household_id, type=pa.string())
    # A column of nothing but missing values is typed null, as a full build writes it.
    field, values = (field.with_type(pa.null()), pa.nulls(len(values))) if values.null_count == len(values) \
        else (field.with_type(pa.string()), values)
    residents = residents.set_column(residents.schema.get_field_index("household_id"), field, values)
    households, _ = _spliced(households_before, ~_among(households_before.column("household_id"), households_of_near),
                             _as_schema(grouped.households, households_before.schema), "household_id")
    del households_before

    # Links: every record's resident, confidence of membership and household.
    record_resident = np.empty(n, dtype=object)
    record_resident[kept_rows] = kept_ids
    record_resident[touched_rows] = touched_ids[resident_of_touched]
    at = pc.index_in(_arrow_text(record_resident), value_set=residents.column("resident_id").combine_chunks())
    by_record = clusters.set_index("unique_id")["match_probability"].reindex(records["unique_id"]).fillna(1.0)
    links = pd.DataFrame({
        "source": records["source"].to_numpy(),
        "record_id": records["record_id"].astype(str).to_numpy(),
        "resident_id": record_resident,
        "match_probability": by_record.to_numpy(float),
        "household_id": residents.column("household_id").take(at).to_numpy(zero_copy_only=False),
    })[list(LINK_COLUMNS)]

    this_run = pd.concat([assigned.changes, grouped.changes], ignore_index=True)
    _log_changes(this_run, residents.num_rows, households.num_rows)
    id_changes = _appended(prior.id_changes, this_run)

    # The address history: the untouched residents' rows seen again tonight, the touched rebuilt.
    as_of = extracts_date(records)
    history_before = _history_seen_again(prior.addresses, addresses_before, as_of)
    kept_history = _among(history_before.column("resident_id"), untouched)
    merged = assigned.changes[assigned.changes["change"] == "merged"]
    touched_history = address_history(
        records.iloc[touched_rows], resident_of_touched, touched_ids, addresses.record_keys, key_ids, current_key,
        prior.addresses[~_among(prior.addresses["resident_id"], untouched)].reset_index(drop=True),
        dict(zip(merged["old_id"].astype(str), merged["new_id"].astype(str))), as_of)
    address_table, _ = _spliced(history_before, kept_history, _as_schema(touched_history, history_before.schema),
                                "resident_id")
    del history_before, addresses_before

    # Events: those a previous run's residents show, among the touched; birthdays among all.
    fresh_touched = fresh[touched_rows]
    fresh_at_current = np.zeros(len(touched_ids), dtype=bool)
    giving = fresh_touched & (addresses.record_keys.codes >= 0) & (
        addresses.record_keys.codes == current_key[resident_of_touched])
    fresh_at_current[resident_of_touched[giving]] = True
    touched_slim = golden.assign(household_id=household_id[is_touched], fresh_current_address=fresh_at_current)
    previous_residents = prior.residents[~_among(prior.residents["resident_id"], untouched)]
    previous_residents = previous_residents.assign(
        sources=pd.Series(_text(previous_residents["resident_id"]), index=previous_residents.index).map(left))
    address_frame = address_table.to_pandas(types_mapper=ARROW_TEXT.get)
    events = life_events(
        touched_slim, address_frame, assigned.changes, previous_residents, prior.addresses, prior.events, False,
        event_ages, as_of, prior.as_of, run_timestamp,
        lambda who: _surname_evidence(records.iloc[touched_rows], resident_of_touched, golden, who, fresh_touched),
        aging=_aging(residents, ~is_touched))
    # Text stays Arrow-backed, as the previous run's tables are read (a million residents' text
    # made Python strings took seconds).
    return ResidentView(links, residents.to_pandas(types_mapper=ARROW_TEXT.get),
                        households.to_pandas(types_mapper=ARROW_TEXT.get), id_changes, address_frame, events, as_of)


def _aging(residents: pa.Table, untouched: np.ndarray) -> pd.DataFrame:
    """The untouched residents with what a birthday event reads (the touched are in the events'
    own frame). Their lists of sources stay Arrow: only the few with a birthday are read."""
    columns = [c for c in ("resident_id", "date_of_birth", "is_deceased", "sources") if c in residents.column_names]
    lists = residents.schema.field("sources").type
    return residents.select(columns).filter(pa.array(untouched)).to_pandas(
        types_mapper=(ARROW_TEXT | {lists: pd.ArrowDtype(lists)}).get)


def _appended(history: pd.DataFrame, this_run: pd.DataFrame) -> pd.DataFrame:
    """The id changes so far (as read: Arrow text) and this run's, in one frame of Arrow text."""
    if not len(this_run):
        return history
    if not len(history):
        return this_run
    earlier = pa.Table.from_pandas(history, preserve_index=False)
    try:
        now = pa.Table.from_pandas(this_run[earlier.column_names], preserve_index=False).cast(earlier.schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pd.concat([as_python_strings(history), this_run], ignore_index=True)
    return pa.concat_tables([earlier, now]).to_pandas(types_mapper=ARROW_TEXT.get)


def _history_seen_again(history: pd.DataFrame, table: Optional[pa.Table], as_of: pd.Timestamp) -> pa.Table:
    """The previous address history (`history`, as read and past retention forgotten; `table`:
    the file as read, when nothing was forgotten) with every address a record still holds seen
    in tonight's extracts: last_seen is their date, and first_seen no later. For a resident
    whose records did not change, that is what rebuilding the history gives."""
    table = table if table is not None and table.num_rows == len(history) else \
        pa.Table.from_pandas(history, preserve_index=False)
    held = table.column("n_records").to_numpy() > 0
    first_seen = table.column("first_seen").to_numpy().astype("datetime64[ns]")
    if np.isnat(first_seen[held]).any():  # written before first_seen was always filled
        raise CannotSplice("the previous address history has addresses never seen")
    as_of_ns = as_of.to_datetime64().astype("datetime64[ns]")
    last_seen = table.column("last_seen").to_numpy().astype("datetime64[ns]")
    last_seen = np.where(held, as_of_ns, last_seen)
    first_seen = np.where(held & (first_seen > as_of_ns), as_of_ns, first_seen)
    for name, values in (("first_seen", first_seen), ("last_seen", last_seen)):
        at = table.schema.get_field_index(name)
        table = table.set_column(at, table.schema.field(name), pa.array(values).cast(table.schema.field(name).type))
    return table

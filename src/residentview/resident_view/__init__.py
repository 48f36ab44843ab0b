"""Stage 5 — resident view: persistent resident ids, golden records and households.

`build_resident_view(records, clusters, previous, ...)` turns this run's clusters (whose keys mean
nothing beyond the run) into residents with ids that persist: records keep the resident id they
had in the previous run's outputs (`previous`), merges keep the id contributing most records,
splits keep the id on the largest part; see `ids.py` for the rules. It returns:

    links       one row per record: source, record_id, resident_id, match_probability, household_id
    residents   one golden record per resident (`golden.py`), with household_id and id_issued_at
    households  one row per household (`households.py`)
    id_changes  every id change ever made: this run's rows (new / merged / split / retired, for
                residents and households, see `entity`) appended to the previous run's history, so a
                downstream system can catch up from any run by filtering on run_timestamp

`write_database(folder, view, quality)` writes the same tables to `resident_view.duckdb`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from itertools import chain
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from residentview.sources import ROW_HASH, record_keys
from residentview.resident_view.database import DATABASE_FILE, as_arrow_table, write_tables
from residentview.resident_view.events import empty_events, life_events
from residentview.resident_view.golden import GoldenAddresses, golden_records, record_dates
from residentview.resident_view.overlap import service_overlap
from residentview.resident_view.history import (address_history, address_ids, empty_addresses, extracts_date,
                                                forget_records)
from residentview.resident_view.households import HouseholdWork, build_households
from residentview.resident_view.ids import (HOUSEHOLD_IDS, RESIDENT_IDS, IdAssignment, MemberTally,
                                           assign_persistent_ids)
from residentview.resident_view.previous import as_python_strings, read_previous_run, record_members

log = logging.getLogger(__name__)

LINK_COLUMNS = ("source", "record_id", "resident_id", "match_probability", "household_id")


@dataclass
class ResidentView:
    """The stage's output: the frames written as resident_links / residents / households /
    id_changes .parquet."""

    links: pd.DataFrame
    residents: pd.DataFrame
    households: pd.DataFrame
    id_changes: pd.DataFrame
    addresses: pd.DataFrame = field(default_factory=empty_addresses)
    events: pd.DataFrame = field(default_factory=empty_events)
    as_of: Optional[pd.Timestamp] = None  # the date of the extracts (history.extracts_date)

    def events_this_run(self) -> dict[str, int]:
        """How many events of each kind this run added (for run.json)."""
        if not len(self.events) or not len(self.id_changes):
            return {}
        latest = self.events["run_timestamp"].max()
        return {str(k): int(v) for k, v in
                self.events.loc[self.events["run_timestamp"] == latest, "event"].value_counts().sort_index().items()}


class OnDriver:
    """Where the stage's per-record work runs: the golden records (`golden_records`), the
    resident and household ids' fingerprints and overlaps (`tally`, an `ids.MemberTally`) and
    the grouping of residents into households (`households`, a `households.HouseholdWork`).
    Here, on the driver; `engines.spark.resident_view.OnSpark` runs the same on Spark. The rest
    of the stage — matching groups to previous ids, the address history and events — runs on
    the driver."""

    tally = MemberTally()
    households = HouseholdWork()

    @staticmethod
    def golden_records(records, resident, resident_ids, source_priority=()):
        return golden_records(records, resident, resident_ids, source_priority)


def _as_utc(timestamp: Optional[pd.Timestamp]) -> pd.Timestamp:
    timestamp = pd.Timestamp.now(tz="UTC").floor("s") if timestamp is None else pd.Timestamp(timestamp)
    return timestamp.tz_localize("UTC") if timestamp.tzinfo is None else timestamp.tz_convert("UTC")


def _records_with_clusters(records: pd.DataFrame, clusters: pd.DataFrame) -> pd.DataFrame:
    """unique_id, source, record_id, cluster_key, match_probability: one row per record, in records' order.

    Only these columns: a merge would copy every column of the (wide) records."""
    if clusters["unique_id"].duplicated().any():
        raise ValueError("clusters hold a record more than once")
    by_record = clusters.set_index("unique_id")[["cluster_key", "match_probability"]].reindex(records["unique_id"])
    linked = pd.DataFrame({
        "unique_id": records["unique_id"].to_numpy(),
        "source": records["source"].to_numpy(),
        "record_id": records["record_id"].astype(str).to_numpy(),
        "cluster_key": by_record["cluster_key"].to_numpy(),
        "match_probability": by_record["match_probability"].to_numpy(),
    })
    # A record the clusterer did not return is a resident of its own rather than a lost record.
    unclustered = linked["cluster_key"].isna()
    if unclustered.any():
        offset = int(linked["cluster_key"].max()) + 1 if (~unclustered).any() else 0
        linked.loc[unclustered, "cluster_key"] = offset + linked.loc[unclustered, "unique_id"]
        linked.loc[unclustered, "match_probability"] = 1.0
    linked["cluster_key"] = linked["cluster_key"].astype(np.int64)
    return linked


def build_resident_view(
    records: pd.DataFrame,
    clusters: pd.DataFrame,
    previous: Optional[Path] = None,
    source_priority: Sequence[str] = (),
    run_timestamp: Optional[pd.Timestamp] = None,
    event_ages: Sequence[int] = (18,),
    fresh: Optional[np.ndarray] = None,
    forget: Sequence[str] = (),
    engine: Optional[OnDriver] = None,
) -> ResidentView:
    """`fresh`: per record, whether it is new or changed since the previous run, when the caller
    knows (an update does); else found from the previous run's record hashes. `forget`: the keys
    (source, record_id) of records past their retention, whose addresses leave the history.
    `engine`: where the per-record work runs (`OnDriver`, the default, or Spark's `OnSpark`)."""
    engine = engine or OnDriver()
    run_timestamp = _as_utc(run_timestamp)
    prior = read_previous_run(previous)
    prior.addresses = forget_records(prior.addresses, prior.links, previous, forget)
    first_run = not prior.exists
    linked = _records_with_clusters(records, clusters)

    residents_assigned = assign_persistent_ids(
        pd.DataFrame({"group": linked["cluster_key"], "member": record_members(linked)}),
        prior.resident_members(), prior.resident_issued_at(), prior.resident_ids_issued(),
        RESIDENT_IDS, run_timestamp, engine.tally,
    )
    linked["resident_id"] = residents_assigned.member_ids
    left = _sources_of_residents_that_left(prior, residents_assigned.changes)
    # The previous run's links (a row per record, in strings) are needed no further: let them
    # go before the golden records, the stage's peak, are built.
    prior.links = prior.links.iloc[:0]

    residents, addresses, resident_of_record = golden_in_id_order(engine, records, residents_assigned, source_priority)
    households = build_households(
        residents, addresses, prior.household_members(), prior.household_issued_at(), prior.household_ids_issued(),
        run_timestamp, engine.tally, engine.households,
    )
    residents.insert(residents.columns.get_loc("n_records"), "household_id", households.household_of)
    linked["household_id"] = households.household_of[resident_of_record]
    # unique_id follows (source, record_id) order (schema.py), and is far cheaper to sort by.
    links = linked.sort_values("unique_id", kind="stable")[list(LINK_COLUMNS)].reset_index(drop=True)

    this_run = pd.concat([residents_assigned.changes, households.changes], ignore_index=True)
    _log_changes(this_run, len(residents), len(households.households))
    history = [frame for frame in (as_python_strings(prior.id_changes), this_run) if len(frame)]
    id_changes = pd.concat(history, ignore_index=True) if history else this_run

    as_of = extracts_date(records)
    key_ids, current_key, residents["current_address_id"] = current_addresses(addresses)
    merged = residents_assigned.changes[residents_assigned.changes["change"] == "merged"]
    addresses_now = address_history(
        records, resident_of_record, residents["resident_id"].to_numpy(dtype=object), addresses.record_keys,
        key_ids, current_key, prior.addresses if prior.addresses is not None else empty_addresses(),
        dict(zip(merged["old_id"].astype(str), merged["new_id"].astype(str))), as_of)
    fresh = _fresh_records(records, previous) if fresh is None else np.asarray(fresh, dtype=bool)
    # Per resident: does a record new or changed since the previous run give its current address?
    fresh_at_current = np.zeros(len(residents), dtype=bool)
    giving = fresh & (addresses.record_keys.codes >= 0) & (
        addresses.record_keys.codes == current_key[resident_of_record])
    fresh_at_current[resident_of_record[giving]] = True
    events = life_events(
        _slim(residents).assign(fresh_current_address=fresh_at_current), addresses_now, residents_assigned.changes,
        prior.residents.assign(sources=prior.residents["resident_id"].astype(str).map(left)),
        prior.addresses if prior.addresses is not None else empty_addresses(),
        prior.events if prior.events is not None else empty_events(),
        first_run, event_ages, as_of, prior.as_of, run_timestamp,
        lambda who: _surname_evidence(records, resident_of_record, residents, who, fresh))
    return ResidentView(links, residents, households.households, id_changes, addresses_now, events, as_of)


def golden_in_id_order(engine: OnDriver, records: pd.DataFrame, assigned: IdAssignment,
                       source_priority: Sequence[str]) -> tuple[pd.DataFrame, GoldenAddresses, np.ndarray]:
    """The golden records of the residents `assigned` ids to (`records` grouped), numbered and
    in rows in resident_id order, with id_issued_at; their addresses coded; and each record's
    resident (a row of the golden records)."""
    ids = assigned.ids
    by_id = pc.sort_indices(pa.array(ids["id"], type=pa.string())).to_numpy()
    number = np.empty(len(by_id), dtype=np.int64)
    number[by_id] = np.arange(len(by_id))
    resident_of_record = number[assigned.member_groups]
    residents, addresses = engine.golden_records(
        records, resident_of_record, ids["id"].to_numpy()[by_id], source_priority)
    residents["id_issued_at"] = ids["id_issued_at"].array[by_id]
    return residents, addresses, resident_of_record


def current_addresses(addresses: GoldenAddresses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The address_id of each address key; each resident's current (golden) address key code,
    -1 for a resident of no address at all; and each resident's current_address_id."""
    key_ids = address_ids(addresses.key.values)
    empty_key = np.flatnonzero(addresses.key.values == "|")
    current_key = addresses.key.codes.copy()
    if len(empty_key):
        current_key[current_key == empty_key[0]] = -1
    return key_ids, current_key, np.where(current_key >= 0, np.append(key_ids, None)[current_key], None)


def _sources_of_residents_that_left(prior, changes: pd.DataFrame) -> dict:
    """The sources that held each previous resident none of whose records are held any more."""
    gone = changes.loc[(changes["entity"] == RESIDENT_IDS.entity) & (changes["change"] == "retired"), "old_id"]
    if not len(gone):
        return {}
    links = prior.links[prior.links["resident_id"].astype(str).isin(set(gone.astype(str)))]
    return {str(r): sorted(set(map(str, s))) for r, s in links.groupby(links["resident_id"].astype(str))["source"]}


def _slim(residents: pd.DataFrame) -> pd.DataFrame:
    """The golden columns events read: a copy of every golden column (lists too) costs seconds at a million."""
    from residentview.resident_view.events import SLIM

    return residents[[c for c in SLIM if c in residents]]


def _fresh_records(records: pd.DataFrame, previous: Optional[Path]) -> np.ndarray:
    """Per record: new or changed since the previous run in `previous` (by source, record id and
    `row_hash`; every record when either run kept no hashes). An event must be shown by one: a
    golden surname or address that changed only because another record left, or won on
    recency among unchanged records, is no event."""
    path = Path(previous) / "records.parquet" if previous is not None else None
    if ROW_HASH not in records or path is None or not path.is_file() or \
            ROW_HASH not in pq.ParquetFile(path).schema_arrow.names:
        return np.ones(len(records), dtype=bool)
    before = pd.read_parquet(path, columns=["source", "record_id", ROW_HASH])
    at = record_keys(before).get_indexer(record_keys(records))
    hashes = before[ROW_HASH].to_numpy(dtype=np.uint64)
    return (at < 0) | (hashes[np.maximum(at, 0)] != records[ROW_HASH].to_numpy(dtype=np.uint64))


def _surname_evidence(records: pd.DataFrame, resident_of_record: np.ndarray, residents: pd.DataFrame,
                      who: np.ndarray, fresh: np.ndarray) -> tuple[dict, dict]:
    """For the residents `who` whose golden surname a record new or changed since the previous
    run (`fresh`) gives: the sources whose records give it, and their latest record_date."""
    if not len(who) or "last_name" not in records:
        return {}, {}
    ids = residents["resident_id"].to_numpy(dtype=object)
    wanted = pd.Index(ids).isin(who)  # hashed: numpy's isin sorts Python strings
    rows = np.flatnonzero(wanted[resident_of_record])
    owner = ids[resident_of_record[rows]]
    golden = residents["last_name"].to_numpy(dtype=object)[resident_of_record[rows]]
    same = records["last_name"].to_numpy(dtype=object)[rows] == golden
    frame = pd.DataFrame({"owner": owner[same], "source": records["source"].to_numpy(dtype=object)[rows][same],
                          "date": record_dates(records.iloc[rows]).to_numpy()[same]})
    shown = set(owner[same & fresh[rows]].tolist())
    frame = frame[frame["owner"].isin(shown)]
    grouped = frame.groupby("owner")
    sources = {r: sorted(set(map(str, s))) for r, s in grouped["source"]}
    dates = grouped["date"].max().to_dict()
    return sources, dates


def _log_changes(changes: pd.DataFrame, n_residents: int, n_households: int) -> None:
    for entity, total in ((RESIDENT_IDS.entity, n_residents), (HOUSEHOLD_IDS.entity, n_households)):
        counts = changes.loc[changes["entity"] == entity, "change"].value_counts()
        log.info(
            "%d %ss: %d new ids; %d merged, %d split, %d retired", total, entity,
            counts.get("new", 0), counts.get("merged", 0), counts.get("split", 0), counts.get("retired", 0),
        )


def view_tables(view: ResidentView, quality: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The resident view's tables by name: each is `<name>.parquet` and a table of the database."""
    return {
        "residents": view.residents,
        "resident_links": view.links,
        "households": view.households,
        "id_changes": view.id_changes,
        "addresses": view.addresses,
        "events": view.events,
        "data_quality": quality,
    }


def write_database(folder: Path, view: ResidentView, quality: pd.DataFrame) -> Path:
    """Write `folder/resident_view.duckdb` with the tables residents, resident_links, households,
    id_changes and data_quality."""
    return write_tables(Path(folder) / DATABASE_FILE, view_tables(view, quality))


def write_view(folder: Path, view: ResidentView, quality: pd.DataFrame,
               database_only: Optional[dict[str, Union[pd.DataFrame, pa.Table]]] = None) -> None:
    """Write each of the view's tables as `<name>.parquet` and all of them to the database,
    converting each frame to Arrow once for both, and one at a time (at a million records the
    tables are 486 MB as Arrow, the residents' 215 MB of it: they were all held at once before).
    `database_only`: more tables for the database whose files are written elsewhere (the
    decisions store)."""
    # For SQL only: the counts of residents by the services that know them (overlap.py).
    overlap = {"service_overlap": service_overlap(view.residents)} if "sources" in view.residents else {}
    write_tables(Path(folder) / DATABASE_FILE, chain(
        _written_as_parquet(folder, view_tables(view, quality)), (overlap | (database_only or {})).items()))


def _written_as_parquet(folder: Path, frames: dict[str, pd.DataFrame]) -> Iterator[tuple[str, pa.Table]]:
    """Each frame as Arrow, written to `<name>.parquet` in `folder` before it is handed on."""
    for name, frame in frames.items():
        table = as_arrow_table(frame)
        pq.write_table(table, Path(folder) / f"{name}.parquet")
        yield name, table

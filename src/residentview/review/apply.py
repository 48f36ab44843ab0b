"""Bringing decisions into an output folder: `residentview review apply OUTDIR FILE`, and the
filled-in review queue a run (or `residentview report`) finds in the folder it is about to
replace — imported first, so that no decision is ever lost."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import duckdb
import pandas as pd

from residentview.audit import append_entries, os_user
from residentview.errors import DataError
from residentview.outputs import folder_lock, staged_output
from residentview.resident_view.database import DATABASE_FILE
from residentview.review.importing import DecisionsFile, decisions_from_frame, read_decisions_file
from residentview.review.in_force import DecisionsInForce, decisions_in_force
from residentview.review.store import appended, as_store_table, file_digest, read_store, write_store

log = logging.getLogger(__name__)

QUEUE_FILE = "review_queue.csv"
MODEL_VERSION_DIGITS = 16


@dataclass
class AppliedDecisions:
    imported: DecisionsFile
    in_force: DecisionsInForce
    store: pd.DataFrame


def model_version(folder: Path) -> Optional[str]:
    """Which model a reviewer saw scores from: a digest of the folder's model.json."""
    return file_digest(Path(folder) / "model.json", MODEL_VERSION_DIGITS)


def _run_records(folder: Path) -> pd.DataFrame:
    """The records a folder's run linked (unique_id, source, record_id): the ones decisions may name."""
    folder = Path(folder)
    records = folder / "records.parquet"
    if records.is_file():
        try:
            return pd.read_parquet(records, columns=["unique_id", "source", "record_id"])
        except Exception:
            pass  # fall back on the links, which every run writes
    links_path = folder / "resident_links.parquet"
    if not links_path.is_file():
        raise DataError(f"{folder}: not a residentview output folder (resident_links.parquet is missing); "
                        "run `residentview link` into it first")
    try:
        links = pd.read_parquet(links_path, columns=["source", "record_id"])
    except Exception as exc:
        raise DataError(f"{links_path}: cannot be read ({type(exc).__name__})") from None
    # Positions stand in for unique ids: enough to tell records apart, not to find their pairs.
    fallback = links.assign(unique_id=range(len(links)))
    fallback.attrs["positions_for_ids"] = True
    return fallback


def _scores_seen(folder: Path, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Fill in the score each pair had in the folder's run where the file did not carry it."""
    pairs_path = Path(folder) / "pairs.parquet"
    if (not len(rows) or rows["match_probability"].notna().all() or not pairs_path.is_file()
            or records.attrs.get("positions_for_ids")):
        return rows
    try:
        pairs = pd.read_parquet(pairs_path, columns=["unique_id_l", "unique_id_r", "match_probability", "match_weight"])
    except Exception:
        return rows
    ids = records.set_index([records["source"].astype(str), records["record_id"].astype(str)])["unique_id"]
    left = ids.reindex(pd.MultiIndex.from_arrays([rows["source_l"], rows["record_id_l"]])).to_numpy()
    right = ids.reindex(pd.MultiIndex.from_arrays([rows["source_r"], rows["record_id_r"]])).to_numpy()
    lookup = pairs.set_index(["unique_id_l", "unique_id_r"])
    keys = pd.MultiIndex.from_arrays([pd.Series(left).where(left <= right, right), pd.Series(right).where(left <= right, left)])
    found = lookup.reindex(keys)
    out = rows.copy()
    for column in ("match_probability", "match_weight"):
        out[column] = out[column].fillna(pd.Series(found[column].to_numpy(), index=out.index))
    return out


def decision_entries(rows: pd.DataFrame) -> list[dict]:
    """One audit entry per imported decision: who, what, which records — never the note."""
    return [
        {"event": "decision", "time": pd.Timestamp(row.decided_at).isoformat(), "decision_id": int(row.decision_id),
         "decision": row.decision, "reviewer": row.reviewer,
         "pair": [f"{row.source_l}:{row.record_id_l}", f"{row.source_r}:{row.record_id_r}"], "origin": row.origin}
        for row in rows.itertuples(index=False)
    ]


def write_decisions(folder: Path, staging: Path, store: pd.DataFrame, new_ids: set, entries: list[dict]) -> None:
    """decisions.parquet and the audit log into `staging`: the store, an entry per decision in
    `new_ids`, then `entries` (the last of them records the store's digest)."""
    path = write_store(staging, store)
    new = store[store["decision_id"].isin(new_ids)]
    chained = [*decision_entries(new), *entries]
    if chained:
        chained[-1] = {**chained[-1], "decisions_sha256": file_digest(path)}
    append_entries(folder, staging, chained)


def update_database(folder: Path, store: pd.DataFrame) -> None:
    """Refresh the `decisions` table of the folder's resident_view.duckdb, in place and in one
    transaction, after decisions.parquet (the store itself) has moved into place. Copying the
    database to replace it whole took seconds per decision at a million records; the table is
    a copy for SQL users, and when the file is busy (open in an analyst's tool) it is refreshed
    by the next run instead."""
    database = Path(folder) / DATABASE_FILE
    if not database.is_file():
        return
    try:
        with duckdb.connect(str(database)) as con:
            con.register("incoming", as_store_table(store))
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE OR REPLACE TABLE decisions AS SELECT * FROM incoming")
            con.execute("COMMIT")
    except duckdb.Error as exc:
        log.warning("%s: decisions table not refreshed (%s); the next run writes it", database, type(exc).__name__)


def apply_decisions(folder: Path, path: Path, reviewer: Optional[str] = None) -> AppliedDecisions:
    """`residentview review apply`: import the decisions in `path` into `folder`'s store."""
    with folder_lock(folder, "review apply"):
        return _apply_decisions(Path(folder), Path(path), reviewer)


def _apply_decisions(folder: Path, path: Path, reviewer: Optional[str]) -> AppliedDecisions:
    records = _run_records(folder)
    store = read_store(folder)
    imported = read_decisions_file(path, records, store, reviewer=reviewer, origin=f"review apply {path.name}",
                                   decided_at=pd.Timestamp.now(tz="UTC"), model_version=model_version(folder))
    summary = {"event": "review apply", "user": os_user(), "file": path.name, "file_sha256": file_digest(path)}
    return _store_decisions(folder, records, store, imported, summary)


def record_decisions(folder: Path, rows: pd.DataFrame, origin: str, reviewer: Optional[str] = None) -> AppliedDecisions:
    """Decisions made in a program (the review page) rather than a file: `rows` with source_l,
    record_id_l, source_r, record_id_r, decision and optionally reviewer, note, match_probability,
    match_weight. Checked and stored exactly as `apply_decisions` checks and stores a file's
    (DataError naming each bad row); `origin` says where they were made."""
    with folder_lock(folder, origin):
        return _record_decisions(Path(folder), rows, origin, reviewer)


def _record_decisions(folder: Path, rows: pd.DataFrame, origin: str, reviewer: Optional[str]) -> AppliedDecisions:
    records = _run_records(folder)
    store = read_store(folder)
    imported = decisions_from_frame(rows, origin, records, store, reviewer=reviewer, origin=origin,
                                    decided_at=pd.Timestamp.now(tz="UTC"), model_version=model_version(folder))
    return _store_decisions(folder, records, store, imported, {"event": origin, "user": os_user()})


def _store_decisions(folder: Path, records: pd.DataFrame, store: pd.DataFrame, imported: DecisionsFile,
                     summary: dict) -> AppliedDecisions:
    imported.rows = _scores_seen(folder, imported.rows, records)
    updated = appended(store, imported.rows)
    if len(imported.rows):
        new_ids = set(updated["decision_id"].iloc[len(store):].tolist())
        summary = {**summary, "imported": imported.counts, "decisions_in_store": int(len(updated))}
        with staged_output(folder) as staging:
            write_decisions(folder, staging, updated, new_ids, [summary])
        update_database(folder, updated)
    return AppliedDecisions(imported, decisions_in_force(updated, records), updated)


def _queue_written_at(folder: Path) -> Optional[pd.Timestamp]:
    """When the folder's queue was written: its run's timestamp."""
    try:
        run = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
        return pd.Timestamp(run["run_timestamp"]).tz_convert("UTC")
    except Exception:
        return None


def queue_has_decisions(folder: Path) -> bool:
    path = Path(folder) / QUEUE_FILE
    if not path.is_file():
        return False
    try:
        column = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", encoding_errors="replace",
                             usecols=lambda c: str(c).strip().lower() == "decision")
    except Exception:
        return True  # unreadable: let the import say why, rather than replace it
    return bool(len(column.columns)) and bool(column.iloc[:, 0].str.strip().ne("").any())


def pending_queue_decisions(folder: Optional[Path], store: pd.DataFrame) -> Optional[DecisionsFile]:
    """The decisions filled into the review queue of `folder` that the store does not hold yet
    (None when there are none). A bad row stops the command: replacing the queue would lose it."""
    if folder is None or not queue_has_decisions(folder):
        return None
    folder = Path(folder)
    records = _run_records(folder)
    try:
        found = read_decisions_file(folder / QUEUE_FILE, records, store, reviewer=None,
                                    origin=QUEUE_FILE, decided_at=pd.Timestamp.now(tz="UTC"),
                                    model_version=model_version(folder), superseded_after=_queue_written_at(folder))
    except DataError as exc:
        raise DataError(f"{exc}\nthe queue holds decisions not yet imported: fix those rows (or move the file "
                        "away) and run again; nothing was changed") from None
    if not len(found.rows):
        return None
    found.rows = _scores_seen(folder, found.rows, records)
    log.info("imported %d decisions filled into %s before replacing it", len(found.rows), QUEUE_FILE)
    return found



def decisions_to_honour(folder: Optional[Path]) -> tuple[pd.DataFrame, set]:
    """The decisions store kept in `folder`, with the decisions filled into its review queue and
    not yet imported (so that replacing the queue loses none); and the decision_ids of those."""
    store = read_store(folder)
    queued = pending_queue_decisions(folder, store)
    if queued is None:
        return store, set()
    updated = appended(store, queued.rows)
    return updated, set(updated["decision_id"].iloc[len(store):].tolist())

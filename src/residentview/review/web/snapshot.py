"""The run the review page shows, read once and read again only when a run replaces the folder
(its run.json gets a new run_timestamp)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.review.apply import QUEUE_FILE
from residentview.review.explain import RunFolder, _model_levels, read_run, threshold_of
from residentview.review.store import ordered_pairs
from residentview.review.web.plain import display_fields

QUEUE_COLUMNS = ("review_id", "source_l", "record_id_l", "source_r", "record_id_r", "unique_id_l", "unique_id_r")


def run_timestamp(folder: Path) -> Optional[str]:
    """The run_timestamp in the folder's run.json (None when it cannot be read)."""
    try:
        value = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8")).get("run_timestamp")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


def _read_queue(folder: Path) -> pd.DataFrame:
    path = folder / QUEUE_FILE
    if not path.is_file():
        return pd.DataFrame(columns=list(QUEUE_COLUMNS))
    try:
        queue = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:
        raise DataError(f"{path}: the review queue cannot be read ({type(exc).__name__})") from None
    missing = [c for c in QUEUE_COLUMNS if c not in queue.columns]
    if missing:
        raise DataError(f"{path}: not a review queue written by residentview (missing {', '.join(missing)})")
    queue["review_id"] = pd.to_numeric(queue["review_id"], errors="coerce")
    return queue.dropna(subset=["review_id"]).astype({"review_id": "int64"}).reset_index(drop=True)


@dataclass
class Snapshot:
    run: RunFolder
    run_timestamp: Optional[str]
    threshold: float
    queue: pd.DataFrame  # review_queue.csv as written, review_id as int
    queue_pairs: list[tuple]  # each queue row's pair as the store names it (records in order)
    _model: Optional[tuple] = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        return self.run.folder

    @property
    def fields(self) -> list[str]:
        """The record fields this run has, in the order they are shown."""
        return display_fields(self.run.record_columns)

    def model(self) -> tuple:
        """(levels, prior weight, comparisons, why unavailable): read once, it takes Splink a moment."""
        if self._model is None:
            self._model = _model_levels(self.run)
        return self._model

    def record(self, key: str) -> Optional[pd.Series]:
        """unique_id, source, record_id, resident_id, membership of the record SOURCE:RECORD_ID."""
        found = self.run.records[self.run.records["key"] == key]
        return found.iloc[0] if len(found) else None

    def members(self, resident_id: str) -> pd.DataFrame:
        records = self.run.records
        own = records[records["resident_id"] == resident_id]
        return own.sort_values(["membership", "key"], ascending=[False, True], kind="mergesort")

    def values(self, unique_ids, columns: Optional[list[str]] = None) -> dict[int, dict]:
        """The shown fields of some records, by unique_id (read a few rows at a time: records.parquet
        is large)."""
        wanted = [int(i) for i in np.atleast_1d(unique_ids)]
        columns = [c for c in (columns or [*self.fields, "record_date"]) if c in self.run.record_columns]
        table = pq.read_table(self.folder / "records.parquet", columns=["unique_id", *columns],
                              filters=[("unique_id", "in", wanted)])
        return {int(row.pop("unique_id")): row for row in table.to_pandas().to_dict("records")}


def load_snapshot(folder: Path) -> Snapshot:
    """The run in `folder`; DataError when it is not a run's output folder."""
    run = read_run(Path(folder))
    queue = _read_queue(run.folder)
    ordered = ordered_pairs(queue[["source_l", "record_id_l", "source_r", "record_id_r"]].astype(str))
    pairs = list(ordered.itertuples(index=False, name=None))
    stamp = run.run.get("run_timestamp")
    return Snapshot(run, None if stamp is None else str(stamp), threshold_of(run)[0], queue, pairs)

"""The decisions store: every decision a reviewer ever made, in the output folder.

`decisions.parquet` holds one row per decision as it was made (a later decision on the same pair
adds a row; none is ever deleted), in the order they were made (`decision_id`). A pair is written
one way round only, its two records in (source, record_id) order, so "A = B" and "B = A" are one
pair. The decision in force on a pair is its latest row (`latest`).

Columns: decision_id, source_l, record_id_l, source_r, record_id_r, decision (match / non-match /
unsure), reviewer, note, decided_at (UTC), origin (the file or run it came from), model_version
(a digest of the model.json in force when it was imported) and the match_probability /
match_weight the reviewer saw, when known.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from residentview.errors import DataError

DECISIONS_FILE = "decisions.parquet"
DECISION_WORDS = ("match", "non-match", "unsure")
PAIR_COLUMNS = ("source_l", "record_id_l", "source_r", "record_id_r")
STORE_SCHEMA = pa.schema([
    ("decision_id", pa.int64()),
    ("source_l", pa.string()), ("record_id_l", pa.string()),
    ("source_r", pa.string()), ("record_id_r", pa.string()),
    ("decision", pa.string()),
    ("reviewer", pa.string()),
    ("note", pa.string()),
    ("decided_at", pa.timestamp("us", tz="UTC")),
    ("origin", pa.string()),
    ("model_version", pa.string()),
    ("match_probability", pa.float64()),
    ("match_weight", pa.float64()),
])
STORE_COLUMNS = tuple(STORE_SCHEMA.names)


def empty_store() -> pd.DataFrame:
    return STORE_SCHEMA.empty_table().to_pandas()


def as_store_table(store: pd.DataFrame) -> pa.Table:
    """The store as the Arrow table its Parquet file holds (types fixed, whatever pandas inferred)."""
    frame = store[list(STORE_COLUMNS)].copy()
    for column in ("decided_at",):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in STORE_SCHEMA.names:
        if pa.types.is_string(STORE_SCHEMA.field(column).type):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return pa.Table.from_pandas(frame, schema=STORE_SCHEMA, preserve_index=False)


def read_store(folder: Optional[Path]) -> pd.DataFrame:
    """The decisions kept in `folder` (none when it holds no store yet). A store that cannot be
    read stops the run: carrying on without it would be a run that forgets its decisions."""
    path = Path(folder) / DECISIONS_FILE if folder is not None else None
    if path is None or not path.is_file():
        return empty_store()
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: the decisions store cannot be read ({type(exc).__name__}); "
                        "restore it from a backup before running into this folder") from None
    missing = [c for c in STORE_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: not a decisions store written by residentview (missing {', '.join(missing)})")
    frame = table.select(list(STORE_COLUMNS)).to_pandas()
    return frame.sort_values("decision_id", kind="stable").reset_index(drop=True)


def write_store(folder: Path, store: pd.DataFrame) -> Path:
    path = Path(folder) / DECISIONS_FILE
    pq.write_table(as_store_table(store), path)
    return path


def ordered_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each pair's records in (source, record_id) order: one way round only."""
    left = frame["source_l"].astype(str) + "\x1f" + frame["record_id_l"].astype(str)
    right = frame["source_r"].astype(str) + "\x1f" + frame["record_id_r"].astype(str)
    swap = (left > right).to_numpy()
    if not swap.any():
        return frame
    out = frame.copy()
    for side in ("source", "record_id"):
        l_values, r_values = out[f"{side}_l"].to_numpy(copy=True), out[f"{side}_r"].to_numpy(copy=True)
        out[f"{side}_l"] = np.where(swap, r_values, l_values)
        out[f"{side}_r"] = np.where(swap, l_values, r_values)
    return out


def latest(store: pd.DataFrame) -> pd.DataFrame:
    """The decision in force on each pair: its latest row."""
    ordered = store.sort_values("decision_id", kind="stable")
    return ordered.drop_duplicates(list(PAIR_COLUMNS), keep="last").reset_index(drop=True)


def appended(store: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`new` decisions (the pair and decision at least) after those in `store`, numbered on."""
    start = int(store["decision_id"].max()) + 1 if len(store) else 1
    new = new.assign(decision_id=np.arange(start, start + len(new), dtype=np.int64)).reindex(columns=list(STORE_COLUMNS))
    frames = [frame[list(STORE_COLUMNS)] for frame in (store, new) if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else empty_store()


def file_digest(path: Path, length: Optional[int] = None) -> Optional[str]:
    """SHA-256 of a file's bytes (its first `length` hex digits), None when there is no file."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    text = digest.hexdigest()
    return text[:length] if length else text


def pair_label(row) -> str:
    """'council_tax:CT1 / housing_benefit:HB7' — how a pair is named in messages."""
    return f"{row.source_l}:{row.record_id_l} / {row.source_r}:{row.record_id_r}"

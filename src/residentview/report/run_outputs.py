"""Read a run's output folder for the report. Every file is optional except resident_links.parquet:
the report shows what it can and says which inputs were missing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.schema import GOLDEN_FIELDS

DEFAULT_THRESHOLD = 0.95

# Records carry list-valued matching columns the report never needs; reading only these keeps
# write_report fast on large runs.
RECORD_COLUMNS = ("unique_id", "source", "record_id", *GOLDEN_FIELDS)


@dataclass
class RunOutputs:
    folder: Path
    links: pd.DataFrame
    records: Optional[pd.DataFrame] = None
    residents: Optional[pd.DataFrame] = None
    households: Optional[pd.DataFrame] = None
    id_changes: Optional[pd.DataFrame] = None
    quality: Optional[pd.DataFrame] = None
    pairs: Optional[pd.DataFrame] = None
    model: Optional[dict] = None
    run: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        value = self.run.get("threshold")
        return float(value) if isinstance(value, (int, float)) and 0 < value < 1 else DEFAULT_THRESHOLD

    @property
    def run_timestamp(self) -> pd.Timestamp:
        try:
            stamp = pd.Timestamp(self.run["run_timestamp"])
        except (KeyError, ValueError, TypeError):
            stamp = pd.Timestamp.now(tz="UTC")
        return stamp.tz_localize(None) if stamp.tzinfo is None else stamp.tz_convert(None)


def _read_parquet(path: Path, problems: list[str], columns: Optional[tuple[str, ...]] = None) -> Optional[pd.DataFrame]:
    if not path.is_file():
        problems.append(f"{path.name} is missing")
        return None
    try:
        if columns is not None:
            present = set(pq.read_schema(path).names)
            frame = pd.read_parquet(path, columns=[c for c in columns if c in present])
        else:
            frame = pd.read_parquet(path)
        # A frame saved with its index would bring it back; every step here expects a fresh one.
        return fresh_index(frame)
    except Exception as exc:  # a damaged optional input must not stop the report
        problems.append(f"{path.name} could not be read ({type(exc).__name__})")
        return None


def _read_json(path: Path, problems: list[str]) -> Optional[dict]:
    if not path.is_file():
        problems.append(f"{path.name} is missing")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        problems.append(f"{path.name} is not valid JSON")
        return None
    return value if isinstance(value, dict) else None


def read_run_outputs(folder: Path) -> RunOutputs:
    """Load what the report needs from `folder`; DataError if it is not a residentview output folder."""
    folder = Path(folder)
    links_path = folder / "resident_links.parquet"
    if not links_path.is_file():
        raise DataError(f"{folder}: not a residentview output folder (resident_links.parquet is missing)")
    try:
        links = fresh_index(pd.read_parquet(links_path))
    except Exception as exc:
        raise DataError(f"{links_path}: cannot be read ({type(exc).__name__})") from None
    missing = {"source", "record_id", "resident_id"} - set(links.columns)
    if missing:
        raise DataError(f"{links_path}: missing column(s) {', '.join(sorted(missing))}")

    problems: list[str] = []
    records = _read_parquet(folder / "records.parquet", problems, RECORD_COLUMNS)
    if records is not None and "date_of_birth" in records:
        records["date_of_birth"] = pd.to_datetime(records["date_of_birth"], errors="coerce")
    return RunOutputs(
        folder=folder,
        links=links,
        records=records,
        residents=_read_parquet(folder / "residents.parquet", problems),
        households=_read_parquet(folder / "households.parquet", problems),
        id_changes=_read_parquet(folder / "id_changes.parquet", problems),
        quality=_read_parquet(folder / "data_quality.parquet", problems),
        pairs=_read_parquet(folder / "pairs.parquet", problems),
        model=_read_json(folder / "model.json", problems),
        run=_read_json(folder / "run.json", problems) or {},
        problems=problems,
    )


def run_outputs_in_memory(folder: Path, links: pd.DataFrame, records: Optional[pd.DataFrame],
                          residents: pd.DataFrame, households: pd.DataFrame, id_changes: pd.DataFrame,
                          quality: pd.DataFrame, pairs: pd.DataFrame, model: dict, run: dict) -> RunOutputs:
    """The outputs a run has just written to `folder`, from the frames it wrote rather than read
    back: at a million records reading them again took 4 s and 2 GB. Shaped as
    `read_run_outputs` shapes them (the report is the same either way)."""
    if records is not None:
        wanted = [c for c in RECORD_COLUMNS if c in records.columns]
        records = fresh_index(records[wanted])
        if "date_of_birth" in records and not pd.api.types.is_datetime64_any_dtype(records["date_of_birth"]):
            records = records.assign(date_of_birth=pd.to_datetime(records["date_of_birth"], errors="coerce"))
    return RunOutputs(
        folder=Path(folder), links=fresh_index(links), records=records,
        residents=fresh_index(residents), households=fresh_index(households),
        id_changes=fresh_index(id_changes), quality=fresh_index(quality),
        pairs=fresh_index(pairs), model=model, run=json.loads(json.dumps(run, default=str)),
    )


def fresh_index(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a 0..n-1 index, as read from Parquet; not copied when it has one already
    (reset_index copies every column: seconds at a million rows)."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.reset_index(drop=True)


def read_labels(path: Path) -> pd.DataFrame:
    """Ground truth for measured precision/recall: source, record_id, person_id (CSV or Parquet)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    try:
        if path.suffix.lower() == ".parquet":
            labels = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            labels = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise DataError(f"{path}: labels must be .csv or .parquet, not {path.suffix or '(none)'}")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: labels cannot be read ({type(exc).__name__})") from None
    missing = {"source", "record_id", "person_id"} - set(labels.columns)
    if missing:
        raise DataError(
            f"{path}: labels need columns source, record_id, person_id; missing {', '.join(sorted(missing))}"
        )
    labels = labels[["source", "record_id", "person_id"]].astype(str)
    return labels.drop_duplicates(["source", "record_id"])

"""Read a run's output folder for the report. Every file is optional except resident_links.parquet:
the report shows what it can and says which inputs were missing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.schema import GOLDEN_FIELDS

DEFAULT_THRESHOLD = 0.95

# Records carry list-valued matching columns the report never needs; reading only these keeps
# write_report fast on large runs.
RECORD_COLUMNS = ("unique_id", "source", "record_id", *GOLDEN_FIELDS)
ADDRESS_COLUMNS = ("resident_id", "current", "first_seen")  # what the report reads of addresses.parquet


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
    decisions: Optional[pd.DataFrame] = None  # the reviewers' decisions store (review/store.py)
    events: Optional[pd.DataFrame] = None  # events.parquet
    addresses: Optional[pd.DataFrame] = None  # addresses.parquet (resident_id, current, first_seen)
    events_truth: Optional[pd.DataFrame] = None  # true events (person_id, event), for a demo or a benchmark
    written: Optional[dict[str, list[str]]] = None  # the columns of the Parquet files a run is writing, by name

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


@dataclass(frozen=True)
class IdChangesThisRun:
    """How this run's ids of one kind (residents or households) compare with the previous run's,
    from the rows of id_changes stamped with this run's timestamp (the file holds every run's).

    `kept`, `new` and `new_from_previous` count this run's residents (they add up to `total`);
    `merged`, `split` and `retired` count the previous run's ids (see resident_view/ids.py)."""

    entity: str
    first_run: bool  # nothing to compare with: no previous run was read and no earlier history
    total: int  # residents (households) in this run
    kept: int  # ... whose id carried over from the previous run (split ones included)
    new: int  # ... none of whose members were in the previous run
    merged: int  # previous ids retired because their members joined another resident
    split: int  # previous ids some of whose members moved to another resident (the id lives on)
    retired: int  # previous ids none of whose members remain

    @property
    def new_from_previous(self) -> int:
        """This run's residents given a new id although their members were in the previous run:
        parts split off, or made of parts of several, previous residents."""
        return self.total - self.kept - self.new


def _utc(value: object) -> Optional[pd.Timestamp]:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def id_changes_this_run(outputs: "RunOutputs", entity: str = "resident") -> Optional[IdChangesThisRun]:
    """This run's id changes for `entity` ('resident' or 'household'); None when the outputs
    cannot tell (no id_changes, no run timestamp in run.json, or no ids of that kind)."""
    changes, stamp = outputs.id_changes, _utc(outputs.run.get("run_timestamp"))
    if changes is None or stamp is None or not {"run_timestamp", "change", "old_id", "new_id"} <= set(changes.columns):
        return None
    if entity == "resident":
        frame, id_column = outputs.residents, "resident_id"
    else:
        frame, id_column = outputs.households, "household_id"
        if frame is None or id_column not in frame:
            return None

    # Histories written before households had ids of their own hold resident changes only.
    kinds = changes["entity"].fillna("resident") if "entity" in changes else pd.Series("resident", index=changes.index)
    stamps = pd.to_datetime(changes["run_timestamp"], utc=True, errors="coerce")
    this_run = changes[(kinds == entity) & (stamps == stamp)]
    earlier_rows = (kinds == entity) & (stamps < stamp)
    current, kept = _current_and_kept(outputs, frame, id_column, stamp, lambda: changes[earlier_rows])

    def previous_ids(change: str) -> int:
        return int(this_run.loc[this_run["change"] == change, "old_id"].nunique())

    n_new = int((this_run["change"] == "new").sum())
    first_run = (not earlier_rows.any() and not outputs.run.get("previous") and not kept.any()
                 and (this_run["change"] == "new").all())
    return IdChangesThisRun(
        entity=entity, first_run=bool(first_run), total=len(current), kept=int(kept.sum()), new=n_new,
        merged=previous_ids("merged"), split=previous_ids("split"), retired=previous_ids("retired"),
    )


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
        decisions=_read_decisions(folder, problems),
        events=_read_parquet(folder / "events.parquet", problems),
        addresses=_read_parquet(folder / "addresses.parquet", problems, ADDRESS_COLUMNS),
    )


def _read_decisions(folder: Path, problems: list[str]) -> Optional[pd.DataFrame]:
    from residentview.review.store import read_store

    try:
        return read_store(folder)
    except DataError as exc:
        problems.append(str(exc))
        return None


def run_outputs_in_memory(folder: Path, links: pd.DataFrame, records: Optional[pd.DataFrame],
                          residents: pd.DataFrame, households: pd.DataFrame, id_changes: pd.DataFrame,
                          quality: pd.DataFrame, pairs: pd.DataFrame, model: dict, run: dict,
                          decisions: Optional[pd.DataFrame] = None, events: Optional[pd.DataFrame] = None,
                          addresses: Optional[pd.DataFrame] = None,
                          written: Optional[dict[str, list[str]]] = None) -> RunOutputs:
    """The outputs a run has just written to `folder`, from the frames it wrote rather than read
    back: at a million records reading them again took 4 s and 2 GB. Shaped as
    `read_run_outputs` shapes them (the report is the same either way). `written`: the columns
    of the files being written beside the report whose frames it does not hold whole."""
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
        decisions=decisions, events=events,
        addresses=None if addresses is None else addresses[[c for c in ADDRESS_COLUMNS if c in addresses]],
        written=written,
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


def _current_and_kept(outputs: "RunOutputs", frame: Optional[pd.DataFrame], id_column: str, stamp: pd.Timestamp,
                      earlier: Callable[[], pd.DataFrame]) -> tuple[pd.Index, np.ndarray]:
    """This run's ids, and which of them were carried over from an earlier run: issued before
    this run (`id_issued_at`), or, where an id lacks that, seen in an earlier run's rows of
    id_changes (every id was a new_id in the run that issued it)."""
    if frame is not None and {id_column, "id_issued_at"} <= set(frame.columns):
        ids = frame[id_column]
        present = ids.notna().to_numpy()
        current = pd.Index(ids[present].astype(str))
        issued_at = pd.to_datetime(frame["id_issued_at"], utc=True, errors="coerce")[present]
        unique = ~current.duplicated()
        current, issued_at = current[unique], issued_at[unique]
        kept = (issued_at < stamp).to_numpy()
        unknown = issued_at.isna().to_numpy()
        if not unknown.any():  # one comparison per resident, not a search of every earlier id
            return current, kept
    else:
        source = outputs.links if id_column == "resident_id" else frame
        current = pd.Index(source[id_column].dropna().astype(str).unique())
        kept, unknown = np.zeros(len(current), dtype=bool), np.ones(len(current), dtype=bool)
    rows = earlier()
    issued_before = pd.concat([rows["old_id"], rows["new_id"]]).dropna().astype(str)
    kept |= unknown & current.isin(issued_before)
    return current, kept

"""What a previous run left behind that the resident view needs to keep ids persistent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.resident_view.coding import arrow_text
from residentview.resident_view.ids import CHANGE_COLUMNS, HOUSEHOLD_IDS, RESIDENT_IDS

MEMBER_SEPARATOR = "\x1f"  # cannot occur in a source name, so (source, record_id) keys never collide


def record_members(frame: pd.DataFrame) -> pd.Series:
    """The key a record is known by across runs: its source and its id in that source (missing
    when either is). Arrow text: the previous run's are read as Arrow, and a million keys as
    Python strings cost a second."""
    keys = pc.binary_join_element_wise(arrow_text(frame["source"]), arrow_text(frame["record_id"]), MEMBER_SEPARATOR)
    return pd.Series(pd.arrays.ArrowExtensionArray(keys), index=frame.index)


@dataclass
class PreviousRun:
    links: pd.DataFrame  # source, record_id, resident_id
    residents: pd.DataFrame  # resident_id, household_id, id_issued_at (the last two may be absent)
    households: pd.DataFrame  # household_id, id_issued_at (may be absent)
    id_changes: pd.DataFrame  # CHANGE_COLUMNS, the history so far
    addresses: Optional[pd.DataFrame] = None  # the address history (history.py), None before it was kept
    events: Optional[pd.DataFrame] = None  # events.parquet so far
    as_of: Optional[pd.Timestamp] = None  # the date of the previous run's extracts (run.json)

    @property
    def exists(self) -> bool:
        return len(self.links) > 0

    # Members stay Arrow text (see `record_members`); a member missing its key matches no one, but
    # still counts to its id's size.
    def resident_members(self) -> pd.DataFrame:
        return pd.DataFrame({"member": record_members(self.links), "old_id": self.links["resident_id"].astype(str)})

    def household_members(self) -> pd.DataFrame:
        frame = self.residents.dropna(subset=["household_id"])
        return pd.DataFrame({"member": pd.arrays.ArrowExtensionArray(arrow_text(frame["resident_id"])),
                             "old_id": frame["household_id"].astype(str)})

    def resident_issued_at(self) -> pd.Series:
        return _issued_at(self.residents, "resident_id")

    def household_issued_at(self) -> pd.Series:
        return _issued_at(self.households, "household_id")

    def resident_ids_issued(self) -> pd.Series:
        return _ids_issued(self.id_changes, RESIDENT_IDS.entity, self.links["resident_id"], self.residents["resident_id"])

    def household_ids_issued(self) -> pd.Series:
        return _ids_issued(
            self.id_changes, HOUSEHOLD_IDS.entity, self.households["household_id"], self.residents["household_id"]
        )


def _issued_at(frame: pd.DataFrame, id_column: str) -> pd.Series:
    if "id_issued_at" not in frame or frame["id_issued_at"].isna().all():
        return pd.Series(dtype="datetime64[ns, UTC]")
    issued_at = pd.to_datetime(frame["id_issued_at"], utc=True, cache=False)
    return pd.Series(issued_at.array, index=frame[id_column].astype(str))


def _ids_issued(id_changes: pd.DataFrame, entity: str, *current: pd.Series) -> pa.ChunkedArray:
    """Every id of the kind issued so far (repeats included: only membership is asked of it), as
    Arrow text: they are only looked up."""
    history = id_changes[id_changes["entity"] == entity]
    parts = [arrow_text(ids).drop_null().cast(pa.string()) for ids in (history["old_id"], history["new_id"], *current)]
    return pa.chunked_array(parts, type=pa.string())


def empty_id_changes() -> pd.DataFrame:
    return pd.DataFrame({
        "run_timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "entity": pd.Series(dtype=object),
        "change": pd.Series(dtype=object), "old_id": pd.Series(dtype=object),
        "new_id": pd.Series(dtype=object), "n_records": pd.Series(dtype="int64"),
    })


# Text is read into Arrow-backed columns: a million ids as Python strings cost some 200 MB per
# column, held through the golden records (the stage's peak); as Arrow strings, a fraction.
ARROW_TEXT = {pa.string(): pd.ArrowDtype(pa.string()), pa.large_string(): pd.ArrowDtype(pa.large_string())}
# Records' text as Arrow's with NaN for missing, as object columns hold it, so that every stage
# reading records sees missing values as before: Python strings are made only where a value is
# used (an update's previous records, Spark's standardised records on the driver).
RECORD_TEXT = {t: pd.StringDtype("pyarrow", na_value=float("nan")) for t in (pa.string(), pa.large_string())}


def as_python_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its Arrow-backed text columns as ordinary object columns (None for missing)."""
    text = [c for c, dtype in frame.dtypes.items() if dtype in ARROW_TEXT.values()]
    if not text:
        return frame
    return frame.assign(**{c: frame[c].to_numpy(dtype=object, na_value=None) for c in text})


def _read(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...] = (), everything: bool = False
) -> Optional[pd.DataFrame]:
    """The required and optional columns of a previous output (all of them with `everything`);
    None when the file is absent or empty. Other columns are not read: residents' lists are slow to."""
    if not path.is_file():
        return None
    try:
        available = pq.ParquetFile(path).schema_arrow.names
        columns = None if everything else [c for c in (*required, *optional) if c in available]
        frame = pq.read_table(path, columns=columns).to_pandas(types_mapper=ARROW_TEXT.get)
    except Exception as exc:  # any unreadable file is the user's folder, not our bug
        raise DataError(f"{path}: cannot read the previous run's output ({type(exc).__name__})") from None
    if frame.empty:
        return None
    missing = [c for c in required if c not in frame]
    if missing:
        raise DataError(
            f"{path}: previous run's output lacks column(s) {', '.join(missing)}; expected {', '.join(required)}"
        )
    for column in optional:
        if column not in frame:
            frame[column] = None
    return frame


def read_previous_run(folder: Optional[Path]) -> PreviousRun:
    """Read a previous run's outputs from `folder` (an empty history when None or absent)."""
    folder = Path(folder) if folder is not None else None
    links = residents = households = id_changes = None
    if folder is not None:
        links = _read(folder / "resident_links.parquet", ("source", "record_id", "resident_id"))
        residents = _read(folder / "residents.parquet", ("resident_id",),
                          ("household_id", "id_issued_at", "last_name", "is_deceased", "current_address_id"))
        households = _read(folder / "households.parquet", ("household_id",), ("id_issued_at",))
        id_changes = _read(folder / "id_changes.parquet", ("change", "old_id", "new_id"), ("entity",), everything=True)
    if links is None:
        links = pd.DataFrame({"source": [], "record_id": [], "resident_id": []}, dtype=object)
    if residents is None:
        residents = links[["resident_id"]].drop_duplicates().assign(household_id=None)
    if households is None:
        households = pd.DataFrame({"household_id": pd.Series(dtype=object)})
    if id_changes is None:
        id_changes = empty_id_changes()
    # Histories written before households had ids of their own hold resident changes only.
    id_changes["entity"] = id_changes["entity"].fillna(RESIDENT_IDS.entity)
    id_changes = id_changes.reindex(columns=list(dict.fromkeys([*CHANGE_COLUMNS, *id_changes.columns])))
    addresses = events = as_of = None
    if folder is not None:
        addresses = _read(folder / "addresses.parquet", ("resident_id", "address_id", "first_seen"), everything=True)
        events = _read(folder / "events.parquet", ("run_timestamp", "event", "resident_id", "details"),
                       everything=True)
        as_of = _run_as_of(folder / "run.json")
    # The history stays Arrow text (a million rows as Python strings cost some 400 MB); events are few.
    return PreviousRun(links, residents, households, id_changes, addresses,
                       None if events is None else as_python_strings(events), as_of)


def _run_as_of(path: Path) -> Optional[pd.Timestamp]:
    """The date of the extracts the run at `path` (run.json) read, when it says."""
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("as_of")
        return None if value is None else pd.Timestamp(value)
    except (OSError, ValueError, AttributeError):
        return None

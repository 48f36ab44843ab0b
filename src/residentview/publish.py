"""`residentview publish`: counts of residents that are safe to publish (CONTRACT §8).

The table holds every combination of the chosen columns' categories with a `Total` for each
column (the margins a table of counts would show), as one row per cell. It follows the
Government Statistical Service's guidance on disclosure control of tables:

- **Threshold rule (primary suppression).** A cell, a total included, counting 1 to N-1
  residents (N = `min_count`, 10 by default) is written as `[c]` (GSS: confidential).
- **Complementary (secondary) suppression.** Then, as long as a line of the table — one column
  varying, the others fixed, with its total — holds exactly one `[c]`, the smallest non-zero
  count in that line is suppressed too (the hypercube "at least two per line" heuristic). A
  zero is only taken when the line holds nothing else.
- **Verified by linear programming.** For each `[c]` below N (the primary cells, and any zero
  the line rule had to take), the largest value it can take given every published cell and
  total (residents relaxed to non-negative reals) is found with scipy's HiGHS. It is protected
  when that value is at least N: a reader cannot tell it is a small count, nor therefore its
  value. When it is below N, the published cell that bounds it (a non-zero dual value; the
  smallest such count) is suppressed too, and the line rule and the check run again.
  Suppressing more only widens every interval, so a cell once protected stays protected.
  Last, a complementary cell the published cells determine exactly is published after all.
- **Zeros** are published: the threshold rule protects small groups of people, and a true zero
  discloses nobody.
- **Rounding** (`round_to`, e.g. 5) is optional and applied after suppression, to each published
  count and each total from its own unrounded value: totals are not the sums of rounded cells.

Which cells are primary is never written: a flag would say which cells are small.

`source` is the one column under which a resident counts more than once (once per source
holding one of their records), so its lines do not add up and the line rule skips them; the
linear check models residents by the combination of sources that know them, using only the
combinations that occur — a narrower model than a reader's, so a stricter check.

Residents counted are people (`is_person`) not recorded as deceased: the residents who live in
households (resident_view/households.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import sparse
from scipy.optimize import linprog

from residentview.errors import DataError
from residentview.resident_view.overlap import SEPARATOR, combinations
from residentview.standardise.postcodes import parse_postcode

DEFAULT_MIN_COUNT = 10
TOTAL = "Total"
UNKNOWN = "unknown"
SUPPRESSED = "[c]"  # GSS symbol for a confidential (suppressed) value
COUNT_COLUMN = "residents"

# ONS quinary age bands, age in completed years at the date of the extracts (run.json's as_of).
AGE_BANDS = tuple(f"{low}-{low + 4}" for low in range(0, 85, 5)) + ("85+",)
HOUSEHOLD_SIZE_TOP = 6
HOUSEHOLD_SIZES = {n: str(n) for n in range(1, HOUSEHOLD_SIZE_TOP)} | {HOUSEHOLD_SIZE_TOP: f"{HOUSEHOLD_SIZE_TOP}+"}
SEXES = {"F": "female", "M": "male"}

# What each --by column needs from residents.parquet.
COLUMNS = {
    "source": "sources",
    "sources": "sources",
    "age_band": "date_of_birth",
    "sex": "sex",
    "postcode_district": "postcode",
    "household_size": "household_id",
}
# Columns under which a resident counts once per category they hold, not once in all.
MULTIPLE = {"source"}

TOLERANCE = 1e-7
PINNED = 1e-4  # a cell's interval narrower than this is its value, up to the solver's tolerance


@dataclass(frozen=True)
class Dimension:
    """A column of the published table: its categories in order (TOTAL comes after them)."""

    name: str
    categories: tuple[str, ...]

    @property
    def multiple(self) -> bool:
        return self.name in MULTIPLE


@dataclass
class CountTable:
    """Residents counted in every cell of the grid: each dimension's categories, then its TOTAL.

    Behind the cells are *atoms*, the residents grouped by their value in every dimension (for
    `source`, the combination of sources); `incidence` says which atoms each cell adds up."""

    dimensions: list[Dimension]
    counts: np.ndarray  # int64, shape (len(categories) + 1, ...) per dimension
    incidence: sparse.csr_matrix  # cells (flattened, C order) x atoms
    atom_counts: np.ndarray


@dataclass
class Publication:
    frame: pd.DataFrame  # the published table: one column per dimension, then COUNT_COLUMN
    n_suppressed: int
    n_residents: int


# Reading the run ----------------------------------------------------------------------------------
def parse_by(text: str) -> list[str]:
    """'age_band, sex' -> ['age_band', 'sex']; DataError for an unknown or repeated column."""
    names = [name.strip() for name in text.split(",")]
    if not any(names) or not all(names):
        raise DataError(f"--by {text!r}: expected one or more columns separated by commas, "
                        f"from: {', '.join(COLUMNS)}")
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise DataError(f"--by: unknown column(s) {', '.join(repr(n) for n in unknown)}; "
                        f"expected one or more of: {', '.join(COLUMNS)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"--by: column(s) {', '.join(repr(n) for n in repeated)} given more than once")
    return names


def read_people(folder: Union[str, Path], by: Sequence[str]) -> tuple[pd.DataFrame, Optional[pd.Timestamp]]:
    """The residents of the run in `folder` who are living people, with the columns `by` needs,
    and the run's date (from run.json; only needed for age_band)."""
    folder = Path(folder)
    path = folder / "residents.parquet"
    if not path.is_file():
        raise DataError(f"{folder}: no run here (residents.parquet is missing); expected the output "
                        "folder of `residentview link`")
    needed = sorted({COLUMNS[name] for name in by})
    try:
        present = set(pq.read_schema(path).names)
    except Exception as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__})") from None
    missing = [column for column in needed if column not in present]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}, needed for --by {','.join(by)}")
    flags = [column for column in ("is_person", "is_deceased") if column in present]
    residents = pd.read_parquet(path, columns=needed + flags)
    living = np.ones(len(residents), dtype=bool)
    if "is_person" in residents:
        living &= residents["is_person"].fillna(False).to_numpy(bool)
    if "is_deceased" in residents:
        living &= ~residents["is_deceased"].fillna(False).to_numpy(bool)
    people = residents.loc[living, needed].reset_index(drop=True)
    return people, (run_date(folder) if "age_band" in by else None)


def run_date(folder: Path) -> pd.Timestamp:
    """The date ages are counted at: the extracts' date (run.json's `as_of`, the latest record
    date the sources hold), else the run's run_timestamp; a naive UTC timestamp. Extracts read
    weeks after they were taken describe residents as they were then."""
    path = folder / "run.json"
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
        stamp = pd.Timestamp(run.get("as_of") or run["run_timestamp"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise DataError(f"{path}: missing, or holds no run_timestamp; age_band is the age at the run's date") from None
    if pd.isna(stamp):
        raise DataError(f"{path}: run_timestamp is empty; age_band is the age at the run's date")
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


# One label per resident and column ----------------------------------------------------------------
def age_band(dates_of_birth: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """ONS five-year bands of the age in completed years on `as_of`; UNKNOWN when there is no
    date of birth or it falls after `as_of`."""
    born = pd.to_datetime(dates_of_birth, errors="coerce")
    before_birthday = (born.dt.month > as_of.month) | ((born.dt.month == as_of.month) & (born.dt.day > as_of.day))
    age = (as_of.year - born.dt.year - before_birthday).to_numpy(dtype=float)  # NaN: no date of birth
    known = age >= 0
    band = np.minimum(np.where(known, age, 0) // 5, len(AGE_BANDS) - 1).astype(int)
    labels = np.where(known, np.asarray(AGE_BANDS, dtype=object)[band], UNKNOWN)
    return pd.Series(labels, index=dates_of_birth.index, dtype=object)


def household_size(household_ids: pd.Series) -> pd.Series:
    """How many of these residents share each one's household, top-coded at HOUSEHOLD_SIZE_TOP."""
    size = household_ids.map(household_ids.value_counts()).clip(upper=HOUSEHOLD_SIZE_TOP)
    return size.map(HOUSEHOLD_SIZES).fillna(UNKNOWN).astype(object)


def _sources_in(combination: str) -> list[str]:
    return combination.split(SEPARATOR)


def categorise(people: pd.DataFrame, by: Sequence[str], as_of: Optional[pd.Timestamp] = None
               ) -> tuple[pd.DataFrame, list[Dimension]]:
    """One label per resident for each column of `by`, and the columns' categories. A `source`
    label is the resident's combination of sources, as for `sources`; the table counts it
    under each of them."""
    labels, dimensions = {}, []
    for name in by:
        values = people[COLUMNS[name]]
        if name in ("source", "sources"):
            label = combinations(people).replace("", UNKNOWN)
            seen = set(label)
            if name == "source":
                known = sorted({s for c in seen for s in _sources_in(c)} - {UNKNOWN})
            else:  # fewest sources first
                known = sorted(seen - {UNKNOWN}, key=lambda c: (len(_sources_in(c)), c))
            categories = (*known, *([UNKNOWN] if UNKNOWN in seen else []))
        elif name == "age_band":
            if as_of is None:
                raise DataError("age_band needs the run's date (run.json's run_timestamp)")
            label, categories = age_band(values, as_of), (*AGE_BANDS, UNKNOWN)
        elif name == "sex":
            label = values.map(SEXES).fillna(UNKNOWN).astype(object)
            categories = (*SEXES.values(), UNKNOWN)
        elif name == "postcode_district":
            label = parse_postcode(values.astype(object).where(values.notna(), None))["postcode_district"]
            label = label.fillna(UNKNOWN).astype(object)
            categories = (*sorted(set(label) - {UNKNOWN}), UNKNOWN)
        else:  # household_size
            label, categories = household_size(values), (*HOUSEHOLD_SIZES.values(), UNKNOWN)
        labels[name] = label.to_numpy(dtype=object)
        dimensions.append(Dimension(name, categories))
    return pd.DataFrame(labels, index=people.index), dimensions


# Counting -----------------------------------------------------------------------------------------
def count_table(labels: pd.DataFrame, dimensions: Sequence[Dimension]) -> CountTable:
    """Residents in every cell of the grid, totals included, and the atoms behind the cells."""
    names = [d.name for d in dimensions]
    shape = tuple(len(d.categories) + 1 for d in dimensions)
    strides = np.array([int(np.prod(shape[i + 1:])) for i in range(len(shape))], dtype=np.int64)
    atoms = labels.groupby(names, sort=False).size().reset_index(name="n") if len(labels) else \
        pd.DataFrame({**{n: pd.Series(dtype=object) for n in names}, "n": pd.Series(dtype=np.int64)})

    # (atom, cell) pairs: each atom is in every cell whose coordinate, per dimension, is one of its
    # categories or the TOTAL.
    pairs = pd.DataFrame({"atom": np.arange(len(atoms)), "cell": np.zeros(len(atoms), dtype=np.int64)})
    for dimension, stride in zip(dimensions, strides):
        position = {category: i for i, category in enumerate(dimension.categories)}
        values = atoms[dimension.name]
        members = values.map(_sources_in) if dimension.multiple else values.map(lambda v: [v])
        member = members.explode()
        coordinate = pd.concat([
            pd.DataFrame({"atom": member.index.to_numpy(), "coordinate": member.map(position).to_numpy()}),
            pd.DataFrame({"atom": np.arange(len(atoms)), "coordinate": len(dimension.categories)}),
        ])
        pairs = pairs.merge(coordinate, on="atom")
        pairs["cell"] = pairs["cell"] + stride * pairs.pop("coordinate").astype(np.int64)
    n_cells = int(np.prod(shape))
    incidence = sparse.csr_matrix(
        (np.ones(len(pairs)), (pairs["cell"].to_numpy(), pairs["atom"].to_numpy())), shape=(n_cells, len(atoms))
    )
    atom_counts = atoms["n"].to_numpy(dtype=np.int64)
    counts = np.rint(incidence @ atom_counts.astype(float)).astype(np.int64).reshape(shape)
    return CountTable(list(dimensions), counts, incidence, atom_counts)


# Suppression --------------------------------------------------------------------------------------
def suppress(table: CountTable, min_count: int = DEFAULT_MIN_COUNT) -> np.ndarray:
    """Which cells to write as SUPPRESSED (a boolean array shaped as the counts): the threshold
    rule, the line rule, and the linear check (see the module's docstring)."""
    counts = table.counts.ravel()
    suppressed = _complete_lines(table, (table.counts >= 1) & (table.counts < min_count))
    check = _LinearCheck(table)
    verified: set[int] = set()
    # Every [c] below N — the small cells, and any zero the line rule had to take — must be able
    # to reach N; more may be suppressed on the way, and are checked in turn.
    while pending := [c for c in np.flatnonzero(suppressed.ravel() & (counts < min_count)) if c not in verified]:
        for cell in pending:
            while (bounding := check.bounding_if_below(suppressed, cell, min_count)) is not None:
                if not len(bounding):
                    break  # nothing published and non-zero bounds it: it is not truly bounded
                suppressed.ravel()[bounding[np.argmin(counts[bounding])]] = True
                suppressed = _complete_lines(table, suppressed)
            verified.add(cell)
    # A complementary cell the published cells determine is as good as published: show it. Its
    # equation is implied by the others, so no interval changes.
    complementary = np.flatnonzero(suppressed.ravel() & (counts >= min_count))
    pinned = [c for c in complementary if check.pinned(suppressed, c)]
    suppressed.ravel()[pinned] = False
    return suppressed


def _complete_lines(table: CountTable, suppressed: np.ndarray) -> np.ndarray:
    """Suppress the smallest non-zero count in every line (one dimension varying, the others
    fixed, its TOTAL included) that holds exactly one suppressed cell, until none does. Lines
    along a `source` dimension do not add up, and are left to the linear check."""
    counts = table.counts
    cost = np.where(counts > 0, counts, np.iinfo(np.int64).max // 2).astype(np.float64)  # zeros last
    axes = [axis for axis, d in enumerate(table.dimensions) if not d.multiple]
    suppressed = suppressed.copy()
    changed = True
    while changed:
        changed = False
        for axis in axes:
            lonely = suppressed.sum(axis=axis, keepdims=True) == 1
            if not lonely.any():
                continue
            choice = np.argmin(np.where(suppressed, np.inf, cost), axis=axis, keepdims=True)
            pick = np.zeros_like(suppressed)
            np.put_along_axis(pick, choice, True, axis=axis)
            suppressed |= pick & lonely
            changed = True
    return suppressed


class _LinearCheck:
    """What a reader can work out of a cell from the published ones: each published cell is an
    equation over the atoms, which are non-negative reals."""

    def __init__(self, table: CountTable):
        self.incidence = table.incidence
        self.counts = table.counts.ravel().astype(float)
        self.has_atoms = np.diff(table.incidence.indptr) > 0

    def _solve(self, suppressed: np.ndarray, cell: int, sign: float):
        rows = np.flatnonzero(~suppressed.ravel() & self.has_atoms)
        objective = sign * self.incidence[cell].toarray().ravel()
        result = linprog(objective, A_eq=self.incidence[rows], b_eq=self.counts[rows], bounds=(0, None),
                         method="highs")
        return rows, result

    def largest(self, suppressed: np.ndarray, cell: int) -> float:
        _, result = self._solve(suppressed, cell, -1.0)
        return np.inf if result.status == 3 else -result.fun

    def pinned(self, suppressed: np.ndarray, cell: int) -> bool:
        """Whether the published cells determine `cell` (its true count is always feasible)."""
        if self.largest(suppressed, cell) > self.counts[cell] + PINNED:
            return False
        _, result = self._solve(suppressed, cell, 1.0)
        return result.status == 0 and result.fun > self.counts[cell] - PINNED

    def bounding_if_below(self, suppressed: np.ndarray, cell: int, limit: int) -> Optional[np.ndarray]:
        """None when `cell` can reach `limit`; else the published, non-zero cells bounding it
        (a non-zero dual value), or failing that those sharing residents with it."""
        rows, result = self._solve(suppressed, cell, -1.0)
        if result.status == 3 or (result.status == 0 and -result.fun >= limit - TOLERANCE):
            return None
        if result.status == 0:
            bounding = rows[(np.abs(result.eqlin.marginals) > TOLERANCE) & (self.counts[rows] > 0)]
            if len(bounding):
                return bounding
        sharing = (self.incidence @ self.incidence[cell].T).toarray().ravel() > 0
        return np.flatnonzero(sharing & ~suppressed.ravel() & (self.counts > 0))


# The published table ------------------------------------------------------------------------------
def published_frame(table: CountTable, suppressed: np.ndarray, round_to: Optional[int] = None) -> pd.DataFrame:
    """One row per cell: each dimension's category or TOTAL, then the count (rounded to a multiple
    of `round_to` if given) or SUPPRESSED."""
    levels = [(*d.categories, TOTAL) for d in table.dimensions]
    index = pd.MultiIndex.from_product(levels, names=[d.name for d in table.dimensions])
    counts = table.counts.ravel()
    if round_to:
        counts = (np.floor(counts / round_to + 0.5) * round_to).astype(np.int64)
    values = np.where(suppressed.ravel(), SUPPRESSED, counts.astype(str)).astype(object)
    return pd.DataFrame({COUNT_COLUMN: values}, index=index).reset_index()


def publish_table(labels: pd.DataFrame, dimensions: Sequence[Dimension], min_count: int = DEFAULT_MIN_COUNT,
                  round_to: Optional[int] = None) -> Publication:
    """Count, suppress and lay out: residents' labels (from `categorise`) -> the published table."""
    _check_settings(min_count, round_to)
    table = count_table(labels, dimensions)
    suppressed = suppress(table, min_count)
    return Publication(published_frame(table, suppressed, round_to), int(suppressed.sum()), len(labels))


def publish(folder: Union[str, Path], by: Union[str, Sequence[str]], min_count: int = DEFAULT_MIN_COUNT,
            round_to: Optional[int] = None) -> Publication:
    """Counts of the residents of the run in `folder` by the columns `by`, safe to publish."""
    by = parse_by(by) if isinstance(by, str) else parse_by(",".join(by))
    _check_settings(min_count, round_to)
    people, as_of = read_people(folder, by)
    labels, dimensions = categorise(people, by, as_of)
    return publish_table(labels, dimensions, min_count, round_to)


def _check_settings(min_count: int, round_to: Optional[int]) -> None:
    if min_count < 2:
        raise DataError(f"--min-count {min_count}: expected 2 or more (the smallest count that may be published)")
    if round_to is not None and round_to < 2:
        raise DataError(f"--round {round_to}: expected a base of 2 or more (e.g. 5)")


def write_csv(frame: pd.DataFrame, path: Union[str, Path]) -> Path:
    """Write `frame` to `path` whole or not at all: a temporary file beside it, then moved into place."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"{path}: folder {path.parent} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            frame.to_csv(out, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def record_publication(folder: Union[str, Path], publication: Publication, by: str, min_count: int,
                       round_to: Optional[int], written: Path) -> None:
    """Append what was published (the columns, the rule, the counts of cells, and the file's
    hash; no values) to the run folder's audit log, so a governance board can see every table
    that left the building."""
    from residentview.audit import append_entries, os_user, versions
    from residentview.outputs import folder_lock, staged_output
    from residentview.review.store import file_digest

    folder = Path(folder)
    entry = {
        "event": "publish", "user": os_user(), "versions": versions(), "by": by, "min_count": min_count,
        "round": round_to, "cells": int(len(publication.frame)), "suppressed": publication.n_suppressed,
        "residents": publication.n_residents, "file": Path(written).name, "sha256": file_digest(Path(written)),
    }
    with folder_lock(folder, "publish"), staged_output(folder) as staging:
        append_entries(folder, staging, [entry])

"""The tables in a folder, read as `link` would read them: each CSV (its delimiter found), each
sheet of each workbook, each Parquet file — with the header row found below any title rows."""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from residentview.config import SUPPORTED_EXTENSIONS
from residentview.errors import DataError
from residentview.sources import _csv_encodings, read_table

PEEK_ROWS = 40  # rows looked at to find the header and the delimiter
DELIMITERS = (",", "\t", ";", "|")  # tried in this order; a tie goes to the earlier


@dataclass
class Table:
    """One table a source could be made of, and how `link` must be told to read it."""

    path: Path
    frame: pd.DataFrame
    sheet: Optional[str] = None  # .xlsx: the sheet's name
    delimiter: str = ","  # .csv
    header_row: Optional[int] = None  # 1-based; None when the header is the first row
    title_rows: int = 0  # non-blank rows above the header

    @property
    def label(self) -> str:
        return f"{self.path.name} (sheet {self.sheet!r})" if self.sheet is not None else self.path.name


def _filled(row: Sequence) -> int:
    return sum(1 for cell in row if _text(cell))


def _text(cell) -> str:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return ""
    return str(cell).strip()


def header_index(rows: Sequence[Sequence]) -> int:
    """The 0-based index of the header among a table's first rows: the first row filled nearly
    as widely as the widest (a title above it fills one or two cells; blank rows none)."""
    widths = [_filled(row) for row in rows]
    widest = max(widths, default=0)
    if widest == 0:
        return 0
    needed = max(1, math.ceil(0.6 * widest)) if widest > 2 else widest
    return next(i for i, width in enumerate(widths) if width >= needed)


def csv_layout(lines: Sequence[str]) -> tuple[str, int]:
    """The delimiter and the 0-based header line of a CSV's first lines: the delimiter that splits
    most lines into one and the same number of fields (the most, when several do)."""
    best, best_key = ",", (0, 0)
    for delimiter in DELIMITERS:
        rows = [row for row in csv.reader(lines, delimiter=delimiter)]
        widths = [len(row) for row in rows if _filled(row)]
        if not widths:
            continue
        common = max(set(widths), key=lambda w: (widths.count(w), w))
        share_ok = widths.count(common) >= 0.5 * len(widths)
        key = (int(share_ok and common > 1), common if share_ok else 0)
        if key > best_key:
            best, best_key = delimiter, key
    rows = list(csv.reader(lines, delimiter=best))
    return best, header_index(rows)


def _csv_first_lines(path: Path) -> list[str]:
    for encoding in _csv_encodings(path, "auto"):
        try:
            with path.open(newline="", encoding=encoding) as handle:
                return [line.rstrip("\r\n") for _, line in zip(range(PEEK_ROWS), handle)]
        except UnicodeError:
            continue
    raise DataError(f"{path}: cannot decode the file as UTF-8 or cp1252")


def _title_rows(rows: Sequence[Sequence], header: int) -> int:
    return sum(1 for row in rows[:header] if _filled(row))


def _csv_table(path: Path) -> Table:
    lines = _csv_first_lines(path)
    delimiter, header = csv_layout(lines)
    header_row = header + 1 if header else None
    frame, _ = read_table(path, delimiter=delimiter, header_row=header_row)
    rows = list(csv.reader(lines[:header], delimiter=delimiter))
    return Table(path, frame, delimiter=delimiter, header_row=header_row, title_rows=_title_rows(rows, header))


def _sheet_tables(path: Path) -> list[Table]:
    from python_calamine import CalamineWorkbook

    try:
        sheets = CalamineWorkbook.from_path(str(path)).sheet_names
    except Exception:
        raise DataError(f"{path}: not a readable .xlsx file") from None
    tables = []
    for sheet in sheets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            top = pd.read_excel(path, sheet_name=sheet, header=None, nrows=PEEK_ROWS, dtype=object, engine="calamine")
        rows = top.itertuples(index=False, name=None)
        rows = list(rows)
        if not any(_filled(row) for row in rows):
            continue  # an empty sheet
        header = header_index(rows)
        header_row = header + 1 if header else None
        frame, _ = read_table(path, sheet=sheet, header_row=header_row)
        tables.append(Table(path, frame, sheet=sheet, header_row=header_row, title_rows=_title_rows(rows, header)))
    return tables


def candidate_files(folder: Path) -> list[Path]:
    """The extracts in `folder` (not its subfolders), by name: .csv, .parquet, .xlsx; no hidden
    files and no Excel lock files (~$Book.xlsx)."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith((".", "~$"))
    )


def read_tables(path: Path) -> list[Table]:
    """Every table in one file (one per non-empty sheet of a workbook)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [_csv_table(path)]
    if suffix == ".xlsx":
        return _sheet_tables(path)
    frame, _ = read_table(path)
    return [Table(path, frame.reset_index(drop=True))]

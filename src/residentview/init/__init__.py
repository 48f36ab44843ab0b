"""`residentview init FOLDER`: a commented config drafted from the extracts in a folder.

    tables.py       every CSV (its delimiter), workbook sheet and Parquet file, header rows found
    columns.py      which column is which canonical field, and which is the record id, with evidence
    config_text.py  the YAML, each guess commented with its evidence

The config it writes loads with `residentview validate` and runs with `residentview link`; the
guesses are for a person to check, which is why each one says why it was made.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from residentview.errors import DataError
from residentview.fields import RUN_NAME_RE
from residentview.init.columns import choose_id, guess_fields
from residentview.init.config_text import SourceDraft, config_text
from residentview.init.tables import Table, candidate_files, read_tables

DEFAULT_CONFIG = "residentview.yaml"

__all__ = ["DEFAULT_CONFIG", "Draft", "draft_config", "init_config"]


@dataclass
class Draft:
    """What `init` found: the sources it could make, those it could not, and the text."""

    text: str
    sources: list[SourceDraft]
    skipped: list[str]

    @property
    def usable(self) -> list[SourceDraft]:
        return [s for s in self.sources if s.usable]


def safe_name(text: str, taken: set[str]) -> str:
    """A source name from a file (or sheet) name: letters, digits and '_', starting with a
    letter, unique among `taken` (case-insensitively: SQL folds case)."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "source"
    if not name[0].isalpha():
        name = f"source_{name}"[:60]
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def _run_name(folder: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", folder.resolve().name).strip("_-")[:64]
    return name if name and RUN_NAME_RE.match(name) else "residentview"


def _draft_source(table: Table, name: str, config_dir: Path) -> SourceDraft:
    frame = table.frame
    columns = [str(c) for c in frame.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    blank = [c for c in columns if not c.strip() or c.startswith("Unnamed: ")]
    readable = frame.loc[:, [c not in repeated and c not in blank for c in columns]]
    guesses = guess_fields(readable)
    notes = [f"column {c!r} appears {columns.count(c)} times in the header: rename it to map it" for c in repeated]
    if blank:
        notes.append(f"{len(blank)} column(s) without a header name left out")
    path_text = os.path.relpath(table.path.resolve(), config_dir.resolve())
    return SourceDraft(name, table, Path(path_text).as_posix(), choose_id(readable, guesses), guesses, notes)


def draft_config(folder: Union[str, Path], config_path: Optional[Union[str, Path]] = None) -> Draft:
    """Look at every extract in `folder` and draft the config (not written; see `init_config`).
    `config_path`: where it will be written (source paths are relative to its folder)."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, expected a folder of extracts (.csv, .parquet, .xlsx)")
    config_path = Path(config_path) if config_path is not None else folder / DEFAULT_CONFIG
    files = candidate_files(folder)
    if not files:
        raise DataError(f"{folder}: no extracts found; expected .csv, .parquet or .xlsx files in it")
    drafts, skipped, taken = [], [], set()
    for path in files:
        try:
            tables = read_tables(path)
        except DataError as exc:
            skipped.append(f"{path.name} is left out: {exc}")
            continue
        if not tables:
            skipped.append(f"{path.name} is left out: no sheet holds any data")
        several = len(tables) > 1
        for table in tables:
            if not len(table.frame.columns):
                skipped.append(f"{table.label} is left out: no columns")
                continue
            stem = f"{path.stem}_{table.sheet}" if several else path.stem
            draft = _draft_source(table, safe_name(stem, taken), config_path.parent)
            if not draft.usable and not any(g.field for g in draft.guesses):
                skipped.append(f"{table.label} is left out: no column was recognised as a canonical field")
                continue
            drafts.append(draft)
    if not any(d.usable for d in drafts):
        reasons = [f"{d.table.label}: {d.why_not()}" for d in drafts] + skipped
        raise DataError(f"{folder}: no extract has both a name column and a unique id column"
                        + (f" ({'; '.join(reasons)[:400]})" if reasons else ""))
    text = config_text(_run_name(folder), str(folder), drafts, skipped, config_path.name)
    return Draft(text, drafts, skipped)


def init_config(folder: Union[str, Path], out: Optional[Union[str, Path]] = None, force: bool = False) -> tuple[Path, Draft]:
    """Draft a config from the extracts in `folder` and write it to `out` (default
    FOLDER/residentview.yaml). An existing file is kept unless `force`. The config written is
    loaded back, so what is written always validates."""
    from residentview.config import load_config

    out = Path(out) if out is not None else Path(folder) / DEFAULT_CONFIG
    if out.is_dir():
        raise DataError(f"{out}: is a folder; expected the config file to write (e.g. {out / DEFAULT_CONFIG})")
    if out.exists() and not force:
        raise DataError(f"{out}: already exists; use --force to overwrite it, or --out for another file")
    draft = draft_config(folder, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.residentview-tmp")
    temporary.write_text(draft.text, encoding="utf-8")
    try:
        load_config(temporary, base_dir=out.parent.resolve())
    except Exception:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, out)
    return out, draft

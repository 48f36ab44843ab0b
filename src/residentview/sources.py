"""Stage 1 — sources: read each council extract into one raw frame of canonical fields.

Every value is read as text (ids and postcodes keep their leading zeros). The result has one row
per input record with columns ``source``, ``record_id`` and one column per mapped canonical field
(identifiers as ``id_<name>``), values as the source wrote them, joined where the config lists
several columns. Standardising is the next stage's job.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from residentview.config import Config, SourceConfig
from residentview.errors import DataError
from residentview.fields import identifier_column

log = logging.getLogger(__name__)

AUTO_ENCODINGS = ("utf-8-sig", "cp1252")  # utf-8-sig reads plain UTF-8 and UTF-8 with a BOM


@dataclass
class SourceSummary:
    """What `validate` prints per source: counts only, never values."""

    source: str
    path: str
    n_records: int
    encoding: Optional[str]
    fields: list[str]
    warnings: list[str] = field(default_factory=list)


def _text(series: pd.Series) -> pd.Series:
    """Any column -> strings, integers without '.0', lists joined, missing as None."""
    if series.dtype == object:
        def one(value):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                return None
            if isinstance(value, (list, tuple, np.ndarray)):
                parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
                return ", ".join(parts) if parts else None
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            if isinstance(value, bytes):
                return value.decode("utf-8", errors="replace")
            return str(value)

        return series.map(one).astype(object)
    if pd.api.types.is_float_dtype(series):
        out = series.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
        return out.astype(object)
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y-%m-%d").where(series.notna(), None).astype(object)
    out = series.astype("string").astype(object)
    return out.where(series.notna(), None)


def _read_csv(path: Path, encoding: str) -> tuple[pd.DataFrame, str]:
    encodings = AUTO_ENCODINGS if encoding == "auto" else (encoding,)
    last_error: Optional[Exception] = None
    for enc in encodings:
        try:
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[], encoding=enc,
                skipinitialspace=False,
            )
            return frame, ("utf-8" if enc == "utf-8-sig" else enc)
        except UnicodeDecodeError as exc:
            last_error = exc
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: file is empty (no header row)") from None
        except pd.errors.ParserError as exc:
            first = str(exc).strip().splitlines()[0]
            raise DataError(f"{path}: not a readable CSV file: {first}") from None
    tried = " or ".join("UTF-8" if e == "utf-8-sig" else e for e in encodings)
    raise DataError(
        f"{path}: cannot decode the file as {tried} (byte {getattr(last_error, 'start', '?')}); "
        "set 'encoding:' for this source"
    )


def read_table(path: Path, encoding: str = "auto", sheet=None) -> tuple[pd.DataFrame, Optional[str]]:
    """Read one extract as text columns. Returns the frame and the encoding used (CSV only)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a .csv, .parquet or .xlsx file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    used = None
    if suffix == ".csv":
        frame, used = _read_csv(path, encoding)
    elif suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    elif suffix == ".xlsx":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=object, engine="openpyxl")
        except ValueError as exc:
            if "not found" in str(exc).lower() or "worksheet" in str(exc).lower():
                raise DataError(f"{path}: sheet {sheet!r} not found") from None
            raise DataError(f"{path}: not a readable .xlsx file") from None
        except Exception:
            raise DataError(f"{path}: not a readable .xlsx file") from None
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .parquet or .xlsx")
    frame.columns = [str(c) for c in frame.columns]
    return frame, used


def _pick(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One canonical value from one or several columns (joined with ', ', blanks skipped)."""
    parts = [_text(frame[c]) for c in columns]
    if len(parts) == 1:
        out = parts[0].map(lambda v: v.strip() if isinstance(v, str) else v)
        return out.where(out.map(lambda v: isinstance(v, str) and v != ""), None)
    joined = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    for part in parts:
        part = part.map(lambda v: v.strip() if isinstance(v, str) else "")
        both = (joined != "") & (part != "")
        joined = (joined + np.where(both, ", ", "") + part).astype(object)
    return joined.where(joined != "", None)


def _check_columns(name: str, path: Path, spec: SourceConfig, frame: pd.DataFrame) -> None:
    wanted = [spec.id]
    for field_spec in spec.fields.mapped().values():
        wanted.extend(field_spec.columns)
    wanted.extend(spec.fields.identifiers.values())
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        have = ", ".join(frame.columns[:30]) + (" …" if len(frame.columns) > 30 else "")
        raise DataError(
            f"{path}: source {name}: column(s) {', '.join(repr(m) for m in missing)} not found; "
            f"the file has: {have}"
        )


def _check_ids(name: str, path: Path, ids: pd.Series) -> None:
    blank = ids.isna()
    if blank.any():
        rows = [str(i + 2) for i in np.flatnonzero(blank.to_numpy())[:5]]
        raise DataError(
            f"{path}: source {name}: {int(blank.sum())} record(s) with a blank id (data rows {', '.join(rows)})"
        )
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        shown = list(dict.fromkeys(dup.tolist()))[:5]
        raise DataError(
            f"{path}: source {name}: {dup.nunique()} duplicate id(s), e.g. {', '.join(shown)}"
        )


def read_source(config: Config, name: str) -> tuple[pd.DataFrame, SourceSummary]:
    """Read one configured source into the raw canonical frame (see the module docstring)."""
    spec = config.sources[name]
    path = config.source_path(name)
    frame, used = read_table(path, spec.encoding, spec.sheet)
    _check_columns(name, path, spec, frame)
    summary = SourceSummary(name, str(path), len(frame), used, list(spec.fields.mapped()))
    ids = _pick(frame, [spec.id])
    _check_ids(name, path, ids)
    if len(frame) == 0:
        msg = f"{path}: source {name}: has a header but no records"
        summary.warnings.append(msg)
        log.warning(msg)
    raw = pd.DataFrame({"source": pd.Series([name] * len(frame), dtype=object), "record_id": ids.values})
    for field_name, field_spec in spec.fields.mapped().items():
        raw[field_name] = _pick(frame, field_spec.columns).values
    for id_name, column in spec.fields.identifiers.items():
        raw[identifier_column(id_name)] = _pick(frame, [column]).values
    return raw, summary


def read_sources(config: Config, progress=None) -> tuple[pd.DataFrame, list[SourceSummary]]:
    """Read every source and stack them into one raw frame (columns: union of what was mapped)."""
    frames, summaries = [], []
    for name in config.sources:
        raw, summary = read_source(config, name)
        frames.append(raw)
        summaries.append(summary)
        if progress is not None:
            progress(name)
    raw = pd.concat(frames, ignore_index=True, sort=False)
    raw = raw.astype(object).where(raw.notna(), None)
    if len(raw) == 0:
        raise DataError(f"{config.label}: no records in any source")
    return raw, summaries

"""Stage 1 — sources: read each council extract into one raw frame of canonical fields.

Every value is read as text (ids and postcodes keep their leading zeros). The result has one row
per input record with columns ``source``, ``record_id`` and one column per mapped canonical field
(identifiers as ``id_<name>``), values as the source wrote them, joined where the config lists
several columns. Standardising is the next stage's job.

Only the columns a source's config names are read, and they are renamed to canonical fields here,
so a file's own column names (``First Name``, ``select``, unicode, dots) never reach SQL.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import logging
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from residentview.config import SUPPORTED_EXTENSIONS, Config
from residentview.errors import DataError
from residentview.fields import identifier_column

log = logging.getLogger(__name__)

# utf-8-sig reads plain UTF-8 and UTF-8 with a BOM; most council systems export cp1252
AUTO_ENCODINGS = ("utf-8-sig", "cp1252")
SHOWN_IDS = 5
SHOWN_COLUMNS = 30
_KINDS = ", ".join(SUPPORTED_EXTENSIONS)


@dataclass
class SourceSummary:
    """What `validate` prints per source: counts only, never values."""

    source: str
    path: str
    n_records: int
    encoding: Optional[str]
    fields: list[str]
    warnings: list[str] = field(default_factory=list)
    # Records read but past the source's retention (CONTRACT §10): left out of everything. Their
    # ids stay in memory only, for the resident view to forget what the previous run knew of them.
    n_past_retention: int = 0
    retention: Optional[str] = None  # the period, as the config gave it ("6 years")
    past_retention: list[str] = field(default_factory=list, repr=False)


# Values -> text ---------------------------------------------------------------------------

def _scalar_text(value) -> Optional[str]:
    """One odd value (from a mixed Excel column or a Parquet object column) as text."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.strftime("%Y-%m-%d") if midnight else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


TEXT = "string[pyarrow]"  # vectorised trimming and joining in Arrow, not a Python call per value


def _joined_lists(series: pd.Series) -> pd.Series:
    """A list-valued column -> its items joined with ', ' (blank items skipped)."""
    items = _text(series.explode())
    return items.dropna().groupby(level=0).agg(", ".join).reindex(series.index).astype(TEXT)


def _text(series: pd.Series) -> pd.Series:
    """Any column -> trimmed text (integers without '.0', lists joined), missing or blank as <NA>."""
    if pd.api.types.is_datetime64_any_dtype(series):
        text = series.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        text = series.astype(TEXT)
    elif pd.api.types.is_float_dtype(series):
        # ids stored as floats (because of a gap) must read 1234, not 1234.0
        whole = series.notna() & np.isfinite(series) & (series % 1 == 0) & (series.abs() < 2**53)
        text = series.astype(TEXT)
        text[whole] = series[whole].astype("int64").astype(TEXT)
    else:
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind in ("string", "empty"):
            text = series
        elif _is_list(series.dropna().iloc[0]):
            return _joined_lists(series)
        else:
            try:
                uniques = pd.unique(series.dropna())  # None and NaN would clash as dict keys
                text = series.map(dict(zip(uniques, map(_scalar_text, uniques))))
            except TypeError:  # unhashable values mixed in: convert one by one
                text = series.map(lambda v: ", ".join(filter(None, map(_scalar_text, v))) if _is_list(v) else _scalar_text(v))
    text = text.astype(TEXT).str.strip()
    return text.mask(text == "")


def _as_values(text: pd.Series) -> np.ndarray:
    """Text -> the raw frame's values: Python strings, None where missing."""
    return text.astype(object).where(text.notna(), None).to_numpy()


def as_python_values(raw: pd.DataFrame) -> pd.DataFrame:
    """A raw frame read `as_text` with the values `read_sources` gives by default: Python
    strings, None where missing."""
    text = [c for c, dtype in raw.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    if not text:
        return raw
    return raw.assign(**{c: _as_values(raw[c]) for c in text})


def _pick(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One canonical value from one or several columns (joined with ', ', blanks skipped)."""
    joined = _text(frame[columns[0]])
    for column in columns[1:]:
        part = _text(frame[column])
        separator = pd.Series(np.where(joined.notna() & part.notna(), ", ", ""), index=frame.index, dtype=TEXT)
        joined = joined.fillna("") + separator + part.fillna("")
        joined = joined.mask(joined == "")
    return joined


# Reading files ----------------------------------------------------------------------------

def _where(path: Path, source: Optional[str]) -> str:
    return f"{path}: source {source}" if source else str(path)


def _check_columns(where: str, header: Sequence[str], wanted: Sequence[str], holder: str = "the file has") -> None:
    missing = [c for c in wanted if c not in header]
    if missing:
        shown = ", ".join(repr(c) for c in header[:SHOWN_COLUMNS])
        more = f" (and {len(header) - SHOWN_COLUMNS} more)" if len(header) > SHOWN_COLUMNS else ""
        raise DataError(
            f"{where}: column(s) {', '.join(map(repr, missing))} not found; "
            f"{holder}: {shown or '(no columns)'}{more}"
        )
    counts = Counter(header)
    repeated = [c for c in wanted if counts[c] > 1]
    if repeated:
        raise DataError(
            f"{where}: column {repeated[0]!r} appears {counts[repeated[0]]} times in the header; "
            "expected each column name once"
        )


# A byte-order mark says how its file is encoded: Excel's "CSV UTF-8" starts with UTF-8's, its
# "Unicode text" with UTF-16's. No header of a single-byte encoding starts "ï»¿" or "ÿþ".
_MARKS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _mark(path: Path) -> Optional[str]:
    """The codec the file's byte-order mark names (reading past the mark), None without one."""
    with path.open("rb") as fh:
        start = fh.read(3)
    return next((codec for mark, codec in _MARKS if start.startswith(mark)), None)


def _csv_encodings(path: Path, encoding: str) -> tuple[str, ...]:
    """The encodings to try, in turn. A file starting with a byte-order mark is read in the
    encoding the mark names, its mark dropped: `encoding: utf-8` reads Excel's UTF-8 CSV (whose
    mark Python's utf-8 would keep, in the first column's name), and an `encoding:` the mark
    contradicts is overruled (with a warning once the file has been read: `_overruled`)."""
    marked = _mark(path)
    if marked is not None:
        return (marked,)
    return AUTO_ENCODINGS if encoding == "auto" else (encoding,)


def _family(codec: str) -> str:
    return codecs.lookup(codec).name.replace("-sig", "")


def _overruled(path: Path, used: str, declared: str) -> None:
    """Warn when the file was read in another encoding than `encoding:` names (its mark's)."""
    if declared != "auto" and not _family(declared).startswith(_family(used)):
        log.warning("%s: the file starts with a %s byte-order mark: read as %s, not as %s ('encoding:')",
                    path.name, _family(used).upper(), _family(used).upper(), declared)


SPARE_FIELDS = 8
OTHER_DELIMITERS = ("\t", ";", "|")


def csv_delimiter(header_line: str) -> str:
    """The delimiter of a CSV whose config gives none: a comma, unless the header line holds no
    comma and does hold a tab, ';' or '|' (the commonest of them) — so every file that read as
    comma-separated before still does."""
    if "," in header_line:
        return ","
    counts = {d: header_line.count(d) for d in OTHER_DELIMITERS if d in header_line}
    return max(counts, key=counts.get) if counts else ","


def _header_line(fh, header_row: Optional[int]) -> str:
    """The header's line of an open CSV: the first, or line `header_row` (1-based)."""
    for _ in range((header_row or 1) - 1):
        if not fh.readline():
            return ""
    return fh.readline()


def _parse_csv_body(path: Path, where: str, header: list[str], encoding: str, delimiter: str = ",",
                    header_row: Optional[int] = None) -> pd.DataFrame:
    """Every row as text under the header's names. A row with more fields than the header
    (an unquoted comma in an address) is an error, not a silent shift of its values: pandas would
    otherwise take the surplus as an index or drop it, so spare columns catch it here. Surplus
    fields that are all empty (a trailing comma on every line) are fine."""
    width = len(header)
    frame = pd.read_csv(
        path, header=None, skiprows=header_row or 1, names=range(width + SPARE_FIELDS), index_col=False,
        dtype=TEXT, keep_default_na=False, na_values=[], encoding=encoding, sep=delimiter,
    )
    spare = frame.iloc[:, width:]
    overfull = (spare.notna() & (spare != "")).any(axis=1).to_numpy()
    if overfull.any():
        row = int(np.flatnonzero(overfull)[0]) + 1
        raise DataError(
            f"{where}: data row {row} has more fields than the header's {width} (an unquoted comma?); "
            f"{int(overfull.sum())} row(s) affected; expected one field per column"
        )
    frame = frame.iloc[:, :width]
    frame.columns = header
    return frame


def _read_csv(path: Path, where: str, wanted: Optional[Sequence[str]], encoding: str,
              delimiter: Optional[str] = None, header_row: Optional[int] = None):
    encodings = _csv_encodings(path, encoding)
    failure: Optional[UnicodeError] = None
    for enc in encodings:
        try:
            with path.open(newline="", encoding=enc) as fh:
                line = _header_line(fh, header_row)
            sep = delimiter or csv_delimiter(line)
            header = next(csv.reader([line.rstrip("\r\n")], delimiter=sep), [])
            if not any(h.strip() for h in header):
                if header_row:
                    raise DataError(f"{where}: line {header_row} is blank or past the end; expected the header there "
                                    "(check 'header_row:')")
                raise DataError(f"{path}: file is empty (no header row)")
            if wanted is not None:
                _check_columns(where, header, wanted)
            frame = _parse_csv_body(path, where, header, enc, sep, header_row)
            _overruled(path, enc, encoding)
            return frame[list(wanted)] if wanted is not None else frame, ("utf-8" if enc == "utf-8-sig" else enc)
        except UnicodeError as exc:  # UnicodeDecodeError, or utf-16 without a BOM
            failure = exc
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: file is empty (no header row)") from None
        except pd.errors.ParserError as exc:
            line = re.search(r"in line (\d+)", str(exc))
            if line:
                raise DataError(
                    f"{where}: line {line.group(1)} has far more fields than the header's {len(header)} "
                    "(unquoted commas?); expected one field per column"
                ) from None
            first = str(exc).strip().splitlines()[0]
            raise DataError(f"{where}: not a readable CSV file: {first}") from None
    tried = " or ".join("UTF-8" if e == "utf-8-sig" else e for e in encodings)
    hint = (
        "set 'encoding:' for this source (e.g. cp1252 or latin-1)" if encoding == "auto"
        else "check 'encoding:' for this source (most council systems export cp1252; 'auto' tries UTF-8 then cp1252)"
    )
    if _mark(path):  # the mark decides the encoding: the file is damaged, not misdeclared
        tried = f"{_family(encodings[0]).upper()}, which its byte-order mark names"
        hint = "the file may be damaged: export it again"
    raise DataError(f"{path}: cannot decode the file as {tried} (byte {getattr(failure, 'start', '?')}); {hint}")


def _read_parquet(path: Path, where: str, wanted: Optional[Sequence[str]]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        header = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    if wanted is not None:
        _check_columns(where, header, wanted)
    try:
        return pd.read_parquet(path, columns=list(wanted) if wanted is not None else None)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None


def _read_xlsx(path: Path, where: str, wanted: Optional[Sequence[str]], sheet,
               header_row: Optional[int] = None) -> pd.DataFrame:
    """Read with calamine (Rust): about eight times quicker than openpyxl on a large sheet."""
    from python_calamine import CalamineWorkbook

    try:
        sheets = CalamineWorkbook.from_path(str(path)).sheet_names
    except Exception:
        raise DataError(f"{path}: not a readable .xlsx file") from None
    chosen = 0 if sheet is None else sheet
    if (isinstance(chosen, int) and not 0 <= chosen < len(sheets)) or (isinstance(chosen, str) and chosen not in sheets):
        raise DataError(f"{where}: sheet {chosen!r} not found; the workbook has: {', '.join(map(repr, sheets))}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_excel(
                path, sheet_name=chosen, dtype=object, engine="calamine",
                keep_default_na=False, na_values=[], header=(header_row or 1) - 1,
            )
    except Exception:
        raise DataError(f"{path}: not a readable .xlsx file (sheet {chosen!r})") from None
    frame.columns = [str(c) for c in frame.columns]
    if wanted is not None:
        _check_columns(where, list(frame.columns), wanted)
        frame = frame[list(wanted)]
    return frame


def read_table(
    path: Union[str, Path],
    encoding: str = "auto",
    sheet=None,
    columns: Optional[Sequence[str]] = None,
    source: Optional[str] = None,
    delimiter: Optional[str] = None,
    header_row: Optional[int] = None,
) -> tuple[pd.DataFrame, Optional[str]]:
    """Read one extract (or just `columns` of it). Returns the frame and the encoding used (CSV only).
    `delimiter` (CSV) and `header_row` (CSV, .xlsx: 1-based, rows above it ignored) as in the config.

    Errors are one-line `DataError`s naming the file (and `source`, when given).
    """
    path = Path(path)
    where = _where(path, source)
    if not path.exists():
        raise DataError(f"{where}: file not found")
    if path.is_dir():
        raise DataError(f"{where}: is a folder, expected a file ({_KINDS})")
    suffix = path.suffix.lower()
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{where}: file is empty")
        if suffix == ".csv":
            return _read_csv(path, where, columns, encoding, delimiter, header_row)
        if suffix == ".parquet":
            return _read_parquet(path, where, columns), None
        if suffix == ".xlsx":
            return _read_xlsx(path, where, columns, sheet, header_row), None
    except PermissionError:
        raise DataError(f"{where}: cannot read the file (permission denied)") from None
    raise DataError(f"{where}: unsupported file type {suffix!r}; expected one of {_KINDS}")


def _check_ids(where: str, ids: pd.Series) -> None:
    blank = ids.isna().to_numpy()
    if blank.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(blank)[:SHOWN_IDS])
        raise DataError(f"{where}: {int(blank.sum())} record(s) with a blank id (data row(s) {rows})")
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        shown = ", ".join(repeated.drop_duplicates().head(SHOWN_IDS))
        raise DataError(
            f"{where}: {repeated.nunique()} duplicate id(s), e.g. {shown}; expected each id once"
        )


def past_retention(raw: pd.DataFrame, config: Config, name: str, today: Optional[pd.Timestamp] = None) -> np.ndarray:
    """Per record of source `name`: is its record_date older than the source's retention allows
    on `today` (default: now)? A record without a usable record_date is kept: nothing says it is old."""
    retention = config.sources[name].retention
    if retention is None or "record_date" not in raw or not len(raw):
        return np.zeros(len(raw), dtype=bool)
    from residentview.standardise.dates import clean_date

    dates = clean_date(pd.Series(raw["record_date"].to_numpy(dtype=object, na_value=None), dtype=object),
                       config.sources[name].date_format("record_date"))
    cutoff = retention.cutoff(pd.Timestamp.now(tz="UTC") if today is None else today)
    return (dates < cutoff).fillna(False).to_numpy(dtype=bool)


def canonical_fields(spec) -> list[str]:
    """The raw columns a source's config maps, after source and record_id: its fields, then its
    identifiers (`id_<name>`)."""
    return [*spec.fields.mapped(), *map(identifier_column, spec.fields.identifiers)]


def read_source(config: Config, name: str, today: Optional[pd.Timestamp] = None, progress=None,
                as_text: bool = False) -> tuple[pd.DataFrame, SourceSummary]:
    """Read one configured source into the raw canonical frame (see the module docstring).
    Records past the source's retention are dropped here, right after reading, and counted.
    `progress`: told how many rows a database source has given so far (see `read_sources`).
    `as_text`: the values as Arrow-backed text (`TEXT`, <NA> where missing), not Python strings."""
    values = (lambda text: text.astype(TEXT)) if as_text else _as_values
    spec = config.sources[name]
    if spec.sql is not None:
        from residentview.sql_sources import read_sql_source

        frame, path = read_sql_source(spec.sql, name, spec.columns(), progress)
        where, used = _where(path, name), None
    else:
        path = config.source_path(name)
        where = _where(path, name)
        frame, used = read_table(path, spec.encoding, spec.sheet, columns=spec.columns(), source=name,
                                 delimiter=spec.delimiter, header_row=spec.header_row)
    frame = frame.reset_index(drop=True)  # a Parquet file may carry its own index
    fields = canonical_fields(spec)
    summary = SourceSummary(name, str(path), len(frame), used, fields)
    if len(frame) == 0:
        summary.warnings.append(f"{where}: {'returned' if spec.sql is not None else 'has a header but'} no records")
    ids = _pick(frame, [spec.id])
    _check_ids(where, ids)
    raw = pd.DataFrame({"source": pd.Series(name, index=frame.index, dtype=TEXT if as_text else object),
                        "record_id": values(ids)}, index=frame.index)
    for field_name, field_spec in spec.fields.mapped().items():
        raw[field_name] = values(_pick(frame, field_spec.columns))
    for id_name, column in spec.fields.identifiers.items():
        raw[identifier_column(id_name)] = values(_pick(frame, [column]))
    expired = past_retention(raw, config, name, today)
    if spec.retention is not None:
        summary.retention = spec.retention.describe()
        summary.n_past_retention = int(expired.sum())
        summary.past_retention = raw["record_id"].to_numpy(dtype=object)[expired].tolist()
        if expired.any():
            raw = raw.loc[~expired].reset_index(drop=True)
            summary.n_records = len(raw)
            log.info("%s: %d record(s) past the retention of %s left out", name, summary.n_past_retention,
                     summary.retention)
    return raw, summary


def read_sources(config: Config, progress=None, today: Optional[pd.Timestamp] = None, as_text: bool = False
                 ) -> tuple[pd.DataFrame, list[SourceSummary]]:
    """Read every source and stack them into one raw frame (columns: union of what was mapped),
    without the records past their source's retention on `today` (default: now).

    `progress`, when given, is called with a description ("reading council_tax") as each source
    is read, and as each chunk of a database source arrives ("reading tenancies: 150,000 rows").
    `as_text`: every value as Arrow-backed text (`TEXT`, <NA> where missing) rather than a
    Python string (None where missing): an update, which standardises only the records that
    changed, converts only those (`as_python_values`).
    """
    frames, summaries = [], []
    for name in config.sources:
        if progress is not None:
            progress(f"reading {name}")
        raw, summary = read_source(config, name, today, progress, as_text=as_text)
        frames.append(raw)
        summaries.append(summary)
    raw = pd.concat(frames, ignore_index=True, sort=False)
    if as_text:  # a field one source lacks is <NA> in its rows
        raw = raw.astype({c: TEXT for c, dtype in raw.dtypes.items() if dtype != TEXT})
    else:  # a field one source lacks is None, not NaN
        raw = raw.astype(object).where(raw.notna(), None)
    checked_read(config, len(raw), summaries)
    return raw, summaries


def checked_read(config: Config, n_records: int, summaries: Sequence[SourceSummary]) -> None:
    """The checks on the sources read together (on the driver or on Spark): a one-line
    `DataError` when no record is left to link, else each source's warnings logged."""
    if n_records == 0 and any(s.n_past_retention for s in summaries):
        raise DataError(f"{config.label}: every record is past its source's retention; nothing to link")
    if n_records == 0:
        files = ", ".join(s.path for s in summaries)
        raise DataError(f"{config.label}: no records in any source (every file has a header but no rows: {files})")
    for summary in summaries:  # after the check above, so an all-empty run says it in one line
        for warning in summary.warnings:
            log.warning(warning)


def retention_counts(summaries: Sequence[SourceSummary]) -> dict:
    """Per source with a retention: its period and how many records it left out (run.json, the
    audit log). Counts only."""
    return {s.source: {"retention": s.retention, "records_past_retention": s.n_past_retention}
            for s in summaries if s.retention is not None}


def past_retention_keys(summaries: Sequence[SourceSummary]) -> list[str]:
    """The keys (source, record_id; see resident_view.previous.record_members) of the records
    past retention, for the resident view to forget what a previous run knew of them."""
    return [f"{s.source}\x1f{record_id}" for s in summaries for record_id in s.past_retention]


ROW_HASH = "row_hash"  # records.parquet: what `update` compares to find the changed records


def record_keys(frame: pd.DataFrame) -> pd.Index:
    """(source, record_id) of each row as one string, for finding a record again in another run."""
    return pd.Index(frame["source"].astype(str).str.cat(frame["record_id"].astype(str), sep="\x1f"))


def _source_settings(config: Config, name: str) -> str:
    """A source's settings that change how its values read (fields, formats, id), without its
    path: tonight's file under a new name holds the same records (and a database source's
    `sql`: a table moved to a new server does too; the values themselves are hashed)."""
    # Retention says which records are read, not how they read: a record kept reads the same.
    spec = config.sources[name].model_dump(mode="json", exclude={"path", "sql", "sheet", "encoding", "retention",
                                                                  "delimiter", "header_row"})
    return json.dumps(spec, sort_keys=True, default=str)


def _arrow_text(values: pd.Series, rows: np.ndarray) -> "pa.Array":
    """The text at `rows` as an Arrow array: taken from Arrow-backed text as it is, made from
    Python strings otherwise."""
    import pyarrow as pa

    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        held = pa.array(values.array)  # no copy: the column's own Arrow data
        return held.take(pa.array(rows)).cast(pa.string())
    return pa.array(values.to_numpy(dtype=object)[rows], type=pa.string(), from_pandas=True)


def row_hashes(raw: pd.DataFrame, config: Config) -> np.ndarray:
    """A 64-bit hash of each raw record's mapped values and its source's settings (row-aligned
    with `raw`): a record whose hash is unchanged reads exactly as it did. Only the fields its
    own source maps count, so a field another source starts mapping changes nobody's hash.

    DuckDB hashes the values, handed over as Arrow text: at a million records 0.7 s, where
    pandas' row hashing of object columns takes 5 s. (A new DuckDB may hash differently: the
    next update then finds every record changed, and standardises all of them once.)"""
    import hashlib

    import pyarrow as pa

    from residentview.memory import duckdb_connect

    out = np.zeros(len(raw), dtype=np.uint64)
    sources = raw["source"].to_numpy(dtype=object)
    connection = duckdb_connect()
    try:
        for name in pd.unique(sources):
            rows = np.flatnonzero(sources == name)
            spec = config.sources.get(name)
            if spec is None:
                columns, settings = sorted(c for c in raw.columns if c not in ("source", "record_id")), ""
            else:
                wanted = [*spec.fields.mapped(), *map(identifier_column, spec.fields.identifiers)]
                columns, settings = sorted(c for c in wanted if c in raw.columns), _source_settings(config, name)
            salt = np.uint64(int.from_bytes(hashlib.sha256(settings.encode("utf-8")).digest()[:8], "little"))
            if not columns:
                out[rows] = salt
                continue
            values = pa.table({f"c{i}": _arrow_text(raw[column], rows) for i, column in enumerate(columns)})
            connection.register("source_values", values)
            hashed = connection.execute(f"SELECT hash({', '.join(values.column_names)}) AS h FROM source_values")
            out[rows] = hashed.fetchnumpy()["h"].astype(np.uint64) ^ salt
            connection.unregister("source_values")
    finally:
        connection.close()
    return out

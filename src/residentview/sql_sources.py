"""Stage 1, from a database: a source's `sql: {url, query | table}` (CONTRACT §9) read in chunks.

Gives `sources.read_source` what a file gives it: one column per column the config names, every
value as text (a number as its digits, a date as YYYY-MM-DD, blanks as missing), so a table
reads as its CSV export would. A server-side cursor streams the rows: a million-row table
never sits in the driver's buffers as well as here.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Callable, Optional, Sequence

import pandas as pd

from residentview import interrupts
from residentview.config import SqlSource
from residentview.databases import connected, create_engine, describe, reason, require_sqlalchemy
from residentview.errors import DataError

log = logging.getLogger(__name__)


def label(spec: SqlSource) -> str:
    """How messages and the validate summary name a database source: where it reads from."""
    what = f"table {spec.table}" if spec.table is not None else "query"
    return f"{describe(spec.url)} ({what})"


def audit_input(spec: SqlSource) -> dict:
    """The audit log's note of what a database source read: the database, and the table or a
    digest of the query (the rows themselves are in records.parquet, by their hashes)."""
    read = {"table": spec.table} if spec.table is not None else {
        "query_sha256": hashlib.sha256(spec.query.encode("utf-8")).hexdigest()}
    return {"database": describe(spec.url), **read}


def _split_table(table: str) -> tuple[Optional[str], str]:
    """`schema.name` -> (schema, name); a bare name has no schema (the database's default)."""
    schema, dot, name = table.strip().rpartition(".")
    return (schema or None) if dot else None, name


def _table_select(connection, spec: SqlSource, where: str, columns: Sequence[str]):
    """SELECT the wanted columns of the table (quoted by the dialect) once they are known to be
    there, ordered by the id; a missing table or column is the same one-line error a file gives."""
    import sqlalchemy as sa

    from residentview.sources import _check_columns

    schema, name = _split_table(spec.table)
    inspector = sa.inspect(connection)
    try:
        header = [c["name"] for c in inspector.get_columns(name, schema=schema)]
    except sa.exc.NoSuchTableError:
        header = []
    if not header:
        known = sorted([*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)])
        shown = ", ".join(known[:30]) + (f" (and {len(known) - 30} more)" if len(known) > 30 else "")
        raise DataError(f"{where}: table {spec.table!r} not found; "
                        f"{'the schema has: ' + shown if known else 'the schema has no tables or views'}")
    _check_columns(where, header, columns, holder="the table has")
    # In the order of the id (`SourceConfig.columns()` puts it first): a table has no order of its
    # own, and two runs on the same rows should read them alike, as they would a file.
    return (sa.select(*[sa.column(c) for c in columns]).select_from(sa.table(name, schema=schema))
            .order_by(sa.column(columns[0])))


def read_sql_source(spec: SqlSource, name: str, columns: Sequence[str],
                    progress: Optional[Callable[[str], None]] = None) -> tuple[pd.DataFrame, str]:
    """The `columns` of source `name`'s rows as text (string columns, <NA> where missing or
    blank), read `spec.chunk_size` rows at a time; and the source's label for messages.
    `progress`, when given, is told the rows read so far after each chunk."""
    from residentview.sources import TEXT, _check_columns, _text

    where = f"{label(spec)}: source {name}"
    sa = require_sqlalchemy(where)  # or a one-line error naming the extra
    engine = create_engine(spec.url, where)
    parts: list[pd.DataFrame] = []
    try:
        with connected(engine, spec.url, where) as connection:
            try:
                if spec.table is not None:
                    statement = _table_select(connection, spec, where, columns)
                else:
                    statement = sa.text(spec.query)
                streaming = connection.execution_options(stream_results=True, max_row_buffer=spec.chunk_size)
                result = streaming.execute(statement)
                if not result.returns_rows:
                    raise DataError(f"{where}: the query returns no rows (is it a SELECT?)")
                header = list(result.keys())
                _check_columns(where, header, columns, holder="the query returns")
                positions = [header.index(c) for c in columns]
                n_rows = 0
                for rows in result.partitions(spec.chunk_size):
                    interrupts.check()
                    # object columns: a driver's ints, dates and decimals stay themselves until
                    # made text (pandas would make an int column with a gap into floats)
                    values = list(zip(*rows))
                    parts.append(pd.DataFrame({column: _text(pd.Series(values[i], dtype=object))
                                               for column, i in zip(columns, positions)}))
                    n_rows += len(rows)
                    if progress is not None:
                        progress(f"reading {name}: {n_rows:,} rows")
                    log.debug("%s: %d rows read", name, n_rows)
            except sa.exc.DBAPIError as exc:
                raise DataError(f"{where}: the database refused the query ({reason(exc)})") from None
    finally:
        engine.dispose()
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=TEXT) for c in columns}), label(spec)
    return pd.concat(parts, ignore_index=True), label(spec)

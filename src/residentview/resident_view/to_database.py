"""The resident view written into a council database (`output: {url, schema}`), beside the files,
so other systems query it where they query everything else.

The tables are the files' (`view_tables`: residents, resident_links, households, id_changes,
addresses, events, data_quality), replaced whole inside one transaction: another system sees
the previous run's tables until the commit, then this run's, never a mix. A table whose columns
are unchanged is emptied and filled again (its grants, and views built on it, stay); one whose
columns changed is dropped and created anew. List columns (`sources`, `other_names`,
`resident_ids` …) are JSON arrays as text, which every database can hold and most can query
(PostgreSQL: ``sources::jsonb ? 'council_tax'``).

All or nothing with the files (`LinkResult.write`): the rows go in while the files are still
staged, and the transaction commits only once every file is in place; a failure before that
rolls the database back and leaves the files as they were, and a failed commit puts the previous
files back (`outputs.staged_output`'s `commit`).
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack, contextmanager
from typing import Iterator, Optional, Union

import pandas as pd
import pyarrow as pa

from residentview import interrupts
from residentview.config import OutputConfig
from residentview.databases import check_connection, connected, create_engine, describe, reason
from residentview.errors import DataError
from residentview.resident_view.database import as_arrow_table

log = logging.getLogger(__name__)

BATCH_ROWS = 10_000  # rows per INSERT batch: memory stays flat at a million residents


def label(target: OutputConfig) -> str:
    schema = f", schema {target.db_schema}" if target.db_schema else ""
    return f"output database {describe(target.url)}{schema}"


def check_output_database(target: Optional[OutputConfig]) -> None:
    """Before a run: can the database the view goes to be reached? Saves finding out after linking."""
    if target is not None:
        check_connection(target.url, label(target))


def _sql_type(kind: pa.DataType):
    import sqlalchemy as sa

    if pa.types.is_dictionary(kind):
        return _sql_type(kind.value_type)
    if pa.types.is_boolean(kind):
        return sa.Boolean()
    if pa.types.is_integer(kind):
        return sa.BigInteger()
    if pa.types.is_floating(kind):
        return sa.Float(53)
    if pa.types.is_timestamp(kind):
        return sa.DateTime(timezone=kind.tz is not None)
    if pa.types.is_date(kind):
        return sa.Date()
    return sa.Text()  # text, lists and mappings (as JSON), and columns with no value yet


def _is_json(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_struct(kind) or pa.types.is_map(kind)


class _Writer:
    """One connection and one transaction to the database the view goes to."""

    def __init__(self, target: OutputConfig):
        self.target = target
        self.where = label(target)
        self._stack = ExitStack()
        engine = create_engine(target.url, self.where)
        self._stack.callback(engine.dispose)
        try:
            self.connection = self._stack.enter_context(connected(engine, target.url, self.where))
            self.transaction = self.connection.begin()
        except BaseException:
            self._stack.close()
            raise

    def write(self, tables: dict[str, Union[pd.DataFrame, pa.Table]]) -> None:
        import sqlalchemy as sa

        # psycopg warns as it abandons a batch the database refused: the error below says it all
        driver_log = logging.getLogger("psycopg")
        level = driver_log.level
        driver_log.setLevel(logging.ERROR)
        try:
            self._make_schema()
            for name, frame in tables.items():
                arrow = frame if isinstance(frame, pa.Table) else as_arrow_table(frame)
                self._replace(name, arrow)
        except sa.exc.DBAPIError as exc:
            raise DataError(f"{self.where}: cannot write the resident view ({reason(exc)}); "
                            "nothing was changed there") from None
        finally:
            driver_log.setLevel(level)

    def _make_schema(self) -> None:
        import sqlalchemy as sa

        schema = self.target.db_schema
        if schema and not sa.inspect(self.connection).has_schema(schema):
            self.connection.execute(sa.schema.CreateSchema(schema))

    def _replace(self, name: str, arrow: pa.Table) -> None:
        import sqlalchemy as sa

        schema = self.target.db_schema
        table = sa.Table(name, sa.MetaData(schema=schema),
                         *[sa.Column(f.name, _sql_type(f.type)) for f in arrow.schema])
        inspector = sa.inspect(self.connection)
        if inspector.has_table(name, schema=schema):
            held = {c["name"]: c["type"] for c in inspector.get_columns(name, schema=schema)}
            same = list(held) == [c.name for c in table.columns] and all(
                held[c.name]._type_affinity is c.type._type_affinity for c in table.columns)
            if same:
                self.connection.execute(table.delete())
            else:
                table.drop(self.connection)
                table.create(self.connection)
        else:
            table.create(self.connection)
        as_json = [f.name for f in arrow.schema if _is_json(f.type)]
        insert = table.insert()
        for batch in arrow.to_batches(max_chunksize=BATCH_ROWS):
            interrupts.check()
            rows = batch.to_pylist()
            for row in rows:
                for column in as_json:
                    if row[column] is not None:
                        row[column] = json.dumps(row[column], default=str)
            if rows:
                self.connection.execute(insert, rows)
        log.debug("%s: %s written, %d rows", self.where, name, arrow.num_rows)

    def commit(self) -> None:
        import sqlalchemy as sa

        try:
            self.transaction.commit()
        except sa.exc.DBAPIError as exc:
            raise DataError(f"{self.where}: the database refused to commit the resident view ({reason(exc)}); "
                            "nothing was changed there") from None
        log.info("%s: the resident view's tables written", self.where)

    def close(self) -> None:
        """Roll back whatever was not committed, and leave."""
        try:
            if self.transaction.is_active:
                self.transaction.rollback()
        finally:
            self._stack.close()


class _NoDatabase:
    """The config names no database: writing the view there does nothing."""

    def write(self, tables) -> None:
        pass

    def commit(self) -> None:
        pass


@contextmanager
def database_output(target: Optional[OutputConfig]) -> Iterator[Union[_Writer, _NoDatabase]]:
    """Yields `write(tables)` (inside one transaction) and `commit()`; whatever is not committed
    when the block ends is rolled back. With no database configured, both do nothing."""
    if target is None:
        yield _NoDatabase()
        return
    writer = _Writer(target)
    try:
        yield writer
    finally:
        writer.close()

"""`resident_view.duckdb`: the run's tables in one DuckDB file, for analysts who prefer SQL.

    duckdb resident_view.duckdb "SELECT household_id, size FROM households ORDER BY size DESC"

List columns (sources, other_names, addresses, resident_ids) are DuckDB lists (VARCHAR[]).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

DATABASE_FILE = "resident_view.duckdb"


def write_tables(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Create a DuckDB file at `path` holding one table per frame (replacing any file there)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        for name, frame in tables.items():
            # Arrow keeps list columns as lists and empty frames typed, where pandas' object columns cannot.
            arrow = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            con.register("incoming", arrow)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM incoming')
            con.unregister("incoming")
    return path

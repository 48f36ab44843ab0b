"""Small helpers shared by test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path


def snapshot(folder: Path) -> dict:
    """Every file under `folder` by relative path, with its bytes: equal snapshots, same folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def readable_text(folder: Path) -> dict:
    """Every file under `folder` as text to search for values that must not be there: a Parquet
    file's cells and schema (its bytes are compressed), a DuckDB file's tables, any other file's
    bytes decoded as UTF-8."""
    import duckdb
    import pyarrow.parquet as pq

    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            cells = table.to_pandas().astype(str).to_csv(index=False)
            texts[name] = f"{table.schema}\n{table.schema.metadata}\n{cells}"
        elif path.suffix == ".duckdb":
            with duckdb.connect(str(path), read_only=True) as con:
                tables = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
                texts[name] = "\n".join(con.execute(f'SELECT * FROM "{t}"').df().astype(str).to_csv(index=False)
                                        for t in tables)
        else:
            texts[name] = path.read_bytes().decode("utf-8", errors="replace")
    return texts

"""Council databases (CONTRACT §9, issue 21): sources read from a real PostgreSQL (`sql: {url,
query | table}`), and the resident view written back to it (`output: {folder, url, schema}`),
all or nothing with the files. The server is a throwaway cluster (postgres_cluster.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from helpers import snapshot
from postgres_cluster import start_cluster

from residentview.cli import main
from residentview.config import load_config
from residentview.databases import PASSWORD_VARIABLE
from residentview.errors import ConfigError, DataError
from residentview.resident_view import view_tables
from residentview.sources import read_sources, row_hashes

pytest.importorskip("sqlalchemy", reason="the 'sql' extra is not installed")


@pytest.fixture(scope="session")
def pg():
    try:
        cluster = start_cluster()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; `make test` installs it")
        pytest.skip(f"{exc}; `make test` installs it")
    yield cluster
    cluster.stop()


@pytest.fixture
def password(pg, monkeypatch):
    """The password as a scheduled run would have it: in the environment, not the config."""
    monkeypatch.setenv(PASSWORD_VARIABLE, pg.password)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return pg.password


def make_table(pg, name: str, frame: pd.DataFrame, types: dict | None = None) -> None:
    """(Re)create table `name` holding `frame`; columns are text unless `types` says otherwise."""
    types = types or {}
    columns = ", ".join(f'"{c}" {types.get(c, "text")}' for c in frame.columns)
    with pg.connect() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
        connection.execute(f"CREATE TABLE {name} ({columns})")
        rows = [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]
        if rows:
            marks = ", ".join(["%s"] * len(frame.columns))
            connection.cursor().executemany(f"INSERT INTO {name} VALUES ({marks})", rows)


def sql_config(pg, sql: dict, fields: dict | None = None, id: str = "ref", **extra) -> dict:
    return {"name": "db", "sources": {"tenancies": {
        "sql": {"url": pg.url(), **sql}, "id": id,
        "fields": fields or {"first_name": "forename", "last_name": "surname"}}}, **extra}


def run(*args) -> "CliRunner.Result":
    return CliRunner().invoke(main, [str(a) for a in args])


def write(folder, config: dict):
    path = folder / "council.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


PEOPLE = pd.DataFrame({
    "ref": ["0007", "0008", "0009", "0010", "0011"],
    "forename": ["Mary", "  Ahmed ", "", None, "Zoe"],
    "surname": ["Smith", "Khan", "Jones", "Nowak", "Shah"],
})


# Reading ----------------------------------------------------------------------------------------

def test_a_table_reads_every_value_as_text_as_a_file_would(pg, password):
    typed = pd.DataFrame({
        "ref": [7, 8, 9], "forename": ["Mary", "  Ahmed ", ""], "surname": ["Smith", None, "Jones"],
        "dob": [pd.Timestamp("1980-02-03").date(), None, pd.Timestamp("2001-12-31").date()],
        "uprn": pd.Series([100023336956, 9007199254740993, None], dtype=object), "seen": [pd.Timestamp("2024-05-01 00:00"), None,
                                                               pd.Timestamp("2024-05-01 13:30")],
        "postcode": ["SW1A 1AA", "sw1a1aa", "  "],
    })
    make_table(pg, "typed_people", typed,
               {"ref": "integer", "dob": "date", "uprn": "bigint", "seen": "timestamp"})
    config = sql_config(pg, {"table": "typed_people"}, {
        "first_name": "forename", "last_name": "surname", "date_of_birth": "dob", "uprn": "uprn",
        "record_date": "seen", "postcode": "postcode"})
    raw, summaries = read_sources(load_config(config))
    assert raw["record_id"].tolist() == ["7", "8", "9"]
    assert raw["first_name"].tolist() == ["Mary", "Ahmed", None]
    assert raw["last_name"].tolist() == ["Smith", None, "Jones"]
    assert raw["date_of_birth"].tolist() == ["1980-02-03", None, "2001-12-31"]
    # a bigint past 2**53 keeps every digit: never a float on the way
    assert raw["uprn"].tolist() == ["100023336956", "9007199254740993", None]
    assert raw["record_date"].tolist() == ["2024-05-01", None, "2024-05-01 13:30:00"]
    assert raw["postcode"].tolist() == ["SW1A 1AA", "sw1a1aa", None]
    assert summaries[0].n_records == 3
    assert summaries[0].path == f"{pg.url()} (table typed_people)"


def test_a_query_is_read_in_chunks_and_says_how_far_it_has_got(pg, password):
    make_table(pg, "people", PEOPLE)
    config = sql_config(pg, {"query": "SELECT ref, forename, surname FROM people ORDER BY ref", "chunk_size": 2})
    told = []
    raw, _ = read_sources(load_config(config), progress=told.append)
    assert raw["record_id"].tolist() == ["0007", "0008", "0009", "0010", "0011"]  # leading zeros kept
    assert raw["first_name"].tolist() == ["Mary", "Ahmed", None, None, "Zoe"]
    assert told == ["reading tenancies", "reading tenancies: 2 rows", "reading tenancies: 4 rows",
                    "reading tenancies: 5 rows"]


def test_a_table_in_another_schema_is_named_schema_dot_table(pg, password):
    with pg.connect() as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS housing")
    make_table(pg, "housing.tenants", PEOPLE.head(2))
    raw, _ = read_sources(load_config(sql_config(pg, {"table": "housing.tenants"})))
    assert raw["record_id"].tolist() == ["0007", "0008"]


def test_a_missing_column_names_the_columns_there_are(pg, password):
    make_table(pg, "people", PEOPLE)
    config = sql_config(pg, {"table": "people"}, {"first_name": "forename", "last_name": "family_name"})
    with pytest.raises(DataError) as table_error:
        read_sources(load_config(config))
    assert str(table_error.value) == (f"{pg.url()} (table people): source tenancies: column(s) 'family_name' not "
                                      "found; the table has: 'ref', 'forename', 'surname'")
    config = sql_config(pg, {"query": "SELECT ref, forename FROM people"})
    with pytest.raises(DataError, match=r"\(query\): source tenancies: column\(s\) 'surname' not found; "
                                        r"the query returns: 'ref', 'forename'$"):
        read_sources(load_config(config))


def test_a_missing_table_lists_the_tables_there_are(pg, password):
    make_table(pg, "people", PEOPLE)
    with pytest.raises(DataError, match=r"source tenancies: table 'peeple' not found; the schema has: .*\bpeople\b"):
        read_sources(load_config(sql_config(pg, {"table": "peeple"})))


def test_duplicate_and_blank_ids_are_the_same_errors_as_in_a_file(pg, password):
    make_table(pg, "people", pd.DataFrame({"ref": ["1", "1", "2"], "forename": ["A", "B", "C"], "surname": "X"}))
    with pytest.raises(DataError, match=r"source tenancies: 1 duplicate id\(s\), e.g. 1; expected each id once$"):
        read_sources(load_config(sql_config(pg, {"table": "people"})))
    make_table(pg, "people", pd.DataFrame({"ref": ["1", " ", "2"], "forename": ["A", "B", "C"], "surname": "X"}))
    with pytest.raises(DataError, match=r"1 record\(s\) with a blank id \(data row\(s\) 1\)"):
        read_sources(load_config(sql_config(pg, {"table": "people"})))


def test_a_query_the_database_refuses_is_one_line(pg, password, tmp_path):
    error = one_line_error(run("validate", write(tmp_path, sql_config(pg, {"query": "SELEC ref FROM people"}))))
    assert "source tenancies: the database refused the query (syntax error at or near \"SELEC\")" in error


def test_the_drivers_own_password_variable_is_used_too(pg, monkeypatch):
    make_table(pg, "people", PEOPLE)
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    monkeypatch.setenv("PGPASSWORD", pg.password)
    raw, _ = read_sources(load_config(sql_config(pg, {"table": "people"})))
    assert len(raw) == 5


def test_a_records_hash_is_the_same_read_from_a_table_or_from_its_csv_export(pg, password, tmp_path):
    """`update` compares row hashes: moving a source from a file to the database it was exported
    from must not make every record look changed; changing one row changes that row's hash only."""
    make_table(pg, "people", PEOPLE)
    from_table = load_config(sql_config(pg, {"table": "people"}))
    PEOPLE.to_csv(tmp_path / "people.csv", index=False)
    from_file = load_config({"name": "db", "sources": {"tenancies": {
        "path": "people.csv", "id": "ref", "fields": {"first_name": "forename", "last_name": "surname"}}}},
        base_dir=tmp_path)
    table_raw, _ = read_sources(from_table)
    file_raw, _ = read_sources(from_file)
    before = row_hashes(table_raw, from_table)
    assert before.tolist() == row_hashes(file_raw, from_file).tolist()
    with pg.connect() as connection:
        connection.execute("UPDATE people SET surname = 'Smyth' WHERE ref = '0007'")
    after = row_hashes(read_sources(from_table)[0], from_table)
    assert (after != before).tolist() == [True, False, False, False, False]


# Credentials and connections --------------------------------------------------------------------

def test_a_wrong_password_is_one_line_naming_source_and_host_and_never_the_password(pg, monkeypatch, tmp_path):
    make_table(pg, "people", PEOPLE)
    monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-Password-42")
    result = run("validate", write(tmp_path, sql_config(pg, {"table": "people"})))
    error = one_line_error(result)
    assert error.startswith(f"error: {pg.url()} (table people): source tenancies: cannot connect to the database on "
                            "127.0.0.1 (")
    assert "password authentication failed" in error
    assert "not-the-Password-42" not in result.output


def test_an_unreachable_database_is_one_line_naming_the_host(pg, password, tmp_path):
    config = sql_config(pg, {"table": "people"})
    config["sources"]["tenancies"]["sql"]["url"] = "postgresql://rv_admin@127.0.0.1:9/council"  # discard port
    error = one_line_error(run("validate", write(tmp_path, config)))
    assert "source tenancies: cannot connect to the database on 127.0.0.1 (connection failed:" in error
    assert pg.password not in error


def test_a_password_in_the_config_is_refused_and_not_repeated(pg, tmp_path):
    for url in ("postgresql://rv_admin:hunter2secret@127.0.0.1/council",
                "mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BSERVER%3Ddb%3BPWD%3Dhunter2secret"):
        config = sql_config(pg, {"table": "people"})
        config["sources"]["tenancies"]["sql"]["url"] = url
        result = run("validate", write(tmp_path, config))
        error = one_line_error(result)
        assert error.endswith(f"sources.tenancies.sql.url: holds a password; remove it from the config and set "
                              f"{PASSWORD_VARIABLE} (or the driver's own, e.g. PGPASSWORD or ~/.pgpass) where "
                              "residentview runs")
        assert "hunter2secret" not in result.output
    config = sql_config(pg, {"table": "people"})
    config["output"] = {"url": "postgresql://rv:hunter2secret@db/council", "schema": "rv"}
    with pytest.raises(ConfigError, match=r"output.url: holds a password") as refused:
        load_config(config)
    assert "hunter2secret" not in str(refused.value)


@pytest.mark.parametrize("source, message", [
    ({"path": "a.csv", "sql": {"url": "postgresql://h/db", "table": "t"}},
     "sources.tenancies: a source needs either path (a file) or sql (a database); found both"),
    ({}, "sources.tenancies: a source needs either path (a file) or sql (a database); found neither"),
    ({"sql": {"url": "postgresql://h/db"}},
     "sources.tenancies.sql: needs exactly one of query (a SELECT) or table (a table or view); found neither"),
    ({"sql": {"url": "postgresql://h/db", "table": "t", "query": "SELECT 1"}},
     "sources.tenancies.sql: needs exactly one of query (a SELECT) or table (a table or view); found both"),
    ({"sql": "postgresql://u:pw@h/db"},
     "sources.tenancies.sql: must be a mapping {url: ..., query: ...} or {url: ..., table: ...}"),
    ({"sql": {"url": "postgresql://h/db", "table": "t"}, "encoding": "cp1252"},
     "sources.tenancies: 'encoding' applies to files only; this source reads a database (sql)"),
    ({"sql": {"url": "housing-db", "table": "t"}},
     "sources.tenancies.sql.url: is not a database URL; expected e.g. postgresql://user@host/database"),
    ({"sql": {"url": "postgresql://h/db", "tabel": "t"}},
     "sources.tenancies.sql.tabel: unknown key 'tabel' (did you mean 'table'?); expected one of: url, query, "
     "table, chunk_size"),
])
def test_a_source_has_either_a_path_or_sql_and_says_which_is_wrong(source, message):
    config = {"name": "db", "sources": {"tenancies": {"id": "ref", "fields": {"first_name": "f"}, **source}}}
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert str(refused.value) == f"<config>: {message}"


@pytest.mark.parametrize("output, message", [
    ("postgresql://u:pw@h/db",
     "output: is a database URL; expected a folder, or {folder: ..., url: ..., schema: ..., spark_path: ...}"),
    ({"schema": "rv"}, "output: schema needs url (the database to write the resident view to)"),
    ({"folder": "out", "shema": "rv"},
     "output.shema: unknown key 'shema' (did you mean 'schema'?); expected one of: folder, url, schema, spark_path"),
])
def test_output_is_a_folder_or_a_mapping_with_a_database(output, message):
    config = {"name": "db", "sources": {"t": {"path": "a.csv", "id": "ref", "fields": {"first_name": "f"}}},
              "output": output}
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert str(refused.value) == f"<config>: {message}"


def test_output_as_a_folder_still_reads_as_before(tmp_path):
    config = {"name": "db", "sources": {"t": {"path": "a.csv", "id": "ref", "fields": {"first_name": "f"}}}}
    assert load_config({**config, "output": "out/"}, base_dir=tmp_path).output_dir() == tmp_path / "out"
    both = load_config({**config, "output": {"folder": "out/", "url": "postgresql://rv@db/council", "schema": "rv"}},
                       base_dir=tmp_path)
    assert both.output_dir() == tmp_path / "out"
    assert (both.output_database.url, both.output_database.db_schema) == ("postgresql://rv@db/council", "rv")
    assert load_config(config, base_dir=tmp_path).output_database is None


def test_without_the_sql_extra_a_database_source_names_the_extra(pg, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # import sqlalchemy now fails
    with pytest.raises(ConfigError, match=r"source tenancies: databases need the 'sql' extra: "
                                          r"pip install 'residentview\[sql\]'$"):
        read_sources(load_config(sql_config(pg, {"table": "people"})))


# Writing the resident view ----------------------------------------------------------------------

TABLES = ("residents", "resident_links", "households", "id_changes", "addresses", "events", "data_quality")


@pytest.fixture(scope="module")
def council(pg, tmp_path_factory):
    """Synthetic extracts whose electoral register lives in the database, linked once by the CLI
    into a folder and the database's schema `resident_view`."""
    from residentview.synthetic import generate

    folder = tmp_path_factory.mktemp("council")
    written = generate(people=150, out=folder / "extracts", seed=5)
    config = yaml.safe_load(written.config_path.read_text(encoding="utf-8"))
    register = config["sources"]["electoral_register"]
    frame = pd.read_csv(folder / "extracts" / register.pop("path"), dtype=str, keep_default_na=False,
                        encoding=register.pop("encoding"))
    make_table(pg, "electoral_register", frame)
    register["sql"] = {"url": pg.url(), "table": "electoral_register", "chunk_size": 50}
    config["output"] = {"folder": str(folder / "out"), "url": pg.url(), "schema": "resident_view"}
    path = written.config_path.with_name("council_db.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSWORD_VARIABLE, pg.password)
        result = run("link", path)
    assert result.exit_code == 0, result.output
    return path, folder / "out", len(frame)


def counts(pg, schema: str = "resident_view") -> dict:
    with pg.connect() as connection:
        return {t: connection.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0] for t in TABLES}


def row_versions(pg, schema: str = "resident_view") -> dict:
    """Each table's rows by their creating transaction (xmin): equal, no row was rewritten."""
    with pg.connect() as connection:
        return {t: connection.execute(f"SELECT xmin::text FROM {schema}.{t} ORDER BY 1").fetchall() for t in TABLES}


def test_link_writes_every_table_of_the_view_into_the_schema(pg, council):
    _, out, n_register = council
    assert counts(pg) == {t: pq.read_metadata(out / f"{t}.parquet").num_rows for t in TABLES}
    links = pd.read_parquet(out / "resident_links.parquet")
    assert (links["source"] == "electoral_register").sum() == n_register  # read from the database


def test_list_columns_are_json_arrays_and_types_are_kept(pg, council):
    _, out, _ = council
    residents = pd.read_parquet(out / "residents.parquet").set_index("resident_id")
    with pg.connect() as connection:
        rows = connection.execute("SELECT resident_id, sources, n_records FROM resident_view.residents").fetchall()
        kinds = dict(connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'resident_view' AND table_name = 'resident_links'").fetchall())
    assert len(rows) == len(residents)
    for resident_id, sources, n_records in rows:
        assert json.loads(sources) == list(residents.at[resident_id, "sources"])
        assert n_records == residents.at[resident_id, "n_records"]
    assert kinds["match_probability"] == "double precision" and kinds["record_id"] == "text"


def _memberships(out) -> set:
    """The residents of an output folder, as the sets of their records' (source, record_id)."""
    links = pd.read_parquet(out / "resident_links.parquet")
    keys = links["source"] + ":" + links["record_id"].astype(str)
    return {frozenset(members) for members in keys.groupby(links["resident_id"]).agg(set)}


def test_spark_reads_the_database_source_and_writes_a_schema_as_duckdb_does(pg, council, tmp_path):
    """engine: spark with a source in the database: read by Spark's workers, which take the
    password from the environment they inherit (the config never holds it), and the view written
    to a schema of its own, all of it the residents of the DuckDB run."""
    import shutil
    import subprocess

    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'residentview[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: PySpark needs Java 17 or later")
    path, out, n_register = council
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["engine"] = "spark"
    config["output"] = {"folder": str(tmp_path / "out"), "url": pg.url(), "schema": "spark_view"}
    spark_config = path.with_name("council_spark.yaml")  # beside the extracts it names
    spark_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    env[PASSWORD_VARIABLE] = pg.password
    done = subprocess.run([str(Path(sys.executable).with_name("residentview")), "link", str(spark_config)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert counts(pg, "spark_view") == {t: pq.read_metadata(tmp_path / "out" / f"{t}.parquet").num_rows
                                        for t in TABLES}
    links = pd.read_parquet(tmp_path / "out" / "resident_links.parquet")
    assert (links["source"] == "electoral_register").sum() == n_register  # read from the database
    assert _memberships(tmp_path / "out") == _memberships(out)


def test_update_reads_the_database_source_again_and_rewrites_the_tables(pg, council, password):
    path, out, _ = council
    before = row_versions(pg)
    result = run("update", path)
    assert result.exit_code == 0, result.output
    assert "0 new, 0 changed, 0 removed" in result.output  # the table's rows hash as they did
    assert counts(pg) == {t: pq.read_metadata(out / f"{t}.parquet").num_rows for t in TABLES}
    assert row_versions(pg)["residents"] != before["residents"]  # written again, in a later transaction


def test_a_database_that_refuses_a_table_midway_leaves_every_table_and_file_as_it_was(pg, council, password):
    path, out, _ = council
    files, before = snapshot(out), row_versions(pg)
    with pg.connect() as connection:  # data_quality is written last: every other table was replaced by then
        connection.execute("ALTER TABLE resident_view.data_quality ADD CONSTRAINT refuse_rows CHECK (false) NOT VALID")
    try:
        result = run("link", path)
    finally:
        with pg.connect() as connection:
            connection.execute("ALTER TABLE resident_view.data_quality DROP CONSTRAINT refuse_rows")
    error = one_line_error(result)
    assert error.startswith(f"error: output database {pg.url()}, schema resident_view: cannot write the resident "
                            'view (new row for relation "data_quality" violates check constraint "refuse_rows")')
    assert error.endswith("nothing was changed there")
    assert row_versions(pg) == before
    assert snapshot(out) == files


def test_a_failed_commit_puts_the_previous_files_back(pg, council, password, monkeypatch):
    import residentview as rv
    from residentview.resident_view import to_database

    path, out, _ = council
    result = rv.link(path)
    files, before = snapshot(out), row_versions(pg)
    moved_in = []

    def refuse(writer):
        moved_in.append((out / "run.json").read_bytes() != files["run.json"])  # this run's files are in place
        raise DataError("commit refused")

    monkeypatch.setattr(to_database._Writer, "commit", refuse)
    with pytest.raises(DataError, match="commit refused"):
        result.write(out)
    assert moved_in == [True]
    assert snapshot(out) == files
    assert row_versions(pg) == before


def test_validate_connects_to_the_output_database(pg, council, password):
    path, _, _ = council
    result = run("validate", path)
    assert result.exit_code == 0, result.output
    assert f"output database {pg.url()}, schema resident_view: connected" in result.stdout


def test_a_new_schema_is_made_and_tables_with_other_columns_are_replaced(pg, password, tmp_path):
    from residentview.config import OutputConfig
    from residentview.resident_view.to_database import database_output

    target = OutputConfig(url=pg.url(), schema="fresh_schema")
    with database_output(target) as database:
        database.write({"residents": pd.DataFrame({"resident_id": ["R1"], "sources": [["a", "b"]]})})
        database.commit()
    with database_output(target) as database:
        database.write({"residents": pd.DataFrame({"resident_id": ["R1", "R2"], "n_records": [1, 2]})})
        database.commit()
    with database_output(target) as database:  # not committed: rolled back
        database.write({"residents": pd.DataFrame({"resident_id": ["R9"], "n_records": [9]})})
    with pg.connect() as connection:
        rows = connection.execute("SELECT * FROM fresh_schema.residents ORDER BY 1").fetchall()
    assert rows == [("R1", 1), ("R2", 2)]

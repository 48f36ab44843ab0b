"""engine: spark (CONTRACT §9): the same pipeline on Spark in local mode gives the same residents
as DuckDB. Skipped, with the reason, where PySpark or Java is missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner
from helpers import snapshot

import residentview as rv
from residentview.synthetic import generate
from residentview.cli import main
from residentview.config import load_config
from residentview.errors import ConfigError

pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'residentview[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime: PySpark needs Java 17 or later", allow_module_level=True)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import this residentview
    session = (
        SparkSession.builder.master("local[2]").appName("residentview-tests")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))  # not the working directory
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def both_engines(spark, tmp_path_factory):
    """The synthetic demo council (100 people, five systems) linked on DuckDB and on Spark."""
    folder = tmp_path_factory.mktemp("demo")
    generate(people=100, out=folder)
    config = load_config(folder / "council.yaml")
    duckdb_run = rv.link(config, previous=None, progress=False)
    spark_run = rv.link(config.model_copy(update={"engine": "spark"}), previous=None, progress=False)
    return duckdb_run, spark_run


def _residents_by_record(result) -> pd.Series:
    """Each record's resident, as the set of its members' (source, record_id): ids aside."""
    links = result.links
    key = links["source"] + ":" + links["record_id"].astype(str)
    members = key.groupby(links["resident_id"]).agg(lambda s: tuple(sorted(s)))
    return pd.Series(links["resident_id"].map(members).to_numpy(), index=key).sort_index()


def test_spark_gives_every_record_the_same_resident_as_duckdb(both_engines):
    duckdb_run, spark_run = both_engines
    ours, theirs = _residents_by_record(duckdb_run), _residents_by_record(spark_run)
    assert list(ours.index) == list(theirs.index)
    share = float((ours == theirs).mean())
    assert share == 1.0, f"only {share:.2%} of records in identical residents"
    assert len(spark_run.residents) == len(duckdb_run.residents)


def test_spark_standardises_scores_and_models_as_duckdb(both_engines):
    duckdb_run, spark_run = both_engines
    # A missing value is None from one engine and NaN from the other: the same absence.
    def absent_as_none(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(absent_as_none(duckdb_run.records), absent_as_none(spark_run.records),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(duckdb_run.quality, spark_run.quality, check_dtype=False)
    assert duckdb_run.model == spark_run.model  # in DuckDB's SQL: `update` can reuse it
    pairs = duckdb_run.pairs.merge(spark_run.pairs, on=["unique_id_l", "unique_id_r"], how="outer",
                                   suffixes=("_duckdb", "_spark"), indicator=True)
    assert (pairs["_merge"] == "both").all() and len(pairs) == len(duckdb_run.pairs) > 0
    assert (pairs["match_weight_duckdb"] - pairs["match_weight_spark"]).abs().max() < 1e-9
    assert spark_run.diagnostics["engine"] == "spark"
    # The review pairs, chosen on Spark's side from the scores alone and then fetched whole:
    # the same pairs, in the same order, with every column DuckDB gives them.
    ours, theirs = duckdb_run.review_pairs, spark_run.review_pairs
    assert len(ours) > 0 and list(theirs.columns) == list(ours.columns)
    assert theirs[["unique_id_l", "unique_id_r"]].values.tolist() == ours[["unique_id_l", "unique_id_r"]].values.tolist()
    pd.testing.assert_frame_equal(absent_as_none(ours.drop(columns=["match_weight", "match_probability"])),
                                  absent_as_none(theirs.drop(columns=["match_weight", "match_probability"])),
                                  check_dtype=False, atol=1e-6)


def test_spark_makes_the_linking_table_and_sends_the_driver_only_samples_of_it(spark, both_engines, tmp_path):
    """The linking table made on Spark, the driver sent only the records its rule counts, its
    training sample and reviewers' labelled pairs read: `link`'s rules, model and scores, with a
    sample smaller than the records, with labels, and with a saved model that compares a field
    these records lack."""
    from residentview.engines.spark.frame import driver_ids, linking_on_spark
    from residentview.engines.spark.linkage import link_on_spark
    from residentview.engines.spark.resident_view import records_frame
    from residentview.linkage import link_records

    duckdb_run, _ = both_engines
    records = duckdb_run.records.drop(columns=["row_hash"])
    settings = duckdb_run.config.linkage.model_copy(update={"training_sample_size": 80})
    best = duckdb_run.pairs.nlargest(5, "match_weight")
    labels = best[["unique_id_l", "unique_id_r"]].assign(label=True)

    def same(ours, theirs):
        assert ours.model == theirs.model
        assert {k: v for k, v in theirs.diagnostics.items() if k != "engine"} == ours.diagnostics
        pairs = ours.pairs.merge(theirs.pairs, on=["unique_id_l", "unique_id_r"], how="outer", indicator=True)
        assert (pairs["_merge"] == "both").all() and len(pairs) > 0
        assert (pairs["match_weight_x"] - pairs["match_weight_y"]).abs().max() < 1e-9

    ours = link_records(records, settings, labels=labels)
    assert ours.diagnostics["training_sample"] == 80 and "learnt_from_decisions" in ours.diagnostics
    same(ours, link_on_spark(spark, records_frame(spark, records, list(records.columns)), settings, labels=labels))
    linking = linking_on_spark(records_frame(spark, records, list(records.columns)), settings)
    sent = driver_ids(linking, settings, None)
    assert len(sent) < len(linking.ids) and set(sent) >= set(linking.plan.sample_ids)

    saved = tmp_path / "model.json"
    saved.write_text(json.dumps(ours.model), encoding="utf-8")
    assert "nhs_number" in ours.model["comparisons"].__repr__()
    lacking = records.drop(columns=["nhs_number"])
    same(link_records(lacking, settings, saved),
         link_on_spark(spark, records_frame(spark, lacking, list(lacking.columns)), settings, saved))


@pytest.mark.parametrize("case", ["no person", "one person", "no sex, title or date of birth", "one source"])
def test_spark_links_odd_inputs_as_link_does(spark, both_engines, case):
    """Inputs with little to link: the linking table on Spark gives `link`'s answer (nothing to
    link, with the same note; or the same model and pairs from what there is)."""
    from residentview.engines.spark.linkage import link_on_spark
    from residentview.engines.spark.resident_view import records_frame
    from residentview.linkage import link_records

    duckdb_run, _ = both_engines
    records = duckdb_run.records.drop(columns=["row_hash"])
    if case == "no person":
        records = records.assign(is_person=False)
    elif case == "one person":
        records = records.assign(is_person=records["unique_id"] == records["unique_id"].min())
    elif case == "one source":
        records = records[records["source"] == records["source"].iloc[0]]
    else:
        records = records.drop(columns=[c for c in ("sex", "title", "date_of_birth") if c in records])
    settings = duckdb_run.config.linkage
    ours = link_records(records, settings)
    theirs = link_on_spark(spark, records_frame(spark, records, list(records.columns)), settings)
    assert ours.model == theirs.model
    assert {k: v for k, v in theirs.diagnostics.items() if k != "engine"} == ours.diagnostics
    key = ["unique_id_l", "unique_id_r"]
    pd.testing.assert_frame_equal(ours.pairs[key].reset_index(drop=True), theirs.pairs[key].reset_index(drop=True),
                                  check_dtype=False)
    assert (abs(ours.pairs["match_weight"].to_numpy() - theirs.pairs["match_weight"].to_numpy()) < 1e-9).all()
    if case in ("no person", "one person"):
        assert len(theirs.pairs) == 0 and "nothing to link" in theirs.diagnostics["note"]


def test_spark_clusters_each_component_as_clustering_all_at_once(spark, both_engines):
    from residentview.cluster import cluster_records
    from residentview.engines.spark.cluster import cluster_on_spark

    duckdb_run, _ = both_engines
    records, pairs = duckdb_run.records, duckdb_run.pairs
    # a reviewer's non-match inside a resident, and a match across two: both honoured alike
    joined = pairs[pairs["match_probability"] >= 0.95].iloc[0]
    apart = pd.DataFrame({"unique_id_l": [int(joined["unique_id_l"])], "unique_id_r": [int(joined["unique_id_r"])]})
    together = pd.DataFrame({"unique_id_l": [0], "unique_id_r": [int(records["unique_id"].max())]})
    whole = cluster_records(records, pairs, 0.95, together, apart)
    by_component = cluster_on_spark(spark, records, pairs, 0.95, together, apart)
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), by_component, check_dtype=False)
    assert whole.attrs == by_component.attrs
    # The records read where Spark keeps them, only each record's context sent from the driver:
    # Spark's types (lists as arrays, dates as timestamps) cluster alike.
    kept = spark.createDataFrame(records.astype({"row_hash": "int64"}))
    assert dict(kept.dtypes)["first_name_aliases"].startswith("array")
    read_there = cluster_on_spark(spark, records, pairs, 0.95, together, apart, on_spark=kept)
    pd.testing.assert_frame_equal(by_component, read_there)
    assert read_there.attrs == by_component.attrs


def _union_find_components(edges: list[tuple[int, int]]) -> dict[int, int]:
    """Each id in `edges` -> the lowest id of its component, by a plain union-find."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for left, right in edges:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {x: root(x) for x in parent}


def test_spark_connected_components_are_union_finds(spark):
    """Graphs of every awkward shape side by side, in one call: long chains whose ids run in
    random order, up and down; a cycle; a star around its largest id; random sparse graphs; a
    record linked only to itself."""
    import random

    from residentview.engines.spark.cluster import connected_components

    rng = random.Random(7)
    edges: list[tuple[int, int]] = []
    start = 0

    def ids(n: int) -> list[int]:
        nonlocal start
        start += n
        return list(range(start - n, start))

    chain = ids(300)
    rng.shuffle(chain)
    edges += list(zip(chain, chain[1:]))
    down = ids(60)[::-1]
    edges += list(zip(down, down[1:]))
    cycle = ids(40)
    edges += list(zip(cycle, cycle[1:] + cycle[:1]))
    star = ids(30)
    edges += [(star[-1], other) for other in star[:-1]]
    for _ in range(3):
        nodes = ids(120)
        edges += [tuple(rng.sample(nodes, 2)) for _ in range(110)]
    edges.append((ids(1)[0],) * 2)
    edges = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in edges]
    frame = spark.createDataFrame(pd.DataFrame(edges, columns=["l", "r"]))
    found = connected_components(spark, frame).toPandas()
    assert dict(zip(found["unique_id"], found["component"])) == _union_find_components(edges)
    assert found["unique_id"].is_unique


def test_spark_run_writes_the_outputs_link_writes(both_engines, tmp_path):
    _, spark_run = both_engines
    spark_run.write(tmp_path / "out")
    for name in ("resident_links.parquet", "residents.parquet", "households.parquet", "report.html", "model.json"):
        assert (tmp_path / "out" / name).is_file(), name
    links = pd.read_parquet(tmp_path / "out" / "resident_links.parquet")
    assert len(links) == len(spark_run.records) and links["resident_id"].notna().all()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _to_spark_path(run, lake: Path):
    """The run as if its config named `lake` as output.spark_path."""
    from dataclasses import replace

    from residentview.config import OutputConfig

    return replace(run, config=run.config.model_copy(update={"output": OutputConfig(spark_path=lake.as_uri())}))


def test_spark_path_holds_the_folders_parquet_files_and_run_json(both_engines, tmp_path):
    _, spark_run = both_engines
    _to_spark_path(spark_run, tmp_path / "lake").write(tmp_path / "out")
    written, lake = _files(tmp_path / "out"), _files(tmp_path / "lake")
    expected = {name for name in written if name.endswith(".parquet")} | {"run.json"}
    assert set(lake) == expected and "residents.parquet" in lake and "records.parquet" in lake
    assert all(lake[name] == written[name] for name in lake)  # the same bytes
    assert [p.name for p in (tmp_path / "lake").iterdir() if p.is_dir()] == []  # no staging left behind


@pytest.mark.parametrize("failing", ["a rename at the spark path", "the database's commit after it"])
def test_a_write_that_fails_leaves_the_spark_path_and_the_folder_as_they_were(both_engines, tmp_path, monkeypatch,
                                                                               failing):
    from residentview.engines.spark import outputs
    from residentview.errors import DataError
    from residentview.resident_view import to_database

    _, spark_run = both_engines
    lake, out = tmp_path / "lake", tmp_path / "out"
    _to_spark_path(spark_run, lake).write(out)
    before_lake, before_out = _files(lake), _files(out)
    later = _to_spark_path(spark_run, lake)
    later.run_timestamp = spark_run.run_timestamp + pd.Timedelta(days=1)  # a run.json of its own
    if failing.startswith("a rename"):
        rename, moved = outputs._SparkPath._rename, []

        def refused_third(self, source, target, name):
            if str(target.getParent().getName()) == "lake":
                moved.append(name)
                if len(moved) == 3:
                    raise DataError(f"output.spark_path: moving {name} into place was refused")
            rename(self, source, target, name)

        monkeypatch.setattr(outputs._SparkPath, "_rename", refused_third)
    else:
        def refused(self):
            raise DataError("output database: the database refused to commit")

        monkeypatch.setattr(to_database._NoDatabase, "commit", refused)
    with pytest.raises(DataError, match="refused"):
        later.write(out)
    assert _files(lake) == before_lake and _files(out) == before_out
    assert [p.name for p in lake.iterdir() if p.is_dir()] == []


def test_a_spark_path_spark_cannot_write_stops_the_run_before_linking(both_engines, tmp_path):
    from residentview.errors import DataError

    _, spark_run = both_engines
    (tmp_path / "a-file").write_text("not a folder")
    config = _to_spark_path(spark_run, tmp_path / "a-file" / "lake").config
    with pytest.raises(DataError, match=r"^output\.spark_path: cannot .* nothing was written$"):
        rv.link(config, previous=None, progress=False)
    assert not (tmp_path / "a-file" / "lake").exists()


def test_a_spark_run_its_driver_cannot_hold_stops_after_reading(spark, both_engines):
    """The driver holds every record (the standardised records, the resident view): a run it is
    expected not to hold stops after reading, in one line, before any work."""
    from residentview.engines.spark.session import driver_jvm_bytes
    from residentview.errors import DataError

    _, spark_run = both_engines
    config = spark_run.config.model_copy(update={"memory_limit": "1GB"})
    with pytest.raises(DataError) as caught:
        rv.link(config, previous=None, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{len(spark_run.records):,} records are expected to need about " in message
    assert "in the Spark driver's Python process" in message and "memory_limit 1GB allows" in message
    assert driver_jvm_bytes(spark) == 2**30  # the suite's session leaves Spark's default heap


def test_a_spark_connect_session_is_a_one_line_error_for_spark_path():
    from residentview.engines.spark.outputs import _SparkPath
    from residentview.errors import DataError

    class ConnectSession:  # Spark Connect's sessions have no JVM on the client
        @property
        def sparkContext(self):
            raise RuntimeError("[JVM_ATTRIBUTE_NOT_SUPPORTED] Attribute `sparkContext` is not supported in Spark Connect")

    with pytest.raises(DataError, match=r"^output\.spark_path: cannot write there \(\[JVM_ATTRIBUTE_NOT_SUPPORTED\]"):
        _SparkPath(ConnectSession(), "file:///tmp/lake")


def test_validate_says_the_spark_path_is_writable(spark, linkable_pair, tmp_path):
    import yaml

    data = yaml.safe_load(linkable_pair.read_text(encoding="utf-8"))
    data.update(engine="spark", output={"folder": "out", "spark_path": (tmp_path / "lake").as_uri()})
    linkable_pair.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(linkable_pair)])
    assert result.exit_code == 0, result.output
    assert "  output.spark_path: writable" in result.output.splitlines()
    assert (tmp_path / "lake").is_dir() and not any((tmp_path / "lake").iterdir())


def _same_view(ours, theirs, but=()) -> None:
    for name in ("links", "residents", "households", "id_changes", "addresses", "events"):
        mine, yours = getattr(ours, name), getattr(theirs, name)
        pd.testing.assert_frame_equal(mine.drop(columns=[c for c in but if c in mine]),
                                      yours.drop(columns=[c for c in but if c in yours]), obj=name)


def test_spark_builds_the_resident_view_duckdb_builds_and_carries_ids_over(spark, both_engines, tmp_path):
    from residentview.engines.spark.resident_view import OnSpark, records_frame
    from residentview.resident_view import build_resident_view, write_view

    duckdb_run, _ = both_engines
    records, clusters = duckdb_run.records, duckdb_run.clusters
    priority = duckdb_run.config.resident_view.source_priority
    first, second = pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-02-01", tz="UTC")
    before = build_resident_view(records, clusters, None, priority, first)
    _same_view(before, build_resident_view(records, clusters, None, priority, first,
                                           engine=OnSpark(records_frame(spark, records))))
    write_view(tmp_path, before, duckdb_run.quality)

    # The next run: the two largest residents merge, the third splits, three records go.
    largest = clusters["cluster_key"].value_counts().index[:3]
    after = clusters.copy()
    after.loc[after["cluster_key"] == largest[1], "cluster_key"] = largest[0]
    third = after.index[after["cluster_key"] == largest[2]]
    after.loc[third[: len(third) // 2], "cluster_key"] = int(records["unique_id"].max()) + 1
    gone = records["unique_id"].iloc[[5, 17, 40]]
    kept = records[~records["unique_id"].isin(gone)].reset_index(drop=True)
    after = after[~after["unique_id"].isin(gone)]
    ours = build_resident_view(kept, after, tmp_path, priority, second)
    theirs = build_resident_view(kept, after, tmp_path, priority, second, engine=OnSpark(records_frame(spark, kept)))
    _same_view(ours, theirs)
    changes = ours.id_changes[(ours.id_changes["run_timestamp"] == second) & (ours.id_changes["entity"] == "resident")]
    assert {"merged", "split", "retired"} <= set(changes["change"])


def test_spark_run_gives_the_resident_view_duckdb_gives(both_engines):
    duckdb_run, spark_run = both_engines
    # Ids issued at each run's own timestamp: the rest is the same, golden values to the byte.
    _same_view(duckdb_run.view, spark_run.view, but=("id_issued_at", "run_timestamp"))


def test_spark_sums_member_hashes_as_the_driver_does(spark):
    from residentview.engines.spark.resident_view import SparkTally
    from residentview.resident_view.ids import RESIDENT_IDS, MemberTally

    members = pd.Series([f"s\x1f{i}" for i in range(2000)])
    codes = pd.Series(range(2000)).to_numpy() % 3  # groups of hundreds: sums that wrap past 2**64
    ours = MemberTally().fingerprints(codes, 4, members, RESIDENT_IDS)
    theirs = SparkTally(spark).fingerprints(codes, 4, members, RESIDENT_IDS)
    assert (ours[0] == theirs[0]).all() and (ours[1] == theirs[1]).all() and ours[1][3] == 0


def test_spark_sql_of_list_and_similarity_functions():
    from residentview.engines.spark.dialect import spark_sql

    assert spark_sql('list_has_any("a_l", "a_r")') == "ARRAYS_OVERLAP(`a_l`, `a_r`)"
    assert spark_sql('jaro_winkler_similarity("f_l", "f_r") >= 0.8') == "RESIDENTVIEW_JARO_WINKLER(`f_l`, `f_r`) >= 0.8"
    assert spark_sql('len(list_intersect("address_tokens_l", "address_tokens_r"))') == (
        "SIZE(ARRAY_INTERSECT(`address_tokens_l`, `address_tokens_r`))")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="ABDENÉ' -", max_size=10) | st.none(),
                          st.text(alphabet="ABDENÉ' -", max_size=10) | st.none()), max_size=40))
def test_sparks_jaro_winkler_is_duckdbs(pairs):
    """What Spark scores names with (`similarity.jaro_winkler`) is DuckDB's function, value for
    value to the rounding of the last bit, missing where either side is: the model's levels were
    trained on DuckDB's."""
    import duckdb

    from residentview.engines.spark.similarity import jaro_winkler

    frame = pd.DataFrame(pairs, columns=["a", "b"], dtype=object)
    duck = duckdb.connect()
    duck.register("frame", frame)
    ours = duck.execute("SELECT jaro_winkler_similarity(a, b) FROM frame").df().iloc[:, 0]
    theirs = jaro_winkler(frame["a"], frame["b"])
    assert ours.isna().tolist() == theirs.isna().tolist()
    assert ((ours.dropna() - theirs.dropna()).abs() <= 2.5e-16).all()


def test_spark_sql_scores_names_with_duckdbs_jaro_winkler(spark):
    """Where Splink's Scala `jaro_winkler` and DuckDB's disagree (transposed letters, which the
    hostile benchmark's names carry; two empty strings), the Spark linker's SQL gives DuckDB's."""
    import duckdb

    from residentview.engines.spark.dialect import spark_sql
    from residentview.engines.spark.linkage import spark_db_api

    spark_db_api(spark)
    frame = pd.DataFrame({"a": ["MNAD", "JOHNSTON", "", "ANNE", None, "SMITH"],
                          "b": ["AMANDA", "JOHNNSON", "", "JEANNE", "JO", "SMITH"]})
    sql = 'jaro_winkler_similarity("a", "b")'
    ours = duckdb.connect().execute(f"SELECT {sql} AS s FROM frame").df()["s"]
    theirs = spark.createDataFrame(frame).selectExpr(f"{spark_sql(sql)} AS s").toPandas()["s"]
    scala = spark.createDataFrame(frame).selectExpr("jaro_winkler(a, b) AS s").toPandas()["s"]
    assert (scala.fillna(-1) != ours.fillna(-1)).sum() >= 4  # the difference is real
    pd.testing.assert_series_equal(theirs, ours, check_exact=False, rtol=0, atol=2.5e-16)


def test_engine_spark_without_pyspark_is_one_line_naming_the_extra(monkeypatch, linkable_pair):
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name, *args, **kwargs):
        if name == "pyspark" or name.startswith("pyspark."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    result = CliRunner().invoke(main, ["link", str(linkable_pair), "--engine", "spark"])
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "residentview[spark]" in message


def test_engine_spark_without_java_is_one_line(monkeypatch):
    from residentview.engines.spark.session import require_java

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="Java runtime"):
        require_java()


@pytest.fixture(scope="module")
def updated_on_both(spark, tmp_path_factory):
    """A council's extracts before and after 40 changes (new, changed, removed); the before
    linked on DuckDB, then updated with the after from a copy of that folder on each engine:
    DuckDB through the API, Spark through the command line."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from update_vs_link import make_versions

    base = tmp_path_factory.mktemp("update")
    written = generate(people=150, out=base / "data", seed=4)
    before, after = make_versions(written.config_path, base / "versions", changes=40, seed=2)
    rv.link(load_config(before / "config.yaml"), previous=None, progress=False).write(base / "linked")
    duckdb_folder, spark_folder = base / "duckdb", base / "spark"
    for folder in (duckdb_folder, spark_folder):
        shutil.copytree(base / "linked", folder)
    from residentview.incremental import update

    duckdb_run = update(after / "config.yaml", out=duckdb_folder, progress=False)
    duckdb_run.write(duckdb_folder)
    cli = CliRunner().invoke(main, ["--quiet", "update", str(after / "config.yaml"), "--out", str(spark_folder),
                                    "--engine", "spark"])
    return duckdb_run, cli, duckdb_folder, spark_folder


def test_update_on_spark_runs_from_the_command_line(updated_on_both):
    _, cli, _, _ = updated_on_both
    assert cli.exit_code == 0, cli.output
    assert "not yet supported" not in cli.output


def test_update_on_spark_gives_the_residents_and_ids_duckdb_gives(updated_on_both):
    duckdb_run, cli, duckdb_folder, spark_folder = updated_on_both
    assert cli.exit_code == 0, cli.output
    counts = duckdb_run.diagnostics["update"]["records"]
    assert counts["new"] and counts["changed"] and counts["removed"]  # the update had work to do
    ours = pd.read_parquet(duckdb_folder / "resident_links.parquet")
    theirs = pd.read_parquet(spark_folder / "resident_links.parquet")
    assert len(ours) == len(theirs) > 0
    pd.testing.assert_frame_equal(ours, theirs)  # the same residents, the same ids, the same probabilities
    ours_pairs = pd.read_parquet(duckdb_folder / "pairs.parquet")
    theirs_pairs = pd.read_parquet(spark_folder / "pairs.parquet")
    pd.testing.assert_frame_equal(ours_pairs[["unique_id_l", "unique_id_r"]], theirs_pairs[["unique_id_l", "unique_id_r"]])
    assert (ours_pairs["match_weight"] - theirs_pairs["match_weight"]).abs().max() < 1e-9


def test_engine_is_duckdb_unless_the_config_says_spark(write_config):
    config = {"name": "x", "sources": {"a": {"path": "a.csv", "id": "i", "fields": {"first_name": "f"}}}}
    assert load_config(config).engine == "duckdb"
    assert load_config({**config, "engine": "spark"}).engine == "spark"
    with pytest.raises(ConfigError, match="engine"):
        load_config({**config, "engine": "flink"})


def test_local_spark_heap_is_a_share_of_the_runs_memory(monkeypatch):
    import psutil

    from residentview.engines.spark.session import JVM_FLOOR_MB, jvm_memory_mb

    assert jvm_memory_mb("10GB") == int(10 * 10**9 * 0.4) // 2**20  # the config's memory_limit
    assert jvm_memory_mb("1GB") == JVM_FLOOR_MB  # never below the floor
    machine = type("Memory", (), {"total": 24 * 2**30})()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: machine)
    assert jvm_memory_mb(None) == int(24 * 2**30 * 0.4) // 2**20  # else the machine's


@pytest.fixture(scope="module")
def council_with_retention(tmp_path_factory):
    """The demo council, its housing benefit claims kept for two years only (some are older)."""
    import yaml

    folder = tmp_path_factory.mktemp("retention")
    written = generate(people=100, out=folder)
    data = yaml.safe_load(written.config_path.read_text(encoding="utf-8"))
    data["sources"]["housing_benefit"]["retention"] = {"years": 2}
    written.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return written.config_path


def test_spark_reads_the_sources_as_the_driver_does(spark, council_with_retention):
    from dataclasses import asdict

    from residentview.engines.spark.sources import read_sources_on_spark
    from residentview.sources import read_sources

    config = load_config(council_with_retention)
    today = pd.Timestamp("2026-12-03", tz="UTC")
    ours, our_summaries = read_sources(config, today=today)
    frame, their_summaries, n_records = read_sources_on_spark(spark, config, today=today)
    theirs = frame.toPandas()
    assert n_records == len(ours) == len(theirs) > 0
    assert [asdict(s) for s in their_summaries] == [asdict(s) for s in our_summaries]
    assert sum(s.n_past_retention for s in their_summaries) > 0  # retention was applied where read
    order = ["source", "record_id"]
    pd.testing.assert_frame_equal(ours.sort_values(order).reset_index(drop=True),
                                  theirs.sort_values(order).reset_index(drop=True)[list(ours.columns)])


def test_a_source_spark_cannot_read_is_the_drivers_one_line_error(spark, council_with_retention, tmp_path):
    import yaml

    from residentview.engines.spark.sources import read_sources_on_spark
    from residentview.errors import DataError
    from residentview.sources import read_sources

    data = yaml.safe_load(council_with_retention.read_text(encoding="utf-8"))
    data["sources"]["council_tax"]["id"] = "no_such_column"
    broken = council_with_retention.parent / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    config = load_config(broken)
    with pytest.raises(DataError) as on_driver:
        read_sources(config)
    with pytest.raises(DataError) as on_spark:
        read_sources_on_spark(spark, config)
    assert str(on_spark.value) == str(on_driver.value) and "no_such_column" in str(on_spark.value)
    assert len(str(on_spark.value).splitlines()) == 1


def test_spark_numbers_records_in_source_and_record_id_order(spark):
    from residentview.engines.spark.standardise import numbered

    keys = pd.DataFrame({"source": ["tax", "tax", "benefits", "école", "tax", "benefits", "Z"] * 30,
                         "record_id": [f"{i:03d}é" if i % 7 == 3 else str(i) for i in range(210)]})
    keys["first_name"] = [f"name{i}" for i in range(len(keys))]
    spark.conf.set("spark.sql.shuffle.partitions", "5")  # several partitions, some perhaps empty
    try:
        frame = numbered(spark.createDataFrame(keys.sample(frac=1, random_state=3)).repartition(7)).toPandas()
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    # code-point order of (source, record_id) (Python's for text), as in_record_order numbers them
    expected = sorted(keys.values.tolist(), key=lambda row: (row[0], row[1]))
    got = frame.sort_values("unique_id")
    assert got["unique_id"].tolist() == list(range(len(keys)))
    assert got[["source", "record_id", "first_name"]].values.tolist() == expected


def _crowded_addresses(seed: int, n: int = 400):
    """Golden addresses of `n` residents crowded into a few addresses, postcodes and UPRNs: some
    addresses with one UPRN among their residents, some with two, some with none; parts missing."""
    import numpy as np

    from residentview.resident_view.coding import coded, combined
    from residentview.resident_view.golden import ADDRESS_KEY, golden_addresses

    rng = np.random.default_rng(seed)

    def some(values, missing):
        picked = rng.choice(np.array(values, dtype=object), size=n)
        picked[rng.random(n) < missing] = None
        return picked

    unit = {"address": coded(some([f"{i} HIGH STREET" for i in range(12)], 0.1)),
            "postcode": coded(some(["LS1 1AA", "LS1 1AB", "LS2 9ZZ"], 0.1)),
            "uprn": coded(some([str(100 + i) for i in range(6)], 0.7))}
    key = combined(unit["address"], unit["postcode"], key=ADDRESS_KEY)["key"]
    address_row = np.where(rng.random(n) < 0.05, -1, np.arange(n))  # a few residents of no address
    # Another record's UPRN for the golden address: only where there is a golden address (golden.address_sql).
    same_address_uprn = np.where((rng.random(n) < 0.1) & (address_row >= 0),
                                 rng.integers(0, len(unit["uprn"].values), n), -1)
    residents = pd.DataFrame({
        "resident_id": [f"R{i:05d}" for i in range(n)],
        "is_person": rng.random(n) > 0.05, "is_deceased": rng.random(n) < 0.05,
    })
    return residents, golden_addresses(unit, key, address_row, same_address_uprn)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spark_groups_households_as_the_driver_does(spark, seed):
    from residentview.engines.spark.households import SparkHouseholds
    from residentview.resident_view.households import build_households

    residents, addresses = _crowded_addresses(seed)
    previous = pd.DataFrame({"member": pd.Series(dtype=object), "old_id": pd.Series(dtype=object)})
    at = pd.Timestamp("2025-01-01", tz="UTC")
    arguments = (residents, addresses, previous, pd.Series(dtype="datetime64[ns, UTC]"), [], at)
    driver = build_households(*arguments)
    on_spark = build_households(*arguments, work=SparkHouseholds(spark))
    assert 10 < len(driver.households) < len(residents)  # crowded: households of several
    assert (driver.households["size"] > 1).any() and driver.households["uprn"].notna().any()
    pd.testing.assert_frame_equal(on_spark.households, driver.households)
    assert list(on_spark.household_of) == list(driver.household_of)


@pytest.fixture(scope="module")
def linked_demo(tmp_path_factory):
    """The demo council's config and a folder it was linked into (on DuckDB: quicker)."""
    folder = tmp_path_factory.mktemp("interrupted")
    generate(people=100, out=folder)
    CliRunner().invoke(main, ["--quiet", "link", str(folder / "council.yaml"), "--out", str(folder / "out")],
                       catch_exceptions=False)
    return folder / "council.yaml", folder / "out"


def test_a_quiet_spark_run_prints_nothing_of_spark_and_leaves_no_folder_behind(linked_demo, tmp_path):
    """`--quiet link --engine spark`: Spark's start-up log (log4j's profile, the host's address,
    "Setting default log level") is not printed, and its catalog folder is neither made in the
    working directory nor left in the temporary one. (The JVM's own notice of the incubator
    module Spark loads is the JVM's, before any setting of ours.)"""
    config, _ = linked_demo
    work, temporary = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temporary.mkdir()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("residentview")), "--quiet", "link", str(config),
         "--out", str(tmp_path / "out"), "--engine", "spark"],
        cwd=work, env={**os.environ, "TMPDIR": str(temporary)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Using incubator modules")]
    assert said == [], done.stderr
    assert list(work.iterdir()) == []
    assert not [p.name for p in temporary.iterdir() if "warehouse" in p.name]


@pytest.mark.parametrize("signum, code, word, after", [(signal.SIGTERM, 143, "terminated", 6.0),
                                                       (signal.SIGINT, 130, "interrupted", 20.0)])
def test_a_spark_run_stopped_by_a_signal_leaves_the_outputs_and_no_jvm(linked_demo, tmp_path, signum, code, word,
                                                                       after):
    """A scheduler's SIGTERM or a Ctrl-C while Spark is starting or working (CONTRACT §10): the
    exit code, one line, the folder exactly as it was, and no Java process or temporary folder
    left behind."""
    import psutil

    config, folder = linked_demo
    copy, temporary = tmp_path / "out", tmp_path / "tmp"
    shutil.copytree(folder, copy)
    temporary.mkdir()
    before = snapshot(copy)
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("residentview")), "link", str(config), "--out", str(copy),
         "--engine", "spark"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    time.sleep(after)
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip(f"the run finished within {after} s")
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1].startswith(f"{word} ("), err
    assert "Traceback" not in err
    assert snapshot(copy) == before
    assert not [p for p in tmp_path.iterdir() if "residentview-tmp" in p.name]
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline()[:2] for p in alive]
    assert not [p.name for p in temporary.iterdir() if "warehouse" in p.name]  # the process's own folder too


def test_spark_scores_an_updates_fresh_records_as_duckdb_does(spark, both_engines):
    """Only the records the fresh pairs join go to Spark, with term frequencies counted over
    every record on the driver: the same pairs and weights as DuckDB's `score_fresh`."""
    from residentview.engines.spark.update import score_fresh_on_spark
    from residentview.linkage.model import score_fresh

    duckdb_run, _ = both_engines
    records, model = duckdb_run.records, duckdb_run.model
    assert any(level.get("tf_adjustment_column") for comparison in model["comparisons"]
               for level in comparison["comparison_levels"])  # the lookups are read
    fresh = records["unique_id"].sample(n=40, random_state=1)
    ours = score_fresh(records, fresh, model, 0.95).pairs
    theirs = score_fresh_on_spark(records, fresh, model, 0.95).pairs
    key = ["unique_id_l", "unique_id_r"]
    ours, theirs = (p.sort_values(key).reset_index(drop=True) for p in (ours, theirs))
    assert len(ours) > 40
    pd.testing.assert_frame_equal(theirs[key], ours[key])
    assert (theirs["match_weight"] - ours["match_weight"]).abs().max() < 1e-9


def test_spark_scores_a_fresh_record_without_candidates_as_duckdb_does(spark, both_engines):
    """A fresh record no rule pairs with anything: no pairs, the columns DuckDB's has."""
    from residentview.engines.spark.update import score_fresh_on_spark
    from residentview.linkage.model import score_fresh

    duckdb_run, _ = both_engines
    records = duckdb_run.records.copy()
    row = records.index[records["is_person"].fillna(True)][0]
    for column in records.columns:
        if records[column].dtype == object and column not in ("source", "record_id"):
            records.at[row, column] = None
    records.at[row, "first_name_key"], records.at[row, "last_name_key"] = "QZXWV", "VWXZQ"
    fresh = records.loc[[row], "unique_id"]
    ours = score_fresh(records, fresh, duckdb_run.model, 0.95).pairs
    theirs = score_fresh_on_spark(records, fresh, duckdb_run.model, 0.95).pairs
    assert len(ours) == len(theirs) == 0
    assert list(theirs.columns) == list(ours.columns)


def test_spark_takes_a_common_full_names_excess_off_as_duckdb_does(spark):
    """The full-name adjustment on Spark (`collected_scores`), against `link`'s own on DuckDB
    (`scored_relation`), on pairs it lowers: one full name at five places among twenty records."""
    import duckdb
    import numpy as np

    from residentview.engines.spark.linkage import collected_scores
    from residentview.linkage.model import NAME_EXCESS, scored_relation

    names = [("MOHAMMED", "KHAN")] * 5 + [(f"F{i}", f"L{i}") for i in range(15)]
    records = pd.DataFrame({"unique_id": range(20), "first_name_key": [f for f, _ in names],
                            "last_name_key": [s for _, s in names], "uprn": [f"U{i}" for i in range(20)],
                            "postcode": [f"P{i % 7}" for i in range(20)]})
    ends = [(0, 1), (0, 2), (1, 3), (2, 4), (3, 4), (5, 6), (7, 8), (9, 10), (0, 11)]
    left, right = (records.loc[[pair[side] for pair in ends]].reset_index(drop=True) for side in (0, 1))
    pairs = pd.DataFrame({"match_weight": np.linspace(1.0, 9.0, len(ends))})
    pairs["match_probability"] = 1 / (1 + 2 ** -pairs["match_weight"])
    for column in records.columns:
        pairs[f"{column}_l"], pairs[f"{column}_r"] = left[column], right[column]
    pairs.loc[1, "uprn_r"] = pairs.loc[1, "uprn_l"]  # one address: the place is evidence, no excess off
    pairs.loc[2, "postcode_r"] = None  # a missing postcode is a different place
    pairs["gamma_first_name"] = 3
    pairs["date_of_birth_l"] = pairs["date_of_birth_r"] = pd.Timestamp("1975-10-22")
    columns = set(records.columns)

    def with_records():
        connection = duckdb.connect()
        connection.register("frame", records)
        connection.execute("CREATE TABLE records_table AS SELECT * FROM frame")
        return connection

    connection = with_records()
    ours, our_review = scored_relation(connection, connection.from_df(pairs), columns, 0.95)
    theirs, their_review = collected_scores(with_records(), spark.createDataFrame(pairs), columns, 0.95)
    assert (ours[NAME_EXCESS] < 0).sum() == 4  # the KHAN pairs but the one at one address
    pd.testing.assert_frame_equal(theirs, ours, check_exact=False, rtol=0, atol=1e-12)
    assert len(our_review) == 7  # 9.0 is above the band, and 1.0 falls below it with the excess off
    # (the dates' unit aside: Spark's come in microseconds)
    pd.testing.assert_frame_equal(their_review, our_review, check_exact=False, rtol=0, atol=1e-12, check_dtype=False)
    # The driver holding a few records only (as `link_on_spark`'s does), the names counted on
    # Spark over every record: the same excess taken off.
    from residentview.engines.spark.dialect import spark_sql
    from residentview.linkage.model import full_name_counts_sql

    spark.createDataFrame(records).createOrReplaceTempView("rv_every_record")

    def counted(columns):
        return spark.sql(spark_sql(full_name_counts_sql(columns, "rv_every_record"))).toArrow()

    few = duckdb.connect()
    few.register("frame", records.head(3))
    few.execute("CREATE TABLE records_table AS SELECT * FROM frame")
    counted_there, _ = collected_scores(few, spark.createDataFrame(pairs), columns, 0.95, counted)
    spark.catalog.dropTempView("rv_every_record")
    pd.testing.assert_frame_equal(counted_there, ours, check_exact=False, rtol=0, atol=1e-12)

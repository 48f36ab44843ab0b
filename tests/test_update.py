"""Stage: incremental updates (CONTRACT §6) — `residentview update` links what changed since the
previous run, agrees with a full `link` using the same model, keeps the ids of residents nothing
touched, honours reviewers' decisions, and says when to retrain."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import snapshot
from residentview.cli import main
from residentview.incremental.drift import drift_report

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from update_vs_link import agreement, make_versions  # noqa: E402

CLI = Path(sys.executable).with_name("residentview")


def run(*args) -> "CliRunner.Result":
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def members(links: pd.DataFrame) -> set[frozenset]:
    keys = links["source"].astype(str) + ":" + links["record_id"].astype(str)
    return set(keys.groupby(links["resident_id"].to_numpy()).agg(frozenset))


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """A synthetic borough's extracts before and after 120 changes (new, changed, removed), and a
    folder linked from the before extracts."""
    from residentview.synthetic import generate

    base = tmp_path_factory.mktemp("update")
    written = generate(people=600, out=base / "data", seed=5)
    before, after = make_versions(written.config_path, base / "versions", changes=120, seed=3)
    linked = base / "linked"
    assert run("--quiet", "link", before / "config.yaml", "--out", linked).exit_code == 0
    return before / "config.yaml", after / "config.yaml", linked


@pytest.fixture
def folder(versions, tmp_path):
    """A copy of the linked folder to update."""
    copy = tmp_path / "out"
    shutil.copytree(versions[2], copy)
    return copy


def same_model_link(config: Path, model: Path, out: Path) -> pd.DataFrame:
    """A full link of `config`'s extracts with a saved model, into `out`."""
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings.setdefault("linkage", {})["model"] = str(model)
    path = config.with_name(f"{out.name}-same-model.yaml")
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    assert run("--quiet", "link", path, "--out", out).exit_code == 0
    return pd.read_parquet(out / "resident_links.parquet")


def test_update_links_the_changes_as_a_full_link_with_the_same_model_would(versions, folder, tmp_path):
    _, after, _ = versions
    model = tmp_path / "model-before.json"
    shutil.copy(folder / "model.json", model)
    result = run("update", after, "--out", folder)
    assert result.exit_code == 0, result.output
    assert "update: " in result.output and " new, " in result.output
    updated = pd.read_parquet(folder / "resident_links.parquet")
    full = same_model_link(after, model, tmp_path / "full")

    # Every record of the after extracts exactly once, and no other.
    assert not updated.duplicated(["source", "record_id"]).any()
    assert set(zip(updated["source"], updated["record_id"])) == set(zip(full["source"], full["record_id"]))
    agreed = agreement(updated, full)
    assert agreed["identical_residents_share"] >= 0.995, agreed
    run_info = json.loads((folder / "run.json").read_text())
    assert run_info["kind"] == "update"
    counts = run_info["diagnostics"]["update"]["records"]
    assert counts["new"] > 0 and counts["changed"] > 0 and counts["removed"] > 0
    assert counts["new"] + counts["changed"] + counts["unchanged"] == len(updated)
    # Every output of link is there, and the run joined the history and the audit chain.
    for name in ("residents.parquet", "households.parquet", "report.html", "review_queue.csv", "resident_view.duckdb",
                 "pairs.parquet", "records.parquet", "model.json"):
        assert (folder / name).is_file(), name
    assert len(list((folder / "runs").iterdir())) == 2
    assert run("audit", "verify", folder).exit_code == 0
    events = [json.loads(line)["event"] for line in (folder / "audit.jsonl").read_text().splitlines()]
    assert events[-1] == "update"


VIEW_TABLES = ("residents", "resident_links", "households", "id_changes", "addresses", "events")


@pytest.fixture
def full_view_alongside(monkeypatch, tmp_path):
    """Every update in the test builds its resident view from the touched residents (as it does)
    and in full (as `link` does) from the same records and clusters; the two, as written, are
    compared. Yields the list of how each update built it."""
    import pyarrow.parquet as pq

    import residentview.incremental as incremental
    from residentview.incremental.view import updated_view
    from residentview.resident_view import build_resident_view, write_view

    built = []

    def both(records, clusters, reclustered, previous_resident, folder, source_priority, run_timestamp, event_ages,
             fresh, forget):
        spliced = updated_view(records, clusters, reclustered, previous_resident, folder, source_priority,
                               run_timestamp, event_ages, fresh=fresh, forget=forget)
        built.append("spliced" if spliced is not None else "full")
        if spliced is not None:
            full = build_resident_view(records, clusters, folder, source_priority, run_timestamp, event_ages,
                                       fresh=fresh, forget=forget)
            written = {}
            for name, view in (("spliced", spliced), ("full", full)):
                out = tmp_path / f"view-{len(built)}-{name}"
                out.mkdir()
                write_view(out, view, pd.DataFrame({"source": ["a"]}))
                written[name] = {t: pq.read_table(out / f"{t}.parquet").replace_schema_metadata(None)
                                 for t in VIEW_TABLES}
            for table in VIEW_TABLES:
                spliced_table, full_table = written["spliced"][table], written["full"][table]
                assert spliced_table.schema == full_table.schema, table
                assert spliced_table.equals(full_table), (table, spliced_table.num_rows, full_table.num_rows)
        return spliced

    monkeypatch.setattr(incremental, "updated_view", both)
    yield built


def test_an_update_builds_the_resident_view_a_full_build_would_from_the_residents_it_touched(
        versions, folder, full_view_alongside):
    _, after, _ = versions
    result = run("--quiet", "update", after, "--out", folder)
    assert result.exit_code == 0, result.output
    assert full_view_alongside == ["spliced"]  # and equal to the full build, table by table
    run_info = json.loads((folder / "run.json").read_text())
    assert run_info["diagnostics"]["update"]["resident_view_built"] == "from the touched residents"
    # The tables an update spliced hold every record once, every resident's records in it.
    links = pd.read_parquet(folder / "resident_links.parquet")
    residents = pd.read_parquet(folder / "residents.parquet")
    assert not links.duplicated(["source", "record_id"]).any()
    assert set(links["resident_id"]) == set(residents["resident_id"])
    assert (links.groupby("resident_id").size().reindex(residents["resident_id"]).to_numpy()
            == residents["n_records"].to_numpy()).all()
    assert residents["resident_id"].is_monotonic_increasing


def test_an_update_builds_the_resident_view_in_full_when_the_source_priority_changed(versions, folder, tmp_path,
                                                                                   full_view_alongside):
    _, after, _ = versions
    settings = yaml.safe_load(after.read_text(encoding="utf-8"))
    settings.setdefault("resident_view", {})["source_priority"] = sorted(settings["sources"])[::-1]
    changed = after.with_name("priority-changed.yaml")
    changed.write_text(yaml.safe_dump(settings), encoding="utf-8")
    assert run("--quiet", "update", changed, "--out", folder).exit_code == 0
    assert full_view_alongside == []  # never asked to splice: golden records depend on the priority
    run_info = json.loads((folder / "run.json").read_text())
    assert run_info["diagnostics"]["update"]["resident_view_built"] == "in full"
    assert run_info["source_priority"] == settings["resident_view"]["source_priority"]


def test_residents_nothing_touched_keep_their_ids(versions, folder):
    _, after, _ = versions
    before = pd.read_parquet(folder / "resident_links.parquet")
    hashes_before = pd.read_parquet(folder / "records.parquet", columns=["source", "record_id", "row_hash"])
    assert run("--quiet", "update", after, "--out", folder).exit_code == 0
    updated = pd.read_parquet(folder / "resident_links.parquet")
    hashes_after = pd.read_parquet(folder / "records.parquet", columns=["source", "record_id", "row_hash"])
    both = hashes_before.merge(hashes_after, on=["source", "record_id"], how="outer", suffixes=("_b", "_a"))
    touched = set(both.loc[both["row_hash_b"] != both["row_hash_a"], "record_id"].astype(str))
    assert touched  # the fixture changed records
    groups_before = {m: rid for m, rid in _by_members(before).items()}
    groups_after = _by_members(updated)
    untouched = {m: rid for m, rid in groups_before.items() if not {k.split(":", 1)[1] for k in m} & touched}
    still = {m: rid for m, rid in untouched.items() if m in groups_after}
    assert len(still) > 0.9 * len(untouched)  # (the rest were joined by a new record)
    assert all(groups_after[m] == rid for m, rid in still.items())


def _by_members(links: pd.DataFrame) -> dict[frozenset, str]:
    keys = links["source"].astype(str) + ":" + links["record_id"].astype(str)
    groups = keys.groupby(links["resident_id"].to_numpy()).agg(frozenset)
    return {m: rid for rid, m in groups.items()}


def test_an_update_with_nothing_changed_changes_nothing(versions, folder):
    before_config, _, _ = versions
    links = pd.read_parquet(folder / "resident_links.parquet")
    residents = pd.read_parquet(folder / "residents.parquet")
    result = run("update", before_config, "--out", folder)
    assert result.exit_code == 0, result.output
    assert "0 new, 0 changed, 0 removed" in result.output
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "resident_links.parquet"), links)
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "residents.parquet").drop(columns="id_issued_at"),
                                  residents.drop(columns="id_issued_at"))
    run_info = json.loads((folder / "run.json").read_text())["diagnostics"]["update"]
    assert run_info["records_reclustered"] == 0 and run_info["fresh_pairs_scored"] == 0


def test_update_needs_a_previous_run(versions, tmp_path):
    result = run("update", versions[1], "--out", tmp_path / "empty")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no previous run to update" in lines[0] and "residentview link" in lines[0]
    assert not (tmp_path / "empty" / "resident_links.parquet").exists()


def test_update_refuses_a_changed_threshold_and_a_run_without_record_hashes(versions, folder, tmp_path):
    settings = yaml.safe_load(versions[1].read_text())
    settings.setdefault("linkage", {})["threshold"] = 0.9
    moved = versions[1].with_name("threshold.yaml")
    moved.write_text(yaml.safe_dump(settings))
    result = run("update", moved, "--out", folder)
    assert result.exit_code == 2 and "linkage.threshold changed" in result.output and "--retrain" in result.output
    records = pd.read_parquet(folder / "records.parquet").drop(columns="row_hash")
    records.to_parquet(folder / "records.parquet", index=False)
    result = run("update", versions[1], "--out", folder)
    assert result.exit_code == 2 and "earlier residentview" in result.output


def test_reviewers_decisions_hold_through_an_update(versions, folder, tmp_path):
    _, after, _ = versions
    links = pd.read_parquet(folder / "resident_links.parquet")
    sizes = links["resident_id"].map(links["resident_id"].value_counts())
    together = links[sizes >= 2].sort_values(["resident_id", "source", "record_id"]).head(2)
    alone = links[sizes == 1].iloc[:2]
    rows = [
        # two records of one resident: said to be two people
        [*together.iloc[0][["source", "record_id"]], *together.iloc[1][["source", "record_id"]], "non-match"],
        # two residents of one record each: said to be one
        [*alone.iloc[0][["source", "record_id"]], *alone.iloc[1][["source", "record_id"]], "match"],
    ]
    decisions = pd.DataFrame(rows, columns=["source_l", "record_id_l", "source_r", "record_id_r", "decision"])
    decisions.to_csv(tmp_path / "decisions.csv", index=False)
    assert run("review", "apply", folder, tmp_path / "decisions.csv", "--reviewer", "test").exit_code == 0
    assert run("--quiet", "update", after, "--out", folder).exit_code == 0
    updated = pd.read_parquet(folder / "resident_links.parquet").set_index(["source", "record_id"])["resident_id"]
    for source_l, id_l, source_r, id_r, decision in rows:
        if (source_l, id_l) not in updated.index or (source_r, id_r) not in updated.index:
            continue  # removed by the update: the decision stays, inactive
        same = updated[(source_l, id_l)] == updated[(source_r, id_r)]
        assert same == (decision == "match"), (source_l, id_l, source_r, id_r, decision)


def test_drift_recommends_retraining_when_new_records_stop_looking_like_the_old():
    n = 400
    resident_of = pd.Series([f"r{i // 2}" for i in range(n)])  # pairs of records: all linked
    master_quality = pd.DataFrame({"source": ["ct"], "field": ["date_of_birth"], "n_records": [10_000],
                                   "n_present": [9_000], "n_valid": [8_900]})
    like = drift_report(np.arange(300, 400), resident_of, np.full(100, 12.0), resident_of,
                        np.full(n, 12.5), master_quality.assign(n_records=100, n_present=90, n_valid=89),
                        master_quality, 50_000)
    assert not like["retrain_recommended"], like["reasons"]
    # A system changed its date format: fresh dates no longer read, nothing links, weights fall.
    unlike = drift_report(np.arange(300, 400), pd.Series([f"r{i}" for i in range(n)]), np.full(100, 2.0),
                          resident_of, np.full(n, 12.5),
                          master_quality.assign(n_records=100, n_present=90, n_valid=10), master_quality, 50_000)
    assert unlike["retrain_recommended"]
    reasons = " ".join(unlike["reasons"])
    assert "ct.date_of_birth" in reasons and "link to another" in reasons and "bits" in reasons
    # A quarter of the borough re-keyed, and a source the model never saw.
    big = drift_report(np.arange(300, 400), resident_of, np.full(100, 12.0), resident_of, np.full(n, 12.5),
                       pd.DataFrame({"source": ["new"], "field": ["x"], "n_records": [100], "n_present": [100],
                                     "n_valid": [100]}), master_quality, 350)
    assert any("new since the model" in r for r in big["reasons"]) and any("are new or changed" in r for r in big["reasons"])


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_update_leaves_the_folder_exactly_as_it_was(versions, folder, signum, code):
    before = snapshot(folder)
    process = subprocess.Popen([str(CLI), "update", str(versions[1]), "--out", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the update finished before the signal came")
    assert process.returncode == code, err
    assert "Traceback" not in err
    assert snapshot(folder) == before


# Property: whatever changes, every record is in exactly one resident and the update groups the
# records as a full link with the same model does.
PEOPLE = [("John", "Smith", "01/02/1960"), ("Mary", "Jones", "12/11/1975"), ("Ahmed", "Khan", "03/04/1988"),
          ("Sian", "Evans", "21/07/1990"), ("Peter", "Brown", "30/09/1955"), ("Zoe", "Patel", "05/05/2001"),
          ("Ravi", "Shah", "17/01/1969"), ("Aoife", "Murphy", "08/08/1980")]


def _extract(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    """(record id, person, variant) -> the record: variant 1 retypes the surname."""
    out = []
    for record_id, person, variant in rows:
        first, last, dob = PEOPLE[person]
        if variant:
            last = last[0] + last[2] + last[1] + last[3:]
        out.append({"ref": record_id, "forename": first, "surname": last, "dob": dob,
                    "postcode": f"LS{person + 1} 4AB"})
    return pd.DataFrame(out, columns=["ref", "forename", "surname", "dob", "postcode"])


records_strategy = st.lists(st.tuples(st.integers(0, len(PEOPLE) - 1), st.integers(0, 1)), min_size=12, max_size=24)


def _tiny(base: Path, rows: list[tuple[str, int, int]], model: Path | None = None) -> Path:
    """A one-source config over `rows` (see `_extract`) in `base`; with `model`, scoring by it."""
    base.mkdir(parents=True, exist_ok=True)
    config = {"name": "tiny", "sources": {"a": {"path": "a.csv", "id": "ref", "fields": {
        "first_name": "forename", "last_name": "surname", "date_of_birth": "dob", "postcode": "postcode"}}}}
    if model is not None:
        config["linkage"] = {"model": str(model)}
    _extract(rows).to_csv(base / "a.csv", index=False)
    path = base / ("config.yaml" if model is None else "same-model.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=records_strategy, second=records_strategy, kept=st.integers(0, 12))
def test_property_any_update_places_every_record_once_as_a_full_link_would(tmp_path_factory, full_view_alongside,
                                                                          first, second, kept):
    from residentview import link, update

    base = tmp_path_factory.mktemp("prop")
    old = [(f"r{i}", p, v) for i, (p, v) in enumerate(first)]
    # The second extract keeps the first `kept` records, changes some, and adds others.
    new = old[:kept] + [(f"r{i}", p, v) for i, (p, v) in enumerate(second) if i >= kept]
    link(_tiny(base, old), progress=False).write(base / "out", report=False)
    shutil.copy(base / "out" / "model.json", base / "model.json")
    updated = update(_tiny(base, new), out=base / "out", progress=False)
    assert sorted(updated.links["record_id"]) == sorted(r for r, _, _ in new)
    full = link(_tiny(base, new, model=base / "model.json"), previous=base / "none", progress=False)
    assert members(updated.links) == members(full.links)


def test_retrain_runs_a_full_link(tmp_path):
    rows = [(f"r{i}", i % len(PEOPLE), i % 2) for i in range(20)]
    config = _tiny(tmp_path, rows)
    assert run("--quiet", "link", config, "--out", tmp_path / "out").exit_code == 0
    result = run("--quiet", "update", config, "--out", tmp_path / "out", "--retrain")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "run.json").read_text())["kind"] == "link"
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 2


def test_the_report_says_the_run_was_an_update_and_what_drift_it_found(versions, folder):
    assert run("--quiet", "update", versions[1], "--out", folder).exit_code == 0
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "This run was an update" in page and "records re-clustered" in page
    assert "retrains the model is recommended" in page or "No drift past the limits" in page
    # The data-quality grid is the linked run's, and says so, naming when that run was made.
    linked = json.loads((versions[2] / "run.json").read_text(encoding="utf-8"))["run_timestamp"]
    assert f"the profile below is of the last full run ({linked})" in page
    # A second update carries the same profile, still named by that full run.
    assert run("--quiet", "update", versions[1], "--out", folder).exit_code == 0
    assert f"last full run ({linked})" in (folder / "report.html").read_text(encoding="utf-8")


def test_fuller_new_records_are_no_reason_to_retrain():
    master = pd.DataFrame({"source": ["er"], "field": ["date_of_birth"], "n_records": [10_000], "n_present": [600],
                           "n_valid": [600]})
    fuller = master.assign(n_records=200, n_present=40, n_valid=40)  # attainers: 20% dated against 6%
    ids = pd.Series([f"r{i // 2}" for i in range(400)])
    report = drift_report(np.arange(200), ids, np.full(200, 12.0), ids, np.full(400, 12.0), fuller, master, 50_000)
    assert not report["retrain_recommended"], report["reasons"]


def test_an_update_stops_after_reading_when_it_would_need_more_memory_than_its_limit(versions, folder, tmp_path):
    """As `link` does (test_memory.py): exit 2, one line pointing to Spark, the folder untouched."""
    _, after, _ = versions
    settings = yaml.safe_load(after.read_text(encoding="utf-8"))
    limited = after.with_name("limited.yaml")
    limited.write_text(yaml.safe_dump({**settings, "memory_limit": "1MB"}), encoding="utf-8")
    before = snapshot(folder)
    result = run("update", limited, "--out", folder)
    assert result.exit_code == 2 and "memory_limit 1MB allows" in result.output and "engine: spark" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(folder) == before


def test_an_update_over_a_damaged_previous_output_says_so_in_one_line(versions, folder):
    _, after, _ = versions
    before = snapshot(folder)
    (folder / "residents.parquet").write_bytes(b"not parquet")
    before["residents.parquet"] = b"not parquet"
    result = run("update", after, "--out", folder)
    assert result.exit_code == 2, result.output
    assert "residents.parquet" in result.output and "Traceback" not in result.output
    assert snapshot(folder) == before


@pytest.mark.parametrize("damaged", ["pairs.parquet", "resident_links.parquet"])
def test_a_damaged_previous_file_read_beside_the_sources_is_the_error_reported(versions, folder, tmp_path, damaged):
    """The previous run's records, links and pairs are read by a second thread while the sources
    are read: its error still comes out as one line, before a source's own."""
    _, after, _ = versions
    broken = tmp_path / "broken"
    shutil.copytree(after.parent, broken)
    config = broken / after.name
    extract = next(p for p in sorted(broken.iterdir()) if p.suffix == ".csv")
    extract.write_bytes(b"\xff\xfe\x00garbage")  # a source that cannot be read either
    before = snapshot(folder)
    (folder / damaged).write_bytes(b"not parquet")
    before[damaged] = b"not parquet"
    result = run("update", config, "--out", folder)
    assert result.exit_code == 2, result.output
    assert "cannot read the previous run's outputs" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(folder) == before

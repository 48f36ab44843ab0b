"""Atomic outputs (CONTRACT §3): a run writes all its outputs or leaves the folder as it was, and
never touches files it did not write."""

from __future__ import annotations

import os

import pytest

from helpers import snapshot

from residentview import DataError
from residentview import outputs
from residentview.outputs import staged_output




@pytest.fixture
def previous_run(tmp_path):
    """An output folder holding a previous run's outputs and a file the analyst put there."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "resident_links.parquet").write_bytes(b"old links")
    (folder / "report.html").write_text("<p>old report</p>", encoding="utf-8")
    (folder / "my_notes.txt").write_text("mine, not residentview's", encoding="utf-8")
    return folder


def leftovers(tmp_path):
    return [p.name for p in tmp_path.iterdir() if "residentview-tmp" in p.name]


def test_success_replaces_written_files_and_keeps_the_others(tmp_path, previous_run):
    with staged_output(previous_run) as staging:
        (staging / "resident_links.parquet").write_bytes(b"new links")
        (staging / "residents.parquet").write_bytes(b"new residents")
    assert snapshot(previous_run) == {
        "my_notes.txt": "mine, not residentview's".encode(),
        "report.html": b"<p>old report</p>",
        "resident_links.parquet": b"new links",
        "residents.parquet": b"new residents",
    }
    assert leftovers(tmp_path) == []


def test_the_staging_folder_is_beside_the_target_not_inside_it(tmp_path, previous_run):
    with staged_output(previous_run) as staging:
        assert staging.parent == tmp_path.resolve()
        assert staging.name.startswith(".out.residentview-tmp-")


def test_a_failure_while_writing_leaves_previous_outputs_byte_identical(tmp_path, previous_run):
    before = snapshot(previous_run)
    with pytest.raises(RuntimeError, match="disk full"):
        with staged_output(previous_run) as staging:
            (staging / "resident_links.parquet").write_bytes(b"half-written")
            raise RuntimeError("disk full")
    assert snapshot(previous_run) == before
    assert leftovers(tmp_path) == []


def test_a_failure_with_no_previous_run_creates_no_output_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_output(tmp_path / "new") as staging:
            (staging / "residents.parquet").write_bytes(b"x")
            raise RuntimeError("boom")
    assert not (tmp_path / "new").exists()
    assert leftovers(tmp_path) == []


def test_a_failure_while_moving_into_place_puts_the_previous_outputs_back(tmp_path, previous_run, monkeypatch):
    before = snapshot(previous_run)
    real_replace = os.replace

    def replace_failing_on_report(source, destination):
        if str(source).endswith("report.html") and "residentview-tmp" in str(source) and ".replaced" not in str(source):
            raise OSError("device went away")
        return real_replace(source, destination)

    monkeypatch.setattr(outputs.os, "replace", replace_failing_on_report)
    with pytest.raises(OSError, match="device went away"):
        with staged_output(previous_run) as staging:
            (staging / "resident_links.parquet").write_bytes(b"new links")
            (staging / "report.html").write_text("new report", encoding="utf-8")
            (staging / "residents.parquet").write_bytes(b"new residents")
    assert snapshot(previous_run) == before
    assert leftovers(tmp_path) == []


def test_target_that_is_a_file_is_a_data_error(tmp_path):
    (tmp_path / "out").write_text("not a folder", encoding="utf-8")
    with pytest.raises(DataError, match="output path exists and is not a folder"):
        with staged_output(tmp_path / "out"):
            pass


def test_a_folder_where_an_output_file_goes_is_left_alone(tmp_path, previous_run):
    (previous_run / "residents.parquet").mkdir()
    (previous_run / "residents.parquet" / "keep.txt").write_text("analyst's", encoding="utf-8")
    before = snapshot(previous_run)
    with pytest.raises(DataError, match="residents.parquet: is a folder not written by residentview"):
        with staged_output(previous_run) as staging:
            (staging / "resident_links.parquet").write_bytes(b"new")
            (staging / "residents.parquet").write_bytes(b"new")
    assert snapshot(previous_run) == before


def test_nested_target_folders_are_created(tmp_path):
    with staged_output(tmp_path / "a" / "b" / "out") as staging:
        (staging / "model.json").write_text("{}", encoding="utf-8")
    assert (tmp_path / "a" / "b" / "out" / "model.json").read_text(encoding="utf-8") == "{}"


# One writer at a time ----------------------------------------------------------------------------
import json as _json  # noqa: E402
import socket  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from residentview.cli import main as _cli  # noqa: E402
from residentview.outputs import _lock_path, folder_lock  # noqa: E402


def hold_lock(folder, pid, command="link"):
    path = _lock_path(folder)
    path.write_text(_json.dumps({"pid": pid, "host": socket.gethostname(), "command": command,
                                 "started": "2026-12-03T02:00:00+00:00"}))
    return path


def test_a_second_writer_stops_naming_the_first_and_the_folder_is_untouched(linkable_pair):
    out = linkable_pair.parent / "out"
    assert CliRunner().invoke(_cli, ["link", str(linkable_pair), "--out", str(out)]).exit_code == 0
    before = snapshot(out)
    sleeper = _subprocess.Popen(["sleep", "30"])
    try:
        lock = hold_lock(out, sleeper.pid)
        for args in (["link", str(linkable_pair), "--out", str(out)], ["report", str(out)]):
            result = CliRunner().invoke(_cli, args)
            assert result.exit_code == 2, result.output
            assert f"process {sleeper.pid}" in result.output and "started 2026-12-03T02:00:00" in result.output
        assert lock.exists()  # still the other process's
    finally:
        sleeper.kill()
        sleeper.wait()
    assert snapshot(out) == before


def test_a_lock_left_by_a_dead_process_is_taken_over(linkable_pair):
    out = linkable_pair.parent / "out"
    dead = _subprocess.Popen(["true"])
    dead.wait()
    lock = hold_lock(out, dead.pid)
    result = CliRunner().invoke(_cli, ["link", str(linkable_pair), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "resident_links.parquet").is_file() and not lock.exists()


def test_the_same_process_can_take_its_own_lock_again(tmp_path):
    with folder_lock(tmp_path / "out", "outer"):
        with folder_lock(tmp_path / "out", "inner"):
            assert _lock_path(tmp_path / "out").exists()
        assert _lock_path(tmp_path / "out").exists()
    assert not _lock_path(tmp_path / "out").exists()


def test_decisions_imported_between_link_and_write_are_kept(linkable_pair, tmp_path):
    import pandas as pd

    import residentview as rv
    from residentview.review.apply import apply_decisions
    from residentview.review.store import read_store

    out = linkable_pair.parent / "out"
    rv.link(linkable_pair).write(out)
    result = rv.link(linkable_pair, previous=out)
    path = tmp_path / "d.csv"
    pd.DataFrame({"source_l": ["all"], "record_id_l": ["00001"], "source_r": ["all"], "record_id_r": ["00003"],
                  "decision": ["match"]}).to_csv(path, index=False)
    apply_decisions(out, path)
    result.write(out)
    assert read_store(out)["decision"].tolist() == ["match"]


def test_each_run_is_kept_in_the_run_history(linkable_pair):
    out = linkable_pair.parent / "out"
    for _ in range(2):
        assert CliRunner().invoke(_cli, ["link", str(linkable_pair), "--out", str(out)]).exit_code == 0
        time.sleep(1.1)  # run folders are named to the second
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        assert sorted(p.name for p in run.iterdir()) == ["report.html", "run.json"]
        stamp = _json.loads((run / "run.json").read_text())["run_timestamp"]
        assert run.name == pd.Timestamp(stamp).strftime("%Y%m%dT%H%M%SZ")
    assert (runs[-1] / "run.json").read_bytes() == (out / "run.json").read_bytes()

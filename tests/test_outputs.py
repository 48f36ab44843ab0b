"""Atomic outputs (CONTRACT §3): a run writes all its outputs or leaves the folder as it was, and
never touches files it did not write."""

from __future__ import annotations

import os

import pytest

from residentview import DataError
from residentview import outputs
from residentview.outputs import staged_output


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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

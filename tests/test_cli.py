"""The command line (CONTRACT §2): --help everywhere, exit codes 0 / 2 / 1, one line on stderr for
bad input, never a traceback unless --debug, and nothing but the summary on stdout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from helpers import snapshot

from residentview.cli import main

COMMANDS = ["init", "validate", "link", "update", "demo", "synth", "report", "review", "explain", "audit", "publish"]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]




# Help and usage -------------------------------------------------------------------------------

def test_top_level_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: residentview {command}" in result.stdout


def test_no_arguments_shows_the_help():
    result = run()
    assert result.exit_code == 0
    assert "Usage: residentview" in result.stdout


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert "residentview" in result.stdout


def test_missing_argument_is_one_line_exit_2():
    line = assert_one_line_error(run("link"))
    assert line.startswith("error: Missing argument 'CONFIG'.")
    assert "--help" in line


def test_unknown_command_is_one_line_exit_2():
    line = assert_one_line_error(run("lnik"))
    assert "No such command 'lnik'" in line


def test_unknown_option_is_one_line_exit_2(tmp_path):
    line = assert_one_line_error(run("link", tmp_path / "c.yaml", "--outt", "x"))
    assert "No such option '--outt'" in line


# validate -------------------------------------------------------------------------------------

@pytest.fixture
def small_config(tmp_path, write_config):
    (tmp_path / "register.csv").write_text(
        "ref,forename,surname,dob\n001,Ann,Lee,03/02/1990\n002,Bob,Khan,1985-11-30\n", encoding="utf-8"
    )
    return write_config({"name": "small", "sources": {"register": {
        "path": "register.csv", "id": "ref",
        "fields": {"first_name": "forename", "last_name": "surname", "date_of_birth": "dob"}}}})


def test_validate_ok_prints_counts_but_no_personal_data(small_config):
    result = run("validate", small_config)
    assert result.exit_code == 0, result.output
    assert "OK (1 source)" in result.stdout
    assert "register: 2 records, encoding utf-8; fields: first_name, last_name, date_of_birth" in result.stdout
    for personal in ("Ann", "Lee", "Khan", "1990", "001"):
        assert personal not in result.output


def test_validate_says_the_memory_a_run_expects_and_stops_where_link_would(small_config):
    result = run("validate", small_config)
    assert "  memory: about 875 MB expected at the run's peak\n" in result.stdout
    config = yaml.safe_load(small_config.read_text(encoding="utf-8"))
    small_config.write_text(yaml.safe_dump({**config, "memory_limit": "1MB"}), encoding="utf-8")
    line = assert_one_line_error(run("validate", small_config))
    assert line.startswith(f"error: {small_config}: 2 records are expected to need about 875 MB of memory, more than "
                           "the 1 MB memory_limit 1MB allows")


def test_validate_on_spark_says_the_drivers_memory_beside_its_jvm(small_config):
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'residentview[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: validate --engine spark checks for one")
    config = yaml.safe_load(small_config.read_text(encoding="utf-8"))
    small_config.write_text(yaml.safe_dump({**config, "memory_limit": "8GB"}), encoding="utf-8")
    result = run("validate", small_config, "--engine", "spark")  # as `link --engine spark` will run
    assert result.exit_code == 0, result.output
    assert ("  memory: about 588 MB expected in the Spark driver's Python process at its peak, beside a 3.2 GB JVM "
            "heap (memory_limit 8GB)\n") in result.stdout
    small_config.write_text(yaml.safe_dump({**config, "engine": "spark", "memory_limit": "2GB"}), encoding="utf-8")
    line = assert_one_line_error(run("validate", small_config))
    assert "in the Spark driver's Python process" in line and "beside the 2.1 GB of the driver's JVM" in line


def test_validate_bad_config_is_one_line_exit_2(write_config):
    path = write_config({"name": "x", "sources": {"my source": {}}})
    line = assert_one_line_error(run("validate", path))
    assert line == (
        f"error: {path}: sources: source name 'my source' is not allowed; "
        "expected letters, digits and '_', starting with a letter"
    )


def test_validate_missing_config_file_is_exit_2(tmp_path):
    line = assert_one_line_error(run("validate", tmp_path / "nope.yaml"))
    assert line.endswith("nope.yaml: config file not found")


def test_validate_missing_column_is_one_line_exit_2(tmp_path, write_config):
    (tmp_path / "p.csv").write_text("ref,Forename\n1,Ann\n", encoding="utf-8")
    path = write_config({"name": "x", "sources": {"register": {"path": "p.csv", "id": "ref", "fields": {"first_name": "forename"}}}})
    line = assert_one_line_error(run("validate", path))
    assert "source register: column(s) 'forename' not found; the file has: 'ref', 'Forename'" in line


BAD_FILES = {
    "empty.csv": b"",
    "header_only.csv": b"ref,forename\n",
    "duplicates.csv": b"ref,forename\n1,Ann\n1,Bob\n",
    "blank_id.csv": b"ref,forename\n,Ann\n",
    "ragged.csv": b"ref,forename\n1,Ann,x,y\n",
    "undecodable.csv": b"ref,forename\n1,Ann\x81\n",
    "not_parquet.parquet": b"PAR1 but not really",
    "not_excel.xlsx": b"PK\x03\x04 but not really",
}


@pytest.mark.parametrize("name", [*BAD_FILES, "missing.csv"])
def test_bad_source_files_are_one_line_exit_2(tmp_path, write_config, name):
    if name in BAD_FILES:
        (tmp_path / name).write_bytes(BAD_FILES[name])
    path = write_config({"name": "x", "sources": {"register": {"path": name, "id": "ref", "fields": {"first_name": "forename"}}}})
    line = assert_one_line_error(run("validate", path))
    assert line.startswith("error: ")
    assert name in line or "no records in any source" in line


def test_debug_shows_the_traceback_of_a_bad_input_error(write_config):
    path = write_config({"name": "x"})
    result = run("--debug", "validate", path)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


# Unexpected errors ----------------------------------------------------------------------------

def explode(*args, **kwargs):
    raise RuntimeError("secret value SMITH 1990-02-03")


def test_unexpected_error_is_exit_1_with_debug_hint_and_no_data(small_config, monkeypatch):
    monkeypatch.setattr("residentview.pipeline.standardise", explode)
    result = run("link", small_config)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    line = assert_one_line_error(result, code=1)
    assert line.startswith("unexpected error: RuntimeError")
    assert line.endswith("Rerun with --debug for the traceback.")
    assert "SMITH" not in result.output


def test_unexpected_error_names_the_residentview_module_it_came_from(small_config, monkeypatch):
    def fail_inside_residentview(*args, **kwargs):
        from residentview.fields import identifier_column

        identifier_column(None)  # AttributeError raised within residentview.fields

    monkeypatch.setattr("residentview.pipeline.standardise", fail_inside_residentview)
    line = assert_one_line_error(run("link", small_config), code=1)
    assert line.startswith("unexpected error: AttributeError in residentview.fields (line ")


def test_disk_errors_are_described(small_config, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", "/data/out")

    monkeypatch.setattr("residentview.pipeline.standardise", disk_full)
    line = assert_one_line_error(run("link", small_config), code=1)
    assert line.startswith("unexpected error: OSError: No space left on device: /data/out.")


def test_debug_shows_the_traceback_of_an_unexpected_error(small_config, monkeypatch):
    monkeypatch.setattr("residentview.pipeline.standardise", explode)
    result = run("--debug", "link", small_config)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "RuntimeError" in result.stderr


def test_debug_is_accepted_after_the_command_too(small_config, monkeypatch):
    monkeypatch.setattr("residentview.pipeline.standardise", explode)
    result = run("link", small_config, "--debug")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


# link, end to end -----------------------------------------------------------------------------

def test_link_with_sources_named_all_and_select_writes_every_output(linkable_pair):
    result = run("link", linkable_pair)
    assert result.exit_code == 0, result.output
    out = linkable_pair.parent / "out"
    for name in ("resident_links.parquet", "residents.parquet", "report.html", "model.json"):
        assert (out / name).is_file(), name
    links = pd.read_parquet(out / "resident_links.parquet")
    assert len(links) == 45
    assert not links.duplicated(["source", "record_id"]).any()
    assert set(links["source"]) == {"all", "select"}
    assert "00007" in set(links["record_id"])  # leading zeros kept
    assert links.groupby("resident_id")["source"].nunique().max() == 2  # linked across the two
    assert result.stdout.splitlines()[0].startswith("45 records from 2 sources -> ")
    assert "INFO" not in result.stderr


def test_failed_link_leaves_previous_outputs_byte_identical(linkable_pair, monkeypatch):
    out = linkable_pair.parent / "out"
    out.mkdir()
    (out / "analyst_notes.txt").write_text("keep me", encoding="utf-8")
    assert run("link", linkable_pair).exit_code == 0
    before = snapshot(out)

    def failing_report(*args, **kwargs):
        raise RuntimeError("report writer failed")

    monkeypatch.setattr("residentview.report.write_report", failing_report)
    result = run("link", linkable_pair)
    assert result.exit_code == 1
    assert snapshot(out) == before
    assert (out / "analyst_notes.txt").read_text(encoding="utf-8") == "keep me"
    assert not [p for p in out.parent.iterdir() if "residentview-tmp" in p.name]


def test_quiet_link_prints_nothing_on_stdout(linkable_pair, tmp_path):
    result = run("--quiet", "link", linkable_pair, "--out", tmp_path / "elsewhere")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert (tmp_path / "elsewhere" / "resident_links.parquet").is_file()


# Output paths are checked before any work -------------------------------------------------------

def _no_reading(*args, **kwargs):
    raise AssertionError("the sources were read before the output path was checked")


def test_out_inside_a_file_stops_before_reading_anything(linkable_pair, tmp_path, monkeypatch):
    monkeypatch.setattr("residentview.pipeline.read_sources", _no_reading)
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    line = assert_one_line_error(run("link", linkable_pair, "--out", tmp_path / "notes.txt" / "out"))
    assert line == (f"error: {tmp_path / 'notes.txt' / 'out'}: cannot be an output folder, "
                    f"{tmp_path / 'notes.txt'} is a file; expected a folder or a new path")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_an_output_in_the_config_that_is_a_file_stops_before_reading_anything(tmp_path, write_config):
    (tmp_path / "out").write_text("mine", encoding="utf-8")
    config = write_config({"name": "x", "output": "out", "sources": {"register": {
        "path": "not_there_yet.csv", "id": "ref", "fields": {"first_name": "forename"}}}})
    for command in ("link", "update"):
        line = assert_one_line_error(run(command, config))
        assert line.endswith("out: output path exists and is not a folder; expected a folder or a new path")


def test_demo_into_a_file_stops_before_generating_anything(tmp_path):
    (tmp_path / "demo").write_text("mine", encoding="utf-8")
    line = assert_one_line_error(run("demo", "--out", tmp_path / "demo" / "x", "--records", "50"))
    assert "is a file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


# Splink's chatter from Python ----------------------------------------------------------------------

def test_python_link_keeps_splinks_warnings_off_stderr(linkable_pair):
    code = f"import residentview as rv; r = rv.link({str(linkable_pair)!r}); print(len(r.links))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "45"
    for chatter in ("not observed in dataset", "max_pairs", "WARNING:"):
        assert chatter not in done.stderr


def test_splink_warnings_are_dropped_only_when_logging_is_not_configured(capsys, monkeypatch):
    import logging

    from residentview.logging_setup import splink_errors_only

    splink = logging.getLogger("splink.internals.test")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as a plain `python` or script starts
    with splink_errors_only():
        splink.warning("Level Initial not observed in dataset")
        splink.error("a real problem")
    splink.warning("after the block: Python's own default again")
    err = capsys.readouterr().err
    assert "not observed" not in err
    assert "a real problem" in err and "after the block" in err


def test_configured_logging_still_gets_splinks_warnings(caplog):
    import logging

    from residentview.logging_setup import splink_errors_only

    with caplog.at_level(logging.WARNING), splink_errors_only():  # pytest's handler is on the root
        logging.getLogger("splink.internals.test").warning("Level Initial not observed in dataset")
    assert "not observed" in caplog.text


# The real entry point -------------------------------------------------------------------------

def entry_point() -> str:
    return str(Path(sys.executable).parent / "residentview")


def test_installed_command_reports_a_bad_config_in_one_line(write_config):
    path = write_config({"name": "x", "sources": {"register": {"path": "p.csv", "id": "ref", "fields": {"frist_name": "f"}}}})
    done = subprocess.run([entry_point(), "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "sources.register.fields.frist_name: unknown field 'frist_name'" in done.stderr


def test_installed_link_in_a_pipe_prints_only_the_summary(linkable_pair):
    done = subprocess.run([entry_point(), "link", str(linkable_pair)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ")[0] for line in done.stdout.splitlines()] == ["45", "outputs", ""]
    assert "INFO" not in done.stderr
    assert "Estimating" not in done.stderr and "probability_two_random_records_match" not in done.stderr
    assert "\x1b[" not in done.stdout + done.stderr  # no progress bar or colour codes in a pipe


# Progress ----------------------------------------------------------------------------------

def test_progress_bar_goes_to_stderr_never_stdout(capsys):
    from residentview.progress import pipeline_progress

    with pipeline_progress(2, enabled=True) as step:
        step("reading sources")
        step("linking")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "2/2" in captured.err


def test_progress_is_silent_when_disabled(capsys):
    from residentview.progress import pipeline_progress

    with pipeline_progress(2, enabled=False) as step:
        step("reading sources")
    assert capsys.readouterr() == ("", "")


def test_link_of_a_handful_of_records_with_odd_column_names_says_once_it_could_not_train(tmp_path, write_config):
    rows = [("1", "Smith", "John", "1980-01-02"), ("2", "Smith", "Jon", "1980-01-02"), ("3", "Jones", "Mary", "")]
    columns = ['i"d', 'sur"name', "first name", "select"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame([("b1", "Jones", "Mary", "")], columns=columns).to_csv(tmp_path / "b.csv", index=False)
    fields = {"last_name": 'sur"name', "first_name": "first name", "date_of_birth": "select"}
    config = write_config({"name": "tiny", "sources": {
        name: {"path": f"{name}.csv", "id": 'i"d', "fields": fields} for name in ("a", "b")}})
    result = run("link", config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "too few records to train (4, fewer than" in warnings[0]
    links = pd.read_parquet(tmp_path / "out" / "resident_links.parquet")
    assert sorted(zip(links["source"], links["record_id"])) == [("a", "1"), ("a", "2"), ("a", "3"), ("b", "b1")]
    assert not links.duplicated(["source", "record_id"]).any() and links["resident_id"].notna().all()
    import json
    fallbacks = json.loads((tmp_path / "out" / "run.json").read_text())["diagnostics"]["fallbacks"]
    assert fallbacks[0].startswith("too few records to train")


# Interruption (CONTRACT §10) --------------------------------------------------------------------
import shutil  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

CLI = Path(sys.executable).with_name("residentview")


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory):
    """A demo run (its config and output folder), and how long linking it again takes."""
    from residentview.demo import run_demo

    base = tmp_path_factory.mktemp("interrupt")
    _, folder, config = run_demo(base, records=1500, progress=False)
    started = time.perf_counter()
    subprocess.run([str(CLI), "--quiet", "link", str(config), "--out", str(folder)], check=True)
    return config, folder, time.perf_counter() - started


def signalled_run(config: Path, folder: Path, signum: int, after: float) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        [str(CLI), "link", str(config), "--out", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(after)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("moment", [0.1, 0.4, 0.7])
def test_ctrl_c_or_sigterm_at_any_moment_leaves_the_previous_outputs_exactly_as_they_were(
        previous_run, tmp_path, signum, code, word, moment):
    config, folder, seconds = previous_run
    copy = tmp_path / "output"
    shutil.copytree(folder, copy)
    before = snapshot(copy)
    result = signalled_run(config, copy, signum, after=moment * seconds)
    finished = "report: " in result.stdout  # the outputs were in place when the signal came
    if result.returncode == 0 or (finished and result.returncode == -signum):  # killed on its way out
        pytest.skip(f"the run finished within {moment * seconds:.1f} s")
    assert result.returncode == code, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"{word} (")
    assert "Traceback" not in result.stderr
    assert snapshot(copy) == before
    assert not [p for p in tmp_path.iterdir() if "residentview-tmp" in p.name]  # no staging left behind


def test_an_interrupted_demo_leaves_no_half_written_extracts(tmp_path):
    process = subprocess.Popen([str(CLI), "demo", "--out", str(tmp_path / "demo"), "--records", "20000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    data = tmp_path / "demo" / "data"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("residentview-tmp" in p.name for p in (tmp_path / "demo").glob("*")
                                                  if (tmp_path / "demo").is_dir()):
        time.sleep(0.05)  # until the extracts are being written
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    extracts = sorted(["adult_social_care.csv", "children_services.xlsx", "council.yaml", "council_tax.csv",
                       "electoral_register.csv", "housing_benefit.parquet", "school_census.csv", "truth.parquet"])
    if data.exists():  # the two dates' extracts and the events between, all or none
        assert sorted(p.name for p in data.iterdir()) == ["earlier", "events_truth.parquet", "later"]
        for folder in ("earlier", "later"):
            assert sorted(p.name for p in (data / folder).iterdir()) == extracts
    assert not [p for p in (tmp_path / "demo").glob("*") if "residentview-tmp" in p.name]


def test_a_signal_within_a_held_step_stops_the_command_when_the_step_ends_or_at_a_second():
    """`interrupts.held`, around starting Spark: a first signal is kept until the step ends, a
    second one stops the command at once, and a library's handler set meanwhile is replaced."""
    import os

    from residentview import interrupts

    restore = interrupts.install()
    try:
        finished = False
        with pytest.raises(interrupts.Terminated):
            with interrupts.held():
                os.kill(os.getpid(), signal.SIGTERM)
                signal.signal(signal.SIGINT, signal.default_int_handler)  # as PySpark's SparkContext does
                finished = True
        assert finished and interrupts.received() == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.getsignal(signal.SIGTERM)  # ours again

        interrupts._received = None
        reached = False
        with pytest.raises(KeyboardInterrupt):
            with interrupts.held():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
                reached = True
        assert not reached
    finally:
        restore()
        interrupts._received = None


def test_a_signal_landing_in_a_finaliser_prints_no_traceback(monkeypatch):
    """Py4J releases JVM objects in weakref callbacks: a Ctrl-C raised there cannot leave it and
    Python would print its traceback. It is kept quiet (and remembered by the handler); any
    other finaliser's error still goes to the hook that was there before."""
    import gc

    from residentview import interrupts

    class Dying:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: reported.append(type(report.exc_value)))
    restore = interrupts.install()
    try:
        Dying(KeyboardInterrupt())
        Dying(interrupts.Terminated())
        Dying(ValueError("a finaliser's own error"))
        gc.collect()
    finally:
        restore()
    assert reported == [ValueError]


@pytest.mark.parametrize("command", ["validate", "link", "update"])
def test_spark_path_on_duckdb_is_one_line_before_any_work(linkable_pair, command, tmp_path):
    import yaml

    data = yaml.safe_load(linkable_pair.read_text(encoding="utf-8"))
    data["output"] = {"folder": "out", "spark_path": (tmp_path / "lake").as_uri()}
    linkable_pair.write_text(yaml.safe_dump(data), encoding="utf-8")
    line = assert_one_line_error(run(command, linkable_pair))  # engine: duckdb, the default
    assert line.endswith("output.spark_path needs engine: spark (or --engine spark); the files are written "
                         "there through Spark's file systems")
    assert not (tmp_path / "out").exists() and not (tmp_path / "lake").exists()

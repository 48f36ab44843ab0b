"""The `residentview` command line (CONTRACT §2). Thin: parse arguments, call the pipeline.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 1 unexpected failure
(a message and a hint to rerun with --debug).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from functools import wraps
from pathlib import Path

import click

from residentview import interrupts
from residentview.errors import ConfigError, ResidentViewError
from residentview.logging_setup import DropLibraryChatter

EXIT_BAD_INPUT = 2
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: `kill`, a scheduler's stop, a container shutting down
DEBUG_HINT = "Rerun with --debug for the traceback."
UNTOUCHED = "the output folder is exactly as it was before this command"


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def handles_errors(func):
    """Turn our errors into one line + exit 2, anything else into a hint + exit 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        debug = bool(click.get_current_context().find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except ResidentViewError as exc:
            if debug:
                traceback.print_exc()
            _fail(f"error: {exc}", EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (KeyboardInterrupt, interrupts.Terminated):
            _stopped()
        except Exception as exc:  # the last line of defence: never a raw traceback
            if interrupts.received() is not None:  # a signal that came back as a library's error
                _stopped()
            if debug:
                traceback.print_exc()
                _fail(f"unexpected error: {_describe_unexpected(exc)}", EXIT_UNEXPECTED)
            _fail(f"unexpected error: {_describe_unexpected(exc)}. {DEBUG_HINT}", EXIT_UNEXPECTED)

    return wrapper


_own_process = False  # set when the command line is this process's own (not a caller's runner)


def _stopped() -> None:
    if interrupts.received() == signal.SIGTERM:
        message, code = f"terminated (SIGTERM); {UNTOUCHED}", EXIT_TERMINATED
    else:
        message, code = f"interrupted (Ctrl-C); {UNTOUCHED}", EXIT_INTERRUPTED
    if not _own_process:
        _fail(message, code)
    # Every output is already back as it was (the stages' `finally` blocks have run). Leave now:
    # a library's native worker thread still running when the interpreter finalises can abort
    # the process (SIGABRT, "terminate called without an active exception") and lose the exit code.
    click.echo(message, err=True)
    interrupts.remove_temporary_folders()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _describe_unexpected(exc: BaseException) -> str:
    """The exception's type and where in residentview it surfaced, but not its text: that can
    quote data values (names, dates of birth). System errors (disk full, permissions) are safe
    and useful to show."""
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError); try a machine with more memory or fewer records"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{where}"
    package = Path(__file__).resolve().parent
    ours = [
        (Path(f.filename).resolve(), f.lineno) for f in traceback.extract_tb(exc.__traceback__)
        if Path(f.filename).resolve().is_relative_to(package)
    ]
    if not ours:
        return type(exc).__name__
    path, line = ours[-1]
    module = ".".join(("residentview", *path.relative_to(package).with_suffix("").parts))
    return f"{type(exc).__name__} in {module.removesuffix('.__init__')} (line {line})"


class _OneLineErrors(click.Group):
    """Usage errors (a missing argument, an unknown option) as one line on stderr, exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        global _own_process
        _own_process = args is None  # the `residentview` command itself, not a test's CliRunner
        args = _global_flags_first(sys.argv[1:] if args is None else list(args))
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare `residentview` asks for help
            click.echo(exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "residentview"
            _fail(f"error: {exc.format_message()} (see '{command} --help')", exc.exit_code)
        except click.ClickException as exc:
            _fail(f"error: {exc.format_message()}", exc.exit_code)
        except click.Abort:
            _fail("aborted", EXIT_UNEXPECTED)
        sys.exit(code if isinstance(code, int) else 0)


GLOBAL_FLAGS = ("--debug", "--quiet", "-q")


def _global_flags_first(args: list[str]) -> list[str]:
    """Accept `residentview link CONFIG --debug` as well as `residentview --debug link CONFIG`:
    the error hint says "rerun with --debug", and people add it at the end."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]


def _configure_logging(debug: bool, quiet: bool):
    """Route log records to stderr for one command; returns a function that undoes it (so a
    notebook or test that invokes the CLI in-process keeps its own logging setup)."""
    root, splink, py_warnings = logging.getLogger(), logging.getLogger("splink"), logging.getLogger("py.warnings")
    saved_levels = [(logger, logger.level) for logger in (root, splink, py_warnings)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else (logging.ERROR if quiet else logging.WARNING))
    if not debug:  # only Splink's errors, nothing of Py4J's; all of it with --debug
        handler.addFilter(DropLibraryChatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    # Splink's Linker may set its logger to INFO; records then propagate to the handler above,
    # whose level and filter decide what is shown.
    splink.setLevel(logging.DEBUG if debug else logging.ERROR)
    # pandas/Splink warnings are for developers; --debug shows them
    logging.captureWarnings(True)
    py_warnings.setLevel(logging.DEBUG if debug else logging.ERROR)

    def restore() -> None:
        root.removeHandler(handler)
        for logger, level in saved_levels:
            logger.setLevel(level)
        logging.captureWarnings(False)

    return restore


@click.group(name="residentview", cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
@click.option("--quiet", "-q", is_flag=True, help="Only print errors (no summary, no progress bar).")
@click.version_option(package_name="residentview", prog_name="residentview")
@click.pass_context
def main(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """residentview: a single resident view from a council's system extracts.

    \b
    Quick start:
      residentview demo                 synthetic council extracts -> the whole pipeline
      residentview init FOLDER          draft a config from the extracts in FOLDER
      residentview validate CONFIG      check a config and read every source
      residentview link CONFIG          link the sources and write the outputs

    Exit codes: 0 success, 2 bad input (config, data, arguments), 1 unexpected failure,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM): the output folder is then as it was.
    """
    ctx.call_on_close(_configure_logging(debug, quiet))
    ctx.call_on_close(interrupts.install())


def _quiet() -> bool:
    return bool(click.get_current_context().find_root().params.get("quiet"))


def _say(message: str = "") -> None:
    """The summary on stdout; nothing else goes there."""
    if not _quiet():
        click.echo(message)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _summarise(result, folder: Path) -> None:
    links = result.links
    _say(
        f"{len(links):,} records from {_count(len(result.summaries), 'source')} -> "
        f"{links['resident_id'].nunique():,} residents, {len(result.households):,} households"
    )
    _say(f"outputs written to {folder}")
    _say(f"  report: {folder / 'report.html'}")


@main.command(name="init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="The config file to write (default: FOLDER/residentview.yaml).")
@click.option("--force", is_flag=True, help="Overwrite the config file if it exists.")
@handles_errors
def init_command(folder: Path, out: Path | None, force: bool) -> None:
    """Draft a config from the extracts in FOLDER (.csv, .xlsx sheets, .parquet): which column
    is which field, guessed from names and values, each guess commented with its evidence.

    Check the guesses, then `residentview validate` and `residentview link` the file."""
    from residentview.init import init_config

    written, draft = init_config(folder, out, force=force)
    _say(f"wrote {written}: {_count(len(draft.usable), 'source')} to check")
    for source in draft.sources:
        if source.usable:
            _say(f"  {source.name}: {source.table.label}, id {source.id.column}; "
                 f"{_count(len(source.mapped()), 'field')} guessed, {_count(len(source.unmapped()), 'column')} left unmapped")
        else:
            _say(f"  {source.table.label}: left out ({source.why_not()}); its guesses are in the file, commented out")
    for note in draft.skipped:
        _say(f"  {note}")
    _say(f"next: check the guesses in {written}, then `residentview validate {written}`")


ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["duckdb", "spark"]),
    help="Where the stages run (overrides the config's `engine`): duckdb, or spark (the `spark` extra).")


def with_engine(cfg, engine: str | None):
    """The config with `--engine` in force, PySpark and Java checked before any work."""
    from residentview.engines.spark.outputs import check_spark_path

    if engine is not None:
        cfg = cfg.model_copy(update={"engine": engine})
    check_spark_path(cfg)
    if cfg.engine == "spark":
        from residentview.engines.spark.session import require_java, require_pyspark

        require_pyspark()
        require_java()
    return cfg


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@ENGINE_OPTION
@handles_errors
def validate(config: Path, engine: str | None) -> None:
    """Check CONFIG and read every source; print a per-source summary (counts only, no personal data).

    Exit code 0 when every source reads cleanly, 2 with a one-line message when not.
    """
    import pandas as pd

    from residentview.config import load_config
    from residentview.sources import read_sources
    from residentview.standardise import standardise

    from residentview.engines.spark.outputs import check_spark_path
    from residentview.resident_view.to_database import check_output_database, label

    # The config alone first: spark_path on DuckDB, or Spark without Java, is a mistake to say now.
    cfg = with_engine(load_config(config), engine)
    raw, summaries = read_sources(cfg)
    memory = _memory_checked(cfg, len(raw))
    quality = standardise(raw, cfg).quality
    check_output_database(cfg.output_database)
    check_spark_path(cfg, reach=True)
    _say(f"config {config}: OK ({_count(len(summaries), 'source')})")
    _say(f"  {memory}")
    if cfg.output_database is not None:
        _say(f"  {label(cfg.output_database)}: connected")
    if cfg.spark_path is not None:
        _say("  output.spark_path: writable")
    for s in summaries:
        encoding = f", encoding {s.encoding}" if s.encoding else ""
        _say(f"  {s.source}: {s.n_records:,} records{encoding}; fields: {', '.join(s.fields)}")
        if s.retention is not None:
            _say(f"    {s.n_past_retention:,} past the retention of {s.retention}, left out")
        for warning in s.warnings:
            _say(f"    warning: {warning}")
    if len(quality) and {"source", "field", "completeness"} <= set(quality.columns):
        _say("data quality (completeness / valid share of present values):")
        for source, group in quality.groupby("source", sort=False):
            parts = []
            for row in group.itertuples():
                valid = ""
                if getattr(row, "n_present", 0) and hasattr(row, "n_valid"):
                    valid = f"/{row.n_valid / row.n_present:.0%}"
                completeness = "-" if pd.isna(row.completeness) else f"{row.completeness:.0%}"
                parts.append(f"{row.field} {completeness}{valid}")
            _say(f"  {source}: " + ", ".join(parts))


def _memory_checked(cfg, n_records: int) -> str:
    """What `link` checks after reading, checked the same way (a run it would stop stops
    `validate` too), and what it expects, in a line."""
    from residentview.memory import (
        check_driver_memory, check_memory, described, expected_driver_peak, expected_peak,
    )

    limit = f" (memory_limit {cfg.memory_limit})" if cfg.memory_limit is not None else ""
    if cfg.engine == "spark":
        from residentview.engines.spark.session import jvm_memory_mb

        heap = jvm_memory_mb(cfg.memory_limit) * 2**20  # the heap `link` starts its session with
        check_driver_memory(n_records, cfg.memory_limit, cfg.label, heap)
        return (f"memory: about {described(expected_driver_peak(n_records))} expected in the Spark driver's "
                f"Python process at its peak, beside a {described(heap)} JVM heap{limit}")
    check_memory(n_records, cfg.memory_limit, cfg.label)
    return f"memory: about {described(expected_peak(n_records))} expected at the run's peak{limit}"


@main.command(name="link")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: the config's `output`, else residentview-output/ beside it).")
@click.option("--previous", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A previous run's output folder to carry resident ids over from "
                   "(default: the output folder, when it holds a previous run).")
@ENGINE_OPTION
@handles_errors
def link_command(config: Path, out: Path | None, previous: Path | None, engine: str | None) -> None:
    """Link the sources in CONFIG and write resident_links, residents, households, report…

    Outputs are written all at once: a failed run leaves the output folder as it was.
    """
    from residentview.config import load_config
    from residentview.outputs import folder_lock
    from residentview.pipeline import link

    from residentview.resident_view.to_database import check_output_database

    cfg = with_engine(load_config(config), engine)
    folder = cfg.output_dir(out)
    check_output_database(cfg.output_database)  # now, not after the linking
    with folder_lock(folder, "link"):  # from reading its decisions to writing them back
        result = link(cfg, previous=previous or folder, progress=False if _quiet() else None)
        result.write(folder)
    _summarise(result, folder)


@main.command(name="update")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder holding the previous run (default: the config's output).")
@click.option("--retrain", is_flag=True, help="Run a full link instead, training the model afresh.")
@ENGINE_OPTION
@handles_errors
def update_command(config: Path, out: Path | None, retrain: bool, engine: str | None) -> None:
    """Link only what changed in CONFIG's sources since the run in the output folder.

    New and changed records are scored with the previous run's model; only the residents they
    touch are clustered again. Outputs are written all at once, as by link.
    """
    from residentview.config import load_config
    from residentview.incremental import update
    from residentview.outputs import folder_lock
    from residentview.pipeline import has_previous_run, link

    from residentview.resident_view.to_database import check_output_database

    cfg = with_engine(load_config(config), engine)
    folder = cfg.output_dir(out)
    check_output_database(cfg.output_database)  # now, not after the linking
    show = False if _quiet() else None
    with folder_lock(folder, "update"):
        if retrain:
            result = link(cfg, previous=folder if has_previous_run(folder) else None, progress=show)
        else:
            result = update(cfg, out=folder, progress=show)
        result.write(folder)
    _summarise(result, folder)
    if not retrain:
        _summarise_update(result.diagnostics["update"])


def _summarise_update(update: dict) -> None:
    counts = update["records"]
    _say(f"update: {counts['new']:,} new, {counts['changed']:,} changed, {counts['removed']:,} removed and "
         f"{counts['unchanged']:,} unchanged records; {update['records_reclustered']:,} records re-clustered")
    drift = update["drift"]
    if drift["retrain_recommended"]:
        _say("  a full run is recommended (`residentview update --retrain`): " + "; ".join(drift["reasons"]))


@main.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"),
              show_default=True, help="Folder for the synthetic extracts and the outputs.")
@click.option("--records", type=click.IntRange(min=50), default=20_000, show_default=True,
              help="Roughly how many source records to generate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed for the synthetic data.")
@handles_errors
def demo(out: Path, records: int, seed: int) -> None:
    """Synthetic council extracts at two dates: link the earlier, then update with the later."""
    from residentview.demo import run_demo

    result, folder, config_path = run_demo(out, records=records, seed=seed, progress=False if _quiet() else None)
    _say(f"synthetic extracts at two dates, a year apart: {config_path.parent.parent}")
    _say("the earlier extracts were linked, then the later ones brought in by `residentview update`:")
    _summarise(result, folder)
    _summarise_update(result.diagnostics["update"])
    events = result.view.events_this_run()
    if events:
        _say("  life events this year: " + ", ".join(f"{n:,} {kind}" for kind, n in events.items()))
    _say("  the report measures the matching and the events against the synthetic truth")


@main.command()
@click.option("--people", type=click.IntRange(min=1), default=10_000, show_default=True, help="Size of the synthetic population.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the extracts.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed for the synthetic data.")
@handles_errors
def synth(people: int, out: Path, seed: int) -> None:
    """Write synthetic council extracts, a config and truth.parquet to OUT."""
    from residentview.synthetic import generate

    written = generate(people=people, out=out, seed=seed)
    _say(f"wrote {written.n_records:,} records for {people:,} people to {out}")
    _say(f"  config: {written.config_path}")


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Ground truth (source, record_id, person_id) to measure precision and recall.")
@click.option("--events-truth", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="True life events (person_id, event) to measure the events against; needs --labels.")
@handles_errors
def report(outdir: Path, labels: Path | None, events_truth: Path | None) -> None:
    """Rebuild report.html and review_queue.csv from a run's output folder."""
    from residentview.report import rebuild_report

    path = rebuild_report(outdir, labels=labels, events_truth=events_truth)
    _say(f"report: {path}")


@main.command(name="publish")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--by", "by", required=True,
              help="Columns to count by, comma-separated: source, sources, age_band, sex, postcode_district, "
                   "household_size.")
@click.option("--min-count", type=int, default=10, show_default=True,
              help="Smallest count published; smaller ones, and others they could be worked out from, are [c].")
@click.option("--round", "round_to", type=int, help="Round published counts and totals to this base (e.g. 5).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CSV file to write.")
@handles_errors
def publish_command(outdir: Path, by: str, min_count: int, round_to: int | None, out: Path) -> None:
    """Counts of OUTDIR's residents by the --by columns, with totals, safe to publish (GSS
    disclosure control: threshold rule and complementary suppression, checked by linear
    programming). No names, dates of birth or ids are written."""
    from residentview.publish import publish, record_publication, write_csv

    publication = publish(outdir, by, min_count=min_count, round_to=round_to)
    write_csv(publication.frame, out)
    record_publication(outdir, publication, by, min_count, round_to, out)
    _say(f"{len(publication.frame):,} cells counting {_count(publication.n_residents, 'resident')} by {by}, "
         f"{publication.n_suppressed:,} suppressed ([c]) -> {out}")


@main.command(name="encode")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The secret shared with the other organisation (a private file; never written anywhere).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The encoded file to write (.parquet).")
@handles_errors
def encode_command(config: Path, key_file: Path, out: Path) -> None:
    """Encode CONFIG's standardised records under the key in --key-file, for `link-encoded`:
    per record a Bloom filter of its names, date of birth, postcode, house number and sex;
    balanced, noisy filters of its whole name (with nickname aliases), of the name swapped and
    of the name it may be known by; keyed tokens of its identifiers, address and date of birth
    pieces and sex; keyed blocking keys; first-initial buckets and child or adult. No clear
    value is written: only each record's source and record id beside these."""
    from residentview.config import load_config
    from residentview.keys import read_key
    from residentview.pprl import encode_records, write_encoded
    from residentview.sources import read_sources
    from residentview.standardise import standardise

    cfg = load_config(config)
    key = read_key(key_file, config_text=Path(config).read_text(encoding="utf-8", errors="replace"), others=[config])
    raw, _ = read_sources(cfg)
    encoded = encode_records(standardise(raw, cfg).records, key, organisation=cfg.name)
    write_encoded(encoded, out)
    _say(f"{len(encoded.frame):,} records of {cfg.name} encoded under key {encoded.metadata['key_fingerprint']} -> {out}")


@main.command(name="link-encoded")
@click.argument("left", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("right", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder for resident_links.parquet and pprl_summary.json.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Dice coefficient at which two encodings link (default: measured on the benchmark, 0.8).")
@handles_errors
def link_encoded_command(left: Path, right: Path, out: Path, threshold: float | None) -> None:
    """Link two organisations' encoded files (from `residentview encode` under one shared key)
    and write resident_links.parquet, one row per record of either, and pprl_summary.json."""
    from residentview.pprl import link_encoded, read_encoded
    from residentview.pprl.linking import DEFAULT_THRESHOLD, write_links

    result = link_encoded(read_encoded(left), read_encoded(right), threshold=threshold or DEFAULT_THRESHOLD,
                          names=(str(left), str(right)))
    write_links(result, out)
    summary = result.summary
    _say(f"{sum(summary['records'].values()):,} encoded records -> {summary['residents']:,} residents, "
         f"{summary['residents_in_both']:,} of them in both files")
    _say(f"outputs written to {out}")


@main.command(name="share")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--recipient", required=True, help="Who the share is for (named in its note and the audit log).")
@click.option("--key-file", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The recipient's key: a file only you can read, of at least 16 random bytes.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The folder to write the share into (not OUTDIR, nor inside it).")
@handles_errors
def share_command(outdir: Path, recipient: str, key_file: Path, out: Path) -> None:
    """A pseudonymised copy of OUTDIR's resident view for one recipient: ids replaced by keyed
    hashes (HMAC-SHA256) under the recipient's key, names, dates of birth, addresses, phone,
    email and reference numbers left out or generalised, and a data-sharing note. The key is
    never written; the share is recorded in OUTDIR's audit log by the key's fingerprint."""
    from residentview.share import NOTE_FILE, share_run

    shared = share_run(outdir, recipient, key_file, out)
    _say(f"shared with {shared.recipient} (key {shared.fingerprint}): "
         + ", ".join(f"{item.name} ({len(item.frame):,} rows)" for item in shared.files)
         + f" -> {out}; see {out / NOTE_FILE}")


@main.group()
def review() -> None:
    """Reviewers' decisions: import a file of them, or decide pairs on the review page."""


@review.command(name="apply")
@click.argument("outdir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reviewer", help="Name recorded with decisions whose row names no reviewer.")
@handles_errors
def review_apply(outdir: Path, file: Path, reviewer: str | None) -> None:
    """Import the decisions in FILE (a filled-in review_queue.csv, or any CSV with source_l,
    record_id_l, source_r, record_id_r, decision) into OUTDIR. They take effect at the next run.

    A file with a bad row imports nothing: each bad row is listed with its line number."""
    from residentview.review.apply import apply_decisions
    from residentview.review.store import pair_label

    applied = apply_decisions(outdir, file, reviewer)
    counts = applied.imported.counts
    if not len(applied.imported.rows):
        _say(f"nothing new in {file}: {applied.imported.n_repeated} decision(s) already held, "
             f"{applied.imported.n_blank} row(s) without a decision")
    else:
        _say(f"imported {len(applied.imported.rows):,} decision(s) from {file} into {outdir}: "
             + ", ".join(f"{n:,} {word}" for word, n in counts.items())
             + "; they take effect at the next `residentview link`")
    overruled = applied.in_force.overruled
    if len(overruled):
        click.echo(f"warning: {len(overruled)} decision(s) contradict later ones (A = B, B = C but A ≠ C); "
                   "the later decision wins:", err=True)
        for row in overruled.itertuples(index=False):
            click.echo(f"  overruled: {row.decision} {pair_label(row)} (decision {row.decision_id}, "
                       f"{row.reviewer or 'no reviewer'})", err=True)


@review.command(name="serve")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--blind", is_flag=True, help="Hide the model's score while deciding, with no switch to show it.")
@handles_errors
def review_serve(outdir: Path, port: int, blind: bool) -> None:
    """The review page for OUTDIR: the queue pair by pair (keys m, n, u, s), a resident's records
    and edges (split a record out, merge two residents), and what changed (undo your last).

    Listens on 127.0.0.1 only. Each decision goes straight into OUTDIR's decisions store and takes
    effect at the next `residentview link`. Ctrl-C stops it."""
    import logging

    from residentview.review.web import review_server

    server = review_server(outdir, port, blind=blind)
    if not _quiet():  # requests as method, path and status: no query strings, names or dates
        requests = logging.getLogger("residentview.review.web.requests")
        requests.setLevel(logging.INFO)
        requests.propagate = False
        requests.addHandler(logging.StreamHandler(sys.stderr))
    try:
        click.echo(f"review page for {outdir}: http://127.0.0.1:{server.port}/  (this machine only; Ctrl-C to stop)")
        server.serve_forever()  # returns on Ctrl-C, unless it came before serving began
    except (KeyboardInterrupt, interrupts.Terminated):
        pass
    finally:
        server.server_close()
    if interrupts.received() == signal.SIGTERM:
        _fail("review page stopped (SIGTERM); every decision made on it is in the store", EXIT_TERMINATED)
    _fail("review page stopped (Ctrl-C); every decision made on it is in the store", EXIT_INTERRUPTED)


@main.group()
def audit() -> None:
    """The output folder's audit log (audit.jsonl)."""


@audit.command(name="verify")
@click.argument("outdir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@handles_errors
def audit_verify(outdir: Path) -> None:
    """Check that OUTDIR's audit log is intact: exit 0 when it is, 2 when not."""
    from residentview.audit import verify

    check = verify(outdir)
    if check.intact:
        _say(f"audit log intact: {check.n_entries:,} entries")
        return
    for problem in check.problems:
        click.echo(f"  {problem}", err=True)
    _fail(f"error: {outdir}/audit.jsonl is broken: {len(check.problems)} problem(s) above", EXIT_BAD_INPUT)


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.argument("key")
@click.option("--show-values", is_flag=True,
              help="Also print the records' names, dates of birth and postcodes, and reviewers' notes.")
@click.option("--all", "every_pair", is_flag=True, help="Every pair, not only the 10 strongest of each kind.")
@handles_errors
def explain(outdir: Path, key: str, show_values: bool, every_pair: bool) -> None:
    """Why a resident's records are together, and why records that scored as one person with
    them are not. KEY: a resident_id, or SOURCE:RECORD_ID of one of its records.

    Prints its records, the pairs among them with what each comparison added to the match
    weight (bars on a terminal, a table otherwise), the pairs at or above the threshold that
    clustering refused and the rule that refused each, and the reviewers' decisions on its
    records. Record keys and resident ids only, unless --show-values."""
    from residentview.review.explain import explain as explain_resident
    from residentview.review.explain import render

    explanation = explain_resident(outdir, key, show_values=show_values, limit=None if every_pair else 10)
    terminal = sys.stdout.isatty()
    try:
        for line in render(explanation, bars=terminal, colour=terminal):
            click.echo(line)
        sys.stdout.flush()
    except BrokenPipeError:  # `residentview explain ... | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    main()

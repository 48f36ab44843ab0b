"""The `residentview` command line (CONTRACT §2). Thin: parse arguments, call the pipeline.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 1 unexpected failure
(a message and a hint to rerun with --debug).
"""

from __future__ import annotations

import logging
import sys
import traceback
from functools import wraps
from pathlib import Path

import click

from residentview.errors import ResidentViewError

EXIT_BAD_INPUT = 2
EXIT_UNEXPECTED = 1


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def handles_errors(func):
    """Turn our errors into one line + exit 2, anything else into a hint + exit 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except ResidentViewError as exc:
            if debug:
                traceback.print_exc()
            _fail(f"error: {exc}", EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted; previous outputs are untouched", EXIT_UNEXPECTED)
        except MemoryError:
            _fail("unexpected error: out of memory; previous outputs are untouched. "
                  "Rerun with --debug for the traceback.", EXIT_UNEXPECTED)
        except Exception as exc:  # the last line of defence: never a raw traceback
            if debug:
                traceback.print_exc()
                _fail(f"unexpected error: {type(exc).__name__}", EXIT_UNEXPECTED)
            _fail(
                f"unexpected error: {type(exc).__name__}; previous outputs are untouched. "
                "Rerun with --debug for the traceback.",
                EXIT_UNEXPECTED,
            )

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
@click.option("--quiet", "-q", is_flag=True, help="Only print errors.")
@click.version_option(package_name="residentview")
def main(debug: bool, quiet: bool) -> None:
    """residentview: a single resident view from a council's system extracts.

    \b
    Quick start:
      residentview demo                 synthetic council extracts -> the whole pipeline
      residentview validate CONFIG      check a config and read every source
      residentview link CONFIG          link the sources and write the outputs
    """
    level = logging.DEBUG if debug else (logging.ERROR if quiet else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    # Splink logs SQL and progress at INFO; keep a user's terminal readable.
    logging.getLogger("splink").setLevel(logging.DEBUG if debug else logging.ERROR)


def _summarise(result, folder: Path) -> None:
    links = result.links
    click.echo(
        f"{len(links):,} records from {len(result.summaries)} sources -> "
        f"{links['resident_id'].nunique():,} residents, {len(result.households):,} households"
    )
    click.echo(f"outputs written to {folder}")
    click.echo(f"  report: {folder / 'report.html'}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@handles_errors
def validate(config: Path) -> None:
    """Check CONFIG and read every source; print a per-source summary (no personal data)."""
    from residentview.config import load_config
    from residentview.sources import read_sources
    from residentview.standardise import standardise

    cfg = load_config(config)
    raw, summaries = read_sources(cfg)
    std = standardise(raw, cfg)
    click.echo(f"config {config}: OK ({len(summaries)} sources)")
    for s in summaries:
        enc = f", encoding {s.encoding}" if s.encoding else ""
        click.echo(f"  {s.source}: {s.n_records:,} records{enc}; fields: {', '.join(s.fields)}")
        for w in s.warnings:
            click.echo(f"    warning: {w}")
    quality = std.quality
    if len(quality) and "completeness" in quality:
        click.echo("data quality (completeness / valid share of present values):")
        for source, group in quality.groupby("source", sort=False):
            parts = []
            for row in group.itertuples():
                valid = ""
                if getattr(row, "n_present", 0) and hasattr(row, "n_valid"):
                    valid = f"/{row.n_valid / row.n_present:.0%}"
                parts.append(f"{row.field} {row.completeness:.0%}{valid}")
            click.echo(f"  {source}: " + ", ".join(parts))


@main.command(name="link")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: the config's `output`).")
@click.option("--previous", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A previous run's output folder to carry resident ids over from.")
@handles_errors
def link_command(config: Path, out: Path | None, previous: Path | None) -> None:
    """Link the sources in CONFIG and write resident_links, residents, households, report…"""
    from residentview.config import load_config
    from residentview.pipeline import link

    cfg = load_config(config)
    folder = cfg.output_dir(out)
    result = link(cfg, previous=previous or folder)
    result.write(folder)
    _summarise(result, folder)


@main.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"),
              show_default=True, help="Folder for the synthetic extracts and the outputs.")
@click.option("--records", type=click.IntRange(min=50), default=20_000, show_default=True,
              help="Roughly how many source records to generate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed for the synthetic data.")
@handles_errors
def demo(out: Path, records: int, seed: int) -> None:
    """Generate synthetic council extracts and run the whole pipeline on them."""
    from residentview.demo import run_demo

    result, folder, config_path = run_demo(out, records=records, seed=seed)
    click.echo(f"synthetic extracts and config: {config_path.parent}")
    _summarise(result, folder)


@main.command()
@click.option("--people", type=click.IntRange(min=1), default=10_000, show_default=True, help="Size of the synthetic population.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the extracts.")
@click.option("--seed", type=int, default=1, show_default=True)
@handles_errors
def synth(people: int, out: Path, seed: int) -> None:
    """Write synthetic council extracts, a config and truth.parquet to OUT."""
    from residentview.synthetic import generate

    written = generate(people=people, out=out, seed=seed)
    click.echo(f"wrote {written.n_records:,} records for {people:,} people to {out}")
    click.echo(f"  config: {written.config_path}")


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Ground truth (source, record_id, person_id) to measure precision and recall.")
@handles_errors
def report(outdir: Path, labels: Path | None) -> None:
    """Rebuild report.html and review_queue.csv from a run's output folder."""
    from residentview.report import rebuild_report

    path = rebuild_report(outdir, labels=labels)
    click.echo(f"report: {path}")


if __name__ == "__main__":  # pragma: no cover
    main()

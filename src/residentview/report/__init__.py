"""Stage 6 — report: report.html and review_queue.csv, built only from a run's output folder.

`write_report(folder)` runs after every other output is in `folder` (the pipeline's staging
folder); `rebuild_report(outdir)` is `residentview report OUTDIR`. Both take an optional labels
file (source, record_id, person_id) to measure precision and recall.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from residentview.audit import os_user
from residentview.errors import DataError
from residentview.outputs import folder_lock, staged_output
from residentview.report import linkage_metrics as metrics
from residentview.report import sections
from residentview.report.data_protection import data_protection
from residentview.report.html_page import Page
from residentview.report.model_view import build_model_view, comparison_names, input_columns
from residentview.report.review_queue import build_review_queue, empty_review_queue, undecided
from residentview.review.apply import decisions_to_honour, update_database, write_decisions
from residentview.review.in_force import decided_pairs
from residentview.review.store import empty_store
from residentview.report.run_outputs import RunOutputs, read_labels, read_run_outputs
from residentview.report.sections import ReportInputs

log = logging.getLogger(__name__)

SECTIONS = (sections.summary, sections.data_quality, sections.model, sections.threshold,
            sections.clusters, sections.services, sections.life_events, sections.fairness, sections.waterfalls, sections.review, sections.decisions,
            data_protection)

__all__ = ["write_report", "rebuild_report"]


def _prepare(folder: Path, labels: Optional[Path], outputs: Optional[RunOutputs] = None) -> ReportInputs:
    """Read the outputs (unless given) and compute what several sections share."""
    outputs = outputs if outputs is not None else read_run_outputs(folder)
    label_frame = read_labels(labels) if labels is not None else None
    records = outputs.records
    members = (metrics.resident_members(outputs.links, records)
               if records is not None and {"unique_id", "source", "record_id"} <= set(records.columns) else None)
    suspicious = (metrics.suspicious_residents(members) if members is not None
                  else pd.DataFrame(columns=metrics.SUSPICIOUS_COLUMNS))
    model_view, model_problem = build_model_view(outputs.model, input_columns(records, outputs.pairs, outputs.model))
    inputs = ReportInputs(outputs=outputs, flags=metrics.link_flags(outputs.links), members=members,
                          suspicious=suspicious, model_view=model_view, model_problem=model_problem,
                          queue=None, labels=label_frame)
    if inputs.pairs is not None and members is not None:
        decided = (decided_pairs(outputs.decisions, records) if outputs.decisions is not None
                   else decided_pairs(empty_store(), records))
        inputs.queue = build_review_queue(
            undecided(inputs.pairs, decided), members, suspicious, outputs.threshold,
            model_view.levels if model_view else None, comparison_names(inputs.pairs, model_view),
        )
    return inputs


def _write(inputs: ReportInputs, target: Path) -> Path:
    name = inputs.outputs.run.get("name", inputs.outputs.folder.name)
    page = Page(title=f"residentview match-quality report: {name}", banner=sections.BANNER)
    for add_section in SECTIONS:
        add_section(page, inputs)
    path = target / "report.html"
    path.write_text(page.render(), encoding="utf-8")
    queue = inputs.queue.rows if inputs.queue is not None else empty_review_queue()
    queue.to_csv(target / "review_queue.csv", index=False)
    log.info("report written: %d sections, %d charts, %d pairs to review", len(page.sections), len(page.charts), len(queue))
    return path


def _labels_path(labels: Optional[Union[str, Path]]) -> Optional[Path]:
    return Path(labels) if labels is not None else None


def write_report(folder: Union[str, Path], labels: Optional[Union[str, Path]] = None,
                 outputs: Optional[RunOutputs] = None) -> Path:
    """Write report.html and review_queue.csv into `folder` from the outputs already there
    (`outputs`: those same outputs, still in memory — see `run_outputs_in_memory`)."""
    folder = Path(folder)
    return _write(_prepare(folder, _labels_path(labels), outputs), folder)


def rebuild_report(outdir: Union[str, Path], labels: Optional[Union[str, Path]] = None,
                   events_truth: Optional[Union[str, Path]] = None) -> Path:
    """`residentview report OUTDIR`: rebuild report.html and review_queue.csv in place, atomically.
    `events_truth` (person_id, event; with `labels`): measure the life events against it."""
    outdir = Path(outdir)
    with folder_lock(outdir, "report"):
        return _rebuild_report(outdir, labels, events_truth)


def read_events_truth(path: Union[str, Path]) -> pd.DataFrame:
    """True life events: person_id, event (Parquet or CSV)."""
    path = Path(path)
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise DataError(f"{path}: events truth file not found") from None
    except Exception as exc:
        raise DataError(f"{path}: events truth cannot be read ({type(exc).__name__})") from None
    missing = {"person_id", "event"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: events truth needs columns person_id, event; missing {', '.join(sorted(missing))}")
    return frame


def _rebuild_report(outdir: Path, labels: Optional[Union[str, Path]],
                    events_truth: Optional[Union[str, Path]] = None) -> Path:
    # Decisions filled into the queue about to be replaced are imported first: none is lost.
    decisions, new_decisions = decisions_to_honour(outdir)
    outputs = read_run_outputs(outdir)
    outputs.decisions = decisions
    if events_truth is not None:
        if labels is None:
            raise DataError("report: --events-truth needs --labels (which records belong to whom)")
        outputs.events_truth = read_events_truth(events_truth)
    inputs = _prepare(outdir, _labels_path(labels), outputs)  # bad input fails here, before anything is staged
    with staged_output(outdir) as staging:
        _write(inputs, staging)
        if new_decisions:
            write_decisions(outdir, staging, decisions, new_decisions, [{"event": "report", "user": os_user()}])
    if new_decisions:
        update_database(outdir, decisions)
    return outdir / "report.html"

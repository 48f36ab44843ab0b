"""The pipeline in order: sources -> standardise -> link -> cluster -> resident view -> report.

`link(config)` runs the stages and returns a `LinkResult`; `LinkResult.write(folder)` writes the
outputs of CONTRACT §3 atomically. Persistence of resident ids: the previous run is read from
`previous`, else from the config's output folder when it holds one.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from residentview.cluster import cluster_records
from residentview.config import Config, load_config
from residentview.linkage import link_records
from residentview.logging_setup import quiet_splink
from residentview.memory import check_memory, memory_limit_in_force
from residentview.engines.spark.outputs import check_spark_path, spark_path_output
from residentview.outputs import committing, folder_lock, staged_output
from residentview.progress import pipeline_progress
from residentview.resident_view import ResidentView, build_resident_view, view_tables, write_view
from residentview.resident_view.to_database import database_output
from residentview.review.apply import decisions_to_honour, write_decisions
from residentview.review.in_force import DecisionsInForce, decisions_in_force, no_decisions, violations
from residentview.review.store import appended, as_store_table, empty_store, read_store
from residentview.sources import SourceSummary, past_retention_keys, read_sources, retention_counts
from residentview.standardise import standardise

log = logging.getLogger(__name__)


def has_previous_run(folder: Optional[Path]) -> bool:
    return folder is not None and (Path(folder) / "resident_links.parquet").is_file()


@dataclass
class LinkResult:
    """Everything a run produced. `links` and `residents` are as the Parquet files of CONTRACT §3."""

    config: Config
    records: pd.DataFrame
    quality: pd.DataFrame
    pairs: pd.DataFrame
    clusters: pd.DataFrame
    model: dict
    view: ResidentView
    summaries: list[SourceSummary]
    run_timestamp: pd.Timestamp
    previous: Optional[Path] = None
    review_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    decisions: pd.DataFrame = field(default_factory=empty_store)  # the store, with this run's imports
    new_decisions: set = field(default_factory=set)  # decision_ids imported by this run
    in_force: DecisionsInForce = field(default_factory=no_decisions)
    kind: str = "link"  # or "update": how the run was made (run.json, the audit log)

    @property
    def links(self) -> pd.DataFrame:
        return self.view.links

    @property
    def residents(self) -> pd.DataFrame:
        return self.view.residents

    @property
    def households(self) -> pd.DataFrame:
        return self.view.households

    @property
    def id_changes(self) -> pd.DataFrame:
        return self.view.id_changes

    def _rebase(self, previous: Path) -> None:
        """Carry resident ids over from a previous run found in the folder being written to, and
        honour the decisions kept there."""
        self.decisions, self.new_decisions = decisions_to_honour(previous)
        self.in_force = decisions_in_force(self.decisions, self.records)
        self.clusters = _clustered(self.records, self.pairs, self.config.linkage.threshold, self.in_force,
                                   self.decisions, self.diagnostics)
        self.view = build_resident_view(
            self.records, self.clusters, previous,
            self.config.resident_view.source_priority, self.run_timestamp, self.config.resident_view.event_ages,
            forget=past_retention_keys(self.summaries),
        )
        self.previous = previous

    def run_info(self) -> dict:
        return {
            "name": self.config.name,
            "kind": self.kind,
            "run_timestamp": self.run_timestamp.isoformat(),
            "as_of": self.view.as_of.date().isoformat() if self.view.as_of is not None else None,
            "threshold": self.config.linkage.threshold,
            # what golden records depend on besides the records: an update splices them only when unchanged
            "source_priority": list(self.config.resident_view.source_priority),
            "sources": {s.source: s.n_records for s in self.summaries},
            "n_records": int(len(self.records)),
            "n_residents": int(self.view.links["resident_id"].nunique()),
            "n_households": int(len(self.view.households)),
            "events": self.view.events_this_run(),
            "previous": str(self.previous) if self.previous else None,
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "decisions": self.diagnostics.get("decisions", {}),
            "retention": retention_counts(self.summaries),
            "diagnostics": self.diagnostics,
        }

    @quiet_splink
    def write(self, folder: Union[str, Path], report: bool = True) -> Path:
        """Write every output into `folder` (all or nothing). Returns the folder."""
        folder = Path(folder)
        with folder_lock(folder, "write"), memory_limit_in_force(self.config.memory_limit):
            if has_previous_run(folder) and (self.previous is None or Path(self.previous).resolve() != folder.resolve()):
                self._rebase(folder)
            else:
                self._keep_decisions_added_meanwhile(folder)
            # Once the files are in place: the copies at output.spark_path swapped in, then the
            # database's transaction committed (to_database.py); a failure puts everything back.
            with database_output(self.config.output_database) as database, spark_path_output(self.config) as lake, \
                    staged_output(folder, commit=committing(lake, database)) as staging:
                if report:
                    self._write_files_and_report(staging, folder)
                else:
                    self._write_files(staging, folder)
                keep_run_history(folder, staging, self.run_timestamp)
                forget_earlier_reports(folder, staging, past_retention_keys(self.summaries), self.run_timestamp)
                database.write(view_tables(self.view, self.quality))
                lake.stage(staging)
        return folder

    def _keep_decisions_added_meanwhile(self, folder: Path) -> None:
        """Decisions imported into `folder` after this run read its store (a `review apply`
        between `link()` and `write()` from Python) are kept, before this run's own imports;
        they take effect at the next run."""
        current = read_store(folder)
        known = len(self.decisions) - len(self.new_decisions)
        if len(current) <= known:
            return
        ours = self.decisions[self.decisions["decision_id"].isin(self.new_decisions)]
        merged = appended(current, ours.drop(columns="decision_id"))
        log.warning("%d decisions were added to %s while this run was linking: kept, they take effect at the "
                    "next run", len(current) - known, folder)
        self.new_decisions = set(merged["decision_id"].iloc[len(current):].tolist())
        self.decisions = merged

    def _write_files_and_report(self, staging: Path, folder: Path) -> None:
        from residentview.report import write_report
        from residentview.report.run_outputs import run_outputs_in_memory

        # The files are written by a second thread while this one builds the report from the
        # same frames (read only by both): Parquet, DuckDB and file writes release the GIL, so
        # at a million records much of their time hides behind the report's. The thread runs in
        # this one's context, the run's memory limit in force included.
        with ThreadPoolExecutor(max_workers=1) as pool:
            files = pool.submit(contextvars.copy_context().run, self._write_files, staging, folder)
            try:
                write_report(staging, outputs=run_outputs_in_memory(
                    staging, self.view.links, self.records, self.view.residents, self.view.households,
                    self.view.id_changes, self.quality, self.pairs, self.model, self.run_info(),
                    decisions=self.decisions, events=self.view.events, addresses=self.view.addresses,
                    written={name: list(getattr(self, name).columns) for name in ("records", "pairs", "review_pairs")},
                ))
            finally:
                files.result()  # its error, if any, surfaces here (after the report's own)

    def _write_files(self, staging: Path, folder: Optional[Path] = None) -> None:
        """Every output but the report. `folder`: where they are going (for the audit log)."""
        # resident_links, residents, households, id_changes, data_quality and the database
        write_view(staging, self.view, self.quality, {"decisions": as_store_table(self.decisions)})
        self.records.to_parquet(staging / "records.parquet", index=False)
        self.pairs.to_parquet(staging / "pairs.parquet", index=False)
        self.review_pairs.to_parquet(staging / "review_pairs.parquet", index=False)
        (staging / "model.json").write_text(json.dumps(self.model, indent=2), encoding="utf-8")
        (staging / "run.json").write_text(json.dumps(self.run_info(), indent=2, default=str), encoding="utf-8")
        write_decisions(folder if folder is not None else staging, staging, self.decisions, self.new_decisions,
                        [run_entry(self, staging)])


@quiet_splink
def link(
    config: Union[str, Path, dict, Config],
    previous: Optional[Union[str, Path]] = None,
    progress: Optional[bool] = None,
) -> LinkResult:
    """Run the whole pipeline on a config (a YAML path, a dict or a `Config`).

    Resident ids carry over from `previous` (a folder with a previous run's outputs), or from the
    config's output folder when it holds one.
    """
    cfg = load_config(config)
    check_spark_path(cfg, reach=True)  # now, not after the linking
    timings: dict[str, float] = {}
    previous_dir = Path(previous) if previous is not None else cfg.output_dir()
    if not has_previous_run(previous_dir):
        previous_dir = None
    if cfg.engine == "spark":
        from residentview.engines.spark.pipeline import link_spark

        with memory_limit_in_force(cfg.memory_limit):  # the driver's linking database
            return link_spark(cfg, previous_dir, progress)
    run_timestamp = pd.Timestamp.now(tz="UTC").floor("s")
    # Before any work: a bad row in a filled-in review queue stops the run here, not after it.
    decisions, new_decisions = decisions_to_honour(previous_dir)

    with pipeline_progress(5, progress) as step, memory_limit_in_force(cfg.memory_limit):
        started = time.perf_counter()
        step("reading sources")
        raw, summaries = read_sources(cfg, progress=step.note)
        check_memory(len(raw), cfg.memory_limit, cfg.label)  # stop now, not out of memory an hour in
        timings["read"] = time.perf_counter() - started

        mark = time.perf_counter()
        step("standardising")
        std = standardise(raw, cfg)
        del raw
        timings["standardise"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("linking")
        in_force = decisions_in_force(decisions, std.records)
        linkage = link_records(std.records, cfg.linkage, cfg.model_path(), labels=in_force.labels())
        timings["link"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("clustering")
        clusters = _clustered(std.records, linkage.pairs, cfg.linkage.threshold, in_force, decisions,
                              linkage.diagnostics)
        timings["cluster"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("building resident view")
        view = build_resident_view(
            std.records, clusters, previous_dir, cfg.resident_view.source_priority, run_timestamp,
            cfg.resident_view.event_ages, forget=past_retention_keys(summaries),
        )
        timings["resident_view"] = time.perf_counter() - mark

    pairs = linkage.pairs  # already only pairs at or above the link stage's PREDICT_FLOOR
    log.info("linked %d records into %d residents", len(std.records), view.links["resident_id"].nunique())
    return LinkResult(
        config=cfg, records=std.records, quality=std.quality, pairs=pairs, clusters=clusters,
        model=linkage.model, view=view, summaries=summaries, run_timestamp=run_timestamp,
        previous=previous_dir, review_pairs=linkage.review_pairs, timings=timings,
        diagnostics=linkage.diagnostics, decisions=decisions, new_decisions=new_decisions, in_force=in_force,
    )


def _clustered(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float, in_force: DecisionsInForce,
               decisions: pd.DataFrame, diagnostics: dict, clusterer=cluster_records) -> pd.DataFrame:
    """Cluster with the reviewers' decisions in force (of the store `decisions`); what was
    honoured goes into `diagnostics`. `clusterer`: `cluster_records`, or an engine's own."""
    clusters = clusterer(records, pairs, threshold, in_force.must_link, in_force.cannot_link)
    broken = violations(in_force, clusters.set_index("unique_id")["cluster_key"])
    if any(broken.values()):  # cannot happen: clustering joins must-links first and checks every merge
        raise RuntimeError(f"clustering broke reviewers' decisions: {broken}")
    diagnostics["adult_sources"] = clusters.attrs.get("adult_sources", {})
    diagnostics["kept_references"] = clusters.attrs.get("kept_references", {})
    diagnostics["decisions"] = {**in_force.summary(), "in_store": int(len(decisions)), "broken": 0}
    if len(in_force.overruled):
        log.warning("%d decisions contradict later ones and are overruled (see the report)", len(in_force.overruled))
    return clusters


RUNS = "runs"
HISTORY_FILES = ("run.json", "report.html")


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard links where the file system allows (the history grows by a run, not by a copy of
    every run before it), a copy elsewhere."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def keep_run_history(folder: Path, staging: Path, run_timestamp: pd.Timestamp) -> None:
    """`runs/<timestamp>/` keeps each run's run.json (its counts, settings and timings) and
    report.html, so a scheduled run does not overwrite the record of the one before. Written in
    `staging` as the previous history plus this run, and moved into place with the rest."""
    history = staging / RUNS
    previous = Path(folder) / RUNS
    if previous.is_dir():
        shutil.copytree(previous, history, copy_function=_link_or_copy)
    this_run = history / run_timestamp.strftime("%Y%m%dT%H%M%SZ")
    this_run.mkdir(parents=True, exist_ok=True)
    for name in HISTORY_FILES:
        if (staging / name).is_file():
            (this_run / name).unlink(missing_ok=True)
            _link_or_copy(staging / name, this_run / name)


def forget_earlier_reports(folder: Path, staging: Path, forget: list[str], run_timestamp: pd.Timestamp) -> None:
    """Earlier runs' reports show their records (the review queue's pairs, examples): when a
    record the previous run held is now past its retention (CONTRACT §10), they go from
    `runs/`, and each earlier run keeps its run.json (counts only)."""
    previous = Path(folder) / "resident_links.parquet"
    if not forget or not previous.is_file():
        return
    from residentview.resident_view.previous import record_members

    held = record_members(pd.read_parquet(previous, columns=["source", "record_id"])).astype(str)
    if not held.isin(set(forget)).any():
        return
    this_run = run_timestamp.strftime("%Y%m%dT%H%M%SZ")
    for report in (staging / RUNS).glob("*/report.html"):
        if report.parent.name != this_run:
            report.unlink()


def run_entry(result: LinkResult, staging: Path) -> dict:
    """The audit log's entry for a run: who ran what on which inputs, and what came out."""
    from residentview.audit import os_user, versions
    from residentview.review.store import file_digest

    config = result.config
    inputs = {}
    for name, spec in config.sources.items():
        if spec.sql is not None:
            from residentview.sql_sources import audit_input

            inputs[name] = audit_input(spec.sql)
            continue
        path = config.source_path(name)
        inputs[name] = {"file": path.name, "sha256": file_digest(path)}
    settings = json.dumps(config.model_dump(mode="json"), sort_keys=True, default=str).encode("utf-8")
    return {
        "event": result.kind, "user": os_user(), "versions": versions(),
        "config_sha256": hashlib.sha256(settings).hexdigest(),
        "model_sha256": file_digest(staging / "model.json"),
        "inputs": inputs,
        "counts": {"records": int(len(result.records)), "residents": int(result.view.links["resident_id"].nunique()),
                   "households": int(len(result.view.households)),
                   "by_source": {s.source: s.n_records for s in result.summaries}},
        "threshold": config.linkage.threshold,
        "decisions": result.diagnostics.get("decisions", {}),
        "retention": retention_counts(result.summaries),
        "run_timestamp": result.run_timestamp.isoformat(),
    }

"""The pipeline in order: sources -> standardise -> link -> cluster -> resident view -> report.

`link(config)` runs the stages and returns a `LinkResult`; `LinkResult.write(folder)` writes the
outputs of CONTRACT §3 atomically. Persistence of resident ids: the previous run is read from
`previous`, else from the config's output folder when it holds one.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from residentview.cluster import cluster_records
from residentview.config import Config, load_config
from residentview.linkage import link_records
from residentview.outputs import staged_output
from residentview.progress import pipeline_progress
from residentview.resident_view import ResidentView, build_resident_view, write_view
from residentview.sources import SourceSummary, read_sources
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
        """Carry resident ids over from a previous run found in the folder being written to."""
        self.view = build_resident_view(
            self.records, self.clusters, previous,
            self.config.resident_view.source_priority, self.run_timestamp,
        )
        self.previous = previous

    def run_info(self) -> dict:
        return {
            "name": self.config.name,
            "run_timestamp": self.run_timestamp.isoformat(),
            "threshold": self.config.linkage.threshold,
            "sources": {s.source: s.n_records for s in self.summaries},
            "n_records": int(len(self.records)),
            "n_residents": int(self.view.links["resident_id"].nunique()),
            "n_households": int(len(self.view.households)),
            "previous": str(self.previous) if self.previous else None,
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "diagnostics": self.diagnostics,
        }

    def write(self, folder: Union[str, Path], report: bool = True) -> Path:
        """Write every output into `folder` (all or nothing). Returns the folder."""
        folder = Path(folder)
        if has_previous_run(folder) and (self.previous is None or Path(self.previous).resolve() != folder.resolve()):
            self._rebase(folder)
        with staged_output(folder) as staging:
            if report:
                self._write_files_and_report(staging)
            else:
                self._write_files(staging)
        return folder

    def _write_files_and_report(self, staging: Path) -> None:
        from residentview.report import write_report
        from residentview.report.run_outputs import run_outputs_in_memory

        # The files are written by a second thread while this one builds the report from the
        # same frames (read only by both): Parquet, DuckDB and file writes release the GIL, so
        # at a million records much of their time hides behind the report's.
        with ThreadPoolExecutor(max_workers=1) as pool:
            files = pool.submit(self._write_files, staging)
            try:
                write_report(staging, outputs=run_outputs_in_memory(
                    staging, self.view.links, self.records, self.view.residents, self.view.households,
                    self.view.id_changes, self.quality, self.pairs, self.model, self.run_info(),
                ))
            finally:
                files.result()  # its error, if any, surfaces here (after the report's own)

    def _write_files(self, staging: Path) -> None:
        """Every output but the report."""
        # resident_links, residents, households, id_changes, data_quality and the database
        write_view(staging, self.view, self.quality)
        self.records.to_parquet(staging / "records.parquet", index=False)
        self.pairs.to_parquet(staging / "pairs.parquet", index=False)
        self.review_pairs.to_parquet(staging / "review_pairs.parquet", index=False)
        (staging / "model.json").write_text(json.dumps(self.model, indent=2), encoding="utf-8")
        (staging / "run.json").write_text(json.dumps(self.run_info(), indent=2, default=str), encoding="utf-8")


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
    timings: dict[str, float] = {}
    previous_dir = Path(previous) if previous is not None else cfg.output_dir()
    if not has_previous_run(previous_dir):
        previous_dir = None
    run_timestamp = pd.Timestamp.now(tz="UTC").floor("s")

    with pipeline_progress(5, progress) as step:
        started = time.perf_counter()
        step("reading sources")
        raw, summaries = read_sources(cfg)
        timings["read"] = time.perf_counter() - started

        mark = time.perf_counter()
        step("standardising")
        std = standardise(raw, cfg)
        del raw
        timings["standardise"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("linking")
        linkage = link_records(std.records, cfg.linkage, cfg.model_path())
        timings["link"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("clustering")
        clusters = cluster_records(std.records, linkage.pairs, cfg.linkage.threshold)
        linkage.diagnostics["adult_sources"] = clusters.attrs.get("adult_sources", {})
        linkage.diagnostics["kept_references"] = clusters.attrs.get("kept_references", {})
        timings["cluster"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("building resident view")
        view = build_resident_view(
            std.records, clusters, previous_dir, cfg.resident_view.source_priority, run_timestamp
        )
        timings["resident_view"] = time.perf_counter() - mark

    pairs = linkage.pairs  # already only pairs at or above the link stage's PREDICT_FLOOR
    log.info("linked %d records into %d residents", len(std.records), view.links["resident_id"].nunique())
    return LinkResult(
        config=cfg, records=std.records, quality=std.quality, pairs=pairs, clusters=clusters,
        model=linkage.model, view=view, summaries=summaries, run_timestamp=run_timestamp,
        previous=previous_dir, review_pairs=linkage.review_pairs, timings=timings,
        diagnostics=linkage.diagnostics,
    )

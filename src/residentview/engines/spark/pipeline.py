"""`link` with `engine: spark`: the stages of `residentview.pipeline.link`, run where Spark
runs them, returning the same `LinkResult` (written by `LinkResult.write`, report and all).

What runs where:

* sources — read by Spark's workers, a task a source, each with `sources.read_source` (the
  mapping, the checks, retention), the records kept on Spark (`engines.spark.sources`);
* standardise — on Spark, partition by partition (`engines.spark.standardise`);
* link — the linking table made on Spark (`engines.spark.frame`), the blocking rules and
  training on the driver from the records they read (the rule counts' sample and the bounded
  training sample, by design: see `engines.spark.linkage`), scoring every candidate pair on
  Spark by Splink's SparkAPI and the scored pairs' full-name adjustment, their scores then
  brought to the driver;
* cluster — the context on the driver, connected components (large-star / small-star rounds)
  and the conflict-aware splitting on Spark, components clustered in batches of whole
  components, over the standardised records kept on Spark (only each record's context goes
  there from the driver) (`engines.spark.cluster`);
* resident view — `resident_view.build_resident_view` with the per-record work on Spark
  (`engines.spark.resident_view.OnSpark`): the golden records' survivorship, lists and counts
  (golden.py's SQL, spelled for Spark) over the standardised records kept on Spark for it, and
  the resident and household ids' fingerprints and overlaps with the previous run
  (`SparkTally`), and the grouping of residents into households by their golden addresses
  (`engines.spark.households`). On the driver: matching groups to previous ids (greedy, on
  the edges between groups and previous ids), minting ids, the address history and events
  (per record, from the records `link` holds there anyway).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import pandas as pd

from residentview.config import Config
from residentview.engines.spark.cluster import cluster_columns, cluster_on_spark
from residentview.engines.spark.frame import records_from_arrow
from residentview.engines.spark.linkage import link_on_spark
from residentview.engines.spark.resident_view import OnSpark, resident_view_columns
from residentview.engines.spark.session import driver_jvm_bytes, spark_session
from residentview.engines.spark.sources import read_sources_on_spark
from residentview.engines.spark.standardise import standardise_on_spark
from residentview.memory import check_driver_memory
from residentview.progress import pipeline_progress
from residentview.resident_view import build_resident_view
from residentview.review.apply import decisions_to_honour
from residentview.review.in_force import decisions_in_force
from residentview.sources import past_retention_keys

log = logging.getLogger(__name__)


def records_from_spark(frame) -> pd.DataFrame:
    """Spark's standardised records as `standardise` types them (`frame.records_from_arrow`), in
    unique_id order, their text kept as Arrow's, as an update keeps the previous run's records:
    every value a Python string cost the driver time and memory for text most of it only ever
    hands on."""
    import pyarrow.compute as pc

    table = frame.toArrow()
    return records_from_arrow(table.take(pc.sort_indices(table, [("unique_id", "ascending")])))


def link_spark(cfg: Config, previous_dir: Optional[Path], progress: Optional[bool] = None):
    """The pipeline on Spark (see the module docstring); `previous_dir` as `pipeline.link` found it."""
    from residentview.pipeline import LinkResult, _clustered

    spark = spark_session(cfg.memory_limit)
    timings: dict[str, float] = {}
    run_timestamp = pd.Timestamp.now(tz="UTC").floor("s")
    decisions, new_decisions = decisions_to_honour(previous_dir)

    with pipeline_progress(5, progress) as step:
        started = time.perf_counter()
        step("reading sources")
        raw_frame, summaries, n_records = read_sources_on_spark(spark, cfg, progress=step.note)
        # The driver still holds every record (see above): stop now, not out of memory an hour in.
        check_driver_memory(n_records, cfg.memory_limit, cfg.label, driver_jvm_bytes(spark))
        timings["read"] = time.perf_counter() - started

        mark = time.perf_counter()
        step("standardising (Spark)")
        spark_records, quality, cached = standardise_on_spark(raw_frame, cfg, n_records)
        # The standardised records kept on Spark (a local checkpoint: dropped by Spark's cleaner
        # once nothing refers to it), for the linking table, clustering and the resident view.
        spark_records = spark_records.localCheckpoint()
        cached.unpersist()
        records = records_from_spark(spark_records)
        wanted = dict.fromkeys([*cluster_columns(spark_records.columns), *resident_view_columns(spark_records)])
        kept = spark_records.select(*wanted)
        timings["standardise"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("linking (Spark)")
        in_force = decisions_in_force(decisions, records)
        linkage = link_on_spark(spark, spark_records, cfg.linkage, cfg.model_path(), labels=in_force.labels())
        timings["link"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("clustering (Spark)")

        def on_spark(records, pairs, threshold, must_link, cannot_link):
            return cluster_on_spark(spark, records, pairs, threshold, must_link, cannot_link, on_spark=kept)

        clusters = _clustered(records, linkage.pairs, cfg.linkage.threshold, in_force, decisions,
                              linkage.diagnostics, clusterer=on_spark)
        timings["cluster"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("building resident view")
        view = build_resident_view(
            records, clusters, previous_dir, cfg.resident_view.source_priority, run_timestamp,
            cfg.resident_view.event_ages, forget=past_retention_keys(summaries), engine=OnSpark(kept),
        )
        timings["resident_view"] = time.perf_counter() - mark

    log.info("linked %d records into %d residents on Spark", len(records), view.links["resident_id"].nunique())
    return LinkResult(
        config=cfg, records=records, quality=quality, pairs=linkage.pairs, clusters=clusters,
        model=linkage.model, view=view, summaries=summaries, run_timestamp=run_timestamp,
        previous=previous_dir, review_pairs=linkage.review_pairs, timings=timings,
        diagnostics=linkage.diagnostics, decisions=decisions, new_decisions=new_decisions, in_force=in_force,
    )

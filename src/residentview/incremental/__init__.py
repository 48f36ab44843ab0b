"""Incremental updates (CONTRACT §6): tonight's extracts into the master without a full rerun.

`update(config, out)` reads the sources as `link` does and compares every record with what the
previous run in the output folder saw (by source, record id and a hash of its mapped values:
`changes`). Only new and changed records are standardised; they are scored against the whole
master and each other with the previous run's model and blocking rules (`linkage.score_fresh`);
the pairs of unchanged records are kept as they were scored. Only the residents the changes
touch are clustered again (`recluster`), with the same conflict rules and reviewers' decisions,
and resident ids carry over exactly as in `link`. The result is a `LinkResult`, written like
`link`'s (all or nothing), with a drift report that says when a full `link` should retrain the
model (`drift`).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from residentview.config import Config, load_config
from residentview.engines.spark.outputs import check_spark_path
from residentview.errors import DataError
from residentview.linkage.model import REVIEW_BAND_WEIGHT, REVIEW_PAIRS_KEPT, score_fresh
from residentview.memory import check_memory, memory_limit_in_force
from residentview.pipeline import LinkResult, has_previous_run
from residentview.progress import pipeline_progress
from residentview.resident_view import build_resident_view
from residentview.resident_view.previous import RECORD_TEXT
from residentview.review.apply import decisions_to_honour
from residentview.review.in_force import decisions_in_force, violations
from residentview.sources import (
    ROW_HASH, as_python_values, past_retention_keys, read_sources, record_keys, row_hashes,
)
from residentview.standardise import in_record_order, record_order, standardise
from residentview.incremental.changes import Changes, compare
from residentview.incremental.drift import best_weights, drift_report
from residentview.incremental.recluster import recluster
from residentview.incremental.view import updated_view

log = logging.getLogger(__name__)

NEEDED = ("resident_links.parquet", "records.parquet", "pairs.parquet", "model.json", "run.json")


@dataclass
class _Previous:
    records: pd.DataFrame
    links: pd.DataFrame  # source, record_id, resident_id, match_probability: row-aligned with records
    pairs: pd.DataFrame
    review_pairs: pd.DataFrame
    model: dict
    run: dict
    quality: pd.DataFrame


def _previous_run(folder: Path, config: Config) -> tuple[dict, dict]:
    """The previous run's run.json and model, once the folder is seen to hold a run an update can
    follow (the quick checks, made before any record is read)."""
    if not has_previous_run(folder):
        raise DataError(f"{folder}: holds no previous run to update; run `residentview link` into it first")
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder}: the previous run's {', '.join(missing)} missing; run `residentview link` into it")
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        if ROW_HASH not in pq.ParquetFile(folder / "records.parquet").schema_arrow.names:
            raise DataError(f"{folder}: the previous run was written by an earlier residentview, which kept no record "
                            "hashes; run `residentview link` into it once, then update")
    except DataError:
        raise
    except Exception as exc:  # a damaged file is the user's folder, not our bug
        raise DataError(f"{folder}: cannot read the previous run's outputs ({type(exc).__name__}: {exc})") from None
    before = run.get("threshold")
    if before is not None and float(before) != float(config.linkage.threshold):
        raise DataError(f"linkage.threshold changed since the run in {folder} ({before} -> {config.linkage.threshold}):"
                        " residents clustered at the old threshold would stay as they were; run "
                        "`residentview update --retrain` (a full link)")
    return run, model


def _read_previous(folder: Path, run: dict, model: dict) -> _Previous:
    """The previous run's records, links, pairs and data-quality profile (`_previous_run` has
    checked the folder)."""
    try:
        # Text as Arrow's: a million records' names and addresses as Python strings took 4 s to
        # read and 3 s more to load into DuckDB for scoring; as Arrow text, a fraction of both.
        records = pq.read_table(folder / "records.parquet").to_pandas(types_mapper=RECORD_TEXT.get)
        links = pd.read_parquet(folder / "resident_links.parquet",
                                columns=["source", "record_id", "resident_id", "match_probability"])
        pairs = pd.read_parquet(folder / "pairs.parquet")
        review = folder / "review_pairs.parquet"
        review_pairs = pd.read_parquet(review) if review.is_file() else pd.DataFrame()
        quality = folder / "data_quality.parquet"
        quality = pd.read_parquet(quality) if quality.is_file() else pd.DataFrame()
    except Exception as exc:  # a damaged file is the user's folder, not our bug
        raise DataError(f"{folder}: cannot read the previous run's outputs ({type(exc).__name__}: {exc})") from None
    if not (records["unique_id"].to_numpy() == np.arange(len(records))).all():
        raise DataError(f"{folder}: records.parquet is not in unique_id order; run `residentview link` into it")
    links = _aligned(links, records, folder)
    return _Previous(records, links, pairs, review_pairs, model, run, quality)


def _aligned(links: pd.DataFrame, records: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The previous links in the previous records' row order."""
    same = (len(links) == len(records)
            and (links["source"].to_numpy(dtype=object) == records["source"].to_numpy(dtype=object)).all()
            and (links["record_id"].astype(str).to_numpy() == records["record_id"].astype(str).to_numpy()).all())
    if same:
        return links.reset_index(drop=True)
    at = record_keys(links).get_indexer(record_keys(records))
    if (at < 0).any():
        raise DataError(f"{folder}: resident_links.parquet and records.parquet disagree; run `residentview link` into it")
    return links.iloc[at].reset_index(drop=True)


def _merged(previous: pd.DataFrame, changes: Changes, fresh: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The records after the update, numbered as `link` numbers them (by source and record id);
    the previous unique_id -> new one (-1 for a record gone or changed); the fresh records' ids."""
    fresh = fresh.astype({c: previous[c].dtype for c in fresh.columns
                          if c in previous and previous[c].dtype == RECORD_TEXT[pa.string()]})
    # The previous and fresh records side by side, the kept and fresh rows taken in record order:
    # two copies of the million rows, where selecting the kept ones first made three.
    keys = pd.concat([previous[["source", "record_id"]].take(changes.kept), fresh[["source", "record_id"]]],
                     ignore_index=True)
    order = record_order(keys)
    rows = np.r_[changes.kept, len(previous) + np.arange(len(fresh))][order]
    records = pd.concat([previous, fresh.assign(unique_id=-1)], ignore_index=True).take(rows)
    records = records.set_axis(pd.RangeIndex(len(records)), axis=0, copy=False)
    old = records["unique_id"].to_numpy(np.int64)
    records["unique_id"] = np.arange(len(records), dtype=np.int64)
    old_to_new = np.full(len(previous), -1, dtype=np.int64)
    old_to_new[old[old >= 0]] = np.flatnonzero(old >= 0)
    return records, old_to_new, np.flatnonzero(old < 0)


def _renumbered(pairs: pd.DataFrame, old_to_new: np.ndarray) -> pd.DataFrame:
    """The pairs whose two records are both unchanged, in the new numbering (which keeps their order)."""
    if not len(pairs):
        return pairs
    left = old_to_new[pairs["unique_id_l"].to_numpy(np.int64)]
    right = old_to_new[pairs["unique_id_r"].to_numpy(np.int64)]
    keep = (left >= 0) & (right >= 0)
    out = pairs.loc[keep].copy()
    out["unique_id_l"], out["unique_id_r"] = left[keep], right[keep]
    return out


def _in_id_order(frame: pd.DataFrame) -> pd.DataFrame:
    order = np.lexsort((frame["unique_id_r"].to_numpy(np.int64), frame["unique_id_l"].to_numpy(np.int64)))
    return frame.take(order).reset_index(drop=True)


def _combined_pairs(kept: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    frames = [frame for frame in (kept, fresh) if len(frame)]
    if not frames:
        return kept if len(kept.columns) >= len(fresh.columns) else fresh
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for column in combined.columns:  # as `_slim_pairs` types them
        if column.startswith("gamma_") and combined[column].dtype != np.int8:
            combined[column] = combined[column].fillna(-1).astype(np.int8)
    return _in_id_order(combined)


def _review_pairs(kept: pd.DataFrame, fresh: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The pairs nearest the threshold, as `link` keeps them, from the previous ones still valid
    and the fresh ones."""
    frames = [frame for frame in (kept, fresh) if len(frame)]
    if not frames:
        return fresh
    combined = pd.concat(frames, ignore_index=True)
    weight = np.log2(threshold / (1 - threshold))
    distance = (combined["match_weight"] - weight).abs()
    combined = combined[distance <= REVIEW_BAND_WEIGHT].assign(_distance=distance)
    combined = combined.sort_values(["_distance", "unique_id_l", "unique_id_r"], kind="mergesort")
    return combined.head(REVIEW_PAIRS_KEPT).drop(columns="_distance").reset_index(drop=True)


def _resident_codes(links: pd.DataFrame, old_to_new: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Per new record: a code of its previous resident (-1 when new or changed) and its previous
    confidence of membership; and the code of every previous record."""
    codes = pd.Series(pd.factorize(links["resident_id"].astype(str))[0], index=links.index)
    resident = np.full(n, -1, dtype=np.int64)
    probability = np.ones(n, dtype=float)
    kept = old_to_new >= 0
    resident[old_to_new[kept]] = codes.to_numpy()[kept]
    probability[old_to_new[kept]] = links["match_probability"].to_numpy(float)[kept]
    return resident, probability, codes


def _previous_residents(links: pd.DataFrame, old_to_new: np.ndarray, n: int) -> np.ndarray:
    """Per record after the update, the resident id it had before (None for a new or changed record)."""
    out = np.full(n, None, dtype=object)
    kept = old_to_new >= 0
    out[old_to_new[kept]] = links["resident_id"].astype(str).to_numpy(dtype=object)[kept]
    return out


def fresh_mask(n: int, fresh_ids: np.ndarray) -> np.ndarray:
    """A mask of the new and changed records (by unique_id 0..n-1)."""
    fresh = np.zeros(n, dtype=bool)
    fresh[fresh_ids] = True
    return fresh


def update(config: Union[str, Path, dict, Config], out: Optional[Union[str, Path]] = None,
           progress: Optional[bool] = None) -> LinkResult:
    """Link what changed in the sources since the run in `out` (default: the config's output
    folder). Returns the result; `result.write(out)` writes it."""
    cfg = load_config(config)
    check_spark_path(cfg, reach=True)  # now, not after the linking
    folder = cfg.output_dir(out)
    timings: dict[str, float] = {}
    previous_run, previous_model = _previous_run(folder, cfg)
    run_timestamp = pd.Timestamp.now(tz="UTC").floor("s")
    decisions, new_decisions = decisions_to_honour(folder)
    threshold = cfg.linkage.threshold

    with pipeline_progress(6, progress) as step, memory_limit_in_force(cfg.memory_limit), \
            ThreadPoolExecutor(max_workers=1) as pool:
        mark = time.perf_counter()
        step("reading sources")
        # The previous run's records are read by a second thread while this one reads tonight's:
        # Parquet decoding and CSV parsing release the GIL, so much of the one hides behind the other.
        reading_previous = pool.submit(_read_previous, folder, previous_run, previous_model)
        try:
            # As Arrow text: only the records that changed become Python strings, to be standardised.
            raw, summaries = read_sources(cfg, progress=step.note, as_text=True)
        finally:
            prev = reading_previous.result()  # a damaged previous run is reported first, as it is checked first
        # An update holds the whole master as a link does (it peaked at 3.8 GB at 1M, a link 3.3 GB).
        check_memory(len(raw), cfg.memory_limit, cfg.label, spark_offered=cfg.engine != "spark")
        raw = in_record_order(raw)
        timings["read"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("finding changes")
        changes = compare(prev.records, raw, row_hashes(raw, cfg))
        by_source = changes.by_source(raw, prev.records)
        timings["compare"] = time.perf_counter() - mark
        log.info("update: %s", ", ".join(f"{n:,} {what}" for what, n in changes.counts().items()))

        mark = time.perf_counter()
        step("standardising changes")
        counts = prev.records["first_name_key"].value_counts().to_dict() if "first_name_key" in prev.records else None
        std = standardise(as_python_values(raw.iloc[changes.fresh]), cfg, first_name_counts=counts)
        del raw
        records, old_to_new, fresh_ids = _merged(prev.records, changes, std.records)
        n_previous = len(prev.records)
        prev.records = prev.records.iloc[:0]  # a million rows this run needs no longer
        timings["standardise"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("linking changes")
        in_force = decisions_in_force(decisions, records)
        if cfg.engine == "spark":  # the one step an update runs on Spark
            from residentview.engines.spark.update import score_fresh_on_spark as scorer
        else:
            scorer = score_fresh
        fresh = scorer(records, fresh_ids, prev.model, threshold)
        best_master = best_weights(prev.pairs, n_previous)  # for the drift report
        pairs = _combined_pairs(_renumbered(prev.pairs, old_to_new), fresh.pairs)
        prev.pairs = prev.pairs.iloc[:0]
        review_pairs = _review_pairs(_renumbered(prev.review_pairs, old_to_new), fresh.review_pairs, threshold)
        timings["link"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("clustering touched residents")
        resident, probability, codes = _resident_codes(prev.links, old_to_new, len(records))
        lost = np.unique(codes.to_numpy()[np.r_[changes.replaced, changes.removed]])
        seeds = np.zeros(len(records), dtype=bool)
        seeds[fresh_ids] = True
        seeds |= np.isin(resident, lost)
        clustered = recluster(records, pairs, threshold, in_force, resident, probability, seeds)
        broken = violations(in_force, clustered.clusters.set_index("unique_id")["cluster_key"])
        if any(broken.values()):  # cannot happen: clustering joins must-links first and checks every merge
            raise RuntimeError(f"clustering broke reviewers' decisions: {broken}")
        timings["cluster"] = time.perf_counter() - mark

        mark = time.perf_counter()
        step("building resident view")
        fresh_records = fresh_mask(len(records), fresh_ids)
        view = None
        if prev.run.get("source_priority") == list(cfg.resident_view.source_priority):
            view = updated_view(records, clustered.clusters, clustered.reclustered,
                                _previous_residents(prev.links, old_to_new, len(records)), folder,
                                cfg.resident_view.source_priority, run_timestamp, cfg.resident_view.event_ages,
                                fresh=fresh_records, forget=past_retention_keys(summaries))
        view_built = "from the touched residents" if view is not None else "in full"
        if view is None:  # the previous outputs cannot be spliced: every resident's view again
            view = build_resident_view(records, clustered.clusters, folder, cfg.resident_view.source_priority,
                                       run_timestamp, cfg.resident_view.event_ages, fresh=fresh_records,
                                       forget=past_retention_keys(summaries))
        timings["resident_view"] = time.perf_counter() - mark

    resident_of = pd.Series(view.links["resident_id"].to_numpy(), index=view.links.index)
    drift = drift_report(
        fresh_ids, resident_of, best_weights(fresh.pairs, len(records))[fresh_ids],
        prev.links["resident_id"], best_master, std.quality, prev.quality,
        len(records),
    )
    if drift["retrain_recommended"]:
        log.warning("update: a full run that retrains the model is recommended (`residentview update --retrain`): %s",
                    "; ".join(drift["reasons"]))
    diagnostics = dict(prev.run.get("diagnostics", {}))
    diagnostics.update(clustered.measured)
    diagnostics["decisions"] = {**in_force.summary(), "in_store": int(len(decisions)), "broken": 0}
    diagnostics["update"] = {
        "previous_run": prev.run.get("run_timestamp"),
        "quality_profile_from": _profile_from(prev.run),
        "records": changes.counts(),
        "by_source": by_source,
        "fresh_pairs_scored": int(len(fresh.pairs)),
        "records_reclustered": clustered.touched_records,
        "resident_view_built": view_built,
        "previous_residents_reclustered": clustered.touched_residents,
        "drift": drift,
    }
    return LinkResult(
        config=cfg, records=records, quality=_quality(prev.quality, std.quality), pairs=pairs,
        clusters=clustered.clusters, model=prev.model, view=view, summaries=summaries, run_timestamp=run_timestamp,
        previous=folder, review_pairs=review_pairs, timings=timings, diagnostics=diagnostics, decisions=decisions,
        new_decisions=new_decisions, in_force=in_force, kind="update",
    )


def _profile_from(previous_run: dict) -> Optional[str]:
    """When the full run whose data-quality profile an update carries over ran."""
    if previous_run.get("kind", "link") == "update":
        return ((previous_run.get("diagnostics") or {}).get("update") or {}).get("quality_profile_from")
    return previous_run.get("run_timestamp")


def _quality(master: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """The data-quality profile: the master's, from the last full run (a profile is of every
    record of a source, and an update reads only the changed ones closely), plus the fresh
    records' for a source the master did not have."""
    if not len(master):
        return fresh
    added = fresh[~fresh["source"].isin(master["source"])] if len(fresh) else fresh
    return pd.concat([master, added], ignore_index=True) if len(added) else master

"""Stage 4 on Spark: connected components of the scored pairs, found by Spark, then
`cluster.cluster_records` (the conflict-aware splitting `link` runs) on the components a batch at
a time (`applyInPandas`): components are small and independent.

A component here joins the pairs clustering can act on: those at or above the threshold, a
reviewer's `match` pairs, and the pairs from ATTACH_FLOOR up (an initial-only record joins the
one resident at its address it could stand for through one of those). Nothing clustering does
reaches past them, so each component clustered alone gives what clustering all at once gives,
and so does a batch of whole components clustered at once. Batches, not a call per component: a
Python call costs tens of milliseconds whatever its size, and synthetic-10k's 3,001 components
spent about 110 s of the stage in them on local[2].
What clustering learns from all the records together (which systems hold adults only, which
references one person keeps, the sex a first name implies: `cluster.clustering_context`) is
worked out first, across the table, and handed to each component with its records.
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import pandas as pd

from residentview.cluster import ATTACH_FLOOR, EDGE_COLUMNS, _Context, cluster_records, clustering_context
from residentview.engines.spark.session import driver_frame

log = logging.getLogger(__name__)

# What cluster_records reads of a record when it is given the context (`_may_conflict`,
# `_people`, `_attach_initials`), and the id_ columns.
CLUSTER_COLUMNS = ("unique_id", "date_of_birth", "record_date", "first_name_key", "first_name_aliases",
                   "middle_names_key", "last_name_key", "nhs_number", "ni_number", "uprn", "address", "postcode")
COMPONENT = "component"
BATCH = "batch"  # components whose records are clustered in one Python call
RECORDS_PER_BATCH = 50_000  # about as many records at most in a batch; and at least a batch per core
ADULT, SEX = "_adult_when", "_implied_sex"
KIND = "kind"  # of an edge: scored, must (a reviewer's match), cannot (a reviewer's non-match)
MAX_ROUNDS = 100  # alternating star rounds; a chain of 2,000 records took 9


def connected_components(spark, edges):
    """unique_id -> component (its lowest unique_id), for every id in `edges` (l, r).

    Alternating large-star and small-star rounds (Kiveris et al. 2014, "Connected Components in
    MapReduce and Beyond"): each round re-points every record at the least id among its
    neighbours' neighbourhood, so the edges become, component by component, a star around its
    lowest id, in O(log² n) rounds where spreading the least label one edge a step takes as many
    steps as the longest path. Edges are kept one way round, larger id first (a > b)."""
    from pyspark.sql import functions as F

    ids = edges.select(F.col("l").alias("unique_id")).union(edges.select(F.col("r").alias("unique_id"))).distinct()
    current = (edges.select(F.greatest("l", "r").alias("a"), F.least("l", "r").alias("b"))
               .where("a > b").distinct().localCheckpoint())
    rounds = 0
    while not _star_forest(current):
        rounds += 1
        if rounds > MAX_ROUNDS:  # cannot happen: the rounds needed grow as (log n)²
            raise RuntimeError(f"connected components: not converged after {MAX_ROUNDS} rounds")
        current = _small_star(_large_star(current)).localCheckpoint()
    log.debug("connected components: %d rounds", rounds)
    centre = current.select(F.col("a").alias("unique_id"), F.col("b").alias(COMPONENT))
    return ids.join(centre, "unique_id", "left").select(
        "unique_id", F.coalesce(COMPONENT, "unique_id").alias(COMPONENT))


def _large_star(edges):
    """Each record's larger neighbours re-pointed at the least of it and all its neighbours."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    both = edges.unionByName(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))
    least = F.least(F.col("a"), F.min("b").over(Window.partitionBy("a")))
    # Repeats are harmless to the small star that follows, which drops them.
    return both.select("a", "b", least.alias("m")).where("b > a").select(F.col("b").alias("a"), F.col("m").alias("b"))


def _small_star(edges):
    """Each record and its smaller neighbours re-pointed at the least of them."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    star = edges.select("a", "b", F.min("b").over(Window.partitionBy("a")).alias("m"))
    return (star.select(F.col("b").alias("a"), F.col("m").alias("b"))
            .unionByName(star.select("a", F.col("m").alias("b")))
            .where("a > b").distinct())


def _star_forest(edges) -> bool:
    """Whether every component of `edges` is a star around its lowest id: each record joined to
    one smaller record at most, and none both joined to a smaller and to a larger one."""
    from pyspark.sql import functions as F

    ends = edges.select(F.col("a").alias("node"), F.col("b").alias("smaller"), F.lit(0).alias("centre")).unionByName(
        edges.select(F.col("b").alias("node"), F.lit(None).cast("long").alias("smaller"), F.lit(1).alias("centre")))
    wrong = (ends.groupBy("node").agg(F.countDistinct("smaller").alias("k"), F.max("centre").alias("centre"))
             .where((F.col("k") > 1) | ((F.col("k") == 1) & (F.col("centre") == 1))))
    return wrong.limit(1).count() == 0


def _batch_clusterer(threshold: float, kept: tuple, columns: list[str]):
    def cluster_batch(records: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
        records = records.sort_values("unique_id", kind="stable").reset_index(drop=True)
        ids = records["unique_id"].to_numpy(np.int64)
        # ids 0..k-1 in the same order: the arrays cluster_records sizes by the largest id stay small
        local = pd.Series(np.arange(len(ids), dtype=np.int64), index=ids)
        frame = records[columns].copy()
        frame["unique_id"] = local.to_numpy()
        frame = frame.astype({c: object for c in frame.columns if c not in ("unique_id", "date_of_birth", "record_date")})
        frame = frame.where(frame.notna(), None)

        def pairs_of(kind: str) -> pd.DataFrame:
            chosen = edges[(edges[KIND] == kind) & edges["unique_id_r"].isin(ids) & edges["unique_id_l"].isin(ids)]
            out = chosen[EDGE_COLUMNS].copy()
            for side in ("unique_id_l", "unique_id_r"):
                out[side] = local.reindex(out[side].to_numpy()).to_numpy(np.int64)
            return out.reset_index(drop=True)

        context = _Context(records[ADULT].to_numpy(dtype="datetime64[ns]"), kept, records[SEX].to_numpy(dtype=object))
        must, cannot = pairs_of("must"), pairs_of("cannot")
        clusters = cluster_records(frame, pairs_of("scored"), threshold, must if len(must) else None,
                                   cannot if len(cannot) else None, context=(context, {}, {}))
        return pd.DataFrame({"unique_id": ids[clusters["unique_id"].to_numpy()],
                             "cluster_key": ids[clusters["cluster_key"].to_numpy()],
                             "match_probability": clusters["match_probability"].to_numpy(float)})

    return cluster_batch


def cluster_columns(columns) -> list[str]:
    """Of the standardised records' `columns`, those clustering reads of each record."""
    return [c for c in columns if c in CLUSTER_COLUMNS or c.startswith("id_")]


def cluster_on_spark(spark, records: pd.DataFrame, pairs: pd.DataFrame, threshold: float,
                     must_link: Optional[pd.DataFrame] = None,
                     cannot_link: Optional[pd.DataFrame] = None, on_spark=None) -> pd.DataFrame:
    """`cluster.cluster_records(records, pairs, threshold, must_link, cannot_link)`, batches of
    components at a time on Spark (see the module docstring). Same frame, same attrs.

    `on_spark`: the same records kept on Spark (a frame with at least `cluster_columns`), which the
    batches then read there: of each record only what clustering learnt from the whole table
    (`clustering_context`) goes from the driver to Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    context, measured, references = clustering_context(records, pairs, threshold, must_link)
    floor = min(threshold, ATTACH_FLOOR)
    parts = [pairs.loc[pairs["match_probability"] >= floor, EDGE_COLUMNS].assign(**{KIND: "scored"})]
    for kind, decided in (("must", must_link), ("cannot", cannot_link)):
        if decided is not None and len(decided):
            parts.append(pd.DataFrame({
                "unique_id_l": decided["unique_id_l"].to_numpy(np.int64), "unique_id_r": decided["unique_id_r"].to_numpy(np.int64),
                "match_weight": np.inf if kind == "must" else -np.inf, "match_probability": 1.0 if kind == "must" else 0.0,
                KIND: kind}))
    edges = pd.concat(parts, ignore_index=True)
    edges["unique_id_l"] = edges["unique_id_l"].astype("int64")
    edges["unique_id_r"] = edges["unique_id_r"].astype("int64")
    alone = pd.DataFrame({"unique_id": records["unique_id"].to_numpy(np.int64)})
    alone["cluster_key"] = alone["unique_id"]
    alone["match_probability"] = 1.0
    joining = edges[edges[KIND] != "cannot"]
    if not len(joining):
        out = alone
    else:
        edge_frame = driver_frame(spark, edges)
        components = connected_components(spark, edge_frame.where(F.col(KIND) != "cannot")
                                          .select(F.col("unique_id_l").alias("l"), F.col("unique_id_r").alias("r")))
        batches = max(spark.sparkContext.defaultParallelism, -(-len(records) // RECORDS_PER_BATCH))
        components = components.select("unique_id", F.pmod(COMPONENT, F.lit(batches)).alias(BATCH))
        columns = cluster_columns(records.columns)
        if on_spark is None:
            mine = records[columns].copy()
        else:
            mine = records[["unique_id"]].copy()
        mine[ADULT] = context.adult
        mine[SEX] = context.sex
        # (the sex implied, text or missing: a column of Nones would leave Spark no type to infer)
        record_frame = driver_frame(spark, mine.astype({SEX: pd.StringDtype()}))
        if on_spark is not None:
            record_frame = on_spark.select(*columns).join(record_frame, "unique_id")
        record_frame = record_frame.join(components, "unique_id")
        # A copy of its own (not the same plan joined twice): the cogroup below needs its two
        # sides' `batch` columns told apart.
        edge_components = components.localCheckpoint().withColumnRenamed("unique_id", "unique_id_l")
        edge_frame = edge_frame.join(edge_components, "unique_id_l")
        schema = T.StructType([T.StructField("unique_id", T.LongType()), T.StructField("cluster_key", T.LongType()),
                               T.StructField("match_probability", T.DoubleType())])
        clustered = (record_frame.groupBy(BATCH).cogroup(edge_frame.groupBy(BATCH))
                     .applyInPandas(_batch_clusterer(threshold, context.kept, columns), schema)).toPandas()
        out = pd.concat([alone[~alone["unique_id"].isin(clustered["unique_id"])], clustered], ignore_index=True)
        out = out.sort_values("unique_id", kind="stable").reset_index(drop=True)
        out = out.astype({"unique_id": "int64", "cluster_key": "int64", "match_probability": "float64"})
    out.attrs["adult_sources"] = measured
    out.attrs["kept_references"] = references
    return out

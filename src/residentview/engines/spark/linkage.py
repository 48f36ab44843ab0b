"""Stage 3 on Spark: every candidate pair scored by Splink's SparkAPI, with the model `link` builds.

The linking table is made on Spark from the standardised records kept there
(`engines.spark.frame`: `link`'s own functions, part by part, with the table-wide counts taken
across the parts). The driver gets counts, every person record's unique_id and the records its
own work reads, in an embedded DuckDB: the sample the blocking rules are measured on
(`linkage.blocking`: a share of the records that shrinks as they grow, about 14% at a million),
the training sample (`linkage.training_sample_size`) and the records of pairs reviewers
labelled. There the rules are chosen and the model trained as `link` does it: the same rules
and the same model, not a second way of making them. The model goes to Spark in Spark's SQL
(`dialect`), where every candidate pair is found and scored: the part that grows with the
square of a block. The pairs are found as `link` finds them on DuckDB
(`linkage.blocking.blocked_pairs_sql`: each rule joins once, on the few columns it reads, and a
group-by keeps each pair's first rule), not by Splink's blocking, which joins every column of
every record once a rule and tests each pair against every earlier rule — 29 rules at 100,000
records; then Splink's own SQL scores the pairs. The full-name frequency adjustment is applied
on Spark too, by `link`'s own SQL (`linkage.model.adjusted_sql`), with each full name's counts
taken on Spark and its excess worked out on the driver, a small table. Then the pairs above the
predict floor come back to the driver (`collected_scores`): their scores, levels and
term-frequency adjustments, and every column only for the few thousand pairs a reviewer may be
shown — not every compared value of every pair, which at a million records is gigabytes through
the driver's JVM.

Training stays on the driver by design: its sample is bounded, so it never limits the size of
a run, and Splink's EM on Spark runs a job per iteration and session. Measured on local[2] with
the same rules and sample (the model's settings translated by `dialect`): 303 s against 2.5 s
on DuckDB for the 100-person demo, about 13 minutes against 9.4 s at 10,000 records — over two
thousand Spark stages, for m probabilities within 0.001 of DuckDB's and u probabilities that
differ only by the random pairs each engine samples.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Optional

import pandas as pd

from residentview.config import LinkageConfig
from residentview.engines.spark.dialect import Translation, spark_sql
from residentview.engines.spark.session import driver_frame
from residentview.engines.spark.similarity import register_similarity
from residentview.linkage.blocking import blocked_pairs_sql
from residentview.engines.spark.frame import driver_ids, linking_on_spark
from residentview.linkage.model import (
    NAME_EXCESS_TABLE, PREDICT_FLOOR, REVIEW_PAIRS_KEPT, Linkage, _review_pairs, _scoring_sqls, _slim_pairs,
    adjusted_sql, chosen_rules, full_name_counts_sql, learn_from_labels, linking_database, name_adjustable,
    registered_tables, review_band, saved_model, slim_columns, trained_linker,
)

log = logging.getLogger(__name__)


def spark_table(spark, connection, table: str):
    """A DuckDB table of the driver's linking database as a Spark frame (Arrow, no copy by row),
    checkpointed on the executors (`driver_frame`): no further `persist` needed."""
    return driver_frame(spark, connection.table(table).to_arrow_table())


def spark_db_api(spark):
    """Splink's SparkAPI on `spark`, with DuckDB's Jaro-Winkler registered (`similarity`).
    Splink breaks long query plans by checkpointing when the session has a checkpoint folder (a
    cluster's); a local session without one keeps its tables in memory instead."""
    from splink import SparkAPI

    lineage = None if spark.sparkContext.getCheckpointDir() else "persist"
    db_api = SparkAPI(spark_session=spark, break_lineage_method=lineage)
    register_similarity(spark)
    return db_api


def registered_records(db_api, frame):
    """`frame` registered with Splink under a name of its own: Splink registers a table as a
    temporary view of the session, and a second run in one session (an update after a link)
    may not take the first's name."""
    return db_api.register(frame, table_name=f"records_{uuid.uuid4().hex}", dataset_display_name="records")


BLOCKED_VIEW = "residentview_blocked_pairs"  # a Spark temporary view, dropped when done


def score_blocked_pairs(linker, db_api, blocked, scoring: list):
    """The id pairs in `blocked` (a Spark frame: match_key, join_key_l, join_key_r) scored with
    `scoring` (`linkage.model._scoring_sqls`), as `linkage.model._score_id_pairs` scores a DuckDB
    table of them: Splink's records with their term frequencies, counted over all the records,
    joined to each pair. Splink persists the result."""
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat_with_tf

    blocked.createOrReplaceTempView(BLOCKED_VIEW)
    pipeline = CTEPipeline([db_api.table_to_splink_dataframe("__splink__blocked_id_pairs", BLOCKED_VIEW)])
    enqueue_df_concat_with_tf(linker, pipeline)
    pipeline.enqueue_list_of_sqls(scoring)
    return db_api.sql_pipeline_to_splink_dataframe(pipeline)


def predicted(spark, linker, db_api, records_view: str, model: dict):
    """Every candidate pair of `model`'s blocking rules (the model in DuckDB's SQL, as saved)
    among `records_view`'s records, scored at the predict floor by `linker` (the model in
    Spark's SQL): see the module docstring. Splink's predict should this Splink lack a piece of
    the scoring SQL. The caller drops `BLOCKED_VIEW` once done with the pairs."""
    scoring = _scoring_sqls(linker, PREDICT_FLOOR)
    if scoring is None:
        return linker.inference.predict(threshold_match_probability=PREDICT_FLOOR)
    rules = [rule["blocking_rule"] for rule in model["blocking_rules_to_generate_predictions"]]
    blocked = spark.sql(spark_sql(blocked_pairs_sql(rules, records_view)))
    return score_blocked_pairs(linker, db_api, blocked, scoring)


SCORED_VIEW = "residentview_scored_pairs"  # a Spark temporary view, dropped when done


def _driver_relation(connection, frame):
    """A Spark frame's rows as a relation of the driver's DuckDB `connection`, dates (of birth)
    as DuckDB gives them, without a zone: Spark's timestamps carry the session's, UTC, and would
    reach the review page as "1975-10-22 00:00:00+00:00"."""
    from pyspark.sql import functions as F

    naive = [F.col(f.name).cast("timestamp_ntz").alias(f.name) if f.dataType.typeName() == "timestamp"
             else F.col(f.name) for f in frame.schema.fields]
    return connection.from_arrow(frame.select(*naive).toArrow())


def collected_scores(connection, scored, columns: set[str], threshold: float,
                     counted=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`scored_relation` of `scored`, a Spark frame of Splink's scored pairs (persisted, as
    Splink's SparkAPI leaves its predictions), the linking frame (with `columns`) in the driver's
    DuckDB `connection`. The full-name adjustment is applied on Spark, by `link`'s own SQL: each
    full name's excess is worked out in DuckDB, from the counts `counted` gives (see
    `linkage.model._full_name_excess`: counted over all the records, where they are; by default
    over `connection`'s linking table), and that small table joins the pairs on Spark. Then two collects: the scores, levels and term-frequency adjustments of
    every pair, and every column of the few thousand review pairs. The same pairs and review
    pairs as `scored_relation`, without any pair's compared values crossing to the driver."""
    from pyspark.sql import functions as F

    spark = scored.sparkSession
    adjusted = name_adjustable(connection, scored.columns, columns, counted)
    try:
        if adjusted:
            # under the name `adjusted_sql` reads it by, dropped when done too
            spark_table(spark, connection, NAME_EXCESS_TABLE).createOrReplaceTempView(NAME_EXCESS_TABLE)
            scored.createOrReplaceTempView(SCORED_VIEW)
            scored = spark.sql(spark_sql(adjusted_sql(SCORED_VIEW, scored.columns)))
        pairs = _slim_pairs(_driver_relation(connection, scored.select(*slim_columns(scored.columns))))
        near, closest_first = review_band(threshold)
        chosen = scored.where(near).orderBy(*[F.expr(e) for e in closest_first]).limit(REVIEW_PAIRS_KEPT)
        review_pairs = _review_pairs(_driver_relation(connection, chosen), threshold)
    finally:
        if adjusted:
            for view in (SCORED_VIEW, NAME_EXCESS_TABLE):
                spark.catalog.dropTempView(view)
    return pairs, review_pairs


def driver_records(connection, table, ids) -> None:
    """The rows of `ids` (unique_ids) of the linking table on Spark as `records_table` in the
    driver's DuckDB `connection`, typed as `link` loads it (dates of birth in nanoseconds), in
    unique_id order."""
    import pyarrow as pa

    wanted = driver_frame(table.sparkSession, pa.table({"unique_id": pa.array(ids, type=pa.int64())}))
    rows = _driver_relation(connection, table.join(wanted, "unique_id").select(*table.columns))
    connection.register("incoming", rows)
    dob = " REPLACE (CAST(dob AS TIMESTAMP_NS) AS dob)" if "dob" in table.columns else ""
    connection.execute(f"CREATE TABLE records_table AS SELECT *{dob} FROM incoming ORDER BY unique_id")
    connection.unregister("incoming")


def link_on_spark(spark, records, settings: LinkageConfig, model_path: Optional[Path] = None,
                  labels: Optional[pd.DataFrame] = None) -> Linkage:
    """`linkage.link_records` of `records` (the standardised records, a Spark frame) with the
    linking table made and scored on Spark (see the module docstring)."""
    from splink import Linker

    linking = linking_on_spark(records, settings, model_path)
    plan = linking.plan
    if plan.done is not None:
        return plan.done
    n_records = len(linking.ids)
    connection = linking_database()
    driver_records(connection, linking.table, driver_ids(linking, settings, labels))
    duck_sdf, duck_train = registered_tables(connection, plan.sample_ids)
    rules = chosen_rules(plan, connection, n_records, settings)

    db_api = spark_db_api(spark)
    spark_sdf = registered_records(db_api, linking.table)
    translation = Translation()

    def spark_linker(sdf, model: dict) -> Linker:
        return Linker(sdf, translation.to_spark(model), log_level=None)

    # Training on the sample, on the driver, as `link` trains: the same model, byte for byte.
    # (Splink's EM on Spark: 303 s for the 100-person demo on local[2]; see the docstring.)
    linker = trained_linker(plan, rules, duck_sdf, duck_train, settings, n_records)
    learn_from_labels(plan, linker, connection, labels)
    model = saved_model(linker)

    def counted(columns: set[str]):  # each full name's counts, over every record: on Spark
        return spark.sql(spark_sql(full_name_counts_sql(columns, spark_sdf.physical_name))).toArrow()

    predictions = predicted(spark, spark_linker(spark_sdf, model), db_api, spark_sdf.physical_name, model)
    pairs, review_pairs = collected_scores(connection, predictions.as_spark_dataframe(), plan.columns,
                                           settings.threshold, counted)
    spark.catalog.dropTempView(BLOCKED_VIEW)
    plan.diagnostics["engine"] = "spark"
    return Linkage(pairs=pairs, model=model, diagnostics=plan.diagnostics, review_pairs=review_pairs)

"""`update` with `engine: spark` (CONTRACT §6, §9): the new and changed records scored against
the master by Splink's SparkAPI, giving the pairs `linkage.model.score_fresh` gives.

Everything else `incremental.update` does stays as it is on either engine: finding what changed,
standardising the few fresh records (on the driver, with the master's first-name counts: a few
thousand records are not worth a Spark job), re-clustering the residents they touch and carrying
the ids over.

What runs where in the scoring:

* on the driver, in the embedded DuckDB `score_fresh` uses: the linking frame and its derived
  columns, and the candidate pairs, found by the saved model's blocking rules with the very
  query `score_fresh` runs (`linkage.blocking.fresh_pairs_sql`). The fresh records are few: the
  pairs are found in well under a second where Spark, joining them to the master rule by rule,
  spent half a minute of jobs for 40 fresh records on local[2]. Only their ids go to Spark;
* on Spark: the comparisons of those pairs, with the saved model in Spark's SQL
  (`dialect.Translation`), over only the records the pairs join (the fresh records and their
  candidates, not the whole master), with the term frequencies Splink would count over every
  record counted by its own SQL in the driver's DuckDB, which holds them all, and handed to the
  Spark linker as its lookups (`_term_frequencies`);
* the full-name adjustment on Spark and the pairs' scores back to the driver
  (`linkage.collected_scores`), as in `link` on Spark.
"""

from __future__ import annotations

import uuid

import pandas as pd

from residentview.engines.spark.dialect import Translation
from residentview.engines.spark.linkage import (
    BLOCKED_VIEW, collected_scores, registered_records, score_blocked_pairs, spark_db_api, spark_table,
)
from residentview.engines.spark.session import driver_frame, spark_session
from residentview.errors import ConfigError, DataError
from residentview.linkage.blocking import fresh_pairs_sql
from residentview.linkage.frame import linking_frame, with_derived
from residentview.linkage.model import (
    FRESH_TABLE, PREDICT_FLOOR, Linkage, _load, _no_pairs, _scoring_sqls, new_linker, with_model_columns,
)

PAIRED_TABLE = "paired_records"
NO_SCORING = "the saved model's blocking rules cannot score an update; run `residentview update --retrain`"


def score_fresh_on_spark(records: pd.DataFrame, fresh_ids: pd.Series, model: dict, threshold: float) -> Linkage:
    """`linkage.model.score_fresh(records, fresh_ids, model, threshold)`, the pairs scored on
    Spark (see the module docstring)."""
    try:
        frame = with_model_columns(linking_frame(records), model, "the previous run's model")
    except ConfigError as exc:
        raise DataError(f"{exc}; run `residentview update --retrain` to train a new one") from None
    columns = with_derived(set(frame.columns))
    diagnostics: dict = {"n_person_records": int(len(frame)), "engine": "spark"}
    fresh = pd.DataFrame({"unique_id": pd.Series(fresh_ids, dtype="int64")})
    fresh = fresh[fresh["unique_id"].isin(frame["unique_id"])]  # people only
    if len(frame) < 2 or not len(fresh) or not model.get("comparisons"):
        return Linkage(_no_pairs(), model, diagnostics)

    if not model.get("blocking_rules_to_generate_predictions"):
        raise DataError(NO_SCORING)
    spark = spark_session()
    _, _, connection = _load(frame)
    del frame
    db_api = spark_db_api(spark)
    blocked_pairs = _fresh_pairs(connection, fresh, model)
    master = spark_table(spark, connection, _paired_records(connection, blocked_pairs))
    sdf = registered_records(db_api, master)
    try:
        linker = new_linker(sdf, Translation().to_spark(model))
        scoring = _scoring_sqls(linker, PREDICT_FLOOR)
        if scoring is None:
            raise DataError(NO_SCORING)
        _term_frequencies(linker, db_api, connection)
        blocked = spark.createDataFrame(blocked_pairs)
        predictions = score_blocked_pairs(linker, db_api, blocked, scoring)
        pairs, review_pairs = collected_scores(connection, predictions.as_spark_dataframe(), columns, threshold)
    finally:
        for view in (BLOCKED_VIEW, sdf.physical_name):
            spark.catalog.dropTempView(view)
        master.unpersist()
    diagnostics["fresh_person_records"] = int(len(fresh))
    diagnostics["fresh_pairs_scored"] = int(len(pairs))
    return Linkage(pairs=pairs, model=model, diagnostics=diagnostics, review_pairs=review_pairs)


def _paired_records(connection, pairs) -> str:
    """A table of the driver's DuckDB holding the records `pairs` (an Arrow table of join keys)
    join, and the fresh records (`FRESH_TABLE`) whatever their pairs: all Spark needs to compare
    them, and never empty (Spark cannot take an empty Arrow table with dates). Its name."""
    connection.register("pair_ids", pairs)
    connection.execute(
        f"CREATE OR REPLACE TABLE {PAIRED_TABLE} AS SELECT r.* FROM records_table r WHERE unique_id IN "
        f"(SELECT join_key_l FROM pair_ids UNION SELECT join_key_r FROM pair_ids UNION "
        f"SELECT unique_id FROM {FRESH_TABLE}) ORDER BY unique_id")
    connection.unregister("pair_ids")
    return PAIRED_TABLE


def _term_frequencies(linker, db_api, connection) -> None:
    """Each term-frequency lookup `linker` reads, counted over every record of records_table in
    DuckDB as Splink counts it (`term_frequencies_for_single_column_sql`: the share of the
    column's present values that are this one), registered as the lookup: the Spark linker
    holds only the records the pairs join, over which Splink would count them wrongly."""
    for column in linker._settings_obj._term_frequency_columns:
        name, tf_name = column.unquote().name, column.unquote().tf_name
        lookup = connection.sql(
            f'SELECT "{name}", CAST(count(*) AS DOUBLE) / (SELECT count("{name}") FROM records_table) AS "{tf_name}" '
            f'FROM records_table WHERE "{name}" IS NOT NULL GROUP BY "{name}"').to_arrow_table()
        linker.table_management.register_term_frequency_lookup(
            db_api.register(driver_frame(db_api.spark, lookup), table_name=f"tf_{uuid.uuid4().hex}"), name)


def _fresh_pairs(connection, fresh: pd.DataFrame, model: dict):
    """The candidate pairs (match_key, join_key_l, join_key_r) `score_fresh` finds, found as it
    finds them, in the driver's DuckDB (`connection`, holding records_table): an Arrow table."""
    rules = [rule["blocking_rule"] for rule in model["blocking_rules_to_generate_predictions"]]
    connection.register("fresh_ids", fresh)
    connection.execute(f"CREATE OR REPLACE TABLE {FRESH_TABLE} AS "
                       "SELECT r.* FROM records_table r JOIN fresh_ids USING (unique_id)")
    connection.unregister("fresh_ids")
    return connection.sql(fresh_pairs_sql(rules, "records_table", FRESH_TABLE, "unique_id")).to_arrow_table()


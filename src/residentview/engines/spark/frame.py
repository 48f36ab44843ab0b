"""The linking frame on Spark: `linkage.frame`'s columns made from the standardised records kept
on Spark, part by part on the executors, by the very functions `link` runs (pandas for the
columns, DuckDB for the SQL that loads them), with what needs all the records counted across
them. Nothing here is a second way of making the frame; only the order of the work changes.

* which first names say a sex (`sex_of_names`): each part's `stated_sex_counts`, summed;
* the columns, each part's rows through `linking_columns` and `load_sql(rowwise=True)` in an
  embedded DuckDB, with a flag for each column that SQL may empty, saying whether it held a
  value before (the fields a source carries are judged on the values as given);
* which columns hold any value and which fields each source carries (`fields_carried_counts`):
  counted by source over the parts' output;
* how common each full name is (`full_name_count`, a window over all the records): Spark's.

The driver then gets counts, every person record's unique_id (eight bytes a record) and the
records its own work reads: those the blocking rules are counted on
(`blocking.records_sample_condition`), the training sample, and the records of pairs
reviewers labelled. The training sample is chosen from the ids as `link` chooses it, so the
rules and the model are `link`'s, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from residentview.config import LinkageConfig
from residentview.linkage.comparisons import fields_carried_counts
from residentview.linkage.frame import (
    ADDED, REPLACED, WINDOWED, kept_columns, linking_columns, linking_inputs, load_sql, names_sex_from_counts,
    stated_sex_counts, with_derived,
)
from residentview.linkage.model import LinkPlan, initial_priors, model_fill, new_plan, training_sample

LISTS = ("first_name_aliases", "address_tokens")
PRESENT = "_present_"  # prefix of the flag saying a REPLACED column held a value before the SQL
NAME_SEX_SCHEMA = "first_name_key string, sex string, n long"


def records_from_arrow(table) -> pd.DataFrame:
    """Standardised records in Arrow, typed as `standardise` types them (row_hash unsigned,
    dates as datetime64[ns], lists), their text kept as Arrow's (pandas' `str`, NaN missing)."""
    from residentview.resident_view.previous import RECORD_TEXT

    records = table.to_pandas(types_mapper=RECORD_TEXT.get, date_as_object=False)
    if "row_hash" in records:
        records["row_hash"] = records["row_hash"].to_numpy(dtype=np.int64).view(np.uint64)
    for column in ("date_of_birth", "record_date"):
        if column in records:
            records[column] = pd.to_datetime(records[column]).astype("datetime64[ns]")
    if "first_name_aliases" in records:
        records["first_name_aliases"] = [None if v is None else list(v) for v in records["first_name_aliases"].tolist()]
    return records


def _arrow_type(name: str):
    import pyarrow as pa

    if name in ("unique_id", "full_name_count"):
        return pa.int64()
    if name == "dob":
        return pa.timestamp("us")  # Spark's TIMESTAMP_NTZ; dates of birth are whole days
    if name in LISTS:
        return pa.list_(pa.string())
    if name.startswith(PRESENT):
        return pa.bool_()
    return pa.string()


def _arrow_schema(columns):
    import pyarrow as pa

    return pa.schema([pa.field(c, _arrow_type(c)) for c in columns])


def _part(records: pd.DataFrame, names: pd.Series):
    """One part of the person records' linking table (Arrow): `linking_columns` loaded by
    `load_sql(rowwise=True)`, with a `PRESENT` flag for each REPLACED column."""
    import duckdb
    import pyarrow as pa

    out = linking_columns(records, names)
    flags = {f"{PRESENT}{name}": out[name].notna() for name in REPLACED if name in out}
    columns = list(out)
    given = pa.Table.from_pandas(pd.DataFrame(out, copy=False), schema=_arrow_schema(columns), preserve_index=False)
    with duckdb.connect() as connection:
        connection.register("incoming", given)
        loaded = connection.sql(load_sql(set(columns), "incoming", rowwise=True)).to_arrow_table()
    for name, flag in flags.items():
        loaded = loaded.append_column(name, pa.array(flag.to_numpy(dtype=bool)))
    return loaded.cast(_arrow_schema(loaded.column_names))


def _linker(names: pd.Series, schema):
    import pyarrow as pa

    def run(batches):
        for batch in batches:
            if batch.num_rows:
                table = _part(records_from_arrow(pa.Table.from_batches([batch])), names).cast(schema)
                yield from table.to_batches()

    return run


def _name_sex_counter(batches):
    for batch in batches:
        counts = stated_sex_counts(batch)
        if not counts.empty:
            long = counts.stack().rename("n").reset_index()
            long.columns = ["first_name_key", "sex", "n"]
            yield long[long["n"] > 0].astype({"n": "int64"})


@dataclass
class SparkLinking:
    """The link stage's plan (`linkage.model.LinkPlan`, without a pandas frame), the linking
    table on Spark (None when there is nothing to link) and every person record's unique_id."""

    plan: LinkPlan
    table: object
    ids: pd.Series


def _persons(records):
    from pyspark.sql import functions as F

    inputs = linking_inputs(records.columns)
    persons = records.select(*inputs)
    if "is_person" in inputs:
        persons = persons.where(F.coalesce(F.col("is_person"), F.lit(True))).drop("is_person")
    return persons


def linking_on_spark(records, settings: LinkageConfig, model_path=None) -> SparkLinking:
    """The linking table of `records` (standardised records, a Spark frame) on Spark and the
    plan `plan_link` makes of the same records (see the module docstring)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    persons = _persons(records)
    names = pd.Series(dtype=object)
    if "first_name_key" in persons.columns and {"sex", "title"} & set(persons.columns):
        sexed = persons.select(*[c for c in ("sex", "title", "first_name_key") if c in persons.columns])
        counted = (sexed.mapInPandas(_name_sex_counter, NAME_SEX_SCHEMA)
                   .groupBy("first_name_key", "sex").agg(F.sum("n").alias("n")).toPandas())
        if len(counted):
            names = names_sex_from_counts(counted.pivot(index="first_name_key", columns="sex", values="n")
                                          .fillna(0).astype("int64").sort_index())

    sample = persons.limit(50).toArrow()
    if not sample.num_rows:
        plan = new_plan(0, set(), {"unique_id", "source"}, model_path)
        return SparkLinking(plan, None, pd.Series(dtype="int64"))
    shape = _part(records_from_arrow(sample), names).schema
    # Read four times (counts, ids, the table and its full-name counts): made once.
    made = persons.mapInArrow(_linker(names, shape), from_arrow_schema(shape)).persist()
    try:
        return _planned(made, shape, settings, model_path)
    finally:
        made.unpersist()


def _planned(made, shape, settings: LinkageConfig, model_path) -> SparkLinking:
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    flagged = [c for c in shape.names if c.startswith(PRESENT)]
    given = [c for c in shape.names if c not in ("unique_id", "source") and not c.startswith(PRESENT)
             and c not in ADDED]

    def present(name):  # a value as given, before the SQL
        flag = f"{PRESENT}{name}"
        return F.sum(F.col(flag).cast("long")) if flag in flagged else F.count(F.col(name))

    first = "first_name_key" in given
    initials = [F.count(F.col("first_name_key")).alias("_named"),
                F.sum((F.length("first_name_key") == 1).cast("long")).alias("_initials")] if first else []
    counts = made.groupBy("source").agg(F.count(F.lit(1)).alias("_n"), *[present(c).alias(c) for c in given],
                                        *initials).toPandas().fillna(0)
    nonempty = ["unique_id", "source", *[c for c in given if counts[c].sum() > 0]]
    carried = fields_carried_counts(counts["_n"].to_numpy(),
                                    {c: counts[c].to_numpy() for c in nonempty if c not in ("unique_id", "source")})
    keep = kept_columns(nonempty, carried)
    ids = pd.Series(np.sort(made.select("unique_id").toArrow().column(0).to_numpy()), dtype="int64")
    plan = new_plan(len(ids), carried & set(keep), set(keep), model_path)
    if plan.done is not None:
        return SparkLinking(plan, None, ids)

    fill = model_fill(plan.model, set(keep), f"linkage.model: {model_path}") if plan.model is not None else []
    plan.columns = with_derived(set(keep) | set(fill))

    def column(name):  # a column a saved model's comparisons need and these records lack: empty
        if name in shape.names:
            return F.col(name)
        return F.lit(None).cast(from_arrow_type(_arrow_type(name))).alias(name)

    table = made.select(*keep, *[column(c) for c in fill],
                        *[column(c) for c in ADDED if c in plan.columns and c not in WINDOWED])
    if "full_name_count" in plan.columns:
        both = F.col("first_name_key").isNotNull() & F.col("last_name_key").isNotNull()
        together = Window.partitionBy("first_name_key", "last_name_key")
        table = table.withColumn("full_name_count", F.when(both, F.count(F.lit(1)).over(together)))
    if "first_name_key" in keep:
        plan.priors = initial_priors(int(counts["_named"].sum()), int(counts["_initials"].sum()))
    plan.sample_ids = training_sample(plan, ids, settings)
    return SparkLinking(plan, table.localCheckpoint(), ids)


def driver_ids(linking: SparkLinking, settings: LinkageConfig, labels: Optional[pd.DataFrame]) -> np.ndarray:
    """The unique_ids of the records the driver's DuckDB needs (see the module docstring): all
    of them when training reads them all."""
    import duckdb

    from residentview.linkage.blocking import records_sample_condition

    plan, ids = linking.plan, linking.ids
    if plan.model is None and plan.sample_ids is None:
        return ids.to_numpy()
    condition = records_sample_condition(len(ids), settings)
    frame = pd.DataFrame({"unique_id": ids.to_numpy()})
    wanted = (duckdb.sql(f"SELECT unique_id FROM frame WHERE {condition}").df()["unique_id"].to_numpy()
              if condition else ids.to_numpy())
    parts = [wanted]
    if plan.sample_ids is not None:
        parts.append(plan.sample_ids.to_numpy())
    if labels is not None and len(labels):
        parts += [labels["unique_id_l"].to_numpy(dtype="int64"), labels["unique_id_r"].to_numpy(dtype="int64")]
    return np.unique(np.concatenate(parts).astype("int64"))

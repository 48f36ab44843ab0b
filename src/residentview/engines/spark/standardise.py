"""Stage 2 on Spark: `residentview.standardise` applied partition by partition (`mapInPandas`),
the very cleaners `link` runs, with what needs the whole table worked out across it.

* unique_id: 0..n-1 in (source, record_id) order over all the records, as `in_record_order`
  numbers them (Spark orders text by its UTF-8 bytes, which is code-point order, as numpy's).
* first_name_aliases: which of a short name's many forms are kept depends on how often each
  first name occurs among all the records (`first_name_aliases(..., counts)`): counted across
  the table after a first pass, and the aliases worked out again with those counts.
* the data-quality profile: each partition profiles its records; the counts add up exactly.
  `n_distinct` (distinct valid values) does not add up across partitions: with more than one
  partition it is the sum of the partitions' counts, an upper bound; `top_invalid_patterns` is
  re-cut from the partitions' own top lists. Below `RECORDS_PER_PARTITION` records there is
  one partition and the profile is exactly `link`'s.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from residentview.config import Config
from residentview.standardise import in_record_order, standardise
from residentview.standardise.names import first_name_aliases
from residentview.standardise.profile import QUALITY_COLUMNS, TOP_PATTERNS, combine_profiles, empty_profile

RECORDS_PER_PARTITION = 100_000  # pandas cleans this many at a time well; below the worker's 200,000
QUALITY = "_quality"  # the column carrying each partition's profile, on a row of its own
TIMESTAMPS = ("date_of_birth", "record_date")
LISTS = ("first_name_aliases",)
INTEGERS = ("unique_id", "row_hash")


def _spark_type(name: str, dtype):
    from pyspark.sql import types as T

    if name in INTEGERS:
        return T.LongType()
    if name in TIMESTAMPS:
        return T.TimestampNTZType()
    if name in LISTS:
        return T.ArrayType(T.StringType())
    if pd.api.types.is_bool_dtype(dtype):
        return T.BooleanType()
    return T.StringType()


def _schema(columns: pd.Index, dtypes: pd.Series):
    from pyspark.sql import types as T

    fields = [T.StructField(c, _spark_type(c, dtypes[c]), True) for c in columns]
    return T.StructType([*fields, T.StructField(QUALITY, T.StringType(), True)])


def _for_spark(records: pd.DataFrame) -> pd.DataFrame:
    out = records.copy()
    out["row_hash"] = out["row_hash"].to_numpy(dtype=np.uint64).view(np.int64)
    for column in LISTS:
        if column in out:
            out[column] = [None if v is None else list(v) for v in out[column].tolist()]
    out[QUALITY] = None
    return out


def _quality_row(columns: pd.Index, quality: pd.DataFrame) -> pd.DataFrame:
    row = pd.DataFrame({c: [None] for c in columns})
    row["unique_id"] = -1
    row["row_hash"] = 0
    for column in row:
        if column not in INTEGERS:
            row[column] = row[column].astype(object)
    row[QUALITY] = quality.to_json(orient="records")
    return row


def _standardiser(config: Config, columns: pd.Index):
    def standardise_partition(batches):
        frames = [b for b in batches if len(b)]
        if not frames:
            return
        numbered = in_record_order(pd.concat(frames, ignore_index=True))
        ids = numbered.pop("unique_id").to_numpy(dtype=np.int64)
        raw = numbered.astype(object).where(numbered.notna(), None)
        std = standardise(raw, config)  # already in record order: the same rows, the same order
        records = std.records
        records["unique_id"] = ids
        yield _for_spark(records[columns])
        yield _quality_row(columns, std.quality)

    return standardise_partition


def _realiaser(counts: dict):
    def realias(batches):
        for batch in batches:
            batch["first_name_aliases"] = first_name_aliases(batch["first_name_key"], counts).map(
                lambda v: None if v is None else list(v))
            yield batch

    return realias


def numbered(raw):
    """`raw` (a Spark frame of raw records) with unique_id: 0..n-1 in (source, record_id) order.

    Numbered in the JVM, never row by row in Python: sorted (range partitions, in order), each
    record's position in its partition taken from `monotonically_increasing_id` (the partition
    in its upper 31 bits, the position in the lower 33), and each partition's first number from
    the counts of the partitions before it. The sorted frame is checkpointed first, so that the
    counts and the numbers see the same partitions. (zipWithIndex on the rows took 33 s of a
    million-record run; this takes a few.)"""
    from pyspark.sql import functions as F

    ordered = (raw.orderBy("source", "record_id")
               .select("*", F.spark_partition_id().alias("_partition"),
                       F.monotonically_increasing_id().alias("_position"))
               .localCheckpoint())
    counts = sorted((row["_partition"], row["count"]) for row in ordered.groupBy("_partition").count().collect())
    firsts, total = [], 0
    for partition, count in counts:
        firsts += [F.lit(partition), F.lit(total)]
        total += count
    first = F.create_map(*firsts)[F.col("_partition")] if firsts else F.lit(0)
    in_partition = F.col("_position") - F.col("_partition").cast("long") * F.lit(1 << 33)
    return ordered.select(*raw.columns, (first.cast("long") + in_partition).alias("unique_id"))


def standardise_on_spark(raw, config: Config, n_records: int):
    """(records: a Spark frame, typed as `standardise`'s records; quality: pandas)."""
    sample = raw.limit(50).toPandas()
    sample = sample.astype(object).where(sample.notna(), None)
    shape = standardise(sample, config).records
    schema = _schema(shape.columns, shape.dtypes)
    partitions = max(1, math.ceil(n_records / RECORDS_PER_PARTITION))
    with_ids = numbered(raw).repartitionByRange(partitions, "unique_id")
    both = with_ids.mapInPandas(_standardiser(config, shape.columns), schema).persist()
    quality = merge_profiles([pd.DataFrame(json.loads(r[QUALITY]))
                              for r in both.where(both[QUALITY].isNotNull()).select(QUALITY).collect()])
    records = both.where(both[QUALITY].isNull()).drop(QUALITY)
    if partitions > 1 and "first_name_key" in records.columns:
        counts = {r["first_name_key"]: r["count"] for r in
                  records.where(records["first_name_key"].isNotNull()).groupBy("first_name_key").count().collect()}
        records = records.mapInPandas(_realiaser(counts), records.schema)
    return records, quality, both


def merge_profiles(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Partitions' profiles as one (see the module docstring for what is exact)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_profile()
    if len(parts) == 1:
        return combine_profiles(parts)
    stacked = pd.concat(parts, ignore_index=True)
    counts = ["n_records", "n_present", "n_valid", "n_invalid", "n_placeholder", "n_distinct"]

    def summed(texts, limit=None):
        total: dict = {}
        for text in texts:
            for key, n in json.loads(text).items():
                total[key] = total.get(key, 0) + n
        ordered = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
        return json.dumps(dict(ordered[:limit] if limit else ordered))

    rows = []
    for (source, field), group in stacked.groupby(["source", "field"], sort=False):
        row = {"source": source, "field": field, **{c: int(group[c].sum()) for c in counts}}
        row["n_distinct"] = min(row["n_distinct"], row["n_valid"])
        row["invalid_reasons"] = summed(group["invalid_reasons"])
        row["top_invalid_patterns"] = summed(group["top_invalid_patterns"], TOP_PATTERNS)
        row["completeness"] = row["n_present"] / row["n_records"] if row["n_records"] else float("nan")
        rows.append(row)
    return combine_profiles([pd.DataFrame(rows)[QUALITY_COLUMNS]])

"""Stage 5 on Spark: the resident view's per-record work, the same rules as on the driver.

* golden records — survivorship is `golden.survivor_sql` and `golden.address_sql`, the SQL the
  driver runs in DuckDB over codes, spelled for Spark (`SPARK`) and run over the records' text
  itself: a code orders as its text does (both by its UTF-8 bytes), so the survivors are the same.
  Every field but the address unit's is stacked (a row per record and field) so one aggregation
  finds them all. The recency rank is (staleness, source priority) as a struct, ordered as
  `recency_rank` orders it; `row` is the record's position in the driver's records. The lists
  (other_names, addresses, sources) and the counts are Spark aggregates too. A row per resident
  comes back.
* resident ids — `SparkTally`: each group's fingerprint (the wrapping sum of its members' keyed
  hashes, ids.py's own `_keyed_hash` per partition) and size, and the edges between this run's
  groups and the previous run's ids (a join on the member keys). A row per group and per edge
  comes back; the greedy matching of edges and the minting stay on the driver (`ids.py`).
* households — `engines.spark.households.SparkHouseholds`: each resident's household key and
  each household's address, members and size in Spark SQL, from the golden addresses' codes;
  their ids as the residents' (a tally on Spark, the matching on the driver).
* on the driver still — each record's resident (clusters come back from clustering as pandas,
  and `links` is a row per record), the members' keys shipped to Spark for the tally, each
  record's address key coded (`GoldenAddresses.record_keys`: the address history and the
  events read it per record, and both stay there).

`OnSpark` is what `build_resident_view(..., engine=OnSpark(...))` is handed in place of the
driver's `OnDriver`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from residentview.engines.spark.households import SparkHouseholds
from residentview.engines.spark.session import driver_frame
from residentview.resident_view import OnDriver
from residentview.resident_view.coding import coded, combined
from residentview.resident_view.golden import (ADDRESS_KEY, ADDRESS_UNIT, LIST_COLUMNS, NAMES_WITH_INITIALS,
                                               GoldenAddresses, SqlDialect, _column, _initial_column, address_sql,
                                               golden_addresses, golden_frame, golden_value_columns, survivor_sql)
from residentview.resident_view.ids import IdScheme, MemberTally, _as_text, _keyed_hash

SPARK = SqlDialect(quote="`", arg_min="min_by", row="struct", no_uprn="{}")
SHARED = "shared_records"  # the view the SQL reads (golden.py's name)
STACKED = "stacked_records"  # resident, rank, field, value (as text), `value is an initial`
INITIAL = _initial_column("value")
# What the resident view reads of a record on Spark, besides the golden values.
RECORD_COLUMNS = ("unique_id", "source", "record_date", "is_person", "is_deceased")
NEVER = np.iinfo(np.int64).max  # the staleness of a record without a record_date: last


def resident_view_columns(frame) -> list[str]:
    """The columns of the standardised records (a Spark frame) the resident view reads."""
    golden = golden_value_columns(pd.DataFrame(columns=frame.columns))
    return [c for c in dict.fromkeys([*RECORD_COLUMNS, *golden]) if c in frame.columns]


def _shared_records(frame, resident: pd.DataFrame, fields: list[str], source_priority: Sequence[str]):
    """`shared_records` as golden.py's SQL reads it, in text: resident, row, rank, the fields, the
    initial flags and address_key. `resident`: unique_id, resident and row (the record's position
    on the driver, which breaks the address unit's last ties as there)."""
    from pyspark.sql import functions as F

    def column(name):
        return F.col(name) if name in frame.columns else F.lit(None).cast("string")

    staleness = F.coalesce(F.expr("timestampdiff(MICROSECOND, record_date, TIMESTAMP_NTZ'1970-01-01')")
                           if "record_date" in frame.columns else F.lit(None).cast("long"), F.lit(NEVER))
    priority = F.lit(len(source_priority))
    for position, source in reversed(list(enumerate(source_priority))):
        priority = F.when(F.col("source") == source, F.lit(position)).otherwise(priority)
    resident_of = driver_frame(frame.sparkSession, resident, "unique_id long, resident long, row long")
    records = frame.join(resident_of, "unique_id")
    selected = [
        F.col("resident"), F.col("row"), F.struct(staleness.alias("staleness"),
                                                                     priority.alias("priority")).alias("rank"),
        *(column(f).alias(f) for f in dict.fromkeys([*fields, "source"])),
        *(F.coalesce(F.char_length(column(f)) <= 1, F.lit(False)).alias(_initial_column(f))
          for f in NAMES_WITH_INITIALS),
        F.concat(F.coalesce(column("address"), F.lit("")), F.lit("|"),
                 F.coalesce(column("postcode"), F.lit(""))).alias("address_key"),
        column("record_date").alias("record_date"),
        F.coalesce(column("is_person").cast("boolean"), F.lit(True)).alias("is_person"),
        F.coalesce(column("is_deceased").cast("boolean"), F.lit(False)).alias("is_deceased"),
    ]
    return records.select(*selected)


def _stacked(shared, fields: list[str]):
    """A row per record and field (but the address unit's): resident, rank, field, value as text
    (a date's text, 'YYYY-MM-DD HH:MM:SS', orders as the date does) and whether it is an initial, so one aggregation finds
    every field's survivors, not one per field."""
    from pyspark.sql import functions as F

    entries = [F.struct(F.lit(f).alias("field"), F.col(f).cast("string").alias("value"),
                        (F.col(_initial_column(f)) if f in NAMES_WITH_INITIALS else F.lit(False)).alias(INITIAL))
               for f in fields if f not in ADDRESS_UNIT]
    return shared.select("resident", "rank", F.explode(F.array(*entries)).alias("entry")).select(
        "resident", "rank", "entry.*")


def _lists_and_counts(shared):
    """Per resident: other_names, addresses, sources (as golden._lists makes them), the counts, and
    its lowest row (the record of a resident of one)."""
    from pyspark.sql import functions as F

    def distinct_sorted(values):
        return F.array_sort(F.array_distinct(F.filter(values, lambda v: v.isNotNull() & (v != F.lit("")))))

    has_address = F.col("address").isNotNull() | F.col("postcode").isNotNull()
    names = F.array(F.concat_ws(" ", "first_name", "last_name"),
                    F.when(F.col("previous_last_name").isNotNull(), F.concat_ws(" ", "first_name", "previous_last_name")))
    label = F.when(has_address, F.concat_ws(", ", "address", "postcode"))
    n_records = F.count(F.lit(1))
    return shared.groupBy("resident").agg(
        distinct_sorted(F.flatten(F.collect_list(names))).alias("other_names"),
        # Kept from golden._lists: several records none of which has an address have no list.
        F.when((n_records > 1) & (F.sum(has_address.cast("int")) == 0), F.lit(None))
        .otherwise(distinct_sorted(F.collect_list(label))).alias("addresses"),
        distinct_sorted(F.collect_list("source")).alias("sources"),
        n_records.alias("n_records"),
        F.min("record_date").alias("first_seen"),
        F.max("record_date").alias("last_seen"),
        F.bool_or("is_person").alias("is_person"),
        F.bool_or("is_deceased").alias("is_deceased"),
        F.min("row").alias("first_row"),
    )


def _as_column_of(collected: pd.Series, like: pd.Series) -> np.ndarray:
    """A collected golden value as the driver's golden_records types it: datetimes for a datetime
    field (NaT when none), else objects (None when none)."""
    if pd.api.types.is_datetime64_any_dtype(like):
        return pd.to_datetime(collected, format="ISO8601").to_numpy("datetime64[ns]")
    return collected.astype(object).where(collected.notna(), None).to_numpy(dtype=object)


def _as_lists(collected: pd.Series) -> pd.Series:
    return pd.Series([None if v is None else [str(x) for x in v] for v in collected.tolist()], dtype=object)


def golden_records_on_spark(
    frame, records: pd.DataFrame, resident: np.ndarray, resident_ids: np.ndarray, source_priority: Sequence[str] = (),
) -> tuple[pd.DataFrame, GoldenAddresses]:
    """`golden.golden_records(records, resident, resident_ids, source_priority)`, the survivors
    found by Spark over `frame` (the same records, a Spark frame: `resident_view_columns`)."""
    n = len(resident_ids)
    resident = np.asarray(resident, dtype=np.int64)
    fields = golden_value_columns(records)
    spark = frame.sparkSession
    resident_of = pd.DataFrame({"unique_id": records["unique_id"].to_numpy(np.int64), "resident": resident,
                                "row": np.arange(len(records), dtype=np.int64)})
    shared = _shared_records(frame, resident_of, fields, source_priority).persist()
    try:
        shared.createOrReplaceTempView(SHARED)
        _stacked(shared, fields).createOrReplaceTempView(STACKED)
        survivors = spark.sql(survivor_sql("value", SPARK, ("resident", "field"), INITIAL, STACKED)).toPandas()
        found = _lists_and_counts(shared).join(spark.sql(address_sql(SPARK)), "resident", "left").toPandas()
    finally:
        spark.catalog.dropTempView(STACKED)
        spark.catalog.dropTempView(SHARED)
        shared.unpersist()
    if len(found) != n:
        raise ValueError(f"Spark's golden records: {len(found)} residents, expected {n}")
    found = found.set_index("resident").reindex(np.arange(n))
    survivors = survivors.pivot(index="resident", columns="field", values="value").reindex(
        index=np.arange(n), columns=[f for f in fields if f not in ADDRESS_UNIT])

    # The address unit by its record's codes, as on the driver: each record's address key is the
    # address history's (see the module docstring).
    unit = {field: coded(_column(records, field)) for field in ADDRESS_UNIT}
    key = combined(unit["address"], unit["postcode"], key=ADDRESS_KEY)["key"]
    # A resident of one record has it as its address record even with no address (golden._survivors).
    row = found["row"].astype("Int64").fillna(found["first_row"].where(found["n_records"] == 1).astype("Int64"))
    address_row = row.fillna(-1).to_numpy(np.int64)
    same_address_uprn = pd.Index(unit["uprn"].values).get_indexer(found["same_address_uprn"].to_numpy(dtype=object))
    addresses = golden_addresses(unit, key, address_row, same_address_uprn)

    values = {f: None if f in ADDRESS_UNIT else _as_column_of(survivors[f], _column(records, f)) for f in fields}
    lists = {name: _as_lists(found[name]) for name in LIST_COLUMNS}
    counts = {
        "n_records": found["n_records"].to_numpy(np.int64),
        "first_seen": pd.to_datetime(found["first_seen"]).to_numpy("datetime64[ns]"),
        "last_seen": pd.to_datetime(found["last_seen"]).to_numpy("datetime64[ns]"),
        "is_person": found["is_person"].to_numpy(bool),
        "is_deceased": found["is_deceased"].to_numpy(bool),
    }
    return golden_frame(resident_ids, values, addresses, lists, counts), addresses


def _texts(members: pd.Series) -> np.ndarray:
    """Member keys as Python strings (None where missing), as Spark takes them from pandas."""
    return _as_text(members).to_numpy(dtype=object, na_value=None)


def _hasher(scheme: IdScheme):
    def hash_members(batches):
        for batch in batches:
            hashes = _keyed_hash(batch["member"], scheme).view(np.int64)
            yield pd.DataFrame({"group": batch["group"].to_numpy(np.int64), "hash": hashes})

    return hash_members


class SparkTally(MemberTally):
    """`ids.MemberTally` on Spark: the members' keyed hashes (ids' own `_keyed_hash`, per
    partition), their wrapping sum per group, and the join with the previous run's members are
    Spark's; a row per group, and per edge, comes back."""

    def __init__(self, spark):
        self.spark = spark

    def _members(self, codes: np.ndarray, members: pd.Series):
        return driver_frame(
            self.spark, pd.DataFrame({"group": np.asarray(codes, dtype=np.int64), "member": _texts(members)}),
            "group long, member string")

    def fingerprints(self, codes, n, members, scheme):
        from pyspark.sql import functions as F

        hashed = self._members(codes, members).mapInPandas(_hasher(scheme), "group long, hash long")
        # A 64-bit sum wraps; Spark's (ANSI) would fail: the halves are summed apart, and joined here.
        sums = hashed.groupBy("group").agg(
            F.sum(F.col("hash").bitwiseAND(F.lit(0xFFFFFFFF))).alias("low"),
            F.sum(F.shiftrightunsigned("hash", 32)).alias("high"),
            F.count(F.lit(1)).alias("n")).toPandas()
        group = sums["group"].to_numpy(np.int64)
        fingerprints, sizes = np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.int64)
        with np.errstate(over="ignore"):
            fingerprints[group] = (sums["high"].to_numpy(np.int64).astype(np.uint64) << np.uint64(32)) \
                + sums["low"].to_numpy(np.int64).astype(np.uint64)
        sizes[group] = sums["n"].to_numpy(np.int64)
        return fingerprints, sizes

    def overlaps(self, codes, members, previous, previous_members):
        held = previous.codes >= 0
        before = driver_frame(
            self.spark, pd.DataFrame({"member": _texts(previous_members)[held], "old": previous.codes[held]}),
            "member string, old long")
        edges = (self._members(codes, members).join(before, "member").groupBy("group", "old")
                 .count().toPandas())
        return tuple(edges[c].to_numpy(np.int64) for c in ("group", "old", "count"))


class OnSpark(OnDriver):
    """The resident view's per-record work on Spark (`build_resident_view(..., engine=...)`), over
    `records`, a Spark frame of the standardised records (`resident_view_columns`)."""

    def __init__(self, records):
        self.records = records
        self.tally = SparkTally(records.sparkSession)
        self.households = SparkHouseholds(records.sparkSession)

    def golden_records(self, records, resident, resident_ids, source_priority=()):
        return golden_records_on_spark(self.records, records, resident, resident_ids, source_priority)


def records_frame(spark, records: pd.DataFrame, columns: Optional[list[str]] = None):
    """The `columns` of `records` (pandas, as `standardise` types them; by default those the
    resident view reads) as a Spark frame typed as `standardise_on_spark` types them."""
    from pyspark.sql import types as T

    from residentview.engines.spark.standardise import _spark_type

    columns = resident_view_columns(records) if columns is None else columns
    schema = T.StructType([T.StructField(c, _spark_type(c, records[c].dtype), True) for c in columns])
    return driver_frame(spark, records[columns].astype(object).where(records[columns].notna(), None), schema)

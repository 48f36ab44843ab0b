"""Households on Spark: the grouping's per-resident work in Spark SQL, the rules of
`resident_view.households` (its `HouseholdWork` does the same on the driver, in numpy).

* which UPRN keys each resident's household — their own, or else the one UPRN the living
  residents at their address and postcode have, if exactly one (`UPRNS`);
* each household's address and postcode (its members' commonest address key, ties to the
  lowest code, which is the alphabetically first; of members with the same key, the part
  present), its resident ids in order and its size (`DESCRIBED`).

The residents' golden addresses arrive as the codes the driver's golden records carry
(`GoldenAddresses`): integers a resident, and each member's resident id. A row per resident,
and per household, comes back. Which household keeps which id (`ids.assign_persistent_ids`)
runs between the two, with the members' tallies on Spark (`resident_view.SparkTally`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from residentview.engines.spark.session import driver_frame
from residentview.resident_view.golden import GoldenAddresses
from residentview.resident_view.households import HouseholdWork

RESIDENTS = "household_residents"  # resident, full (address key with both parts, else -1), uprn, living
MEMBERS = "household_members"  # member (resident row), household, key, address, postcode, resident_id

UPRNS = f"""
WITH known AS (
    SELECT DISTINCT full, uprn FROM {RESIDENTS} WHERE living AND full >= 0 AND uprn >= 0
), sole AS (
    SELECT full, min(uprn) AS uprn FROM known GROUP BY full HAVING count(*) = 1
)
SELECT r.resident, CASE WHEN r.uprn >= 0 THEN r.uprn ELSE coalesce(sole.uprn, -1) END AS uprn
FROM {RESIDENTS} AS r LEFT JOIN sole ON r.full = sole.full
"""

DESCRIBED = f"""
WITH cells AS (
    SELECT household, key, count(*) AS n, max(address) AS address, max(postcode) AS postcode
    FROM {MEMBERS} GROUP BY household, key
), commonest AS (
    SELECT household, address, postcode FROM (
        SELECT *, row_number() OVER (PARTITION BY household ORDER BY n DESC, key) AS place FROM cells
    ) WHERE place = 1
), listed AS (
    SELECT household,
           transform(sort_array(collect_list(struct(member, resident_id))), m -> m.resident_id) AS resident_ids,
           count(*) AS size
    FROM {MEMBERS} GROUP BY household
)
SELECT household, address, postcode, resident_ids, size FROM listed JOIN commonest USING (household)
"""


class SparkHouseholds(HouseholdWork):
    """`HouseholdWork` in Spark SQL (see the module docstring)."""

    def __init__(self, spark):
        self.spark = spark

    def _query(self, view: str, table: pa.Table, sql: str) -> pd.DataFrame:
        driver_frame(self.spark, table).createOrReplaceTempView(view)
        try:
            return self.spark.sql(sql).toPandas()
        finally:
            self.spark.catalog.dropTempView(view)

    def uprns(self, addresses: GoldenAddresses, full_address: np.ndarray, living: np.ndarray) -> np.ndarray:
        n = len(full_address)
        found = self._query(RESIDENTS, pa.table({
            "resident": np.arange(n, dtype=np.int64), "full": np.asarray(full_address, dtype=np.int64),
            "uprn": np.asarray(addresses.uprn.codes, dtype=np.int64), "living": np.asarray(living, dtype=bool),
        }), UPRNS)
        uprn = np.full(n, -1, dtype=np.int64)
        uprn[found["resident"].to_numpy(np.int64)] = found["uprn"].to_numpy(np.int64)
        return uprn

    def describe(self, resident_ids: np.ndarray, addresses: GoldenAddresses, members: np.ndarray,
                 household: np.ndarray, n: int) -> pd.DataFrame:
        found = self._query(MEMBERS, pa.table({
            "member": np.asarray(members, dtype=np.int64), "household": np.asarray(household, dtype=np.int64),
            "key": addresses.key.codes[members].astype(np.int64),
            "address": addresses.address.codes[members].astype(np.int64),
            "postcode": addresses.postcode.codes[members].astype(np.int64),
            "resident_id": pa.array(resident_ids[members].tolist(), type=pa.string()),
        }), DESCRIBED)
        if len(found) != n:
            raise ValueError(f"Spark's households: {len(found)} described, expected {n}")
        found = found.set_index("household").reindex(np.arange(n))
        return pd.DataFrame({
            "address": addresses.address.decoded(found["address"].to_numpy(np.int64)),
            "postcode": addresses.postcode.decoded(found["postcode"].to_numpy(np.int64)),
            "resident_ids": pd.Series([list(ids) for ids in found["resident_ids"]], dtype=object),
            "size": found["size"].to_numpy(np.int64),
        })

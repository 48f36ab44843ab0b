"""Households: residents grouped by their current (golden) address.

A resident's household key is the UPRN of their golden address; without one, the standardised
address and postcode — unless another resident at that same address and postcode has a UPRN
(exactly one), in which case they join that UPRN's household, so a property is one household even
when only some sources carry UPRNs. Residents with neither a UPRN nor both address and postcode
have no household; so do organisations and 'The Occupier' (`is_person` False) and deceased
residents, who live in no household.

Household ids persist across runs like resident ids, by overlap of resident ids
(`residentview.resident_view.ids`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import duckdb
import pandas as pd

from residentview.resident_view.golden import as_arrow, nulls_as_none, python_lists
from residentview.resident_view.ids import HOUSEHOLD_IDS, assign_persistent_ids

HOUSEHOLD_COLUMNS = ("household_id", "address", "postcode", "uprn", "resident_ids", "size", "id_issued_at")


@dataclass
class Households:
    households: pd.DataFrame  # HOUSEHOLD_COLUMNS, one row per household
    household_of: pd.Series  # resident_id -> household_id (residents in a household only)
    changes: pd.DataFrame


_KEYS_SQL = """
    WITH living AS (
        SELECT resident_id, address, postcode, uprn,
               CASE WHEN address IS NOT NULL AND postcode IS NOT NULL THEN address || '|' || postcode END AS address_key
        FROM residents WHERE coalesce(is_person, false) AND NOT coalesce(is_deceased, false)),
    unambiguous AS (
        SELECT address_key, min(uprn) AS uprn
        FROM (SELECT DISTINCT address_key, uprn FROM living WHERE address_key IS NOT NULL AND uprn IS NOT NULL)
        GROUP BY address_key HAVING count(*) = 1),
    keyed AS (
        SELECT l.resident_id, l.address, l.postcode, l.address_key, coalesce(l.uprn, u.uprn) AS uprn
        FROM living l LEFT JOIN unambiguous u USING (address_key))
    SELECT resident_id, CASE WHEN uprn IS NOT NULL THEN 'UPRN ' || uprn ELSE 'ADDRESS ' || address_key END AS key,
           uprn, address, postcode
    FROM keyed WHERE uprn IS NOT NULL OR address_key IS NOT NULL
    ORDER BY resident_id
"""

# One row per household: its commonest member address (ties: alphabetically first), its UPRN,
# its members and size.
_DESCRIBE_SQL = """
    WITH counted AS (
        SELECT household_id, coalesce(address, '') || '|' || coalesce(postcode, '') AS address_key,
               any_value(address) AS address, any_value(postcode) AS postcode, count(*) AS n
        FROM members GROUP BY ALL),
    commonest AS (
        SELECT household_id, arg_min_null(address, (-n, address_key)) AS address,
               arg_min_null(postcode, (-n, address_key)) AS postcode
        FROM counted GROUP BY household_id)
    SELECT household_id, c.address, c.postcode, min(m.uprn) AS uprn,
           list_sort(list(DISTINCT m.resident_id)) AS resident_ids, count(*) AS size
    FROM members m JOIN commonest c USING (household_id)
    GROUP BY household_id, c.address, c.postcode
    ORDER BY household_id
"""

def household_keys(residents: pd.DataFrame) -> pd.DataFrame:
    """resident_id, key, uprn (the household's, when known), address, postcode for the residents
    who belong in a household, by resident_id."""
    table = as_arrow(residents[["resident_id", "address", "postcode", "uprn", "is_person", "is_deceased"]])
    with duckdb.connect() as con:
        con.register("residents", table)
        return con.sql(_KEYS_SQL).df()


def build_households(
    residents: pd.DataFrame,
    previous_members: pd.DataFrame,
    previous_issued_at: pd.Series,
    taken: Iterable[str],
    run_timestamp: pd.Timestamp,
) -> Households:
    """Group residents (golden records) into households with persistent household ids.

    previous_members: member (resident_id), old_id (household_id) from the previous run.
    """
    members = household_keys(residents)
    assignment = assign_persistent_ids(
        pd.DataFrame({"group": members["key"], "member": members["resident_id"]}),
        previous_members, previous_issued_at, taken, HOUSEHOLD_IDS, run_timestamp,
    )
    members["household_id"] = assignment.member_ids
    household_of = members.set_index("resident_id")["household_id"]
    return Households(_describe(members, assignment.ids), household_of, assignment.changes)


def _describe(members: pd.DataFrame, ids: pd.DataFrame) -> pd.DataFrame:
    """One row per household: its commonest member address, its UPRN, members and size."""
    table = as_arrow(members[["household_id", "resident_id", "address", "postcode", "uprn"]])
    with duckdb.connect() as con:
        con.register("members", table)
        described = con.sql(_DESCRIBE_SQL).to_arrow_table()
    households = described.drop_columns(["resident_ids"]).to_pandas()
    households["resident_ids"] = python_lists(described["resident_ids"])
    households["size"] = households["size"].astype("int64")
    households["id_issued_at"] = ids.set_index("id")["id_issued_at"].reindex(households["household_id"]).array
    for column in ("address", "postcode", "uprn"):
        households[column] = nulls_as_none(households[column])
    return households[list(HOUSEHOLD_COLUMNS)]

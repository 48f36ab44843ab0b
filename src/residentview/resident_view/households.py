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

import numpy as np
import pandas as pd

from residentview.resident_view.golden import best_rows, distinct_lists, nulls_as_none
from residentview.resident_view.ids import HOUSEHOLD_IDS, assign_persistent_ids

HOUSEHOLD_COLUMNS = ("household_id", "address", "postcode", "uprn", "resident_ids", "size", "id_issued_at")


@dataclass
class Households:
    households: pd.DataFrame  # HOUSEHOLD_COLUMNS, one row per household
    household_of: pd.Series  # resident_id -> household_id (residents in a household only)
    changes: pd.DataFrame


def household_keys(residents: pd.DataFrame) -> pd.DataFrame:
    """resident_id, key, uprn (the household's, when known) for the residents who belong in a household."""
    living = residents[residents["is_person"].astype(bool) & ~residents["is_deceased"].astype(bool)]
    street_address = living["address"].notna() & living["postcode"].notna()
    address_key = (living["address"].astype(str) + "|" + living["postcode"].astype(str)).where(street_address)

    with_uprn = pd.DataFrame({"address_key": address_key, "uprn": living["uprn"]}).dropna().drop_duplicates()
    unambiguous = with_uprn[~with_uprn["address_key"].duplicated(keep=False)].set_index("address_key")["uprn"]
    uprn = living["uprn"].where(living["uprn"].notna(), address_key.map(unambiguous))

    keys = ("UPRN " + uprn.astype(str)).where(uprn.notna(), "ADDRESS " + address_key.astype(str))
    keys = keys.where(uprn.notna() | street_address)
    return pd.DataFrame({"resident_id": living["resident_id"], "key": keys, "uprn": uprn}).dropna(subset=["key"])


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
    keys = household_keys(residents)
    assignment = assign_persistent_ids(
        pd.DataFrame({"group": keys["key"], "member": keys["resident_id"]}),
        previous_members, previous_issued_at, taken, HOUSEHOLD_IDS, run_timestamp,
    )
    ids = assignment.ids.set_index("group")
    members = keys.merge(residents[["resident_id", "address", "postcode"]], on="resident_id")
    members["household_id"] = members["key"].map(ids["id"])
    household_of = members.set_index("resident_id")["household_id"]
    return Households(_describe(members, ids), household_of, assignment.changes)


def _describe(members: pd.DataFrame, ids: pd.DataFrame) -> pd.DataFrame:
    """One row per household: its commonest member address, its UPRN, members and size."""
    codes, household_ids = pd.factorize(members["household_id"], sort=True)
    address_key = members["address"].fillna("") + "|" + members["postcode"].fillna("")
    _, commonest = best_rows(codes, address_key)
    households = pd.DataFrame({
        "household_id": household_ids,
        "address": members["address"].to_numpy()[commonest],
        "postcode": members["postcode"].to_numpy()[commonest],
        "uprn": members.groupby(codes)["uprn"].first().reindex(range(len(household_ids))).to_numpy(),
        "resident_ids": distinct_lists(codes, members["resident_id"], len(household_ids)).to_numpy(),
        "size": np.bincount(codes, minlength=len(household_ids)).astype("int64"),
    })
    households["id_issued_at"] = ids.set_index("id")["id_issued_at"].reindex(household_ids).array
    for column in ("address", "postcode", "uprn"):
        households[column] = nulls_as_none(households[column])
    return households[list(HOUSEHOLD_COLUMNS)]

"""Households: residents grouped by their current (golden) address.

A resident's household key is the UPRN of their golden address; without one, the standardised
address and postcode — unless another resident at that same address and postcode has a UPRN
(exactly one), in which case they join that UPRN's household, so a property is one household even
when only some sources carry UPRNs. Residents with neither a UPRN nor both address and postcode
have no household; so do organisations and 'The Occupier' (`is_person` False) and deceased
residents, who live in no household.

Household ids persist across runs like resident ids, by overlap of resident ids
(`residentview.resident_view.ids`).

The per-resident work — which UPRN each resident's household is keyed by, and each household's
address, members and size — is a `HouseholdWork`'s: here on the driver (numpy), on Spark
`engines.spark.households.SparkHouseholds` (Spark SQL), with the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.resident_view.coding import lookup, owner_lists
from residentview.resident_view.golden import GoldenAddresses
from residentview.resident_view.ids import HOUSEHOLD_IDS, MemberTally, assign_persistent_ids

HOUSEHOLD_COLUMNS = ("household_id", "address", "postcode", "uprn", "resident_ids", "size", "id_issued_at")


class HouseholdWork:
    """The per-resident work of grouping households, on the driver."""

    def uprns(self, addresses: GoldenAddresses, full_address: np.ndarray, living: np.ndarray) -> np.ndarray:
        """Per resident, the UPRN code of their household (`_household_uprns`)."""
        return _household_uprns(addresses, full_address, living)

    def describe(self, resident_ids: np.ndarray, addresses: GoldenAddresses, members: np.ndarray,
                 household: np.ndarray, n: int) -> pd.DataFrame:
        """Per household 0..n-1: address, postcode, resident_ids and size (`_describe`)."""
        return _describe(resident_ids, addresses, members, household, n)


@dataclass
class Households:
    households: pd.DataFrame  # HOUSEHOLD_COLUMNS, one row per household, by household_id
    household_of: np.ndarray  # per resident (row of the residents given), its household_id or None
    changes: pd.DataFrame


def build_households(
    residents: pd.DataFrame,
    addresses: GoldenAddresses,
    previous_members: pd.DataFrame,
    previous_issued_at: pd.Series,
    taken: Iterable[str],
    run_timestamp: pd.Timestamp,
    tally: Optional[MemberTally] = None,
    work: Optional[HouseholdWork] = None,
) -> Households:
    """Group residents (golden records, by resident_id, and their addresses coded) into households
    with persistent household ids.

    previous_members: member (resident_id), old_id (household_id) from the previous run.
    tally, work: where the ids' per-member work (`ids.MemberTally`) and the grouping's
    (`HouseholdWork`) run: the driver by default, Spark's for `engine: spark`.
    """
    work = work or HouseholdWork()
    living = residents["is_person"].fillna(False).to_numpy(bool) \
        & ~residents["is_deceased"].fillna(False).to_numpy(bool)
    full_address = _full_addresses(addresses)
    uprn = work.uprns(addresses, full_address, living)
    members = np.flatnonzero(living & ((uprn >= 0) | (full_address >= 0)))
    resident_ids = residents["resident_id"].to_numpy()
    # A household is keyed by its UPRN, or else by its address: codes of either, in one numbering.
    n_uprns = len(addresses.uprn.values)
    key = np.where(uprn >= 0, uprn, n_uprns + full_address)[members]
    assignment = assign_persistent_ids(
        pd.DataFrame({"group": key, "member": resident_ids[members]}),
        previous_members, previous_issued_at, taken, HOUSEHOLD_IDS, run_timestamp, tally,
    )
    household_of = np.full(len(residents), None, dtype=object)
    household_of[members] = assignment.member_ids

    ids = assignment.ids
    groups = ids["group"].to_numpy()
    households = work.describe(resident_ids, addresses, members, assignment.member_groups, len(ids)).assign(
        household_id=ids["id"].to_numpy(),
        uprn=addresses.uprn.decoded(np.where(groups < n_uprns, groups, -1)),  # the UPRN it is keyed by, if any
        id_issued_at=ids["id_issued_at"].array,
    )
    by_id = pc.sort_indices(pa.array(households["household_id"], type=pa.string())).to_numpy()
    households = households.take(by_id).reset_index(drop=True)
    return Households(households[list(HOUSEHOLD_COLUMNS)], household_of, assignment.changes)


def _full_addresses(addresses: GoldenAddresses) -> np.ndarray:
    """The address key of residents with both address and postcode, else -1."""
    return np.where((addresses.address.codes >= 0) & (addresses.postcode.codes >= 0), addresses.key.codes, -1)


def _household_uprns(addresses: GoldenAddresses, full_address: np.ndarray, living: np.ndarray) -> np.ndarray:
    """Per resident, the UPRN code of their household: their own, or else the one UPRN the living
    residents at the same address and postcode have, if exactly one (-1 when none)."""
    uprn = addresses.uprn.codes
    known = living & (full_address >= 0) & (uprn >= 0)
    width = len(addresses.uprn.values)
    key_of, uprn_of = np.divmod(pd.unique(full_address[known] * width + uprn[known]), width)
    sole = np.bincount(key_of, minlength=len(addresses.key.values))[key_of] == 1
    sole_uprn = np.full(len(addresses.key.values), -1, dtype=np.int64)
    sole_uprn[key_of[sole]] = uprn_of[sole]
    return np.where(uprn >= 0, uprn, lookup(sole_uprn, full_address))


def _describe(resident_ids: np.ndarray, addresses: GoldenAddresses, members: np.ndarray, household: np.ndarray,
              n: int) -> pd.DataFrame:
    """Per household 0..n-1 (`household`: each member's): its commonest member address (ties: the
    alphabetically first), its members (resident_ids, sorted) and size."""
    width = max(len(addresses.key.values), 1)
    at, pairs = pd.factorize(household * width + addresses.key.codes[members])
    # Members with the same key may differ only by a part missing in one, empty in another: the
    # present one (the greater code) is the household's, as DuckDB's any_value gave it.
    address, postcode = np.full(len(pairs), -1, dtype=np.int64), np.full(len(pairs), -1, dtype=np.int64)
    np.maximum.at(address, at, addresses.address.codes[members])
    np.maximum.at(postcode, at, addresses.postcode.codes[members])
    household_of, key_of = np.divmod(pairs, width)
    best = np.lexsort([key_of, -np.bincount(at, minlength=len(pairs)), household_of])
    commonest = best[np.r_[True, household_of[best][1:] != household_of[best][:-1]]] if len(best) else best
    by_member = np.lexsort([members, household])
    return pd.DataFrame({
        "address": addresses.address.decoded(address[commonest]),
        "postcode": addresses.postcode.decoded(postcode[commonest]),
        "resident_ids": owner_lists(household[by_member], members[by_member], resident_ids, n),
        "size": np.bincount(household, minlength=n).astype(np.int64),
    })

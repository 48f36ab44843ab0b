"""Persistent ids: map this run's groups (clusters of records, or households of residents) onto the
ids a previous run issued, mint opaque new ids for the rest, and say what changed.

An id is the letter of its kind followed by 10 Crockford base32 characters (50 bits). A new id is
a hash of the group's fingerprint — the sum of keyed SipHashes of its member keys — so it depends
on who is in the group as a whole: never on one source's id alone, the row order or the cluster
labels of the run. It is checked against every id issued before, so a retired id is never handed
out again.

Carrying ids over (`assign_persistent_ids`): every (group, previous id) pair that shares members
is an edge weighted by the number of shared members. Edges are taken greedily, heaviest first,
ties to the oldest previous id, so each previous id goes to at most one group and each group
keeps at most one previous id. Hence a group overlapping several previous ids (a merge) keeps the
one contributing most members; a previous id overlapping several groups (a split) stays with the
largest part. A group whose members are all still together — whatever was added or removed — has
one edge only, which nothing can outrank: its id never changes.

Change kinds, from the point of view of the previous id (one row per edge not kept):
    new      a group with no previous members got a new id
    split    some of an id's members moved to another group; the id lives on elsewhere
    merged   an id's members joined another group and the id is retired
    retired  none of an id's members remain
`n_records` counts the members concerned: records for resident ids, residents for household ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CROCKFORD_BASE32 = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
ID_CHARACTERS = 10

CHANGE_COLUMNS = ("run_timestamp", "entity", "change", "old_id", "new_id", "n_records")


@dataclass(frozen=True)
class IdScheme:
    """How one kind of id looks: 'R' for residents, 'H' for households."""

    entity: str
    prefix: str
    hash_key: str  # 16 characters: the key of pandas' SipHash, so ids differ between kinds


RESIDENT_IDS = IdScheme("resident", "R", "residentview-R01")
HOUSEHOLD_IDS = IdScheme("household", "H", "residentview-H01")


@dataclass
class IdAssignment:
    """`ids`: group -> id, id_issued_at. `changes`: rows of CHANGE_COLUMNS for this run."""

    ids: pd.DataFrame
    changes: pd.DataFrame


def _keyed_hash(text: pd.Series, scheme: IdScheme) -> np.ndarray:
    """SipHash of each string under the scheme's key."""
    return pd.util.hash_pandas_object(text, index=False, hash_key=scheme.hash_key).to_numpy(np.uint64)


def _mix(numbers: np.ndarray) -> np.ndarray:
    """pandas' integer hash: spreads a fingerprint's bits so any 50 of them are well mixed."""
    return pd.util.hash_array(numbers)


def group_fingerprints(groups: pd.Series, members: pd.Series, scheme: IdScheme) -> pd.Series:
    """An order-independent 64-bit fingerprint per group: the wrapping sum of its members' hashes."""
    member_hash = _keyed_hash(members.astype(str), scheme)
    codes, uniques = pd.factorize(groups, sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0]) if len(order) else np.array([], dtype=int)
    with np.errstate(over="ignore"):
        sums = np.add.reduceat(member_hash[order], starts) if len(order) else np.array([], dtype=np.uint64)
    return pd.Series(sums.astype(np.uint64), index=pd.Index(uniques, name=groups.name))


def _encode(numbers: np.ndarray, prefix: str) -> np.ndarray:
    shifts = np.arange(ID_CHARACTERS - 1, -1, -1, dtype=np.uint64) * np.uint64(5)
    digits = (numbers[:, None] >> shifts[None, :]) & np.uint64(31)
    text = CROCKFORD_BASE32[digits.astype(np.intp)].copy().view(f"S{ID_CHARACTERS}").ravel()
    return np.char.add(prefix, text.astype(str))


def mint_ids(fingerprints: pd.Series, scheme: IdScheme, taken: Iterable[str]) -> pd.Series:
    """New ids for groups (index) from their fingerprints, avoiding every id in `taken`.

    A clash (with an id issued before, or between two groups of this run) is resolved by rehashing
    with an attempt counter; groups are served in fingerprint order so the result is deterministic.
    """
    # A hash table built per attempt beats a Python set of every id ever issued (millions).
    taken = pd.Series(list(taken) if isinstance(taken, (set, frozenset)) else taken, dtype=object)
    ordered = fingerprints.sort_values(kind="stable")
    result = pd.Series(index=ordered.index, dtype=object)
    pending = ordered.index
    attempt = 0
    while len(pending):
        salted = ordered.loc[pending].to_numpy(np.uint64) ^ np.uint64(attempt)
        mixed = _mix(salted) >> np.uint64(64 - 5 * ID_CHARACTERS)
        candidates = pd.Series(_encode(mixed, scheme.prefix), index=pending)
        clash = candidates.isin(taken) | candidates.duplicated(keep="first")
        accepted = candidates[~clash]
        result.loc[accepted.index] = accepted
        taken = pd.concat([taken, accepted], ignore_index=True)
        pending = candidates.index[clash]
        attempt += 1
    return result.reindex(fingerprints.index)


def _greedy_edges(edges: pd.DataFrame) -> pd.DataFrame:
    """Edges sorted best first -> the ones a greedy pass keeps (disjoint in group and previous id).

    Each round keeps every edge that is the best remaining edge of both its ends; that is exactly
    what a one-by-one greedy pass would keep, but vectorised. Rounds are few in practice.
    """
    kept = []
    while len(edges):
        best_of_group = edges.drop_duplicates("group").index
        best_of_old = edges.drop_duplicates("old_id").index
        mutual = edges.loc[best_of_group.intersection(best_of_old)]
        kept.append(mutual)
        edges = edges[~edges["group"].isin(mutual["group"]) & ~edges["old_id"].isin(mutual["old_id"])]
    return pd.concat(kept) if kept else edges


def _edges_best_first(
    members: pd.DataFrame, previous_members: pd.DataFrame, previous_issued_at: pd.Series, fingerprints: pd.Series
) -> pd.DataFrame:
    """group, old_id, n_shared (members in common): heaviest first, ties to the oldest previous id,
    then by old_id and fingerprint so the order never depends on the rows' order.

    A DuckDB join: pandas' merge of a million text keys is several times slower."""
    issued = pd.DataFrame({"old_id": previous_issued_at.index.astype(object), "issued_at": previous_issued_at.array})
    groups = pd.DataFrame({"group": fingerprints.index, "fingerprint": fingerprints.to_numpy()})
    with duckdb.connect() as con:
        for name, frame in (("members", members[["group", "member"]]), ("issued", issued), ("groups", groups),
                            ("previous_members", previous_members[["member", "old_id"]])):
            con.register(name, frame)
        return con.sql("""
            SELECT "group", old_id, n_shared
            FROM (SELECT "group", old_id, count(*) AS n_shared
                  FROM members JOIN previous_members USING (member) GROUP BY ALL)
            LEFT JOIN issued USING (old_id) JOIN groups USING ("group")
            ORDER BY n_shared DESC, issued_at ASC NULLS LAST, old_id, fingerprint
        """).df()


def assign_persistent_ids(
    members: pd.DataFrame,
    previous_members: pd.DataFrame,
    previous_issued_at: pd.Series,
    taken: Iterable[str],
    scheme: IdScheme,
    run_timestamp: pd.Timestamp,
) -> IdAssignment:
    """Give every group an id, carrying previous ids over where members are shared.

    members            group, member (member keys unique)
    previous_members   member, old_id  (the previous run's membership)
    previous_issued_at old_id -> when it was first issued (decides 'oldest' in ties; may be empty)
    taken              every id issued before, retired ones included
    """
    fingerprints = group_fingerprints(members["group"], members["member"], scheme)
    group_size = members.groupby("group").size()

    edges = _edges_best_first(members, previous_members, previous_issued_at, fingerprints)
    kept = _greedy_edges(edges)

    ids = pd.Series(None, index=fingerprints.index, dtype=object)
    ids.loc[kept["group"].to_numpy()] = kept["old_id"].to_numpy()
    fresh = ids.index[ids.isna()]
    ids.loc[fresh] = mint_ids(fingerprints.loc[fresh], scheme, taken)
    issued_at = pd.Series(pd.Timestamp(run_timestamp), index=ids.index)
    issued_at.loc[kept["group"].to_numpy()] = kept["old_id"].map(previous_issued_at).fillna(run_timestamp).array

    changes = _describe_changes(edges, kept, ids, group_size, previous_members, fresh)
    changes.insert(0, "entity", scheme.entity)
    changes.insert(0, "run_timestamp", pd.Timestamp(run_timestamp))
    return IdAssignment(
        ids=pd.DataFrame({"group": ids.index, "id": ids.to_numpy(), "id_issued_at": issued_at.array}),
        changes=changes[list(CHANGE_COLUMNS)],
    )


def _describe_changes(edges, kept, ids, group_size, previous_members, fresh) -> pd.DataFrame:
    """One row per edge not kept (split / merged), per fresh group with no edge (new) and per
    previous id with no edge (retired)."""
    edges = edges.assign(new_id=edges["group"].map(ids))
    moved = edges[edges["new_id"] != edges["old_id"]]
    moved_rows = pd.DataFrame({
        "change": np.where(moved["old_id"].isin(kept["old_id"]), "split", "merged"),
        "old_id": moved["old_id"].to_numpy(),
        "new_id": moved["new_id"].to_numpy(),
        "n_records": moved["n_shared"].to_numpy(),
    })
    brand_new = fresh.difference(pd.Index(edges["group"].unique()))
    new_rows = pd.DataFrame({
        "change": "new", "old_id": None,
        "new_id": ids.loc[brand_new].to_numpy(), "n_records": group_size.loc[brand_new].to_numpy(),
    })
    previous_size = previous_members["old_id"].value_counts(sort=False)
    gone = previous_size.index.difference(pd.Index(edges["old_id"].unique()))
    retired_rows = pd.DataFrame({
        "change": "retired", "old_id": gone.to_numpy(), "new_id": None,
        "n_records": previous_size.loc[gone].to_numpy(),
    })
    changes = pd.concat([new_rows, moved_rows, retired_rows], ignore_index=True)
    changes["n_records"] = changes["n_records"].astype("int64")
    changes["old_id"] = changes["old_id"].astype(object)
    changes["new_id"] = changes["new_id"].astype(object)
    # Arrow sorts text columns several times faster than pandas' lexsort.
    keys = pa.table({
        c: pa.array(changes[c].to_numpy(), type=pa.string(), from_pandas=True) for c in ("change", "old_id", "new_id")
    })
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending", "at_start") for c in keys.column_names])
    return changes.take(order.to_numpy()).reset_index(drop=True)

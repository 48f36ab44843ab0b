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
    """`ids`: group -> id, id_issued_at. `changes`: rows of CHANGE_COLUMNS for this run.
    `member_ids`: each member's id, in the order the members were given."""

    ids: pd.DataFrame
    changes: pd.DataFrame
    member_ids: np.ndarray


def _keyed_hash(text: pd.Series, scheme: IdScheme) -> np.ndarray:
    """SipHash of each string under the scheme's key."""
    return pd.util.hash_pandas_object(text, index=False, hash_key=scheme.hash_key).to_numpy(np.uint64)


def _mix(numbers: np.ndarray) -> np.ndarray:
    """pandas' integer hash: spreads a fingerprint's bits so any 50 of them are well mixed."""
    return pd.util.hash_array(numbers)


def _as_text(members: pd.Series) -> pd.Series:
    return members if members.dtype == object and pd.api.types.infer_dtype(members, skipna=False) == "string" \
        else members.astype(str)


def _sums_by_code(codes: np.ndarray, n: int, hashes: np.ndarray) -> np.ndarray:
    """The wrapping sum of `hashes` per group code 0..n-1."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(order) else np.array([], dtype=int)
    sums = np.zeros(n, dtype=np.uint64)
    if len(order):
        with np.errstate(over="ignore"):
            sums[sorted_codes[starts]] = np.add.reduceat(hashes[order], starts)
    return sums


def group_fingerprints(groups: pd.Series, members: pd.Series, scheme: IdScheme) -> pd.Series:
    """An order-independent 64-bit fingerprint per group: the wrapping sum of its members' hashes."""
    codes, uniques = pd.factorize(groups, sort=True)
    sums = _sums_by_code(codes, len(uniques), _keyed_hash(_as_text(members), scheme))
    return pd.Series(sums, index=pd.Index(uniques, name=groups.name))


def _encode(numbers: np.ndarray, prefix: str) -> np.ndarray:
    shifts = np.arange(ID_CHARACTERS - 1, -1, -1, dtype=np.uint64) * np.uint64(5)
    digits = (numbers[:, None] >> shifts[None, :]) & np.uint64(31)
    text = CROCKFORD_BASE32[digits.astype(np.intp)].copy().view(f"S{ID_CHARACTERS}").ravel()
    return np.char.add(prefix, text.astype(str))


def _mint(fingerprints: np.ndarray, scheme: IdScheme, taken: Iterable[str]) -> np.ndarray:
    """New ids for these fingerprints, avoiding every id in `taken` (see `mint_ids`)."""
    # A hash table built per attempt beats a Python set of every id ever issued (millions).
    taken = pd.Series(list(taken) if isinstance(taken, (set, frozenset)) else taken, dtype=object)
    fingerprints = np.asarray(fingerprints, dtype=np.uint64)
    result = np.empty(len(fingerprints), dtype=object)
    pending = np.argsort(fingerprints, kind="stable")
    attempt = 0
    while len(pending):
        salted = fingerprints[pending] ^ np.uint64(attempt)
        mixed = _mix(salted) >> np.uint64(64 - 5 * ID_CHARACTERS)
        candidates = pd.Series(_encode(mixed, scheme.prefix), dtype=object)
        clash = (candidates.isin(taken) | candidates.duplicated(keep="first")).to_numpy()
        accepted = candidates[~clash]
        result[pending[~clash]] = accepted.to_numpy()
        taken = pd.concat([taken, accepted], ignore_index=True)
        pending = pending[clash]
        attempt += 1
    return result


def mint_ids(fingerprints: pd.Series, scheme: IdScheme, taken: Iterable[str]) -> pd.Series:
    """New ids for groups (index) from their fingerprints, avoiding every id in `taken`.

    A clash (with an id issued before, or between two groups of this run) is resolved by rehashing
    with an attempt counter; groups are served in fingerprint order so the result is deterministic.
    """
    return pd.Series(_mint(fingerprints.to_numpy(np.uint64), scheme, taken), index=fingerprints.index, dtype=object)


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
    # Groups by position (codes into `groups`) throughout: at a million records, indexing by the
    # group labels was most of the work.
    codes, groups = pd.factorize(members["group"], sort=True)
    fingerprints = _sums_by_code(codes, len(groups), _keyed_hash(_as_text(members["member"]), scheme))
    group_size = np.bincount(codes, minlength=len(groups))

    if len(previous_members):
        by_label = pd.Series(fingerprints, index=pd.Index(groups, name="group"))
        edges = _edges_best_first(members, previous_members, previous_issued_at, by_label)
    else:  # a first run: nothing to carry over
        edges = pd.DataFrame({"group": groups[:0], "old_id": pd.Series(dtype=object), "n_shared": pd.Series(dtype=np.int64)})
    kept = _greedy_edges(edges)
    position = pd.Index(groups)
    kept_at = position.get_indexer(kept["group"])

    ids = np.empty(len(groups), dtype=object)
    ids[kept_at] = kept["old_id"].to_numpy()
    fresh = np.ones(len(groups), dtype=bool)
    fresh[kept_at] = False
    ids[fresh] = _mint(fingerprints[fresh], scheme, taken)
    issued_at = pd.Series(pd.Timestamp(run_timestamp), index=pd.RangeIndex(len(groups)))
    issued_at.iloc[kept_at] = kept["old_id"].map(previous_issued_at).fillna(run_timestamp).array

    edge_at = position.get_indexer(edges["group"])
    changes = _describe_changes(edges, kept, ids, edge_at, group_size, previous_members, fresh)
    changes.insert(0, "entity", scheme.entity)
    changes.insert(0, "run_timestamp", pd.Timestamp(run_timestamp))
    return IdAssignment(
        ids=pd.DataFrame({"group": groups, "id": ids, "id_issued_at": issued_at.array}),
        changes=changes[list(CHANGE_COLUMNS)],
        member_ids=ids[codes],
    )


def _describe_changes(edges, kept, ids, edge_at, group_size, previous_members, fresh) -> pd.DataFrame:
    """One row per edge not kept (split / merged), per fresh group with no edge (new) and per
    previous id with no edge (retired). `ids`, `group_size`, `fresh`: by group position;
    `edge_at`: each edge's group position."""
    new_id = ids[edge_at]
    moved = new_id != edges["old_id"].to_numpy()
    moved_rows = pd.DataFrame({
        "change": np.where(edges["old_id"][moved].isin(kept["old_id"]), "split", "merged"),
        "old_id": edges["old_id"].to_numpy()[moved],
        "new_id": new_id[moved],
        "n_records": edges["n_shared"].to_numpy()[moved],
    })
    brand_new = fresh.copy()
    brand_new[edge_at] = False
    new_rows = pd.DataFrame({
        "change": "new", "old_id": None, "new_id": ids[brand_new], "n_records": group_size[brand_new],
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

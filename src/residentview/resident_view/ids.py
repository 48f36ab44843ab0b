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
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.memory import duckdb_connect
from residentview.resident_view.coding import Coded, arrow_text, coded

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
    """`ids`: group -> id, id_issued_at, a row per group in the groups' sorted order.
    `changes`: rows of CHANGE_COLUMNS for this run. `member_groups`: each member's group (a row
    of `ids`), in the order the members were given."""

    ids: pd.DataFrame
    changes: pd.DataFrame
    member_groups: np.ndarray

    @property
    def member_ids(self) -> np.ndarray:
        return self.ids["id"].to_numpy()[self.member_groups]


def _keyed_hash(text: pd.Series, scheme: IdScheme) -> np.ndarray:
    """SipHash of each string under the scheme's key."""
    # Not categorised first (the same hashes): members are distinct, so it would only cost time.
    return pd.util.hash_pandas_object(text, index=False, hash_key=scheme.hash_key, categorize=False).to_numpy(np.uint64)


def _mix(numbers: np.ndarray) -> np.ndarray:
    """pandas' integer hash: spreads a fingerprint's bits so any 50 of them are well mixed."""
    return pd.util.hash_array(numbers)


def _as_text(members: pd.Series) -> pd.Series:
    """Member keys as text: Arrow text (which hashes as the same Python strings do) and strings as
    they are, anything else through str."""
    if isinstance(members.dtype, pd.ArrowDtype) and pa.types.is_string(members.dtype.pyarrow_dtype):
        return members
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


def _encode(numbers: np.ndarray, prefix: str) -> pa.StringArray:
    """Each number as the prefix and ID_CHARACTERS base32 digits: Arrow text made from one buffer of
    characters, with no Python string per id."""
    width = 1 + ID_CHARACTERS
    shifts = np.arange(ID_CHARACTERS - 1, -1, -1, dtype=np.uint64) * np.uint64(5)
    digits = (numbers[:, None] >> shifts[None, :]) & np.uint64(31)
    characters = np.empty((len(numbers), width), dtype=np.uint8)
    characters[:, 0] = ord(prefix)
    characters[:, 1:] = CROCKFORD_BASE32[digits.astype(np.intp)]
    offsets = np.arange(0, (len(numbers) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(characters))


def _mint(fingerprints: np.ndarray, scheme: IdScheme, taken: Iterable[str] | pa.ChunkedArray) -> np.ndarray:
    """New ids for these fingerprints, avoiding every id in `taken` (see `mint_ids`)."""
    # An Arrow hash table built per attempt beats a Python set of every id ever issued (millions).
    issued = taken.chunks if isinstance(taken, pa.ChunkedArray) else [pa.array(list(taken), type=pa.string())]
    fingerprints = np.asarray(fingerprints, dtype=np.uint64)
    result = np.empty(len(fingerprints), dtype=object)
    pending = np.argsort(fingerprints, kind="stable")
    attempt = 0
    while len(pending):
        salted = fingerprints[pending] ^ np.uint64(attempt)
        candidates = _encode(_mix(salted) >> np.uint64(64 - 5 * ID_CHARACTERS), scheme.prefix)
        text = candidates.to_numpy(zero_copy_only=False)
        clash = pc.is_in(candidates, value_set=pa.concat_arrays(issued)).to_numpy(zero_copy_only=False)
        clash |= pd.Series(text).duplicated(keep="first").to_numpy()
        result[pending[~clash]] = text[~clash]
        issued = [*issued, candidates.filter(pa.array(~clash))]
        pending = pending[clash]
        attempt += 1
    return result


def mint_ids(fingerprints: pd.Series, scheme: IdScheme, taken: Iterable[str]) -> pd.Series:
    """New ids for groups (index) from their fingerprints, avoiding every id in `taken`.

    A clash (with an id issued before, or between two groups of this run) is resolved by rehashing
    with an attempt counter; groups are served in fingerprint order so the result is deterministic.
    """
    return pd.Series(_mint(fingerprints.to_numpy(np.uint64), scheme, taken), index=fingerprints.index, dtype=object)


def _greedy_edges(group: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Edges (group, old id code) sorted best first -> which of them a greedy pass keeps
    (disjoint in group and previous id), as a mask.

    Each round keeps every edge that is the best remaining edge of both its ends; that is exactly
    what a one-by-one greedy pass would keep, but vectorised. Rounds are few in practice.
    """
    kept = np.zeros(len(group), dtype=bool)
    live = np.arange(len(group))
    group_done = np.zeros(int(group.max()) + 1 if len(group) else 0, dtype=bool)
    old_done = np.zeros(int(old.max()) + 1 if len(old) else 0, dtype=bool)
    while len(live):
        groups, olds = group[live], old[live]
        mutual = ~pd.Series(groups).duplicated().to_numpy() & ~pd.Series(olds).duplicated().to_numpy()
        kept[live[mutual]] = True
        group_done[groups[mutual]] = True
        old_done[olds[mutual]] = True
        live = live[~group_done[groups] & ~old_done[olds]]
    return kept


class MemberTally:
    """The per-member work of carrying ids over, on the driver (numpy and DuckDB): each group's
    fingerprint and size, and which groups share members with which previous ids. What is left
    (`assign_persistent_ids`) works on groups and edges. `engines.spark.resident_view.SparkTally`
    does the same on Spark."""

    def fingerprints(self, codes: np.ndarray, n: int, members: pd.Series, scheme: IdScheme
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Per group code 0..n-1: its fingerprint (uint64) and number of members."""
        return _sums_by_code(codes, n, _keyed_hash(members, scheme)), np.bincount(codes, minlength=n)

    def overlaps(self, codes: np.ndarray, members: pd.Series, previous: Coded, previous_members: pd.Series
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """group, old (code of the previous id), n_shared (members in common), in no given order.

        A DuckDB join: pandas' merge of a million text keys is several times slower."""
        with duckdb_connect() as con:
            con.register("members", pa.table({"group": codes, "member": arrow_text(members)}))
            con.register("previous_members",
                         pa.table({"member": arrow_text(previous_members), "old": previous.as_arrow()}))
            edges = con.sql("""
                SELECT "group", old, count(*) AS n_shared
                FROM members JOIN previous_members USING (member) WHERE old IS NOT NULL GROUP BY ALL
            """).fetchnumpy()
        return tuple(np.asarray(edges[c], dtype=np.int64) for c in ("group", "old", "n_shared"))


def _edges_best_first(
    group: np.ndarray, old: np.ndarray, n_shared: np.ndarray, issued_at: pd.Series, fingerprints: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges (group, old, n_shared) heaviest first, ties to the oldest previous id, then by
    previous id and fingerprint so the order never depends on the rows' order."""
    issued = issued_at.to_numpy("datetime64[ns]").astype(np.int64)
    never = np.iinfo(np.int64).max  # previous ids without an issue date come last
    issued = np.where(issued_at.isna().to_numpy(), never, issued)
    order = np.lexsort([fingerprints[group], old, issued[old], -n_shared])  # the last key sorts first
    return group[order], old[order], n_shared[order]


def assign_persistent_ids(
    members: pd.DataFrame,
    previous_members: pd.DataFrame,
    previous_issued_at: pd.Series,
    taken: Iterable[str],
    scheme: IdScheme,
    run_timestamp: pd.Timestamp,
    tally: Optional[MemberTally] = None,
) -> IdAssignment:
    """Give every group an id, carrying previous ids over where members are shared.

    members            group, member (member keys unique)
    previous_members   member, old_id  (the previous run's membership)
    previous_issued_at old_id -> when it was first issued (decides 'oldest' in ties; may be empty)
    taken              every id issued before, retired ones included
    tally              where the per-member work runs (`MemberTally`: on the driver)
    """
    tally = tally or MemberTally()
    # Groups and previous ids by position (codes) throughout: at a million records, indexing by
    # their labels was most of the work.
    codes, groups = pd.factorize(members["group"], sort=True)
    member_text = _as_text(members["member"])
    fingerprints, group_size = tally.fingerprints(codes, len(groups), member_text, scheme)
    previous = coded(previous_members["old_id"])  # previous ids sorted, so codes order as ids do
    issued_at = previous_issued_at.reindex(previous.values)

    if len(previous_members):
        group, old, n_shared = _edges_best_first(
            *tally.overlaps(codes, member_text, previous, previous_members["member"]), issued_at, fingerprints)
    else:  # a first run: nothing to carry over
        group = old = n_shared = np.array([], dtype=np.int64)
    kept = _greedy_edges(group, old)
    carried_over = np.full(len(groups), -1, dtype=np.int64)  # per group, the code of the id it keeps
    carried_over[group[kept]] = old[kept]
    fresh = carried_over < 0

    ids = previous.decoded(carried_over)
    ids[fresh] = _mint(fingerprints[fresh], scheme, taken)
    issued = pd.Series(pd.Timestamp(run_timestamp), index=pd.RangeIndex(len(groups)))
    issued.iloc[~fresh] = issued_at.iloc[carried_over[~fresh]].fillna(run_timestamp).array

    has_edge = np.zeros(len(groups), dtype=bool)
    has_edge[group] = True
    changes = pd.concat([
        pd.DataFrame({"change": "new", "old_id": None, "new_id": ids[fresh & ~has_edge],
                      "n_records": group_size[fresh & ~has_edge]}),
        _moved(group, old, n_shared, kept, ids, carried_over, previous),
        _retired(previous, old),
    ], ignore_index=True)
    changes.insert(0, "entity", scheme.entity)
    changes.insert(0, "run_timestamp", pd.Timestamp(run_timestamp))
    return IdAssignment(
        ids=pd.DataFrame({"group": groups, "id": ids, "id_issued_at": issued.array}),
        changes=_in_change_order(changes)[list(CHANGE_COLUMNS)],
        member_groups=codes,
    )


def _moved(group, old, n_shared, kept, ids, carried_over, previous: Coded) -> pd.DataFrame:
    """A row per edge whose previous id its group did not keep: 'split' when the id lives on in
    another group, else 'merged'."""
    moved = carried_over[group] != old  # the group kept another previous id, or got a new one
    lives_on = np.zeros(len(previous.values), dtype=bool)
    lives_on[old[kept]] = True
    return pd.DataFrame({
        "change": np.where(lives_on[old[moved]], "split", "merged"),
        "old_id": previous.values[old[moved]], "new_id": ids[group[moved]], "n_records": n_shared[moved],
    })


def _retired(previous: Coded, old: np.ndarray) -> pd.DataFrame:
    """A row per previous id sharing no member with any group."""
    size = np.bincount(previous.codes[previous.codes >= 0], minlength=len(previous.values))
    gone = np.ones(len(previous.values), dtype=bool)
    gone[old] = False
    return pd.DataFrame({"change": "retired", "old_id": previous.values[gone], "new_id": None, "n_records": size[gone]})


def _in_change_order(changes: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by change, old_id, new_id (missing ids first)."""
    changes["n_records"] = changes["n_records"].astype("int64")
    changes["old_id"] = changes["old_id"].astype(object)
    changes["new_id"] = changes["new_id"].astype(object)
    # Arrow sorts text columns several times faster than pandas' lexsort.
    keys = pa.table({
        c: pa.array(changes[c].to_numpy(), type=pa.string(), from_pandas=True) for c in ("change", "old_id", "new_id")
    })
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending", "at_start") for c in keys.column_names])
    return changes.take(order.to_numpy()).reset_index(drop=True)

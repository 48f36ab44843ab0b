"""Stage 4 — cluster: scored pairs -> exactly one resident per record.

Connected components alone chain households together: father ~ council-tax "Mr J Smith" ~ son,
or two partners sharing a copied NI number. So clustering is constrained:

1. Pairs at or above the threshold are joined into connected components.
2. A component whose records cannot conflict (no two different NHS numbers, NI numbers or dates
   of birth among them) is one resident — most components, decided in bulk.
3. The rest are rebuilt greedily, strongest pair first, and two groups are never merged when a
   record of one carries conflicting strong evidence against a record of the other: different
   valid NHS numbers, NI numbers more than a typo apart, dates of birth far apart (not a
   recognisable typo) with different first names, the same name a generation apart, or
   different first names that no shared reference number ties together (twins, siblings).

Records that are not people, or that no pair reached, are residents on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jellyfish
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

FIRST_NAME_SIMILAR = 0.8  # Jaro-Winkler at which two first names may be one name mistyped
DOB_TYPO_MAX_DAYS = 365
GENERATION_DAYS = 15 * 365  # same-named records this far apart in age are parent and child


@dataclass
class _Person:
    """The evidence about one record that can rule a merge out."""

    nhs: Optional[str]
    nino: Optional[str]
    dob: Optional[pd.Timestamp]
    first: Optional[str]
    last: Optional[str]
    aliases: frozenset
    middle: frozenset
    ids: frozenset  # (column, value) of every reference number the record carries


def _hamming_more_than_one(a: str, b: str) -> bool:
    if len(a) != len(b):
        return jellyfish.damerau_levenshtein_distance(a, b) > 1
    return sum(x != y for x, y in zip(a, b)) > 1 and jellyfish.damerau_levenshtein_distance(a, b) > 1


def _number_close(a: str, b: str) -> bool:
    """The same reference number, allowing one typo or two digits swapped in a long one."""
    if a == b:
        return True
    if len(a) < 6 or len(a) != len(b):
        return False
    differing = sum(x != y for x, y in zip(a, b))
    return differing == 1 or (differing == 2 and sorted(a) == sorted(b))


def share_a_number(a: frozenset | set, b: frozenset | set) -> bool:
    """Whether two sets of (column, number) hold the same number, typos allowed."""
    if not a or not b:
        return False
    if not a.isdisjoint(b):
        return True
    return any(ca == cb and _number_close(va, vb) for ca, va in a for cb, vb in b)


def dob_compatible(a: pd.Timestamp, b: pd.Timestamp) -> bool:
    """Equal, day and month swapped, one digit wrong or two transposed, or within a year."""
    if a == b:
        return True
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return True
    if abs((a - b).days) <= DOB_TYPO_MAX_DAYS:
        return True
    sa, sb = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    return not _hamming_more_than_one(sa, sb)


def first_names_compatible(a: _Person, b: _Person) -> bool:
    if a.first is None or b.first is None or a.first == b.first:
        return True
    if jellyfish.damerau_levenshtein_distance(a.first, b.first) <= 1:
        return True
    if a.first == b.last or b.first == a.last:
        return True  # forename and surname swapped
    if len(a.first) == 1 or len(b.first) == 1:
        return a.first[0] == b.first[0]
    if a.aliases & b.aliases:
        return True
    if a.first in b.middle or b.first in a.middle:
        return True
    return jellyfish.jaro_winkler_similarity(a.first, b.first) >= FIRST_NAME_SIMILAR


def cannot_link(a: _Person, b: _Person, groups_tied: bool = False) -> bool:
    """Whether two records carry conflicting strong evidence that they are different people.
    `groups_tied`: the residents the two records belong to already share a reference number."""
    if a.nhs and b.nhs and a.nhs != b.nhs:
        return True
    if a.nino and b.nino and a.nino != b.nino and _hamming_more_than_one(a.nino, b.nino):
        return True
    names_agree = first_names_compatible(a, b)
    if a.dob is not None and b.dob is not None and not dob_compatible(a.dob, b.dob):
        if not names_agree:
            return True  # another member of the household, even one sharing a copied number
        if share_a_number(a.ids, b.ids):
            return False  # a shared reference number outweighs a mistyped date
        # Same name a generation apart is parent and child (Jr / Sr), unless a shared number says
        # one of the dates is simply wrong.
        return not groups_tied and abs((a.dob - b.dob).days) >= GENERATION_DAYS
    # Different first names: twins, siblings, parent and child. Only a shared reference number
    # says it is one person under two names.
    return not names_agree and not share_a_number(a.ids, b.ids)


def _people(records: pd.DataFrame, ids: np.ndarray) -> dict[int, _Person]:
    sub = records.set_index("unique_id").loc[ids]

    def col(name):
        if name not in sub:
            return [None] * len(sub)
        values = sub[name].tolist()
        return [None if (v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT) else v for v in values]

    dobs = pd.to_datetime(sub["date_of_birth"], errors="coerce") if "date_of_birth" in sub else pd.Series([pd.NaT] * len(sub))
    firsts, aliases, middles = col("first_name_key"), col("first_name_aliases"), col("middle_names_key")
    lasts = col("last_name_key")
    nhs, nino = col("nhs_number"), col("ni_number")
    id_columns = [c for c in ("nhs_number", "ni_number") if c in sub] + [c for c in sub.columns if c.startswith("id_")]
    id_values = {c: col(c) for c in id_columns}
    out = {}
    for i, uid in enumerate(ids):
        first = firsts[i]
        alias_set = frozenset(aliases[i]) if aliases[i] is not None and len(aliases[i]) else frozenset([first] if first else [])
        out[int(uid)] = _Person(
            nhs=nhs[i],
            nino=nino[i],
            dob=None if pd.isna(dobs.iloc[i]) else dobs.iloc[i],
            first=first,
            last=lasts[i],
            aliases=alias_set,
            middle=frozenset(middles[i].split()) if isinstance(middles[i], str) else frozenset(),
            ids=frozenset((c, v[i]) for c, v in id_values.items() if v[i] is not None),
        )
    return out


def _components(n_ids: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n_ids, n_ids))
    _, labels = connected_components(graph, directed=False)
    return labels


def _may_conflict(records: pd.DataFrame, labels: pd.Series) -> set:
    """Components holding more than one NHS number, NI number, date of birth or first name."""
    suspects: set = set()
    frame = records.assign(component=labels.to_numpy())
    for col in ("nhs_number", "ni_number", "date_of_birth", "first_name_key"):
        if col in frame:
            counts = frame.groupby("component")[col].nunique()
            suspects |= set(counts[counts > 1].index)
    return suspects


def _constrained(edges: pd.DataFrame, people: dict[int, _Person]) -> dict[int, int]:
    """Greedy merge, strongest pair first, refusing merges that would join conflicting records."""
    parent = {uid: uid for uid in people}
    members = {uid: [uid] for uid in people}
    numbers = {uid: set(p.ids) for uid, p in people.items()}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for left, right in zip(edges["unique_id_l"].to_numpy(), edges["unique_id_r"].to_numpy()):
        a, b = find(int(left)), find(int(right))
        if a == b:
            continue
        tied = share_a_number(numbers[a], numbers[b])
        if any(cannot_link(people[x], people[y], tied) for x in members[a] for y in members[b]):
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a].extend(members.pop(b))
        numbers[a] |= numbers.pop(b)
    return {uid: find(uid) for uid in people}


def cluster_records(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per record: unique_id, cluster_key (lowest member unique_id), match_probability
    (the strongest pair tying the record to its resident; 1.0 for a resident of one record)."""
    ids = records["unique_id"].to_numpy(dtype=np.int64)
    n_ids = int(ids.max()) + 1 if len(ids) else 0
    edges = pairs.loc[pairs["match_probability"] >= threshold, ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]]
    edges = edges.sort_values(["match_weight", "unique_id_l", "unique_id_r"], ascending=[False, True, True], kind="mergesort")
    left, right = edges["unique_id_l"].to_numpy(np.int64), edges["unique_id_r"].to_numpy(np.int64)

    labels = pd.Series(_components(n_ids, left, right)[ids], index=records.index)
    root = pd.Series(ids, index=records.index).groupby(labels).transform("min").to_numpy()
    root_of = dict(zip(ids.tolist(), root.tolist()))

    suspects = _may_conflict(records, labels)
    if suspects:
        suspect_ids = ids[labels.isin(suspects).to_numpy()]
        people = _people(records, suspect_ids)
        inside = np.isin(left, suspect_ids)
        assigned = _constrained(edges[inside], people)
        group = pd.Series(assigned)
        lowest = group.index.to_series().groupby(group.values).transform("min")
        root_of.update(dict(zip(lowest.index.tolist(), lowest.tolist())))

    key = np.array([root_of[i] for i in ids.tolist()], dtype=np.int64)
    membership = _membership(ids, key, edges)
    return pd.DataFrame({"unique_id": ids, "cluster_key": key, "match_probability": membership})


def _membership(ids: np.ndarray, key: np.ndarray, edges: pd.DataFrame) -> np.ndarray:
    """The strongest within-resident pair probability for each record (1.0 when alone)."""
    cluster_of = pd.Series(key, index=ids)
    e = edges.assign(kl=cluster_of.reindex(edges["unique_id_l"]).to_numpy(), kr=cluster_of.reindex(edges["unique_id_r"]).to_numpy())
    e = e[e["kl"] == e["kr"]]
    best = pd.concat([
        e[["unique_id_l", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
        e[["unique_id_r", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
    ]).groupby("unique_id")["p"].max()
    return best.reindex(ids).fillna(1.0).to_numpy(dtype=float)

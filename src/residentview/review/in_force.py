"""Which decisions a run must honour, and which contradict later ones.

Decisions contradict when matches chain across a non-match: A = B and B = C, but A ≠ C. The later
decision wins: decisions are taken latest first, and one that contradicts those already taken is
overruled (and reported). What is left is consistent by construction: no non-match pair lies
within a group of records the matches join, so clustering can honour every one of them.
Decisions on records no longer in the sources stay in the store, inactive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from residentview.review.store import PAIR_COLUMNS, empty_store, latest

PAIR_IDS = ("unique_id_l", "unique_id_r")


@dataclass
class DecisionsInForce:
    must_link: pd.DataFrame  # unique_id_l, unique_id_r, decision_id: records to keep together
    cannot_link: pd.DataFrame  # unique_id_l, unique_id_r, decision_id: records to keep apart
    overruled: pd.DataFrame  # store rows a later decision contradicts
    n_inactive: int  # decisions in force on a record no longer in the sources
    n_unsure: int

    def summary(self) -> dict:
        return {"match": int(len(self.must_link)), "non-match": int(len(self.cannot_link)),
                "unsure": self.n_unsure, "overruled": int(len(self.overruled)), "inactive": self.n_inactive}

    def labels(self) -> pd.DataFrame:
        """The decided pairs as training labels: unique_id_l, unique_id_r, label (True: match)."""
        return pd.concat([self.must_link.assign(label=True), self.cannot_link.assign(label=False)],
                         ignore_index=True)[["unique_id_l", "unique_id_r", "label"]]

    @property
    def empty(self) -> bool:
        return not len(self.must_link) and not len(self.cannot_link)


def no_decisions() -> DecisionsInForce:
    pairs = pd.DataFrame({"unique_id_l": pd.Series(dtype="int64"), "unique_id_r": pd.Series(dtype="int64"),
                          "decision_id": pd.Series(dtype="int64")})
    return DecisionsInForce(pairs, pairs.copy(), empty_store(), 0, 0)


def _with_unique_ids(decisions: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    ids = pd.Series(records["unique_id"].to_numpy(np.int64),
                    index=pd.MultiIndex.from_arrays([records["source"].astype(str), records["record_id"].astype(str)]))
    out = decisions.copy()
    for side in ("l", "r"):
        keys = pd.MultiIndex.from_arrays([out[f"source_{side}"].astype(str), out[f"record_id_{side}"].astype(str)])
        out[f"unique_id_{side}"] = ids.reindex(keys).to_numpy()
    return out


def decisions_in_force(store: pd.DataFrame, records: pd.DataFrame) -> DecisionsInForce:
    """The decisions of `store` that apply to `records` (unique_id, source, record_id)."""
    if not len(store):
        return no_decisions()
    current = _with_unique_ids(latest(store), records)
    active = current["unique_id_l"].notna() & current["unique_id_r"].notna()
    n_inactive = int((~active).sum())
    current = current[active]
    n_unsure = int((current["decision"] == "unsure").sum())
    current = current[current["decision"].isin(("match", "non-match"))].sort_values("decision_id", ascending=False)

    parent: dict[int, int] = {}
    apart: dict[int, set] = {}  # root -> roots of groups a non-match keeps it from

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    taken, overruled = [], []
    for row in current.itertuples(index=False):
        a, b = find(int(row.unique_id_l)), find(int(row.unique_id_r))
        if row.decision == "match":
            if a != b and b in apart.get(a, ()):
                overruled.append(row.decision_id)
                continue
            if a != b:
                parent[b] = a
                for other in apart.pop(b, set()):
                    apart[other].discard(b)
                    apart[other].add(a)
                    apart.setdefault(a, set()).add(other)
        else:
            if a == b:
                overruled.append(row.decision_id)
                continue
            apart.setdefault(a, set()).add(b)
            apart.setdefault(b, set()).add(a)
        taken.append(row.decision_id)

    chosen = current[current["decision_id"].isin(taken)]
    columns = [*PAIR_IDS, "decision_id"]

    def pairs(word: str) -> pd.DataFrame:
        frame = chosen.loc[chosen["decision"] == word, columns].astype("int64")
        return frame.sort_values("decision_id").reset_index(drop=True)

    overruled_rows = store[store["decision_id"].isin(overruled)].reset_index(drop=True)
    return DecisionsInForce(pairs("match"), pairs("non-match"), overruled_rows, n_inactive, n_unsure)


def violations(in_force: DecisionsInForce, resident_of: pd.Series) -> dict[str, int]:
    """How many decisions a grouping breaks. `resident_of`: resident (any label) by unique_id."""
    def together(pairs: pd.DataFrame) -> np.ndarray:
        left = resident_of.reindex(pairs["unique_id_l"].to_numpy()).to_numpy()
        right = resident_of.reindex(pairs["unique_id_r"].to_numpy()).to_numpy()
        return left == right

    return {"match": int((~together(in_force.must_link)).sum()),
            "non-match": int(together(in_force.cannot_link).sum())}


def decided_pairs(store: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """unique_id_l < unique_id_r of the pairs whose latest decision is match or non-match: the
    queue asks about them no more."""
    current = _with_unique_ids(latest(store), records) if len(store) else None
    if current is None:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in PAIR_IDS})
    current = current[current["decision"].isin(("match", "non-match"))].dropna(subset=list(PAIR_IDS))
    left, right = current["unique_id_l"].astype("int64"), current["unique_id_r"].astype("int64")
    return pd.DataFrame({"unique_id_l": np.minimum(left, right), "unique_id_r": np.maximum(left, right)})

"""review_queue.csv: the pairs a person should look at, those whose answers teach most first.

A pair is queued when its match weight lies within `REVIEW_BAND` of the threshold's weight (the
model could go either way) or when both records sit in a suspicious resident (conflicting dates of
birth or identifiers). The most uncertain pair of each kind comes first (`_spread`), so that the
first answers cover many kinds of pair; pairs already decided are left out. Each row shows both records side by side, what each comparison contributed,
and an empty `decision` column (match / non-match / unsure) for the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from residentview.report.linkage_metrics import probability_to_weight
from residentview.report.model_view import comparison_weights
from residentview.schema import GOLDEN_FIELDS

REVIEW_QUEUE_CAP = 1000
REVIEW_BAND = 4.0  # match weight either side of the threshold: odds within 16x of the threshold's
SUSPICIOUS_SHARE_OF_CAP = 0.25  # when capped, room kept for suspicious residents' pairs
DECISIONS = ("match", "non-match", "unsure")
NEAR_THRESHOLD = "near threshold"


@dataclass
class ReviewQueue:
    rows: pd.DataFrame
    n_near_threshold: int
    n_suspicious: int
    n_qualified: int

    @property
    def capped(self) -> bool:
        return self.n_qualified > len(self.rows)


def _pair_reasons(pairs: pd.DataFrame, near: np.ndarray, suspicious_reason: pd.Series) -> pd.Series:
    reason = pd.Series(np.where(near, NEAR_THRESHOLD, ""), index=pairs.index, dtype=object)
    in_suspicious = suspicious_reason.notna().to_numpy()
    reason[in_suspicious] = (reason[in_suspicious] + "; suspicious resident: " + suspicious_reason[in_suspicious]).str.lstrip("; ")
    return reason


def _capped(candidates: pd.DataFrame, cap: int) -> pd.DataFrame:
    if len(candidates) <= cap:
        return candidates
    suspicious = candidates[candidates["reason"].str.contains("suspicious", regex=False)]
    kept_suspicious = suspicious.head(int(cap * SUSPICIOUS_SHARE_OF_CAP))
    others = candidates.drop(kept_suspicious.index).head(cap - len(kept_suspicious))
    return pd.concat([kept_suspicious, others]).sort_values(["turn", "uncertainty"], kind="stable")


def _kind_of_pair(pairs: pd.DataFrame, members: pd.DataFrame) -> pd.Series:
    """What a pair's answer teaches about: its two sources, and per comparison whether the pair
    agrees fully, in part, not at all, or has no value — a label per kind of pair."""
    source = pd.Series(members["source"].to_numpy(dtype=object), index=members["unique_id"].to_numpy(np.int64))
    left = source.reindex(pairs["unique_id_l"].to_numpy(np.int64)).astype(str).to_numpy()
    right = source.reindex(pairs["unique_id_r"].to_numpy(np.int64)).astype(str).to_numpy()
    kind = pd.Series(np.where(left <= right, left + "|" + right, right + "|" + left), index=pairs.index)
    for column in sorted(c for c in pairs.columns if c.startswith("gamma_")):
        level = pairs[column].to_numpy()
        top = level.max() if len(level) else 0
        kind += np.select([level == -1, level == 0, level == top], ["|-", "|0", "|="], "|~")
    return kind


def _spread(candidates: pd.DataFrame, kinds: pd.Series) -> pd.DataFrame:
    """Candidates in the order their answers teach most: the most uncertain pair of every kind
    (`_kind_of_pair`) first, then the second most uncertain of every kind, and so on — so that
    the first few hundred answers cover many kinds of disagreement and many pairs of sources
    rather than hundreds of pairs alike, and the model learns from labels spread across its
    comparison levels."""
    ordered = candidates.sort_values("uncertainty", kind="stable")
    turn = ordered.groupby(kinds.reindex(ordered.index).to_numpy(), sort=False).cumcount()
    return ordered.assign(turn=turn.to_numpy()).sort_values(["turn", "uncertainty"], kind="stable")


def _side_by_side(queue: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    shown = [f for f in GOLDEN_FIELDS if f in members and members[f].notna().any()]
    # Only the queued records' details (a thousand rows, not every record's).
    wanted = np.unique(np.r_[queue["unique_id_l"].to_numpy(), queue["unique_id_r"].to_numpy()])
    details = members.loc[members["unique_id"].isin(wanted), ["unique_id", "source", "record_id", "resident_id", *shown]]
    details = details.set_index("unique_id")
    if "date_of_birth" in details:
        details["date_of_birth"] = pd.to_datetime(details["date_of_birth"], errors="coerce").dt.strftime("%Y-%m-%d")
    left = details.reindex(queue["unique_id_l"].to_numpy()).add_suffix("_l").reset_index(drop=True)
    right = details.reindex(queue["unique_id_r"].to_numpy()).add_suffix("_r").reset_index(drop=True)
    paired = [column for name in details.columns for column in (left[f"{name}_l"], right[f"{name}_r"])]
    return pd.concat(paired, axis=1)


def _suspicious_reason(pairs: pd.DataFrame, members: pd.DataFrame, suspicious: pd.DataFrame) -> pd.Series:
    """Per pair, the reason its resident is suspicious when both records are in one such
    resident (else missing). Worked with integer codes: at a million pairs, mapping the
    resident ids as text took seconds."""
    codes, residents = pd.factorize(members["resident_id"])
    ids = members["unique_id"].to_numpy(np.int64)
    resident_of = pd.Series(codes, index=ids)
    left = resident_of.reindex(pairs["unique_id_l"].to_numpy(np.int64)).to_numpy()
    right = resident_of.reindex(pairs["unique_id_r"].to_numpy(np.int64)).to_numpy()
    reason_by_code = pd.Series(suspicious["reason"].to_numpy(), index=residents.get_indexer(suspicious["resident_id"]))
    reason_by_code = reason_by_code[reason_by_code.index >= 0]
    inside = (left == right) & ~np.isnan(left) & np.isin(left, reason_by_code.index.to_numpy())
    reason = pd.Series(None, index=pairs.index, dtype=object)
    reason[inside] = reason_by_code.reindex(left[inside]).to_numpy()
    return reason


def build_review_queue(pairs: pd.DataFrame, members: pd.DataFrame, suspicious: pd.DataFrame,
                       threshold: float, levels: pd.DataFrame | None, comparisons: list[str],
                       cap: int = REVIEW_QUEUE_CAP) -> ReviewQueue:
    """The review queue from scored pairs, records with their resident_id, and suspicious residents."""
    weight = (pairs["match_weight"].astype(float) if "match_weight" in pairs
              else pd.Series(probability_to_weight(pairs["match_probability"].to_numpy(float)), index=pairs.index))
    uncertainty = (weight - probability_to_weight(threshold)).abs()
    suspicious_reason = _suspicious_reason(pairs, members, suspicious)
    near = (uncertainty <= REVIEW_BAND).to_numpy()
    chosen = near | suspicious_reason.notna().to_numpy()

    candidates = pairs.loc[chosen, ["unique_id_l", "unique_id_r", "match_probability"]].copy()
    candidates["match_weight"] = weight[chosen]
    candidates["uncertainty"] = uncertainty[chosen]
    candidates["reason"] = _pair_reasons(pairs, near, suspicious_reason)[chosen]
    candidates = _spread(candidates, _kind_of_pair(pairs.loc[chosen], members))
    queue = _capped(candidates, cap)

    scored = pairs.loc[queue.index]
    for name in comparisons:
        queue[f"{name}_weight"] = comparison_weights(scored, levels, name).round(3)
        if levels is not None and f"gamma_{name}" in scored:
            labels = levels[levels["comparison"] == name].set_index("level")["label"]
            queue[f"{name}_level"] = scored[f"gamma_{name}"].map(labels).fillna("null (no effect)")
    queue = queue.drop(columns="turn").reset_index(drop=True)
    queue.insert(0, "review_id", np.arange(1, len(queue) + 1))

    comparison_columns = [c for name in comparisons for c in (f"{name}_level", f"{name}_weight") if c in queue]
    rows = pd.concat(
        [queue[["review_id", "reason", "match_probability", "match_weight", "unique_id_l", "unique_id_r"]],
         _side_by_side(queue, members), queue[comparison_columns]],
        axis=1,
    )
    rows["match_probability"] = rows["match_probability"].round(6)
    rows["match_weight"] = rows["match_weight"].round(3)
    # First, where a reviewer filling the file in sees them (`residentview review apply` reads them).
    rows.insert(0, "note", "")
    rows.insert(0, "decision", "")
    return ReviewQueue(
        rows=rows,
        n_near_threshold=int(near.sum()),
        n_suspicious=int(suspicious_reason.notna().sum()),
        n_qualified=len(candidates),
    )


def empty_review_queue() -> pd.DataFrame:
    return pd.DataFrame(columns=["decision", "note", "review_id", "reason", "match_probability", "match_weight",
                                 "unique_id_l", "unique_id_r", "source_l", "record_id_l", "source_r", "record_id_r"])


def undecided(pairs: pd.DataFrame, decided: pd.DataFrame) -> pd.DataFrame:
    """`pairs` without those a reviewer has already decided (unique_id_l / unique_id_r either way round)."""
    if not len(decided) or not len(pairs):
        return pairs
    low = np.minimum(pairs["unique_id_l"].to_numpy(np.int64), pairs["unique_id_r"].to_numpy(np.int64))
    high = np.maximum(pairs["unique_id_l"].to_numpy(np.int64), pairs["unique_id_r"].to_numpy(np.int64))
    seen = pd.MultiIndex.from_arrays([decided["unique_id_l"].to_numpy(np.int64), decided["unique_id_r"].to_numpy(np.int64)])
    return pairs[~pd.MultiIndex.from_arrays([low, high]).isin(seen)]

"""Knowing when to retrain: how tonight's new and changed records differ from the master the
model was trained on.

An update scores new records with the previous run's model and blocking rules. That is right
while the new records look like the old: when they link as often, score as strongly, and fill
and format their fields as the old ones did. When they stop doing so (a system changed its date
format, a new source arrived, a third of the borough was re-keyed), the update still runs, and
recommends a full `link`, which retrains. The limits, each a plain reading of "no longer like
the old":

* LINKED_SHARE_MOVE: the share of fresh records that share a resident with another record,
  against the master's share, moved by more than 15 points;
* WEIGHT_MOVE: the median of the fresh records' best match weights moved by more than 3 bits
  (8 times the odds) from the master's;
* COMPLETENESS_MOVE / VALIDITY_MOVE: a field of a source is filled in 10 points less often, or
  valid 5 points less often, among at least MIN_PROFILED fresh records of that source than in
  the master's profile (a system stopped sending a column, or changed its date format); a
  fuller or cleaner field is no reason to retrain;
* a source the model was trained without;
* FRESH_SHARE: more than a quarter of all records are new or changed (a full run costs little
  more then, and the model has seen too little of the data).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

LINKED_SHARE_MOVE = 0.15
WEIGHT_MOVE = 3.0
COMPLETENESS_MOVE = 0.10
VALIDITY_MOVE = 0.05
MIN_PROFILED = 100
FRESH_SHARE = 0.25


def best_weights(pairs: pd.DataFrame, n_ids: int) -> np.ndarray:
    """The strongest match weight of each record's scored pairs (NaN when it has none)."""
    frame = pd.DataFrame({
        "id": np.r_[pairs["unique_id_l"].to_numpy(np.int64), pairs["unique_id_r"].to_numpy(np.int64)],
        "w": np.r_[pairs["match_weight"].to_numpy(float), pairs["match_weight"].to_numpy(float)],
    })
    best = frame.groupby("id")["w"].max()
    out = np.full(n_ids, np.nan)
    out[best.index.to_numpy()] = best.to_numpy()
    return out


def _quantiles(values: np.ndarray) -> dict:
    values = values[~np.isnan(values)]
    if not len(values):
        return {"records": 0}
    p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return {"records": int(len(values)), "p10": round(float(p10), 2), "median": round(float(p50), 2),
            "p90": round(float(p90), 2)}


def linked_share(resident_of: pd.Series, rows: Optional[np.ndarray] = None) -> float:
    """The share of records (of `rows`, positions, when given) whose resident holds another record too."""
    sizes = resident_of.map(resident_of.value_counts())
    sizes = sizes if rows is None else sizes.iloc[rows]
    return float((sizes > 1).mean()) if len(sizes) else float("nan")


def _profile_moves(fresh_quality: pd.DataFrame, master_quality: pd.DataFrame) -> list[dict]:
    """Fields whose completeness or validity among the fresh records moved past the limits."""
    if not len(fresh_quality) or not len(master_quality):
        return []
    columns = ["source", "field", "n_records", "n_present", "n_valid"]
    both = fresh_quality[columns].merge(master_quality[columns], on=["source", "field"], suffixes=("_now", "_before"))
    moves = []
    for row in both.itertuples(index=False):
        if row.n_records_now < MIN_PROFILED or not row.n_records_before:
            continue
        completeness = (row.n_present_now / row.n_records_now, row.n_present_before / row.n_records_before)
        validity = (row.n_valid_now / row.n_present_now if row.n_present_now else np.nan,
                    row.n_valid_before / row.n_present_before if row.n_present_before else np.nan)
        # Falls only: new records are often fuller than the master (a register records the dates
        # of birth of its attainers), and a fuller field costs the model nothing.
        moved_fill = completeness[1] - completeness[0] > COMPLETENESS_MOVE
        moved_valid = bool(validity[1] - validity[0] > VALIDITY_MOVE)  # NaN compares False
        if moved_fill or moved_valid:
            moves.append({
                "source": row.source, "field": row.field, "fresh_records": int(row.n_records_now),
                "completeness_before": round(completeness[1], 3), "completeness_now": round(completeness[0], 3),
                "validity_before": None if np.isnan(validity[1]) else round(validity[1], 3),
                "validity_now": None if np.isnan(validity[0]) else round(validity[0], 3),
            })
    return moves


def drift_report(fresh_ids: np.ndarray, resident_of: pd.Series, best_fresh: np.ndarray,
                 master_resident_of: pd.Series, best_master: np.ndarray, fresh_quality: pd.DataFrame,
                 master_quality: pd.DataFrame, n_records: int) -> dict:
    """How the fresh records (`fresh_ids`; `resident_of`: every record's resident after the
    update, by unique_id; `best_fresh`: their best match weights) compare with the master before
    it (`master_resident_of`, `best_master`, its data-quality profile), and whether to retrain."""
    reasons = []
    fresh_share = linked_share(resident_of, fresh_ids)
    master_share = linked_share(master_resident_of)
    share = {"fresh": None if np.isnan(fresh_share) else round(fresh_share, 3),
             "master": None if np.isnan(master_share) else round(master_share, 3)}
    if len(fresh_ids) >= MIN_PROFILED and abs(fresh_share - master_share) > LINKED_SHARE_MOVE:
        reasons.append(f"{fresh_share:.0%} of the new and changed records link to another, against "
                       f"{master_share:.0%} of the master's")
    weights = {"fresh": _quantiles(best_fresh), "master": _quantiles(best_master)}
    if weights["fresh"]["records"] >= MIN_PROFILED and weights["master"]["records"]:
        move = weights["fresh"]["median"] - weights["master"]["median"]
        if abs(move) > WEIGHT_MOVE:
            reasons.append(f"the new and changed records' best match weights moved {move:+.1f} bits "
                           f"(median {weights['fresh']['median']:.1f} against {weights['master']['median']:.1f})")
    fields = _profile_moves(fresh_quality, master_quality)
    for move in fields:
        reasons.append(f"{move['source']}.{move['field']}: completeness {move['completeness_before']:.0%} -> "
                       f"{move['completeness_now']:.0%}, validity "
                       f"{_percent(move['validity_before'])} -> {_percent(move['validity_now'])}")
    new_sources = sorted(set(fresh_quality["source"]) - set(master_quality["source"])) if len(fresh_quality) else []
    for source in new_sources:
        reasons.append(f"source {source} is new since the model was trained")
    if n_records and len(fresh_ids) / n_records > FRESH_SHARE:
        reasons.append(f"{len(fresh_ids) / n_records:.0%} of the records are new or changed")
    return {
        "fresh_records": int(len(fresh_ids)),
        "linked_share": share,
        "best_match_weight": weights,
        "fields_moved": fields,
        "new_sources": new_sources,
        "retrain_recommended": bool(reasons),
        "reasons": reasons,
    }


def _percent(value) -> str:
    return "–" if value is None else f"{value:.0%}"

"""The model checked against the reviewers: precision and recall at the threshold measured on the
pairs reviewers decided, beside what the model itself expects on the same pairs, and the threshold
the decisions would choose.

The decided pairs are not a random sample: the queue offers the uncertain ones, so the figures
describe the model where it is least sure — the place a threshold is decided — not the run as a
whole. The report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from residentview.review.in_force import DecisionsInForce

MIN_DECISIONS = 10  # fewer decided pairs than this measure nothing worth showing
THRESHOLDS = (*np.round(np.arange(0.05, 0.951, 0.05), 2).tolist(), 0.97, 0.98, 0.99, 0.995, 0.999)


@dataclass
class MeasuredOnDecisions:
    n_match: int
    n_non_match: int
    precision: Optional[float]  # reviewers' matches among decided pairs scored at or above the threshold
    recall: Optional[float]  # decided matches scored at or above the threshold
    expected_precision: Optional[float]  # the model's own estimate on the same pairs
    expected_recall: Optional[float]
    best_threshold: Optional[float]  # the threshold with the best F1 on the decided pairs
    best_f1: Optional[float]
    f1_at_threshold: Optional[float]

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _ratio(top: float, bottom: float) -> Optional[float]:
    return float(top / bottom) if bottom else None


def f1_score(precision: Optional[float], recall: Optional[float]) -> Optional[float]:
    if precision is None or recall is None or precision + recall == 0:
        return None
    return 2 * precision * recall / (precision + recall)


def decided_scores(in_force: DecisionsInForce, pairs: pd.DataFrame) -> pd.DataFrame:
    """Each decided pair's label (True: match) and the model's probability for it (0 when the
    model did not score it: not compared, or below the lowest score kept)."""
    labelled = in_force.labels()
    low = np.minimum(labelled["unique_id_l"], labelled["unique_id_r"])
    high = np.maximum(labelled["unique_id_l"], labelled["unique_id_r"])
    scored = pairs.set_index(["unique_id_l", "unique_id_r"])["match_probability"]
    scored = scored[~scored.index.duplicated()]
    probability = scored.reindex(pd.MultiIndex.from_arrays([low, high])).to_numpy()
    return pd.DataFrame({"label": labelled["label"].to_numpy(dtype=bool),
                         "probability": np.nan_to_num(probability.astype(float), nan=0.0)})


def measure_on_decisions(in_force: DecisionsInForce, pairs: Optional[pd.DataFrame],
                         threshold: float) -> Optional[MeasuredOnDecisions]:
    if pairs is None or len(in_force.must_link) + len(in_force.cannot_link) < MIN_DECISIONS:
        return None
    scores = decided_scores(in_force, pairs)
    label, probability = scores["label"].to_numpy(), scores["probability"].to_numpy()

    def at(cut: float) -> tuple[Optional[float], Optional[float]]:
        above = probability >= cut
        return _ratio((label & above).sum(), above.sum()), _ratio((label & above).sum(), label.sum())

    from residentview.report.linkage_metrics import estimated_accuracy  # here: the report imports this module

    precision, recall = at(threshold)
    expected = estimated_accuracy(scores["probability"], threshold)  # what the model expects of itself
    expected_precision, expected_recall = (None if np.isnan(expected[key]) else float(expected[key])
                                           for key in ("estimated precision", "estimated recall"))
    f1s = [(f1_score(*at(cut)) or 0.0, cut) for cut in THRESHOLDS]
    best_f1, best = max(f1s, key=lambda item: (item[0], -abs(item[1] - threshold)))
    return MeasuredOnDecisions(
        n_match=int(label.sum()), n_non_match=int((~label).sum()), precision=precision, recall=recall,
        expected_precision=expected_precision, expected_recall=expected_recall,
        best_threshold=float(best) if label.any() else None, best_f1=float(best_f1) if label.any() else None,
        f1_at_threshold=f1_score(precision, recall),
    )

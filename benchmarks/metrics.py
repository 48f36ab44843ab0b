"""Clustering accuracy against ground truth: pairwise and B-cubed precision, recall and F1.

Everything is computed from the contingency table of (predicted cluster, true person) counts, so
a million records cost one group-by — pairs are counted, never enumerated:

* pairwise: a pair of records is predicted linked when they share a cluster and truly linked when
  they share a person. TP = sum over cells of C(n, 2); predicted = sum over clusters of C(n, 2);
  true = sum over persons of C(n, 2).
* B-cubed (Bagga & Baldwin): each record's precision is the share of its cluster that is the same
  person, its recall the share of its person that is in its cluster; averaged over records. With
  cell counts n_cp: precision = sum n_cp^2 / n_c / N, recall = sum n_cp^2 / n_p / N.
"""

from __future__ import annotations

import pandas as pd

KEYS = ["source", "record_id"]


def _pairs(counts: pd.Series) -> float:
    counts = counts.astype("float64")
    return float((counts * (counts - 1) / 2).sum())


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 1.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def contingency(cluster: pd.Series, person: pd.Series) -> pd.DataFrame:
    """One row per (cluster, person) with its record count n, and the cluster and person sizes."""
    cells = pd.DataFrame({"cluster": cluster.to_numpy(), "person": person.to_numpy()})
    cells = cells.groupby(["cluster", "person"], sort=False).size().rename("n").reset_index()
    cells["cluster_size"] = cells.groupby("cluster")["n"].transform("sum")
    cells["person_size"] = cells.groupby("person")["n"].transform("sum")
    return cells


def pairwise_scores(cluster: pd.Series, person: pd.Series) -> dict[str, float]:
    """Precision, recall and F1 over all pairs of records that share a cluster / a person."""
    cells = contingency(cluster, person)
    true_positives = _pairs(cells["n"])
    predicted = _pairs(cells.groupby("cluster")["n"].sum())
    actual = _pairs(cells.groupby("person")["n"].sum())
    precision, recall = _ratio(true_positives, predicted), _ratio(true_positives, actual)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def bcubed_scores(cluster: pd.Series, person: pd.Series) -> dict[str, float]:
    """B-cubed precision, recall and F1, averaged over records."""
    cells = contingency(cluster, person)
    total = float(cells["n"].sum())
    squared = cells["n"].astype("float64") ** 2
    precision = float((squared / cells["cluster_size"]).sum()) / total if total else 1.0
    recall = float((squared / cells["person_size"]).sum()) / total if total else 1.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def evaluate(predicted: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Scores for `predicted` (source, record_id, cluster) against `truth` (source, record_id, person_id).

    A record missing from `predicted` counts as a cluster of its own, so a system cannot score
    well by dropping hard records.
    """
    merged = truth[KEYS + ["person_id"]].astype(str).merge(
        predicted[KEYS + ["cluster"]].astype(str), on=KEYS, how="left"
    )
    missing = merged["cluster"].isna()
    merged.loc[missing, "cluster"] = "unassigned:" + merged.loc[missing, "source"] + ":" + merged.loc[missing, "record_id"]
    pairwise = pairwise_scores(merged["cluster"], merged["person_id"])
    bcubed = bcubed_scores(merged["cluster"], merged["person_id"])
    return {
        "records": int(len(merged)),
        "true_people": int(merged["person_id"].nunique()),
        "residents_found": int(merged["cluster"].nunique()),
        "pairwise_precision": pairwise["precision"],
        "pairwise_recall": pairwise["recall"],
        "pairwise_f1": pairwise["f1"],
        "bcubed_precision": bcubed["precision"],
        "bcubed_recall": bcubed["recall"],
        "bcubed_f1": bcubed["f1"],
        "unassigned_records": int(missing.sum()),
    }

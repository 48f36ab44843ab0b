"""How much of what residentview misses could any matcher recover from the same pairs?

    .venv/bin/python benchmarks/ceiling.py [DATASET]      # default synthetic-100k

Runs residentview on a prepared benchmark dataset, then, with the dataset's ground truth:

* the ceiling of its blocking: every true pair among the scored pairs joined, nothing else;
* a supervised classifier trained on the truth itself (gradient boosting, 5-fold, on the same
  comparison levels and weights), its predicted pairs joined as connected components — what a
  model could do on these comparisons if it had labels, which residentview does not;
* residentview's own residents.

Pairwise precision, recall and F1 throughout, as in the benchmark table. Needs scikit-learn,
which recordlinkage (a benchmark dependency) installs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from metrics import pairwise_scores  # noqa: E402

FOLDS = 5


def _clusters_of(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def ceiling(dataset: str, data: Path = HERE / "data") -> dict[str, dict[str, float]]:
    """Pairwise scores by what joined the pairs: 'ceiling', 'supervised at T' and 'residentview'."""
    from datasets import prepare
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    import residentview as rv

    folder = prepare(dataset, data)
    result = rv.link(folder / "config.yaml", progress=False)
    truth = pd.read_parquet(folder / "truth.parquet").astype({"record_id": str})
    records = (result.records[["unique_id", "source", "record_id"]].astype({"record_id": str})
               .merge(result.links[["source", "record_id", "resident_id"]], on=["source", "record_id"])
               .merge(truth, on=["source", "record_id"], how="left"))
    position = pd.Series(np.arange(len(records)), index=records["unique_id"].to_numpy())
    person = pd.Series(records["person_id"].astype(str).to_numpy())

    pairs = result.pairs
    left = position.reindex(pairs["unique_id_l"]).to_numpy()
    right = position.reindex(pairs["unique_id_r"]).to_numpy()
    same = person.to_numpy()[left] == person.to_numpy()[right]

    def joined(mask: np.ndarray) -> dict[str, float]:
        clusters = _clusters_of(len(records), left[mask], right[mask])
        return pairwise_scores(pd.Series(clusters).astype(str), person)

    scores = {"ceiling": joined(same)}
    if 0 < same.sum() < len(same) and min(same.sum(), (~same).sum()) >= FOLDS:
        features = pairs[[c for c in pairs.columns if c.startswith("gamma_")] + ["match_weight"]].to_numpy(float)
        predicted = cross_val_predict(HistGradientBoostingClassifier(max_iter=300, random_state=0), features, same,
                                      cv=FOLDS, method="predict_proba")[:, 1]
        for threshold in (0.5, 0.7, 0.9):
            scores[f"supervised at {threshold}"] = joined(predicted >= threshold)
    scores["residentview"] = pairwise_scores(records["resident_id"], person)
    scores["counts"] = {"records": len(records), "pairs": len(pairs), "true_pairs": int(same.sum())}
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="synthetic-100k")
    args = parser.parse_args(argv)
    scores = ceiling(args.dataset)
    counts = scores.pop("counts")
    print(f"{args.dataset}: {counts['records']:,} records, {counts['pairs']:,} scored pairs, "
          f"{counts['true_pairs']:,} of them true")
    labels = {"ceiling": "every true scored pair joined, nothing else", "residentview": "residentview (no labels)"}
    for name, s in scores.items():
        label = labels.get(name, f"{name}, as connected components")
        print(f"  {label:48s} precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}")


if __name__ == "__main__":
    main()

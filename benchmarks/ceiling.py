"""How much of what residentview misses could any matcher recover from the same pairs?

    .venv/bin/python benchmarks/ceiling.py [DATASET] [--data DIR] [--thresholds 0.9 0.8 ...]

Runs residentview on a prepared benchmark dataset (default synthetic-100k), then, with the
dataset's ground truth:

* the ceiling of its blocking: every true pair among the scored pairs joined, nothing else;
* a supervised classifier trained on the truth itself (gradient boosting, 5-fold, on the same
  comparison levels and weights), its predicted pairs joined as connected components — what a
  model could do on these comparisons if it had labels, which residentview does not;
* residentview's own residents;
* where the true pairs residentview misses are lost (`losses`): for every two residents one
  person was split between, the strongest scored pair between them is missing (never compared,
  or scored under the predict floor), under the threshold, or at or above it (clustering kept
  them apart on conflicting evidence); each counted by the true pairs it costs;
* the same scored pairs clustered again at other thresholds (`--thresholds`), clustering's
  conflict rules and all.

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


LOSSES = ("never compared or under the predict floor", "scored under the threshold",
          "at or above the threshold, kept apart by clustering")


def losses(person: pd.Series, resident: pd.Series, left: np.ndarray, right: np.ndarray,
           probability: np.ndarray, threshold: float) -> dict[str, int]:
    """The true pairs split between two residents, by the strongest scored pair between the two
    (`LOSSES`): record positions `left`/`right` of the scored pairs, `person` and `resident` per
    record. The counts add up to the true pairs missed."""
    cells = pd.DataFrame({"person": person.to_numpy(), "resident": resident.astype(str).to_numpy()})
    cells = cells.groupby(["person", "resident"]).size().rename("n").reset_index()
    split = cells.merge(cells, on="person", suffixes=("_a", "_b"))
    split = split[split["resident_a"] < split["resident_b"]]
    a, b = resident.astype(str).to_numpy()[left], resident.astype(str).to_numpy()[right]
    between = pd.DataFrame({"person": person.to_numpy()[left], "resident_a": np.minimum(a, b),
                            "resident_b": np.maximum(a, b), "p": probability})
    between = between[(person.to_numpy()[left] == person.to_numpy()[right]) & (a != b)]
    best = between.groupby(["person", "resident_a", "resident_b"])["p"].max().rename("best").reset_index()
    split = split.merge(best, on=["person", "resident_a", "resident_b"], how="left")
    lost = split["n_a"] * split["n_b"]
    kind = np.select([split["best"].isna(), split["best"] < threshold], LOSSES[:2], LOSSES[2])
    return {name: int(lost[kind == name].sum()) for name in LOSSES}


def ceiling(dataset: str, data: Path = HERE / "data", thresholds: tuple[float, ...] = ()) -> dict[str, dict]:
    """Pairwise scores by what joined the pairs ('ceiling', 'supervised at T', 'residentview',
    'residentview at T'), where its misses are lost ('losses'), and the counts ('counts')."""
    from datasets import prepare
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    import residentview as rv
    from residentview.cluster import cluster_records

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
    threshold = result.config.linkage.threshold
    for other in thresholds:
        clusters = cluster_records(result.records, pairs, other).set_index("unique_id")["cluster_key"]
        scores[f"residentview at {other}"] = pairwise_scores(
            pd.Series(clusters.reindex(records["unique_id"]).to_numpy()).astype(str), person)
    scores["losses"] = losses(person, records["resident_id"], left, right, pairs["match_probability"].to_numpy(),
                              threshold)
    true_pairs = int((person.value_counts().astype("int64") * (person.value_counts() - 1) // 2).sum())
    scores["counts"] = {"records": len(records), "pairs": len(pairs), "true_scored_pairs": int(same.sum()),
                        "true_pairs": true_pairs, "threshold": threshold}
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="synthetic-100k")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--thresholds", type=float, nargs="*", default=(),
                        help="cluster the same scored pairs again at these thresholds")
    args = parser.parse_args(argv)
    scores = ceiling(args.dataset, args.data, tuple(args.thresholds))
    counts, lost = scores.pop("counts"), scores.pop("losses")
    print(f"{args.dataset}: {counts['records']:,} records, {counts['pairs']:,} scored pairs, "
          f"{counts['true_scored_pairs']:,} of them true; {counts['true_pairs']:,} true pairs in all")
    labels = {"ceiling": "every true scored pair joined, nothing else",
              "residentview": f"residentview (no labels; threshold {counts['threshold']})"}
    for name, s in scores.items():
        label = labels.get(name, name if name.startswith("residentview") else f"{name}, as connected components")
        print(f"  {label:52s} precision {s['precision']:.4f}  recall {s['recall']:.4f}  F1 {s['f1']:.4f}")
    print(f"  true pairs residentview misses: {sum(lost.values()):,} "
          f"({sum(lost.values()) / max(counts['true_pairs'], 1):.4f} of all), by the strongest pair between the two residents:")
    for name, n in lost.items():
        print(f"    {name:56s} {n:>9,}  {n / max(counts['true_pairs'], 1):.4f}")


if __name__ == "__main__":
    main()

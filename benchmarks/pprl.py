"""Linking encoded files (`encode` + `link-encoded`) against clear-text `link` on the same data.

    .venv/bin/python benchmarks/pprl.py synthetic-10k --out benchmarks/results/pprl-10k

Two "boroughs" are made from one synthetic council: borough A holds the council tax, school
census and adult social care extracts, borough B the electoral register, housing benefit and
children's services extracts. The same people appear in both (an adult pays council tax and is
on the register, a child is in the census and known to children's services), and each borough's
extracts hold duplicates of their own. Then, each step the real CLI in its own process:

1. `residentview encode` each borough's config under one shared key;
2. `residentview link-encoded` the two encoded files;
3. `residentview link` a config holding both boroughs' extracts: the clear-text result on the
   very same records, with every field residentview can use in the clear (the encodings carry
   a filter of each record, filters of its name, of the name swapped and of the name it may be
   known by, and keyed tokens of its identifiers, place and pieces of its date of birth: see
   `residentview.pprl.encoding`).

Reported: pairwise precision, recall and F1 against the truth (`metrics.evaluate`) of both,
also over the pairs that cross the two boroughs only; the blocking recall of the encoded files
(the share of true pairs among the candidate pairs `link-encoded` compares, worked out again
here from the two files); and each step's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import prepare  # noqa: E402
from metrics import evaluate, pairwise_scores  # noqa: E402

BOROUGHS = {
    "borough_a": ("council_tax", "school_census", "adult_social_care"),
    "borough_b": ("electoral_register", "housing_benefit", "children_services"),
}
CLI = [sys.executable, "-m", "residentview.cli", "--quiet"]
# The benchmark's shared secret: synthetic data, so a fixed key keeps the figures reproducible.
BENCHMARK_KEY = "pprl-benchmark-key-0f3a9c4e7b21d5680c"


def _configs(dataset: Path, out: Path) -> dict[str, Path]:
    """A config per borough and one with both, each reading the dataset's files where they are."""
    whole = yaml.safe_load((dataset / "config.yaml").read_text())
    written = {}
    for name, sources in {**BOROUGHS, "both": tuple(s for group in BOROUGHS.values() for s in group)}.items():
        config = {"name": name, "sources": {}}
        for source in sources:
            spec = dict(whole["sources"][source])
            spec["path"] = str((dataset / spec["path"]).resolve())
            config["sources"][source] = spec
        if name == "both":
            config["linkage"] = whole.get("linkage", {})
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        written[name] = path
    return written


def _run(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([*CLI, *args], check=True)
    return time.perf_counter() - started


def _scores(links: pd.DataFrame, truth: pd.DataFrame, borough_of: dict[str, str]) -> dict:
    """Pairwise scores over all pairs, and over the pairs whose records are in different boroughs
    (what the boroughs share: a pair inside one borough each could find alone)."""
    predicted = links.rename(columns={"resident_id": "cluster"})[["source", "record_id", "cluster"]]
    scores = {k: v for k, v in evaluate(predicted, truth).items() if k.startswith(("pairwise", "records", "true", "residents"))}
    merged = truth.astype(str).merge(predicted.astype(str), on=["source", "record_id"])
    merged["borough"] = merged["source"].map(borough_of)
    # crossing pairs: C(n_a, 1) * C(n_b, 1) per cell, via the contingency of (cluster, person, borough)
    cells = merged.groupby(["cluster", "person_id", "borough"]).size().unstack("borough", fill_value=0)
    tp = float((cells["borough_a"] * cells["borough_b"]).sum())
    by_cluster = cells.groupby(level="cluster").sum()
    by_person = cells.groupby(level="person_id").sum()
    predicted_pairs = float((by_cluster["borough_a"] * by_cluster["borough_b"]).sum())
    true_pairs = float((by_person["borough_a"] * by_person["borough_b"]).sum())
    precision, recall = tp / predicted_pairs if predicted_pairs else 1.0, tp / true_pairs if true_pairs else 1.0
    scores.update({"crossing_precision": precision, "crossing_recall": recall,
                   "crossing_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0})
    return scores


def _blocking_recall(left: Path, right: Path, truth: pd.DataFrame) -> dict:
    """The share of true pairs (records of one person) among the encoded files' candidate pairs:
    what no threshold can pass."""
    import numpy as np

    from residentview.pprl import read_encoded
    from residentview.pprl.linking import blocking_columns, candidate_pairs

    a, b = read_encoded(left), read_encoded(right)
    records = pd.concat([a.frame, b.frame], ignore_index=True)
    candidates, _ = candidate_pairs(records[blocking_columns(a.metadata, b.metadata)])
    person = records[["source", "record_id"]].astype(str).merge(truth.astype(str), how="left")["person_id"].to_numpy()
    found = int((person[candidates["unique_id_l"]] == person[candidates["unique_id_r"]]).sum())
    sizes = pd.Series(person).value_counts()
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    return {"candidate_pairs": int(len(candidates)), "true_pairs": true_pairs, "true_pairs_among_candidates": found,
            "blocking_recall": found / true_pairs if true_pairs else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="e.g. synthetic-10k, synthetic-100k")
    parser.add_argument("--out", type=Path, required=True, help="Folder for the configs, encodings and outputs.")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="Where prepared datasets live.")
    parser.add_argument("--threshold", type=float, help="Passed to link-encoded (default: its own).")
    parser.add_argument("--skip-clear", action="store_true", help="Only the encoded linkage (the clear run is the slow one).")
    parser.add_argument("--key", default=BENCHMARK_KEY,
                        help="The shared secret both boroughs encode under (default: the benchmark's fixed key); "
                             "the figures move a little with the key, so settings are checked under more than one.")
    args = parser.parse_args()

    dataset = prepare(args.dataset, args.data)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    configs = _configs(dataset, out)
    key_file = out / "shared.key"
    key_file.write_text(args.key)
    os.chmod(key_file, 0o600)
    truth = pd.read_parquet(dataset / "truth.parquet")
    borough_of = {source: name for name, sources in BOROUGHS.items() for source in sources}

    timings = {}
    for name in BOROUGHS:
        timings[f"encode_{name}"] = _run(["encode", str(configs[name]), "--key-file", str(key_file),
                                          "--out", str(out / f"{name}.parquet")])
    threshold = ["--threshold", str(args.threshold)] if args.threshold else []
    timings["link_encoded"] = _run(["link-encoded", str(out / "borough_a.parquet"), str(out / "borough_b.parquet"),
                                    "--out", str(out / "encoded"), *threshold])
    results = {"dataset": args.dataset, "boroughs": {k: list(v) for k, v in BOROUGHS.items()}}
    results["encoded"] = _scores(pd.read_parquet(out / "encoded" / "resident_links.parquet"), truth, borough_of)
    results["encoded"]["summary"] = json.loads((out / "encoded" / "pprl_summary.json").read_text())
    results["encoded"]["blocking"] = _blocking_recall(out / "borough_a.parquet", out / "borough_b.parquet", truth)
    if not args.skip_clear:
        timings["link_clear"] = _run(["link", str(configs["both"]), "--out", str(out / "clear")])
        results["clear"] = _scores(pd.read_parquet(out / "clear" / "resident_links.parquet"), truth, borough_of)
        results["f1_gap"] = results["clear"]["pairwise_f1"] - results["encoded"]["pairwise_f1"]
    results["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    shown = {k: v for k, v in results.items() if k != "encoded"}
    shown["encoded"] = {k: v for k, v in results["encoded"].items() if k != "summary"}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()

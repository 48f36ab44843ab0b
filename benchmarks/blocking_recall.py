"""The ceiling every later stage lives under: the share of true pairs that blocking compares.

    .venv/bin/python benchmarks/blocking_recall.py synthetic-10k febrl3 [--out DIR]

For each prepared dataset, reads and standardises the sources as ``residentview link`` does,
chooses the blocking rules as it does (`residentview.linkage.candidate_pairs`), and counts, with
the dataset's ground truth:

* **true pairs**: pairs of records of one person, among all records and among the person
  records that linking compares (organisations are never compared);
* **blocking recall**: the share of those compared by at least one rule;
* **comparisons**: how many pairs the rules compare, and per record;
* per rule: the pairs it is the first to find, and the true pairs among them.

No model is trained and nothing is scored: this measures blocking alone, in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import prepare  # noqa: E402


def _true_pairs(person: pd.Series) -> int:
    sizes = person.value_counts().astype("float64")
    return int((sizes * (sizes - 1) / 2).sum())


def blocking_recall(dataset: str, data: Path = HERE / "data", per_record: int | None = None) -> dict:
    """Blocking recall and comparison counts for one dataset (see the module's docstring)."""
    from residentview.config import load_config
    from residentview.linkage import candidate_pairs
    from residentview.sources import read_sources
    from residentview.standardise import standardise

    folder = prepare(dataset, data)
    config = load_config(folder / "config.yaml")
    if per_record is not None:
        config.linkage.comparisons_per_record = per_record
    started = time.perf_counter()
    raw, _ = read_sources(config)
    records = standardise(raw, config).records
    del raw
    truth = pd.read_parquet(folder / "truth.parquet").astype({"record_id": str})
    people = (records[["unique_id", "source", "record_id"]].astype({"record_id": str})
              .merge(truth, on=["source", "record_id"], how="left"))
    person = people.set_index("unique_id")["person_id"].astype(str)

    candidates = candidate_pairs(records, config.linkage)
    pairs, rules = candidates.pairs, candidates.rules
    compared_ids = candidates.record_ids
    same = (person.reindex(pairs["unique_id_l"]).to_numpy() == person.reindex(pairs["unique_id_r"]).to_numpy())
    found = int(same.sum())
    all_true = _true_pairs(person)
    person_true = _true_pairs(person[person.index.isin(compared_ids)])
    by_rule = (pd.DataFrame({"rule": pairs["match_key"].astype(int), "true": same})
               .groupby("rule")["true"].agg(["size", "sum"]))
    per_rule = [
        {"rule": rule, "first_finds": int(by_rule["size"].get(i, 0)),
         "true_pairs_first_found": int(by_rule["sum"].get(i, 0))}
        for i, rule in enumerate(candidates.kept)
    ]
    return {
        "dataset": dataset,
        "records": int(len(records)),
        "person_records": int(len(compared_ids)),
        "true_pairs": all_true,
        "true_pairs_among_person_records": person_true,
        "true_pairs_compared": found,
        "blocking_recall": found / all_true if all_true else 1.0,
        "blocking_recall_person_records": found / person_true if person_true else 1.0,
        "comparisons": int(len(pairs)),
        "comparisons_per_record": len(pairs) / max(len(compared_ids), 1),
        "budget": candidates.budget,
        "seconds": round(time.perf_counter() - started, 1),
        "rules": rules,
        "per_rule": per_rule,
    }


def _table(results: list[dict]) -> str:
    lines = ["| Dataset | Records | True pairs | Compared true pairs | Blocking recall | Recall (person records) "
             "| Comparisons | Per record | Budget |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['records']:,} | {r['true_pairs']:,} | {r['true_pairs_compared']:,} "
            f"| {r['blocking_recall']:.4f} | {r['blocking_recall_person_records']:.4f} | {r['comparisons']:,} "
            f"| {r['comparisons_per_record']:.1f} | {r['budget']:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "blocking")
    parser.add_argument("--rules", action="store_true", help="print every rule tried and what it found")
    parser.add_argument("--per-record", type=int, help="the comparison budget per record (default: the config's)")
    args = parser.parse_args(argv)
    results = []
    for dataset in args.datasets:
        result = blocking_recall(dataset, args.data, args.per_record)
        results.append(result)
        print(f"{dataset}: blocking recall {result['blocking_recall']:.4f} "
              f"({result['true_pairs_compared']:,} of {result['true_pairs']:,} true pairs), "
              f"{result['comparisons']:,} comparisons ({result['comparisons_per_record']:.1f} per record), "
              f"{result['seconds']} s", flush=True)
        if args.rules:
            for rule in result["rules"]:
                print(f"    {json.dumps(rule)}")
            for rule in result["per_rule"]:
                print(f"    first finds {rule['first_finds']:>10,}  true {rule['true_pairs_first_found']:>8,}  {rule['rule']}")
    table = _table(results)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(table + "\n", encoding="utf-8")
    (args.out / "latest.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

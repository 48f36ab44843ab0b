"""What reviewers' decisions buy: rounds of a reviewer simulated from the truth, and the accuracy after each.

    .venv/bin/python benchmarks/review_rounds.py synthetic-100k-noisy synthetic-100k-hostile [--pairs 300] [--rounds 2]

For each prepared dataset (as `run.py` prepares it):

* round 0: ``residentview link CONFIG --out FOLDER`` into a fresh output folder;
* each round after: the first ``--pairs`` rows of FOLDER/review_queue.csv are answered from the
  truth (same person_id -> match, else non-match), written to a CSV, imported with
  ``residentview review apply FOLDER FILE --reviewer simulated`` and the link is run again into
  the same folder, which honours the decisions it keeps.

Both commands run as subprocesses of the real CLI. After every run the residents
(resident_links.parquet) are scored against the truth — pairwise P/R/F1 and B-cubed F1 — and
checked against the decisions store (decisions.parquet) here, without residentview's code: a
violation is a pair whose latest decision is match but whose records are in different residents,
or non-match but in one resident. The target (the issue's): 0 violations, and after the rounds
pairwise F1 at least 0.02 above round 0 with precision not lower.

The table is printed and written to ``--out``/latest.md with latest.json; the exit status is 1
when any decision is broken.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import prepare  # noqa: E402
from metrics import evaluate  # noqa: E402

CLI = Path(sys.executable).with_name("residentview")
DEFAULT_DATASETS = ("synthetic-100k-noisy", "synthetic-100k-hostile")
KEYS = ["source", "record_id"]
PAIR_COLUMNS = ["source_l", "record_id_l", "source_r", "record_id_r"]
TARGET_F1_GAIN = 0.02


def residentview(*args: str) -> float:
    """Run the residentview CLI; stop on failure. Returns its wall time in seconds."""
    started = time.perf_counter()
    completed = subprocess.run([str(CLI), "--quiet", *args], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"residentview {' '.join(args)} failed (exit {completed.returncode}):\n"
                         f"{completed.stdout}{completed.stderr}")
    return time.perf_counter() - started


def simulated_answers(queue: pd.DataFrame, person: pd.Series) -> pd.DataFrame:
    """The queue's rows with `decision` filled from the truth: same person -> match, else non-match."""
    left = person.reindex(pd.MultiIndex.from_arrays([queue["source_l"], queue["record_id_l"]])).to_numpy()
    right = person.reindex(pd.MultiIndex.from_arrays([queue["source_r"], queue["record_id_r"]])).to_numpy()
    if pd.isna(left).any() or pd.isna(right).any():
        raise SystemExit("a queued record is not in the truth")
    answered = queue[PAIR_COLUMNS].copy()
    answered["decision"] = ["match" if a == b else "non-match" for a, b in zip(left, right)]
    return answered


def decided_pairs(folder: Path) -> pd.DataFrame:
    """The decision in force on each pair of the folder's store: its latest row, either way round."""
    path = folder / "decisions.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=["low", "high", "decision"])
    store = pd.read_parquet(path).sort_values("decision_id")
    left = store["source_l"].astype(str) + ":" + store["record_id_l"].astype(str)
    right = store["source_r"].astype(str) + ":" + store["record_id_r"].astype(str)
    pairs = pd.DataFrame({"low": left.where(left <= right, right), "high": right.where(left <= right, left),
                          "decision": store["decision"].to_numpy()})
    return pairs.drop_duplicates(["low", "high"], keep="last").reset_index(drop=True)


def store_rows(folder: Path) -> int:
    path = folder / "decisions.parquet"
    return len(pd.read_parquet(path, columns=["decision_id"])) if path.is_file() else 0


def already_decided(queue: pd.DataFrame, folder: Path) -> int:
    """How many of the queue's pairs the folder's store already holds a decision on (the queue
    should ask about them no more)."""
    decided = decided_pairs(folder)
    low = queue["source_l"] + ":" + queue["record_id_l"]
    high = queue["source_r"] + ":" + queue["record_id_r"]
    pairs = pd.MultiIndex.from_arrays([low.where(low <= high, high), high.where(low <= high, low)])
    return int(pairs.isin(pd.MultiIndex.from_frame(decided[["low", "high"]])).sum())


def count_violations(links: pd.DataFrame, decided: pd.DataFrame) -> dict[str, int]:
    """Match decisions whose records are in different residents, non-match ones in one resident.
    A record missing from the links is a resident of its own."""
    resident = links.set_index(links["source"] + ":" + links["record_id"])["resident_id"]
    left = resident.reindex(decided["low"]).to_numpy()
    right = resident.reindex(decided["high"]).to_numpy()
    together = (left == right) & pd.notna(left)
    match, non_match = (decided["decision"] == "match").to_numpy(), (decided["decision"] == "non-match").to_numpy()
    return {"match_split": int((match & ~together).sum()), "non_match_joined": int((non_match & together).sum())}


def read_links(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "resident_links.parquet", columns=[*KEYS, "resident_id"]).astype(str)


def measure(dataset: str, round_: int, folder: Path, truth: pd.DataFrame, seconds: float,
            unreviewed: pd.DataFrame | None) -> dict:
    """Scores, decisions and violations of the run in `folder`. `unreviewed`: round 0's links,
    to count how many of the decisions round 0 got wrong (what they can change at most)."""
    links = read_links(folder)
    decided = decided_pairs(folder)
    broken = count_violations(links, decided)
    wrong_before = count_violations(links if unreviewed is None else unreviewed, decided)
    scores = evaluate(links.rename(columns={"resident_id": "cluster"}), truth)
    return {
        "dataset": dataset, "round": round_,
        "decisions": store_rows(folder), "decided_pairs": len(decided), "decided_match": int((decided["decision"] == "match").sum()),
        "violations": sum(broken.values()), **broken, "round0_got_wrong": sum(wrong_before.values()),
        "round0_split_matches": wrong_before["match_split"], "round0_joined_non_matches": wrong_before["non_match_joined"],
        "pairwise_precision": scores["pairwise_precision"], "pairwise_recall": scores["pairwise_recall"],
        "pairwise_f1": scores["pairwise_f1"], "bcubed_f1": scores["bcubed_f1"],
        "residents_found": scores["residents_found"], "seconds": round(seconds, 1),
    }


def review_rounds(dataset: str, pairs: int, rounds: int, out: Path, data: Path, echo=print) -> list[dict]:
    """Round 0 and `rounds` rounds of `pairs` simulated decisions on one dataset; a row per run."""
    prepared = prepare(dataset, data)
    config = prepared / "config.yaml"
    truth = pd.read_parquet(prepared / "truth.parquet").astype(str)
    person = truth.set_index(KEYS)["person_id"]
    work = out / "work" / dataset
    folder = work / "output"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    rows, unreviewed = [], None
    for round_ in range(rounds + 1):
        queue_notes = {}
        if round_:
            queue = pd.read_csv(folder / "review_queue.csv", dtype=str, keep_default_na=False)
            answers = simulated_answers(queue.head(pairs), person)
            queue_notes = {"queue_rows": len(queue), "queue_already_decided": already_decided(queue, folder),
                           "answered": len(answers), "answered_match": int((answers["decision"] == "match").sum())}
            answers_file = work / f"round-{round_}.csv"
            answers.to_csv(answers_file, index=False)
            queue_notes["apply_seconds"] = round(
                residentview("review", "apply", str(folder), str(answers_file), "--reviewer", "simulated"), 1)
        seconds = residentview("link", str(config), "--out", str(folder))
        row = {**measure(dataset, round_, folder, truth, seconds, unreviewed), **queue_notes}
        unreviewed = read_links(folder) if unreviewed is None else unreviewed
        asked = (f"answered {row['answered']} of {row['queue_rows']} queued ({row['answered_match']} match, "
                 f"{row['queue_already_decided']} queued pairs already decided); " if round_ else "")
        echo(f"{dataset} round {round_}: {asked}{row['decisions']} decisions "
             f"(round 0 got {row['round0_got_wrong']} wrong), {row['violations']} violations, "
             f"pairwise P {row['pairwise_precision']:.4f} R {row['pairwise_recall']:.4f} F1 {row['pairwise_f1']:.4f}, "
             f"B-cubed F1 {row['bcubed_f1']:.4f}, {row['seconds']} s", flush=True)
        rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    lines = ["| Dataset | Round | Decisions | Violations | Pairwise P | Pairwise R | Pairwise F1 | B-cubed F1 | Seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['round']} | {r['decisions']:,} | {r['violations']} "
                     f"| {r['pairwise_precision']:.4f} | {r['pairwise_recall']:.4f} | {r['pairwise_f1']:.4f} "
                     f"| {r['bcubed_f1']:.4f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def _verdicts(rows: list[dict]) -> list[str]:
    """Per dataset: the last round against round 0, and whether the issue's target is met."""
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        runs = [r for r in rows if r["dataset"] == dataset]
        first, last = runs[0], runs[-1]
        gain = last["pairwise_f1"] - first["pairwise_f1"]
        broken = sum(r["violations"] for r in runs)
        met = broken == 0 and gain >= TARGET_F1_GAIN and last["pairwise_precision"] >= first["pairwise_precision"]
        lines.append(f"{dataset}: F1 {gain:+.4f} after {last['round']} round(s), precision "
                     f"{last['pairwise_precision'] - first['pairwise_precision']:+.4f}, {broken} violation(s): "
                     f"target {'met' if met else 'NOT met'}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=list(DEFAULT_DATASETS))
    parser.add_argument("--pairs", type=int, default=300, help="queue pairs the reviewer answers per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "review")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataset in args.datasets:
        rows.extend(review_rounds(dataset, args.pairs, args.rounds, args.out, args.data))
    report = "\n".join([_table(rows), "", *_verdicts(rows)])
    print(report)
    (args.out / "latest.md").write_text(report + "\n", encoding="utf-8")
    settings = {"pairs": args.pairs, "rounds": args.rounds}
    (args.out / "latest.json").write_text(json.dumps({**settings, "runs": rows}, indent=2), encoding="utf-8")
    if any(r["violations"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()

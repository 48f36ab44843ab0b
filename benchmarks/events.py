"""Life events against the truth: the same synthetic borough at two dates, linked, then updated.

    .venv/bin/python benchmarks/events.py --people 20000 --out benchmarks/results/events

`residentview.synthetic.generate_pair` writes a borough's six extracts at two dates a year apart
and the true life events between them (events_truth.parquet). The earlier extracts are linked
into a folder (`residentview link`), then the later ones brought in — by `residentview update`
(the nightly job) and, in a second folder, by `residentview link` (a full run) — each the real
CLI. The events each second run reports are measured against the truth (see
`residentview.report.events_measured`): of the true events, the share reported (recall), and of
the reported, the share true (precision), per kind. The targets of the issue: ≥ 95% both ways
for moves, deaths and name changes.
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
CLI = [sys.executable, "-m", "residentview.cli", "-q"]


def _run(*args) -> float:
    started = time.perf_counter()
    completed = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"residentview {' '.join(map(str, args))} failed:\n{completed.stderr[-2000:]}")
    return time.perf_counter() - started


def measured(folder: Path, earlier_truth: pd.DataFrame, later_truth: pd.DataFrame, events_truth: pd.DataFrame,
             first_links: pd.DataFrame) -> pd.DataFrame:
    from residentview.report.events_measured import measure_events

    events = pd.read_parquet(folder / "events.parquet")
    stamps = pd.to_datetime(events["run_timestamp"], utc=True)
    second = events[stamps == stamps.max()]
    links = pd.read_parquet(folder / "resident_links.parquet")
    return measure_events(second, links, later_truth, events_truth, links_before=first_links,
                          truth_before=earlier_truth)


def main(argv=None) -> None:
    from residentview.synthetic import generate_pair

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "events")
    args = parser.parse_args(argv)
    work = args.out.resolve() / "work"
    shutil.rmtree(work, ignore_errors=True)
    pair = generate_pair(people=args.people, out=work / "data", seed=args.seed)
    truth = {name: pd.read_parquet(w.truth_path) for name, w in (("earlier", pair.earlier), ("later", pair.later))}
    events_truth = pd.read_parquet(pair.events_path)

    results = {}
    for way in ("update", "link"):
        folder = work / way
        seconds = {"link earlier": _run("link", pair.earlier.config_path, "--out", folder)}
        first_links = pd.read_parquet(folder / "resident_links.parquet")
        seconds[f"{way} later"] = _run(way, pair.later.config_path, "--out", folder)
        table = measured(folder, truth["earlier"], truth["later"], events_truth, first_links)
        results[way] = {"seconds": {k: round(v, 1) for k, v in seconds.items()},
                        "events": table.round(4).to_dict("records")}
        print(f"\n{way}: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"people": args.people, "seed": args.seed,
               "records": {k: int(len(v)) for k, v in truth.items()},
               "true_events": events_truth["event"].value_counts().to_dict(), **results}
    (args.out / "events.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Run residentview and the baselines on the same data in one run and print one table.

    .venv/bin/python benchmarks/run.py --datasets synthetic-10k synthetic-100k synthetic-1m febrl3 febrl4

Each (dataset, system) runs in its own subprocess, so its peak memory is that child's maximum
resident set size — plus, while it has any, its own helper processes' (residentview cleans
addresses in a second process), sampled ten times a second — and its wall time (measured
here, in the parent) includes reading the files.
Datasets are prepared once under ``--data`` and reused. The table is printed and written to
``--out``/latest.md (plus a timestamped copy and latest.json).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import prepare  # noqa: E402
from metrics import evaluate  # noqa: E402

SYSTEM_NAMES = ("residentview", "splink", "recordlinkage")  # the default set
# Run only when named with --systems: plain Splink as a lean model for the simple-<N> datasets.
OPTIONAL_SYSTEMS = ("splink-lean",)
# recordlinkage holds every candidate pair in pandas; on big data it can take all the memory of a
# shared machine. Its child gets an address-space cap so it fails with MemoryError instead.
# (Not applied to the DuckDB-based systems: DuckDB reserves far more address space than it uses.)
ADDRESS_SPACE_CAP_GB = {"recordlinkage": 12}
DEFAULT_DATASETS = ("synthetic-10k", "febrl3", "febrl4")
TABLE_COLUMNS = {
    "dataset": "Dataset",
    "system": "System",
    "records": "Records",
    "true_people": "True people",
    "residents_found": "Residents found",
    "pairwise_precision": "Pairwise P",
    "pairwise_recall": "Pairwise R",
    "pairwise_f1": "Pairwise F1",
    "bcubed_f1": "B-cubed F1",
    "wall_seconds": "Wall time (s)",
    "peak_memory_mb": "Peak memory (MB)",
    "status": "Status",
}


def run_child(system: str, config: Path, output: Path) -> None:
    """In the child process: run one system, write its clusters and its own peak memory."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    from systems import SYSTEMS

    with _FamilyMemory() as family:
        clusters = SYSTEMS[system](str(config))
    clusters.to_parquet(output, index=False)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    peak_mb = max(peak_kb / 1024, family.peak_bytes / 1024**2)
    output.with_suffix(".json").write_text(json.dumps({"peak_memory_mb": peak_mb}))


class _FamilyMemory:
    """The largest resident set of this process and its child processes together, sampled:
    ru_maxrss is exact but counts this process alone. `children_only`: leave this process out
    (a script timing a command it runs, while it holds data of its own)."""

    def __init__(self, interval: float = 0.1, children_only: bool = False) -> None:
        import threading

        self.interval = interval
        self.children_only = children_only
        self.peak_bytes = 0
        self.own_peak_bytes = 0  # this process's own largest resident set, sampled alike
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval):
            total = 0
            for process in [*([] if self.children_only else [me]), *me.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:  # a child that just ended
                    continue
                total += rss
                if process is me:
                    self.own_peak_bytes = max(self.own_peak_bytes, rss)
            self.peak_bytes = max(self.peak_bytes, total)

    def __enter__(self) -> "_FamilyMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _address_space_cap(system: str):
    cap_gb = ADDRESS_SPACE_CAP_GB.get(system)
    if cap_gb is None:
        return None
    limit = int(cap_gb * 1024**3)
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _status(completed: subprocess.CompletedProcess) -> str:
    if completed.returncode == 0:
        return "ok"
    if completed.returncode < 0:  # killed: out of memory (the kernel) or stopped by the user
        return f"stopped by signal {-completed.returncode}"
    return "failed: " + (completed.stderr.strip().splitlines() or ["?"])[-1][:120]


def run_one(dataset: str, folder: Path, system: str, work: Path, timeout: float) -> dict:
    """Run `system` on a prepared dataset in a subprocess; score it against the truth."""
    output = work / f"{dataset}__{system}.parquet"
    output.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", system,
               "--config", str(folder / "config.yaml"), "--output", str(output)]
    row = {"dataset": dataset, "system": system}
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   preexec_fn=_address_space_cap(system))
        status = _status(completed)
    except subprocess.TimeoutExpired:
        status = f"timeout after {timeout:.0f} s"
    if "MemoryError" in status:
        status = f"out of memory (capped at {ADDRESS_SPACE_CAP_GB.get(system)} GB)"
    row["wall_seconds"] = time.perf_counter() - started
    truth = pd.read_parquet(folder / "truth.parquet")
    if status == "ok":
        row.update(evaluate(pd.read_parquet(output), truth))
        row.update(json.loads(output.with_suffix(".json").read_text()))
    else:
        row.update({"records": len(truth), "true_people": truth["person_id"].nunique()})
    row["status"] = status
    return row


def _format(value, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if column in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1"):
        return f"{value:.3f}"
    if column in ("wall_seconds",):
        return f"{value:,.1f}"
    if column in ("peak_memory_mb", "records", "true_people", "residents_found"):
        return f"{value:,.0f}"
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    header = "| " + " | ".join(TABLE_COLUMNS.values()) + " |"
    rule = "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(c), c) for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def _write_table(rows: list[dict], out: Path, stamp: str) -> str:
    table = markdown_table(rows)
    (out / "latest.md").write_text(table + "\n", encoding="utf-8")
    (out / f"results-{stamp}.md").write_text(table + "\n", encoding="utf-8")
    (out / "latest.json").write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
    return table


def run_benchmarks(datasets, systems=SYSTEM_NAMES, out: Path = HERE / "results", data: Path = HERE / "data",
                   timeout: float = 4 * 3600, echo=print) -> list[dict]:
    """Prepare each dataset, run each system on it, print and write the table; returns the rows.

    The table is rewritten after every run, so a long benchmark interrupted part-way keeps what
    it has measured.
    """
    out, data = Path(out), Path(data)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rows = []
    for dataset in datasets:
        folder = prepare(dataset, data)
        for system in systems:
            echo(f"running {system} on {dataset} …")
            row = run_one(dataset, folder, system, work, timeout)
            echo(f"  {row['status']}, {row['wall_seconds']:.1f} s")
            rows.append(row)
            _write_table(rows, out, stamp)
    echo(_write_table(rows, out, stamp))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS),
                        help="synthetic-10k synthetic-100k synthetic-1m (any synthetic-<N>[k|m]), simple-<N>[k|m], febrl3, febrl4")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEM_NAMES),
                        choices=SYSTEM_NAMES + OPTIONAL_SYSTEMS)
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the table is written")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where datasets are prepared (reused)")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per system per dataset")
    parser.add_argument("--child", choices=SYSTEM_NAMES + OPTIONAL_SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.config, args.output)
        return
    run_benchmarks(args.datasets, args.systems, args.out, args.data, args.timeout)


if __name__ == "__main__":
    main()

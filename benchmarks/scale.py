"""How far one machine goes: `residentview link` through the CLI on synthetic councils of growing
size, on DuckDB and (for the sizes asked) on Spark, in one run; one table.

    .venv/bin/python benchmarks/scale.py --records 1m 2002k 4998k
    .venv/bin/python benchmarks/scale.py --records 10k 100k --engines duckdb spark --out benchmarks/results/spark

Each (size, engine) runs in its own subprocess, which calls the CLI's own `main` (`link CONFIG
--out DIR --engine E`) and samples the resident set of itself and its children (the address
cleaner's process; Spark's JVM and Python workers) ten times a second, with the peak kept per
pipeline stage: the stage is the one `pipeline_progress` last announced, and writing the outputs
and the report comes after the last. Wall time is measured here, in the parent, and includes
starting Python (and Spark). Per-stage times are the run's own (`run.json`'s
`timings_seconds`). Accuracy is pairwise F1 against the truth (`metrics.evaluate`); where both
engines ran on a size, the share of records whose resident has exactly the same members on both.

`--memory-limit 8GB` writes a copy of each config with that `memory_limit` and links with it.
Sizes are `synthetic-<N>[k|m]` datasets (`datasets.py`), prepared once under `--data`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import prepare  # noqa: E402
from metrics import evaluate  # noqa: E402
from run import _FamilyMemory  # noqa: E402
from update_vs_link import agreement  # noqa: E402

STAGES = ("starting", "reading sources", "standardising", "linking", "clustering", "building resident view",
          "writing outputs and report")


# The child: one link through the CLI, its memory by stage -----------------------------------

class _StageMemory:
    """The family's peak resident set per stage: a fresh `_FamilyMemory` for each stage."""

    def __init__(self) -> None:
        self.peaks_mb: dict[str, float] = {}
        self.own_peaks_mb: dict[str, float] = {}  # the Python driver's alone, without Spark's JVM or workers
        self.started: dict[str, float] = {}
        self._stage, self._memory = None, None

    def enter(self, stage: str) -> None:
        self.close()
        self._stage = stage.replace(" (Spark)", "")
        self.started[self._stage] = time.perf_counter()
        self._memory = _FamilyMemory().__enter__()

    def close(self) -> None:
        if self._memory is None:
            return
        self._memory.__exit__(None, None, None)
        peak = self._memory.peak_bytes / 1024**2
        self.peaks_mb[self._stage] = max(self.peaks_mb.get(self._stage, 0.0), peak)
        own = self._memory.own_peak_bytes / 1024**2
        self.own_peaks_mb[self._stage] = max(self.own_peaks_mb.get(self._stage, 0.0), own)
        self._memory = None


def _own_peak_mb() -> float:
    """This process's largest resident set since it started (VmHWM). Not ru_maxrss, which Linux
    carries across exec: a child started by a parent holding 1.4 GB reported 1.4 GB itself."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: BSD counts kilobytes, macOS bytes


def run_child(config: Path, out: Path, engine: str, report: Path) -> None:
    """In the child process: `residentview link` with every stage's peak memory written to `report`."""
    import residentview.pipeline as pipeline
    from residentview.progress import pipeline_progress

    memory = _StageMemory()
    memory.enter("starting")  # imports, the config, decisions: before the first stage

    @contextmanager
    def marked(total, enabled=None):
        with pipeline_progress(total, enabled) as step:
            def marked_step(description: str) -> None:
                memory.enter(description)
                step(description)

            marked_step.note = step.note
            yield marked_step
        memory.enter("writing outputs and report")

    pipeline.pipeline_progress = marked
    if engine == "spark":
        import residentview.engines.spark.pipeline as spark_pipeline

        spark_pipeline.pipeline_progress = marked
    from residentview.cli import main

    code = 0
    try:
        # --debug: a failure's full traceback on stderr, which the parent keeps (without py4j's
        # debug chatter: a line for every call into the JVM)
        logging.getLogger("py4j").setLevel(logging.WARNING)
        main(["--quiet", "--debug", "link", str(config), "--out", str(out), "--engine", engine])
    except SystemExit as stop:
        code = stop.code or 0
    finally:
        memory.close()
        own_peak = _own_peak_mb()
        report.write_text(json.dumps({"exit_code": code, "stage_peak_mb": memory.peaks_mb,
                                      "peak_memory_mb": max([own_peak, *memory.peaks_mb.values()]),
                                      "driver_peak_mb": max([own_peak, *memory.own_peaks_mb.values()]),
                                      "stage_driver_peak_mb": memory.own_peaks_mb}))
    raise SystemExit(code)  # the CLI's own exit code, for the parent's status


# The parent: each size and engine, then one table -------------------------------------------

def _with_memory_limit(folder: Path, limit: str | None) -> Path:
    config = folder / "config.yaml"
    if limit is None:
        return config
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["memory_limit"] = limit
    limited = folder / f"config-{limit}.yaml"
    limited.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return limited


def run_one(dataset: str, folder: Path, engine: str, work: Path, memory_limit: str | None,
            timeout: float) -> tuple[dict, pd.DataFrame | None]:
    """One link in a subprocess; its row of the table and its resident links (None if it failed)."""
    out = work / f"{dataset}__{engine}"
    report = work / f"{dataset}__{engine}.json"
    report.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(_with_memory_limit(folder, memory_limit)),
               "--engine-out", str(out), "--engine", engine, "--report", str(report)]
    row = {"dataset": dataset, "engine": engine, "memory_limit": memory_limit or "default"}
    started = time.perf_counter()
    # Its own process group: a timed-out Spark run leaves no JVM or Python workers behind.
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = child.communicate(timeout=timeout)
        status = "ok" if child.returncode == 0 else (
            f"stopped by signal {-child.returncode}" if child.returncode < 0
            else "exit %d: %s" % (child.returncode, (stderr.strip().splitlines() or ["?"])[-1][:300]))
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        _, stderr = child.communicate()
        status = f"timeout after {timeout:.0f} s"
    row["wall_seconds"] = round(time.perf_counter() - started, 1)
    row["status"] = status
    if status != "ok" and stderr:  # the whole of it, traceback and all, beside the table
        (work / f"{dataset}__{engine}.stderr").write_text(stderr, encoding="utf-8")
    if report.is_file():
        measured = json.loads(report.read_text())
        row["peak_memory_mb"] = round(measured["peak_memory_mb"])
        row["driver_peak_mb"] = round(measured.get("driver_peak_mb", 0))
        row["stage_driver_peak_mb"] = {k: round(v) for k, v in measured.get("stage_driver_peak_mb", {}).items()}
        row["stage_peak_mb"] = {k: round(v) for k, v in measured["stage_peak_mb"].items()}
    truth = pd.read_parquet(folder / "truth.parquet")
    row["records"] = len(truth)
    if status != "ok":
        return row, None
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    row["stage_seconds"] = run["timings_seconds"]
    links = pd.read_parquet(out / "resident_links.parquet", columns=["source", "record_id", "resident_id"])
    scores = evaluate(links.rename(columns={"resident_id": "cluster"}), truth)
    row.update({"residents": int(links["resident_id"].nunique()), "pairwise_f1": round(scores["pairwise_f1"], 4),
                "pairwise_precision": round(scores["pairwise_precision"], 4),
                "pairwise_recall": round(scores["pairwise_recall"], 4)})
    return row, links


def _stage_cells(row: dict) -> str:
    """`read 3.1 s / 1.2 GB (driver 0.4)` per stage, for the table's last column."""
    seconds, peaks, own = row.get("stage_seconds", {}), row.get("stage_peak_mb", {}), row.get("stage_driver_peak_mb", {})
    names = {"read": "reading sources", "standardise": "standardising", "link": "linking", "cluster": "clustering",
             "resident_view": "building resident view"}
    cells = [f"{key} {seconds[key]:.1f} s / {peaks.get(stage, 0) / 1024:.1f} GB"
             + (f" (driver {own[stage] / 1024:.1f})" if stage in own else "")
             for key, stage in names.items() if key in seconds]
    if "writing outputs and report" in peaks:
        cells.append(f"write {peaks['writing outputs and report'] / 1024:.1f} GB")
    return "; ".join(cells)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| Dataset | Engine | Records | Wall time (s) | Peak memory (MB) | Python driver's peak (MB) | "
             "Pairwise F1 | Identical residents | Status | Per stage (time / peak memory) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        same, f1 = row.get("identical_residents_share"), row.get("pairwise_f1")
        lines.append(
            f"| {row['dataset']} | {row['engine']} | {row['records']:,} | {row['wall_seconds']:,.1f} | "
            f"{row.get('peak_memory_mb', 0):,} | {row.get('driver_peak_mb', 0):,} | {'–' if f1 is None else f'{f1:.4f}'} | "
            f"{'–' if same is None else f'{same:.2%}'} | {row['status']} | {_stage_cells(row)} |")
    return "\n".join(lines)


def _size_name(records: str) -> str:
    return records if records.startswith("synthetic-") else f"synthetic-{records}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", nargs="+", default=["1m"], help="sizes: 10k 100k 1m 2002k … (synthetic-<N>[k|m])")
    parser.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "spark"])
    parser.add_argument("--memory-limit", help="the config's memory_limit for every run (e.g. 8GB); default: none set")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale", help="where the table is written")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where datasets are prepared (reused)")
    parser.add_argument("--timeout", type=float, default=2 * 3600, help="seconds per run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--engine-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.engine_out, args.engine, args.report)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for records in args.records:
        dataset = _size_name(records)
        folder = prepare(dataset, args.data)
        links = {}
        with tempfile.TemporaryDirectory(dir=args.out) as work:
            for engine in args.engines:
                print(f"linking {dataset} on {engine} …", flush=True)
                row, links[engine] = run_one(dataset, folder, engine, Path(work), args.memory_limit, args.timeout)
                print(f"  {row['status']}, {row['wall_seconds']:.1f} s, {row.get('peak_memory_mb', 0):,} MB", flush=True)
                rows.append(row)
        if links.get("duckdb") is not None and links.get("spark") is not None:
            rows[-1]["identical_residents_share"] = agreement(links["spark"], links["duckdb"])["identical_residents_share"]
        (args.out / "latest.json").write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
        (args.out / "latest.md").write_text(markdown_table(rows) + "\n", encoding="utf-8")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()

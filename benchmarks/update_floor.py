"""What any `update` must spend before it links a single record: the floor under its time.

    .venv/bin/python benchmarks/update_floor.py benchmarks/results/update/work/synthetic-1m

Run after `update_vs_link.py` on the same dataset (it reads that script's work folder: the
`after` extracts and the `updated` output folder). In one process, on one machine, it times
the steps an update cannot skip however it is built, since CONTRACT §6 has it read tonight's
sources and write every output `link` writes:

1. reading every source and hashing every record (to know what changed);
2. writing the resident view's files — every Parquet file of the folder and the DuckDB
   database — from tables already in memory (Arrow, the cheapest form);
3. building the report from those outputs;

and, as the baseline, a full `link` of the same extracts with the saved model (the real CLI,
in its own process). Each floor step is reported as a share of that link: an update that
rewrote only what changed would still pay steps 1 and 2 on a million records.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "residentview.cli", "-q"]


def _timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def read_and_hash(config: Path) -> float:
    from residentview.config import load_config
    from residentview.sources import read_sources, row_hashes

    cfg = load_config(config)

    def work():  # as an update reads them: Arrow text, no Python string per value
        raw, _ = read_sources(cfg, as_text=True)
        return row_hashes(raw, cfg)

    seconds, _ = _timed(work)
    return seconds


def write_outputs(folder: Path, scratch: Path) -> tuple[float, float]:
    """Seconds to write every Parquet file of `folder`, and the DuckDB database of its view
    tables, from Arrow tables already read."""
    from residentview.resident_view.database import write_tables

    tables = {path.stem: pq.read_table(path) for path in sorted(folder.glob("*.parquet"))}
    parquet, _ = _timed(lambda: [pq.write_table(t, scratch / f"{name}.parquet") for name, t in tables.items()])
    view = {name: tables[name] for name in ("residents", "resident_links", "households", "id_changes", "addresses",
                                            "events", "data_quality", "decisions") if name in tables}
    database, _ = _timed(lambda: write_tables(scratch / "resident_view.duckdb", view))
    return parquet, database


def build_report(folder: Path, scratch: Path) -> float:
    from residentview.report import write_report

    for name in folder.iterdir():
        if name.suffix in (".parquet", ".json"):
            shutil.copy2(name, scratch / name.name)
    seconds, _ = _timed(lambda: write_report(scratch))
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="update_vs_link.py's work folder for one dataset")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "update" / "floor.json")
    args = parser.parse_args(argv)
    after = args.work / "after"
    config = after / ("config-same-model.yaml" if (after / "config-same-model.yaml").is_file() else "config.yaml")
    folder = args.work / "updated"
    with tempfile.TemporaryDirectory(prefix="rv-floor-") as temporary:
        scratch = Path(temporary)
        link_out = scratch / "link"
        link_seconds, completed = _timed(lambda: subprocess.run([*CLI, "link", str(config), "--out", str(link_out)],
                                                                capture_output=True, text=True))
        if completed.returncode != 0:
            raise SystemExit(f"link failed:\n{completed.stderr[-2000:]}")
        shutil.rmtree(link_out)
        (scratch / "files").mkdir()
        (scratch / "report").mkdir()
        steps = {"read sources and hash every record": read_and_hash(config)}
        steps["write the Parquet files"], steps["write the DuckDB database"] = write_outputs(folder, scratch / "files")
        steps["build the report"] = build_report(folder, scratch / "report")
    result = {"work": str(args.work), "link_same_model_seconds": round(link_seconds, 1),
              "steps": {k: {"seconds": round(v, 1), "share_of_link": round(v / link_seconds, 3)} for k, v in steps.items()}}
    floor = sum(v for k, v in steps.items() if k != "build the report")
    result["floor_without_report"] = {"seconds": round(floor, 1), "share_of_link": round(floor / link_seconds, 3)}
    result["floor_with_report"] = {"seconds": round(floor + steps["build the report"], 1),
                                   "share_of_link": round((floor + steps["build the report"]) / link_seconds, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

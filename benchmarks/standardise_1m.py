"""Time the standardise stage alone on a config's sources (issue 4: ≤ 15 s at 1M records).

    .venv/bin/python benchmarks/standardise_1m.py [CONFIG]

Reading the files is not timed. Prints one line: records, wall seconds and CPU seconds, here and
in the worker process that cleans addresses meanwhile (a busy machine shows as wall well above
the larger of the two). Without CONFIG, the synthetic 1M
extract is used, built first under benchmarks/data/ if it is not there yet.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from residentview.config import load_config  # noqa: E402
from residentview.errors import ResidentViewError  # noqa: E402
from residentview.sources import read_sources  # noqa: E402
from residentview.standardise import standardise  # noqa: E402

DEFAULT_DATASET = "synthetic-1m"


def default_config() -> Path:
    from datasets import prepare

    return prepare(DEFAULT_DATASET, HERE / "data") / "config.yaml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, help=f"default: the {DEFAULT_DATASET} extract")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    config_path = args.config or default_config()
    try:
        config = load_config(str(config_path))
        raw, _ = read_sources(config)
    except ResidentViewError as exc:
        sys.exit(f"error: {exc}")
    wall, cpu, worker = time.perf_counter(), time.process_time(), _children_cpu()
    standardise(raw, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    worker = _children_cpu() - worker
    print(
        f"standardise: {len(raw):,} records from {config_path} in {wall:.1f} s wall, "
        f"{cpu:.1f} s CPU here + {worker:.1f} s CPU in the worker"
    )


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


if __name__ == "__main__":
    main()

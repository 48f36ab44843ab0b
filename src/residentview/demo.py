"""`residentview demo`: a synthetic borough's extracts at two dates -> link, then update -> outputs.

The demo shows the living resident view: the earlier extracts are linked into the output folder,
then the later ones (a year on: people moved, died, married, turned 18, arrived and left)
brought in by `update`, as a nightly job would. The report is then rebuilt with the synthetic
truth, so it measures the matching (precision and recall) and the life events against it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from residentview.outputs import check_output_folder, folder_lock
from residentview.schema import OUTPUT_FILES

# What a demo run leaves in its output folder, cleared before the next demo starts afresh.
DEMO_OUTPUTS = (*OUTPUT_FILES, "decisions.parquet", "audit.jsonl", "runs")


def people_for_records(records: int) -> int:
    """The synthetic population that yields roughly `records` source records."""
    from residentview.synthetic import RECORDS_PER_PERSON

    return max(20, int(records / RECORDS_PER_PERSON))


def _start_afresh(folder: Path) -> None:
    """Remove a previous demo's outputs (and nothing else): linking the earlier extracts into a
    folder that holds the later ones' run would report the year's events backwards."""
    for name in DEMO_OUTPUTS:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def run_demo(out: Path, records: int = 20_000, seed: int = 1, progress: Optional[bool] = None):
    """Returns the update's result, the output folder and the later extracts' config."""
    from residentview.incremental import update
    from residentview.pipeline import link
    from residentview.report import rebuild_report
    from residentview.synthetic import generate_pair

    out = Path(out)
    folder = out / "output"
    for path in (out / "data", folder):  # before generating anything
        check_output_folder(path)
    pair = generate_pair(people=people_for_records(records), out=out / "data", seed=seed)
    with folder_lock(folder, "demo"):
        _start_afresh(folder)
        link(pair.earlier.config_path, previous=None, progress=progress).write(folder)
        result = update(pair.later.config_path, out=folder, progress=progress)
        result.write(folder)
        rebuild_report(folder, labels=pair.later.truth_path, events_truth=pair.events_path)
    return result, folder, pair.later.config_path

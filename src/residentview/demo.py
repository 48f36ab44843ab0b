"""`residentview demo`: synthetic council extracts -> the whole pipeline -> outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from residentview.outputs import folder_lock
from residentview.pipeline import link
from residentview.synthetic import generate


def people_for_records(records: int) -> int:
    """The synthetic population that yields roughly `records` source records."""
    from residentview.synthetic import RECORDS_PER_PERSON

    return max(20, int(records / RECORDS_PER_PERSON))


def run_demo(out: Path, records: int = 20_000, seed: int = 1, progress: Optional[bool] = None):
    out = Path(out)
    written = generate(people=people_for_records(records), out=out / "data", seed=seed)
    folder = out / "output"
    with folder_lock(folder, "demo"):
        result = link(written.config_path, previous=folder, progress=progress)
        result.write(folder)
    return result, folder, written.config_path

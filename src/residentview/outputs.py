"""Atomic outputs: a run writes everything into a temporary folder beside the target, then moves
each file into place, so a failed run leaves the previous outputs untouched. Files in the output
folder that residentview did not write are never touched."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from residentview.errors import DataError


@contextmanager
def staged_output(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success move every file in it into `target`."""
    target = Path(target)
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not target.is_dir():
            raise DataError(f"{target}: output path exists and is not a folder")
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except PermissionError:
        raise DataError(f"{target}: cannot write the output folder (permission denied)") from None
    try:
        yield staging
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir()):
            destination = target / item.name
            if destination.is_dir() and not item.is_dir():
                shutil.rmtree(destination)
            os.replace(item, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

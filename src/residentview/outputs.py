"""Atomic outputs: a run writes everything into a temporary folder beside the target, then moves
each file into place, so a failed run leaves the previous outputs untouched. Files in the output
folder that residentview did not write are never touched."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from residentview import interrupts
from residentview.errors import DataError

_REPLACED = ".replaced"  # inside the staging folder: the previous outputs, until the move succeeds


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _make_staging(target: Path) -> Path:
    # beside the target, so every move is a rename within one file system
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.residentview-tmp-", dir=parent))
    except PermissionError:
        raise DataError(f"{target}: cannot write beside the output folder (permission denied)") from None


def _move_into_place(staging: Path, target: Path) -> None:
    """Move every item of `staging` into `target`; on any failure put the previous files back."""
    items = sorted(p for p in staging.iterdir() if p.name != _REPLACED)
    for item in items:
        existing = target / item.name
        if existing.exists() and existing.is_dir() != item.is_dir():
            kind = "a folder" if existing.is_dir() else "a file"
            raise DataError(f"{existing}: is {kind} not written by residentview; move it away and rerun")
    target.mkdir(parents=True, exist_ok=True)
    replaced = staging / _REPLACED
    replaced.mkdir()
    set_aside: list[str] = []
    moved_in: list[str] = []
    try:
        for item in items:
            existing = target / item.name
            if existing.exists() or existing.is_symlink():
                os.replace(existing, replaced / item.name)
                set_aside.append(item.name)
            os.replace(item, existing)
            moved_in.append(item.name)
    except BaseException:
        for name in reversed(moved_in):
            _remove(target / name)
        for name in reversed(set_aside):
            os.replace(replaced / name, target / name)
        raise


@contextmanager
def staged_output(target: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary folder to write outputs into; when the block ends without an error,
    move each of them into `target` (replacing files of the same name, touching nothing else).
    When it fails, `target` is left exactly as it was and the temporary folder is removed."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: output path exists and is not a folder")
    staging = _make_staging(target)
    try:
        yield staging
        interrupts.check()  # a signal swallowed on the way must not let the outputs move in
        try:
            _move_into_place(staging, target)
        except PermissionError:
            raise DataError(f"{target}: cannot write the output folder (permission denied)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)

"""Atomic outputs: a run writes everything into a temporary folder beside the target, then moves
each file into place, so a failed run leaves the previous outputs untouched. Files in the output
folder that residentview did not write are never touched."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

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


def _move_into_place(staging: Path, target: Path, commit: Optional[Callable[[], None]] = None) -> None:
    """Move every item of `staging` into `target`, then `commit()`; on any failure (the
    commit's too) put the previous files back."""
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
        if commit is not None:
            commit()
    except BaseException:
        for name in reversed(moved_in):
            _remove(target / name)
        for name in reversed(set_aside):
            os.replace(replaced / name, target / name)
        raise


def committing(*targets) -> Callable[[], None]:
    """One commit for several destinations, in order (`staged_output`'s `commit`): when a later
    one fails, the earlier ones that can be undone (`undo()`) are. A database's transaction,
    which cannot be undone once committed, goes last."""

    def commit() -> None:
        done = []
        try:
            for target in targets:
                target.commit()
                done.append(target)
        except BaseException:
            for target in reversed(done):
                if hasattr(target, "undo"):
                    target.undo()
            raise

    return commit


@contextmanager
def staged_output(target: Union[str, Path], commit: Optional[Callable[[], None]] = None) -> Iterator[Path]:
    """Yield a temporary folder to write outputs into; when the block ends without an error,
    move each of them into `target` (replacing files of the same name, touching nothing else).
    When it fails, `target` is left exactly as it was and the temporary folder is removed.
    `commit`, when given, is called once every file is in place (the database the view is also
    written to commits there); if it fails, the previous files are put back."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: output path exists and is not a folder")
    staging = _make_staging(target)
    try:
        yield staging
        interrupts.check()  # a signal swallowed on the way must not let the outputs move in
        try:
            _move_into_place(staging, target, commit)
        except PermissionError:
            raise DataError(f"{target}: cannot write the output folder (permission denied)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_output_folder(target: Union[str, Path]) -> None:
    """Before any work: `target` must be a folder, or a path one can be made at. An output path
    that is a file, or lies inside one, would otherwise fail only after the whole run."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: output path exists and is not a folder; expected a folder or a new path")
    nearest = next((p for p in (target.absolute(), *target.absolute().parents) if p.exists()), None)
    if nearest is None:
        return
    if not nearest.is_dir():
        raise DataError(f"{target}: cannot be an output folder, {nearest} is a file; expected a folder or a new path")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise DataError(f"{target}: cannot write there ({nearest}: permission denied)")


LOCK_SUFFIX = ".residentview.lock"


def _lock_path(target: Path) -> Path:
    """Beside the folder, like the staging folder: taking the lock creates nothing inside it."""
    target = Path(target).resolve()
    return target.parent / f".{target.name}{LOCK_SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


_held: dict[Path, int] = {}  # locks this process holds, and how many times it has taken each


@contextmanager
def folder_lock(target: Union[str, Path], command: str) -> Iterator[None]:
    """Only one residentview at a time writes a folder: two runs, or a run and `review apply`,
    each reading the decisions store and writing it back would lose one's decisions. A second
    command stops with a DataError naming the first (process, host, command, start time); a lock
    left by a process that died is taken over. Taken again by the same process, it is the same lock."""
    check_output_folder(target)
    path = _lock_path(target)
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                holder = {}
            pid = holder.get("pid")
            same_host = holder.get("host") == mine["host"]
            if isinstance(pid, int) and same_host and not _alive(pid) or not holder:
                path.unlink(missing_ok=True)  # its process is gone (or it was never finished): stale
                continue
            raise DataError(
                f"{target}: being written by another residentview ({holder.get('command', '?')}, process "
                f"{pid} on {holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it to "
                f"finish, or stop it (a lock left by a process that has died is taken over)") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(mine, handle)
        break
    else:
        raise DataError(f"{target}: cannot take the lock {path}")
    _held[path] = 1
    try:
        yield
    finally:
        del _held[path]
        path.unlink(missing_ok=True)

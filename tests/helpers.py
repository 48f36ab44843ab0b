"""Small helpers shared by test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path


def snapshot(folder: Path) -> dict:
    """Every file under `folder` by relative path, with its bytes: equal snapshots, same folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

"""`audit.jsonl`: an append-only, hash-chained log of everything done to an output folder.

One JSON object a line: every run (`link`, `report`) and every imported decision. Each entry
carries `prev`, the hash of the entry before it (64 zeros for the first), and `hash`, the SHA-256
of its own canonical JSON without `hash`; editing, removing or reordering any line breaks the
chain from there on, which `residentview audit verify OUTDIR` finds. Entries carry counts, file
digests, reviewers and record keys (source:record_id) — never names, dates of birth, notes or
any other value from the data, and never a secret.

Appending goes through the output folder's staging like every other file: the new log is the old
one plus the new entries, moved into place with the rest of a command's outputs or not at all.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


def _canonical(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _last_entry(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    last = None
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                last = line
    if last is None:
        return None
    try:
        value = json.loads(last)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def versions() -> dict:
    found = {}
    for package in ("residentview", "splink", "duckdb"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def append_entries(folder: Path, staging: Path, entries: Iterable[dict]) -> int:
    """Write `staging/audit.jsonl`: `folder`'s log with `entries` chained on. Returns how many."""
    source, target = Path(folder) / AUDIT_FILE, Path(staging) / AUDIT_FILE
    previous = _last_entry(source)
    prev_hash = previous.get("hash", GENESIS) if previous else GENESIS
    seq = int(previous.get("seq", 0)) if previous else 0
    lines = []
    for entry in entries:
        seq += 1
        chained = {"seq": seq, "time": entry.get("time") or now(), **{k: v for k, v in entry.items() if k != "time"},
                   "prev": prev_hash}
        chained["hash"] = entry_hash(chained)
        prev_hash = chained["hash"]
        lines.append(_canonical(chained) + b"\n")
    existing = source.read_bytes() if source.is_file() else b""
    if existing and not existing.endswith(b"\n"):
        existing += b"\n"
    target.write_bytes(existing + b"".join(lines))
    return len(lines)


@dataclass
class AuditCheck:
    n_entries: int
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(folder: Path) -> AuditCheck:
    """Check the chain of `folder/audit.jsonl` line by line; and that decisions.parquet is the
    file the last entry that wrote it recorded."""
    path = Path(folder) / AUDIT_FILE
    if not path.is_file():
        return AuditCheck(0, [f"{path}: no audit log"])
    problems: list[str] = []
    prev_hash, n, last_decisions = GENESIS, 0, None
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            n += 1
            try:
                entry = json.loads(line)
                assert isinstance(entry, dict)
            except (ValueError, AssertionError):
                problems.append(f"line {line_number}: not a JSON object")
                prev_hash = None
                continue
            if entry.get("hash") != entry_hash(entry):
                problems.append(f"line {line_number}: its contents were changed (hash does not match)")
            if prev_hash is not None and entry.get("prev") != prev_hash:
                problems.append(f"line {line_number}: does not follow the line before (an entry was removed, "
                                "inserted or reordered)")
            if entry.get("seq") != n:
                problems.append(f"line {line_number}: sequence number {entry.get('seq')} where {n} was expected")
            prev_hash = entry.get("hash")
            if "decisions_sha256" in entry:
                last_decisions = entry["decisions_sha256"]
    if last_decisions is not None:
        from residentview.review.store import DECISIONS_FILE, file_digest

        actual = file_digest(Path(folder) / DECISIONS_FILE)
        if actual != last_decisions:
            problems.append(f"{DECISIONS_FILE}: not the file the audit log last recorded (changed or replaced "
                            "outside residentview)")
    return AuditCheck(n, problems)

"""What changed in the sources since the previous run: records new, changed (their mapped values
or their source's settings differ, by `sources.row_hashes`), removed and unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from residentview.sources import ROW_HASH, record_keys


@dataclass
class Changes:
    """Row positions: `new`, `changed` and `unchanged` in the current raw frame; `kept` (the
    unchanged, row-aligned with `unchanged`) and `removed` in the previous records; the
    changed records' previous rows are `replaced`."""

    new: np.ndarray
    changed: np.ndarray
    unchanged: np.ndarray
    kept: np.ndarray
    replaced: np.ndarray
    removed: np.ndarray

    @property
    def fresh(self) -> np.ndarray:
        """Rows of the current raw frame to standardise and score: new and changed."""
        return np.sort(np.concatenate([self.new, self.changed]))

    def counts(self) -> dict[str, int]:
        return {"new": int(len(self.new)), "changed": int(len(self.changed)),
                "removed": int(len(self.removed)), "unchanged": int(len(self.unchanged))}

    def by_source(self, raw: pd.DataFrame, previous: pd.DataFrame) -> dict[str, dict[str, int]]:
        """The counts of each source."""
        out: dict[str, dict[str, int]] = {}
        for name, rows, frame in (("new", self.new, raw), ("changed", self.changed, raw),
                                  ("removed", self.removed, previous), ("unchanged", self.unchanged, raw)):
            for source, n in frame["source"].iloc[rows].value_counts().items():
                out.setdefault(str(source), {"new": 0, "changed": 0, "removed": 0, "unchanged": 0})[name] = int(n)
        return dict(sorted(out.items()))


def compare(previous: pd.DataFrame, raw: pd.DataFrame, hashes: np.ndarray) -> Changes:
    """Match the current raw records (with their `hashes`) to the previous run's records
    (source, record_id, row_hash) by source and record id."""
    at = record_keys(previous).get_indexer(record_keys(raw))
    found = at >= 0
    same = np.zeros(len(raw), dtype=bool)
    same[found] = previous[ROW_HASH].to_numpy(dtype=np.uint64)[at[found]] == hashes[found]
    seen = np.zeros(len(previous), dtype=bool)
    seen[at[found]] = True
    unchanged = np.flatnonzero(same)
    changed = np.flatnonzero(found & ~same)
    return Changes(
        new=np.flatnonzero(~found), changed=changed, unchanged=unchanged, kept=at[unchanged],
        replaced=at[changed], removed=np.flatnonzero(~seen),
    )

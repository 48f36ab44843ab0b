"""Stage 5 — resident view: persistent resident IDs, golden records, households.

(Placeholder: ids hashed from member keys, golden values from the first record. The full stage
replaces this.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from residentview.schema import GOLDEN_FIELDS


@dataclass
class ResidentView:
    links: pd.DataFrame
    residents: pd.DataFrame
    households: pd.DataFrame
    id_changes: pd.DataFrame


def build_resident_view(
    records: pd.DataFrame,
    clusters: pd.DataFrame,
    previous: Optional[Path] = None,
    source_priority: Sequence[str] = (),
    run_timestamp: Optional[pd.Timestamp] = None,
) -> ResidentView:
    merged = records.merge(clusters, on="unique_id")
    merged["member_key"] = merged["source"] + "\x1f" + merged["record_id"]
    first_key = merged.groupby("cluster_key")["member_key"].transform("min")
    merged["resident_id"] = first_key.map(lambda k: "R" + hashlib.sha256(k.encode()).hexdigest()[:10].upper())
    links = merged[["source", "record_id", "resident_id", "match_probability"]].reset_index(drop=True)
    grouped = merged.groupby("resident_id", sort=True)
    residents = grouped[list(GOLDEN_FIELDS)].first().reset_index()
    residents["n_records"] = grouped.size().values
    residents["sources"] = grouped["source"].agg(lambda s: sorted(set(s))).values
    empty = pd.DataFrame()
    return ResidentView(links, residents, empty, empty)


def write_database(folder: Path, view: ResidentView, quality: pd.DataFrame) -> None:
    """Placeholder: the DuckDB database is written by the full stage."""

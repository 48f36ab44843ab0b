"""Stage 3 — linkage: score candidate pairs of records with a Fellegi–Sunter model (Splink 5, DuckDB)."""

from residentview.linkage.model import Linkage, link_records

__all__ = ["Linkage", "link_records"]

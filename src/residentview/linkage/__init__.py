"""Stage 3 — linkage: score candidate pairs of records with a Fellegi–Sunter model (Splink 5, DuckDB)."""

from residentview.linkage.candidates import CandidatePairs, candidate_pairs
from residentview.linkage.model import Linkage, link_records

__all__ = ["CandidatePairs", "Linkage", "candidate_pairs", "link_records"]

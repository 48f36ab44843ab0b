"""Stage 2 — standardise: raw canonical fields -> canonical forms + matching keys + a data-quality
profile. See `residentview.schema` for the frames in and out.

(Placeholder implementation: upper-cases names and parses ISO/UK dates. The full UK cleaners
replace this.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from residentview.config import Config


@dataclass
class Standardised:
    records: pd.DataFrame
    quality: pd.DataFrame


def _upper(s: pd.Series) -> pd.Series:
    return s.astype("string").str.upper().str.strip().astype(object).where(s.notna(), None)


def standardise(raw: pd.DataFrame, config: Config) -> Standardised:
    df = raw.sort_values(["source", "record_id"], kind="mergesort").reset_index(drop=True)
    out = pd.DataFrame({"unique_id": range(len(df)), "source": df["source"], "record_id": df["record_id"]})
    for col in ("title", "first_name", "middle_names", "last_name", "previous_last_name", "address", "postcode", "sex"):
        out[col] = _upper(df[col]) if col in df else None
    for col in ("date_of_birth", "record_date"):
        out[col] = pd.to_datetime(df[col], errors="coerce") if col in df else pd.NaT
    for col in ("uprn", "nhs_number", "ni_number", "phone", "email"):
        out[col] = df[col] if col in df else None
    for col in [c for c in df.columns if c.startswith("id_")]:
        out[col] = _upper(df[col])
    for col in ("first_name", "middle_names", "last_name", "previous_last_name"):
        out[f"{col}_key"] = out[col]
    out["is_person"] = True
    quality = pd.DataFrame(columns=["source", "field", "n_records", "n_present", "completeness"])
    return Standardised(out, quality)

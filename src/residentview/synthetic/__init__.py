"""Synthetic council extracts with known truth: the demo, the tests and every accuracy claim rest on them.

    from residentview.synthetic import generate, NoiseRates
    written = generate(people=10_000, out="synthetic", seed=1)
    written.config_path   # a residentview config for the six extracts
    written.truth_path    # truth.parquet: source, record_id, person_id

A population living in households at UK addresses (`population.py`) is seen by six council
systems (`extracts.py`), each copying it with the errors of the noise catalogue (`noise.py`).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
import yaml

from residentview.outputs import staged_output
from residentview.synthetic.extracts import SYSTEMS
from residentview.synthetic.noise import NoiseRates
from residentview.synthetic.population import make_population

log = logging.getLogger(__name__)

# Measured: ~1.4 records per person across the six systems at the default rates.
RECORDS_PER_PERSON = 1.4

# Where each system's extract goes and how it is written (the file type is part of the realism).
FILES = {
    "council_tax": "council_tax.csv",
    "housing_benefit": "housing_benefit.parquet",
    "electoral_register": "electoral_register.csv",
    "adult_social_care": "adult_social_care.csv",
    "children_services": "children_services.xlsx",
    "school_census": "school_census.csv",
}
ENCODINGS = {"electoral_register": "cp1252", "adult_social_care": "utf-8-sig"}

SOURCE_CONFIG = {
    "council_tax": {
        "id": "account_ref",
        "fields": {
            "full_name": "liable_party",
            "address": ["addr_line_1", "addr_line_2", "addr_line_3", "addr_line_4"],
            "postcode": "postcode",
            "uprn": "uprn",
            "record_date": {"column": "account_start", "format": "%Y-%m-%d"},
            "email": "ebilling_email",
        },
    },
    "housing_benefit": {
        "id": "person_ref",
        "fields": {
            "title": "title",
            "first_name": "forenames",
            "last_name": "surname",
            "date_of_birth": "dob",
            "ni_number": "nino",
            "address": ["address_1", "address_2", "address_3"],
            "postcode": "post_code",
            "phone": "telephone",
            "email": "email",
            "record_date": "claim_start",
        },
    },
    "electoral_register": {
        "id": "elector_number",
        "encoding": "cp1252",
        "fields": {
            "first_name": "forename",
            "middle_names": "middle_names",
            "last_name": "surname",
            "date_of_birth": {"column": "attainer_dob", "format": "%d/%m/%Y"},
            "address": ["property_name", "street_address", "town"],
            "postcode": "postcode",
            "uprn": "uprn",
        },
    },
    "adult_social_care": {
        "id": "person_id",
        "fields": {
            "first_name": "first_name",
            "last_name": "last_name",
            "previous_last_name": "previous_surname",
            "date_of_birth": {"column": "date_of_birth", "format": "%d-%b-%Y"},
            "sex": "gender",
            "nhs_number": "nhs_number",
            "address": "address",
            "postcode": "postcode",
            "phone": "telephone",
        },
    },
    "children_services": {
        "id": "child_id",
        "sheet": "Children",
        "fields": {
            "first_name": "forename",
            "last_name": "surname",
            "date_of_birth": {"column": "dob", "format": "%d/%m/%Y"},
            "sex": "sex",
            "nhs_number": "nhs_no",
            "address": ["address_line1", "address_line2", "town"],
            "postcode": "postcode",
            "identifiers": {"upn": "upn"},
        },
    },
    "school_census": {
        "id": "pupil_id",
        "fields": {
            "first_name": "legal_forename",
            "middle_names": "middle_names",
            "last_name": "legal_surname",
            "date_of_birth": {"column": "dob", "format": "%Y-%m-%d"},
            "sex": "gender",
            "address": ["address", "town"],
            "postcode": "postcode",
            "identifiers": {"upn": "upn"},
        },
    },
}


@dataclass
class Written:
    """What `generate` wrote: the folder, the config for the extracts, the truth and its size."""

    out: Path
    config_path: Path
    truth_path: Path
    n_records: int


def config_for(data_dir: str = ".", name: str = "synthetic_council") -> dict:
    """The residentview config for the six extracts, with paths under `data_dir`."""
    sources = {}
    for system, spec in SOURCE_CONFIG.items():
        path = f"{data_dir.rstrip('/')}/{FILES[system]}" if data_dir not in ("", ".") else FILES[system]
        sources[system] = {"path": path, **spec}
    return {"name": name, "sources": sources, "linkage": {"threshold": 0.95}}


def _cp1252_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Fold only the characters cp1252 cannot hold (ł, ś…), as a legacy export does; keep é, â."""
    def fold(text: str) -> str:
        try:
            text.encode("cp1252")
            return text
        except UnicodeEncodeError:
            return "".join(
                c if c.encode("cp1252", "ignore") else unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
                for c in text
            )

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = out[column].dropna().unique()
            mapping = {v: fold(v) for v in values if isinstance(v, str)}
            out[column] = out[column].map(mapping).where(out[column].notna(), None)
    return out


def _write(frame: pd.DataFrame, system: str, out: Path) -> None:
    path = out / FILES[system]
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            frame.to_excel(writer, sheet_name=SOURCE_CONFIG[system]["sheet"], index=False)
    else:
        encoding = ENCODINGS.get(system, "utf-8")
        if encoding == "cp1252":
            frame = _cp1252_safe(frame)
        frame.to_csv(path, index=False, encoding=encoding)


def generate(people: int = 1000, out: Union[str, Path] = "synthetic", seed: int = 1,
             noise: Optional[NoiseRates] = None) -> Written:
    """Write six council extracts for a synthetic population of `people`, a config and truth.parquet.

    The same `seed` (and `noise`) always writes the same files.
    """
    rates = noise or NoiseRates()
    out = Path(out)
    rng = np.random.default_rng(seed)
    population = make_population(people, rng, rates)
    truths = []
    # All files or none: an interrupted run must not leave half the extracts (the config's paths
    # are relative, so the folder can be written elsewhere and moved into place).
    with staged_output(out) as staging:
        for system, make in SYSTEMS.items():
            frame, truth = make(population, rates, rng)
            order = rng.permutation(len(frame))  # files are not in person order
            _write(frame.iloc[order].reset_index(drop=True), system, staging)
            truths.append(truth)
            log.debug("wrote %s: %d records", system, len(frame))
        truth = pd.concat(truths, ignore_index=True)
        truth.to_parquet(staging / "truth.parquet", index=False)
        (staging / "council.yaml").write_text(yaml.safe_dump(config_for("."), sort_keys=False), encoding="utf-8")
    return Written(out, out / "council.yaml", out / "truth.parquet", len(truth))


__all__ = ["FILES", "NoiseRates", "RECORDS_PER_PERSON", "Written", "config_for", "generate"]

"""Shared fixtures: small config and extract writers, kept visible in the tests that use them."""

from __future__ import annotations

from pathlib import Path

import os

import pandas as pd
import pytest
import yaml
from hypothesis import settings

# The property tests draw the same examples on every run, so that CI passes or fails on the code
# and not on the draw. HYPOTHESIS_PROFILE=explore draws new ones (to look for bugs, locally).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def write_config(tmp_path):
    """Write a config mapping as YAML into tmp_path and return its path."""

    def write(config: dict, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    return write


FIRST_NAMES = ["John", "Mary", "Ahmed", "Sian", "Peter", "Zoe", "Wiktoria", "Chidi", "Aoife", "Ravi"]
LAST_NAMES = ["Smith", "Jones", "Khan", "Patel", "Evans", "Brown", "Nowak", "Okafor", "Murphy", "Shah"]


@pytest.fixture
def linkable_pair(tmp_path, write_config):
    """Two small extracts of the same 30 people, with awkward names everywhere SQL could trip:
    sources called `all` and `select`, columns `First Name`, `select`, `Nom.de famille`, `Année`.
    Returns the config path."""
    people = [
        (FIRST_NAMES[i % 10], LAST_NAMES[(i * 3) % 10], f"{1 + i % 28:02d}/{1 + i % 12:02d}/{1950 + i}")
        for i in range(30)
    ]
    pd.DataFrame({
        "Ref No": [f"00{i:03d}" for i in range(30)],
        "First Name": [p[0] for p in people],
        "select": [p[1] for p in people],
        "D.O.B": [p[2] for p in people],
    }).to_csv(tmp_path / "register.csv", index=False)
    pd.DataFrame({
        "Année": [f"B{i:04d}" for i in range(0, 30, 2)],
        "Prénom": [people[i][0] for i in range(0, 30, 2)],
        "Nom.de famille": [people[i][1].upper() for i in range(0, 30, 2)],
        "Naissance": [people[i][2] for i in range(0, 30, 2)],
    }).to_csv(tmp_path / "benefits.csv", index=False, encoding="cp1252")
    return write_config({
        "name": "tiny",
        "sources": {
            "all": {"path": "register.csv", "id": "Ref No", "fields": {
                "first_name": "First Name", "last_name": "select", "date_of_birth": "D.O.B"}},
            "select": {"path": "benefits.csv", "id": "Année", "fields": {
                "first_name": "Prénom", "last_name": "Nom.de famille", "date_of_birth": "Naissance"}},
        },
        "output": "out",
    })

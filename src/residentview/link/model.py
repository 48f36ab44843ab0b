"""Placeholder linkage: a small Splink model on names and date of birth (replaced by the full
field-typed model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from residentview.config import LinkageConfig


@dataclass
class Linkage:
    pairs: pd.DataFrame
    model: dict
    diagnostics: dict = field(default_factory=dict)


def link_records(records: pd.DataFrame, settings: LinkageConfig, model_path: Optional[Path] = None) -> Linkage:
    cols = ["unique_id", "first_name_key", "last_name_key", "date_of_birth"]
    df = records[cols].copy()
    df["date_of_birth"] = df["date_of_birth"].dt.strftime("%Y-%m-%d")
    db = DuckDBAPI()
    sdf = db.register(df, dataset_display_name="records")
    creator = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[cl.ExactMatch("first_name_key"), cl.ExactMatch("last_name_key"), cl.ExactMatch("date_of_birth")],
        blocking_rules_to_generate_predictions=[block_on("last_name_key")],
    )
    linker = Linker(sdf, creator)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=settings.seed)
    pairs = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    return Linkage(pairs=pairs, model=json.loads(json.dumps(linker.misc.save_model_to_json())))

"""The trained Splink model, read back from model.json: its charts, its per-level weights, and the
per-comparison weight of every scored pair (what each field contributed to a match)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from residentview.report.linkage_metrics import probability_to_weight

log = logging.getLogger(__name__)

PRIOR = "probability_two_random_records_match"  # Splink's name for the prior's row among the levels


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink logs settings validation and SQL chatter while we only want charts."""
    splink_log = logging.getLogger("splink")
    level = splink_log.level
    splink_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        splink_log.setLevel(level)


class ModelView:
    """A Splink `Linker` rebuilt from model.json, used only for charts and parameters.

    No data is registered: Splink only needs the column names the model compares, so an empty
    table with those names stands in for the records.
    """

    def __init__(self, model: dict, column_names: set[str], connection=None):
        """`connection`: a DuckDB connection to work in (a notebook that also registers pairs)."""
        from splink import Linker

        from residentview.memory import duckdb_connect, splink_duckdb_api

        settings = dict(model)
        # The waterfall chart refuses to draw unless the model says these columns were kept.
        settings["retain_matching_columns"] = True
        settings["retain_intermediate_calculation_columns"] = True
        unique_id = settings.get("unique_id_column_name", "unique_id")
        columns = {name: pd.Series([], dtype=object) for name in sorted(column_names - {unique_id})}
        stand_in = pd.DataFrame({unique_id: pd.Series([], dtype="int64"), **columns})
        with _quiet_splink():
            self.db_api = splink_duckdb_api(connection if connection is not None else duckdb_connect())
            table = self.db_api.register(stand_in, dataset_display_name="records")
            self.linker = Linker(table, settings, log_level=None)
            self.levels = self._levels()

    def _levels(self) -> pd.DataFrame:
        """One row per comparison level: comparison, level (gamma), label, m, u, match weight."""
        chart = self.linker.visualisations.match_weights_chart()
        rows = [r if isinstance(r, dict) else r.as_dict() for r in chart.chart_data]
        frame = pd.DataFrame(rows)
        frame = frame.rename(columns={"comparison_name": "comparison", "comparison_vector_value": "level",
                                      "label_for_charts": "label", "m_probability": "m",
                                      "u_probability": "u", "log2_bayes_factor": "match_weight"})
        return frame[["comparison", "level", "label", "m", "u", "match_weight", "has_tf_adjustments"]]

    @property
    def prior_weight(self) -> float:
        prior = self.levels[self.levels["comparison"] == PRIOR]
        return float(prior["match_weight"].iloc[0]) if len(prior) else float("nan")

    @property
    def comparison_levels(self) -> pd.DataFrame:
        """The levels without the prior."""
        return self.levels[self.levels["comparison"] != PRIOR]

    @property
    def comparisons(self) -> list[str]:
        return self.comparison_levels["comparison"].drop_duplicates().tolist()

    def chart_specs(self) -> dict[str, dict]:
        with _quiet_splink():
            return {
                "match weights": self.linker.visualisations.match_weights_chart().chart_dict,
                "m and u probabilities": self.linker.visualisations.m_u_parameters_chart().chart_dict,
            }

    def waterfall_chart(self, pairs: pd.DataFrame):
        """Splink's waterfall chart for a few scored pairs; weights the run did not keep are filled in."""
        complete = pairs.copy()
        if "match_weight" not in complete:
            complete["match_weight"] = probability_to_weight(complete["match_probability"].to_numpy(float))
        for name in self.comparisons:
            complete[f"mw_{name}"] = comparison_weights(complete, self.levels, name, with_tf=False)
            tf_column = f"mw_tf_adj_{name}"
            if tf_column not in complete:
                complete[tf_column] = _tf_weight(complete, name).fillna(0.0)
        complete = complete.astype(object).where(complete.notna(), None)
        rows = [_BlankWhenMissing(row) for row in complete.to_dict("records")]
        with _quiet_splink():
            return self.linker.visualisations.waterfall_chart(rows)


class _BlankWhenMissing(dict):
    """A pair whose run did not keep a compared column still draws, with that value blank."""

    def __missing__(self, key):
        return None


def _tf_weight(pairs: pd.DataFrame, name: str) -> pd.Series:
    if f"mw_tf_adj_{name}" in pairs:
        return pairs[f"mw_tf_adj_{name}"].astype(float)
    if f"bf_tf_adj_{name}" in pairs:
        return np.log2(pairs[f"bf_tf_adj_{name}"].astype(float))
    return pd.Series(np.nan, index=pairs.index)


def comparison_weights(pairs: pd.DataFrame, levels: Optional[pd.DataFrame], name: str, with_tf: bool = True) -> pd.Series:
    """The match weight (log2 Bayes factor) comparison `name` added to each pair.

    Splink 5 writes it as ``mw_<name>``; older runs as ``bf_<name>``; when neither was kept it is
    looked up from the pair's comparison level (``gamma_<name>``) in the model. Term-frequency
    adjustments are added when `with_tf` and the run kept them.
    """
    if f"mw_{name}" in pairs:
        weight = pairs[f"mw_{name}"].astype(float)
    elif f"bf_{name}" in pairs:
        weight = np.log2(pairs[f"bf_{name}"].astype(float))
    elif f"gamma_{name}" in pairs and levels is not None:
        by_level = levels[levels["comparison"] == name].set_index("level")["match_weight"]
        weight = pairs[f"gamma_{name}"].map(by_level).astype(float)
        weight = weight.where(pairs[f"gamma_{name}"] != -1, 0.0)  # a null comparison is neutral
    else:
        return pd.Series(np.nan, index=pairs.index)
    if with_tf:
        weight = weight + _tf_weight(pairs, name).fillna(0.0)
    return weight


def comparison_names(pairs: pd.DataFrame, model_view: Optional[ModelView]) -> list[str]:
    """The comparisons scored in this run: from the model when it can be read, else from the pairs."""
    if model_view is not None:
        return model_view.comparisons
    return [c[len("gamma_"):] for c in pairs.columns if c.startswith("gamma_")]


def input_columns(records: Optional[pd.DataFrame], pairs: Optional[pd.DataFrame], model: Optional[dict] = None) -> set[str]:
    """The record columns a run's model may compare: those of records.parquet, pairs' ``*_l``
    and every column the model's comparisons read (some are derived at link time)."""
    from residentview.linkage.model import model_columns

    columns = set(records.columns) if records is not None else set()
    if pairs is not None:
        columns |= {c[:-2] for c in pairs.columns if c.endswith("_l")}
    if model:
        columns |= model_columns(model)
    return columns


def build_model_view(model: Optional[dict], column_names: set[str]) -> tuple[Optional[ModelView], Optional[str]]:
    """A ModelView, or None and the reason it could not be built (shown in the report)."""
    if model is None:
        return None, "model.json is missing or unreadable"
    if not model.get("comparisons"):  # one record, or no field two sources share: nothing scored
        return None, "no model: there was nothing to compare (fewer than two records, or no shared fields)"
    try:
        return ModelView(model, column_names), None
    except Exception as exc:  # an unreadable model must not stop the rest of the report
        log.warning("model charts skipped: %s", type(exc).__name__)
        return None, f"the model in model.json could not be read by Splink ({type(exc).__name__})"

"""The link stage's SQL, written for DuckDB, as Spark runs it.

Comparisons and blocking rules are built once (`linkage.comparisons`, `linkage.blocking`) in
DuckDB's SQL. sqlglot translates most of it; what it leaves in DuckDB's words, or translates
to a Spark function of another meaning, is put right here:

* `jaro_winkler_similarity` -> `similarity.JARO_WINKLER` (DuckDB's Jaro-Winkler, which Splink's
  Scala `jaro_winkler` is not: see `similarity`);
* `list_has_any(a, b)` (sqlglot: `a && b`) -> `arrays_overlap(a, b)`;
* `list_intersect` -> `array_intersect`, and `len` of a list -> `size` (Spark's `length` is
  for text only).

A settings dict goes over with `to_spark`, which remembers each translation so that the trained
model can come back in DuckDB's SQL (`to_duckdb`): model.json is the same file whichever engine
trained it, and `update` (DuckDB) can read it.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import sqlglot
from sqlglot import exp

from residentview.engines.spark.similarity import JARO_WINKLER

LIST_COLUMNS = ("address_tokens", "first_name_aliases")


def _is_list(node: exp.Expression) -> bool:
    if isinstance(node, exp.Column):
        name = node.name
        return any(name == c or name.startswith(f"{c}_") for c in LIST_COLUMNS)
    return isinstance(node, (exp.ArrayIntersect, exp.Array)) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in ("list_intersect", "array_intersect"))


def _spark_list_function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "list_intersect":
        return exp.Anonymous(this="array_intersect", expressions=node.expressions)
    return node


def _spark_function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JarowinklerSimilarity):
        return exp.Anonymous(this=JARO_WINKLER, expressions=[node.this, node.expression])
    if isinstance(node, exp.ArrayOverlaps):
        return exp.Anonymous(this="arrays_overlap", expressions=[node.this, node.expression])
    if isinstance(node, (exp.Length, exp.ArraySize)) and _is_list(node.this):
        return exp.Anonymous(this="size", expressions=[node.this])
    return node


@lru_cache(maxsize=4096)
def spark_sql(duckdb_sql: str) -> str:
    """One condition or expression (a comparison level, a blocking rule) in Spark's SQL."""
    if duckdb_sql.strip().upper() == "ELSE":  # Splink's 'all other comparisons' level
        return duckdb_sql
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    # Two passes: a node replaced is not visited again, so the lists inside `len` go first.
    return tree.transform(_spark_list_function).transform(_spark_function).sql(dialect="spark")


class Translation:
    """Settings dicts to Spark's SQL and a trained model back (see the module docstring)."""

    def __init__(self) -> None:
        self.back: dict[str, str] = {}

    def _sql(self, text: str) -> str:
        translated = spark_sql(text)
        self.back[translated] = text
        return translated

    def to_spark(self, settings: dict) -> dict:
        if settings.get("sql_dialect") == "spark":
            return settings
        out = copy.deepcopy(settings)
        out["sql_dialect"] = "spark"
        for comparison in out.get("comparisons", []):
            for level in comparison.get("comparison_levels", []):
                if isinstance(level.get("sql_condition"), str):
                    level["sql_condition"] = self._sql(level["sql_condition"])
                level.pop("sql_dialect", None)
        for rule in out.get("blocking_rules_to_generate_predictions", []):
            rule["blocking_rule"] = self._sql(rule["blocking_rule"])
            rule["sql_dialect"] = "spark"
        return out

    def to_duckdb(self, model: dict) -> dict:
        """A model trained on Spark in the SQL it was built in."""
        out = copy.deepcopy(model)
        out["sql_dialect"] = "duckdb"
        for comparison in out.get("comparisons", []):
            for level in comparison.get("comparison_levels", []):
                sql = level.get("sql_condition")
                if isinstance(sql, str):
                    level["sql_condition"] = self.back.get(sql, sql)
                level.pop("sql_dialect", None)
        for rule in out.get("blocking_rules_to_generate_predictions", []):
            rule["blocking_rule"] = self.back.get(rule["blocking_rule"], rule["blocking_rule"])
            rule["sql_dialect"] = "duckdb"
        return out

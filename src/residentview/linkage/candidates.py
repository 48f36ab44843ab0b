"""The candidate pairs alone: the records blocking puts side by side, before any scoring.

What the benchmarks measure blocking recall with (`benchmarks/blocking_recall.py`): the same
linking frame, the same rules and the same join as `link_records`, with no model."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from residentview.config import LinkageConfig
from residentview.linkage.blocking import blocked_pairs_sql, choose_records_rules, rule_sql
from residentview.linkage.frame import linking_frame, with_derived
from residentview.linkage.model import _load


@dataclass
class CandidatePairs:
    """`pairs`: unique_id_l, unique_id_r and match_key (the position of the first kept rule that
    finds the pair); `rules`: every rule tried, as in run.json; `kept`: the kept rules' names, in
    match_key order; `record_ids`: the person records compared; `budget`: the comparison budget."""

    pairs: pd.DataFrame
    rules: list[dict]
    kept: list[str]
    record_ids: pd.Series
    budget: int


def candidate_pairs(records: pd.DataFrame, settings: LinkageConfig) -> CandidatePairs:
    """The candidate pairs among the standardised `records` (see `residentview.schema`)."""
    frame = linking_frame(records)
    columns = with_derived(set(frame.columns))
    record_ids = frame["unique_id"].copy()
    _, _, connection = _load(frame)
    del frame
    blocking = choose_records_rules(connection, columns, len(record_ids), settings)
    rules = blocking.rules
    if not rules:
        pairs = pd.DataFrame({"unique_id_l": [], "unique_id_r": [], "match_key": []})
    else:
        pairs = connection.execute(
            f"SELECT join_key_l AS unique_id_l, join_key_r AS unique_id_r, match_key "
            f"FROM ({blocked_pairs_sql([rule_sql(r) for r in rules], 'records_table')})"
        ).df()
    connection.close()
    return CandidatePairs(pairs, blocking.tried, [r.name for r in rules], record_ids, blocking.budget)

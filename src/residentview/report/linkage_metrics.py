"""Numbers the report shows: link rates, cluster shapes, suspicious clusters, and precision/recall —
estimated from the model's own probabilities, and measured when ground-truth labels are given.

All functions take frames from the output folder and return small frames; none loops over rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
AGE_BANDS = ("0-17", "18-34", "35-64", "65+")
UNKNOWN_AGE = "unknown"
CLUSTER_SIZE_BINS = (1, 2, 3, 4, 5, 6, 11, 21)  # shown as 1, 2, 3, 4, 5, 6-10, 11-20, 21+
# Dates of birth more than a year apart cannot be a typo or a day/month swap of one another.
DOB_CONFLICT_DAYS = 366
IDENTIFIER_FIELDS = ("nhs_number", "ni_number")
SUSPICIOUS_COLUMNS = ["resident_id", "n_records", "reason"]


def pairs_within(sizes: pd.Series) -> int:
    """How many record pairs groups of these sizes hold."""
    sizes = sizes.to_numpy(dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


# Link rates ---------------------------------------------------------------------------------------
def link_flags(links: pd.DataFrame) -> pd.DataFrame:
    """links + resident_size, linked (to any other record), linked_other_source (to another source)."""
    by_resident = links.groupby("resident_id", sort=False)
    flagged = links[["source", "record_id", "resident_id"]].copy()
    flagged["resident_size"] = by_resident["record_id"].transform("size").to_numpy()
    flagged["linked"] = flagged["resident_size"] > 1
    flagged["linked_other_source"] = by_resident["source"].transform("nunique").to_numpy() > 1
    return flagged


def summary_by_source(flags: pd.DataFrame) -> pd.DataFrame:
    """Per source: records, residents they belong to, share linked to another record / source, singletons."""
    table = link_rates_by(flags, flags["source"], "source")
    by_source = flags.groupby("source", sort=True)
    table.insert(2, "residents", by_source["resident_id"].nunique().to_numpy())
    table["singletons"] = (~flags["linked"]).groupby(flags["source"], sort=True).sum().to_numpy()
    return table


def age_bands(dates_of_birth: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    age = (as_of - pd.to_datetime(dates_of_birth, errors="coerce")).dt.days / 365.2425
    bands = pd.cut(age, bins=[-np.inf, 18, 35, 65, np.inf], right=False, labels=list(AGE_BANDS))
    return bands.cat.add_categories([UNKNOWN_AGE]).fillna(UNKNOWN_AGE)


def link_rates_by(flags: pd.DataFrame, group: pd.Series, group_name: str) -> pd.DataFrame:
    """Share of records linked to another record / another source within each group (an age band…)."""
    grouped = flags.groupby(group.to_numpy(), observed=False, sort=True)
    table = pd.DataFrame({
        "records": grouped.size(),
        "linked to another record": grouped["linked"].mean(),
        "linked to another source": grouped["linked_other_source"].mean(),
    })
    return table.rename_axis(group_name).reset_index()


# Clusters -----------------------------------------------------------------------------------------
def cluster_size_distribution(links: pd.DataFrame) -> pd.DataFrame:
    sizes = links.groupby("resident_id", sort=False).size()
    edges = list(CLUSTER_SIZE_BINS) + [np.inf]
    labels = [
        str(lo) if hi - lo == 1 else (f"{lo}+" if hi == np.inf else f"{lo}-{hi - 1}")
        for lo, hi in zip(edges[:-1], edges[1:])
    ]
    binned = pd.cut(sizes, bins=edges, right=False, labels=labels)
    counts = binned.value_counts(sort=False)
    records = sizes.groupby(binned, observed=False).sum()
    return pd.DataFrame({"records per resident": labels, "residents": counts.to_numpy(),
                         "records": records.to_numpy()})


def suspicious_residents(members: pd.DataFrame) -> pd.DataFrame:
    """Residents whose records conflict: dates of birth over a year apart, or ≥2 NHS / NI numbers.

    `members` is records joined to resident_id. Returns resident_id, n_records, reason.
    """
    # Grouped by integer codes of the residents that have several records: grouping a million
    # text ids is most of the work otherwise.
    codes, residents = pd.factorize(members["resident_id"])
    sizes = np.bincount(codes[codes >= 0], minlength=len(residents))
    shared = (codes >= 0) & (sizes[np.maximum(codes, 0)] > 1)
    group = codes[shared]
    findings = []
    if "date_of_birth" in members:
        dob = pd.Series(pd.to_datetime(members["date_of_birth"].to_numpy()[shared], errors="coerce")).groupby(group)
        span_days = (dob.max() - dob.min()).dt.days
        far_apart = span_days[span_days > DOB_CONFLICT_DAYS]
        findings.append("dates of birth " + (far_apart / 365.25).round(1).astype(str) + " years apart")
    for field in IDENTIFIER_FIELDS:
        if field in members:
            distinct = pd.Series(members[field].to_numpy()[shared]).groupby(group).nunique()
            distinct = distinct[distinct > 1]
            findings.append(distinct.astype(str) + f" different {field.replace('_', ' ')}s")
    found = pd.concat(findings) if findings else pd.Series(dtype=object)
    if found.empty:
        return pd.DataFrame(columns=SUSPICIOUS_COLUMNS)
    reasons = found.groupby(level=0, sort=True).agg("; ".join)
    flagged = pd.DataFrame({
        "resident_id": residents[reasons.index.to_numpy()],
        "n_records": sizes[reasons.index.to_numpy()],
        "reason": reasons.to_numpy(),
    })
    return flagged.sort_values(["n_records", "resident_id"], ascending=[False, True], ignore_index=True)[SUSPICIOUS_COLUMNS]


# Precision and recall ----------------------------------------------------------------------------
def estimated_accuracy(probabilities: pd.Series, threshold: float) -> dict:
    """Precision/recall the model expects of itself, if its probabilities are calibrated.

    Among accepted pairs (p ≥ threshold) Σ(1−p) are expected to be false matches; among all scored
    pairs Σp are expected to be true, so accepted pairs miss Σ_{p<t} p of them. Matches never scored
    (not blocked together, or below the kept probability) are invisible here.
    """
    p = probabilities.to_numpy(dtype=float)
    accepted = p >= threshold
    n_accepted = int(accepted.sum())
    expected_true_accepted = float(p[accepted].sum())
    expected_true_all = float(p.sum())
    return {
        "threshold": threshold,
        "pairs accepted": n_accepted,
        "expected false matches": n_accepted - expected_true_accepted,
        "expected missed matches": expected_true_all - expected_true_accepted,
        "estimated precision": expected_true_accepted / n_accepted if n_accepted else np.nan,
        "estimated recall": expected_true_accepted / expected_true_all if expected_true_all else np.nan,
    }


def residents_at_threshold(pairs: pd.DataFrame, n_records: int, threshold: float) -> int:
    """Residents if every pair at or above `threshold` joined its records (connected components)."""
    kept = pairs[pairs["match_probability"] >= threshold]
    left, right = kept["unique_id_l"].to_numpy(), kept["unique_id_r"].to_numpy()
    n_nodes = max(n_records, int(max(left.max(initial=-1), right.max(initial=-1))) + 1)
    graph = coo_matrix((np.ones(len(kept)), (left, right)), shape=(n_nodes, n_nodes))
    n_components, _ = connected_components(graph, directed=False)
    return int(n_components - (n_nodes - n_records))


def threshold_table(pairs: pd.DataFrame, n_records: int, run_threshold: float,
                    truth_pairs: pd.Series | None = None, n_true_pairs: int | None = None) -> pd.DataFrame:
    """What each threshold would give: pairs accepted, residents, estimated (and measured) accuracy.

    `truth_pairs` (bool per scored pair: same person?) and `n_true_pairs` (all true pairs among the
    labelled records) add measured pairwise precision and recall.
    """
    rows = []
    for threshold in sorted({*THRESHOLDS, run_threshold}):
        row = estimated_accuracy(pairs["match_probability"], threshold)
        row["residents"] = residents_at_threshold(pairs, n_records, threshold)
        if truth_pairs is not None:
            accepted = pairs["match_probability"].to_numpy() >= threshold
            true_accepted = int((truth_pairs.to_numpy() & accepted).sum())
            row["measured precision"] = true_accepted / row["pairs accepted"] if row["pairs accepted"] else np.nan
            row["measured recall"] = true_accepted / n_true_pairs if n_true_pairs else np.nan
        row["this run"] = threshold == run_threshold
        rows.append(row)
    return pd.DataFrame(rows)


def measured_accuracy(links: pd.DataFrame, labels: pd.DataFrame) -> dict:
    """Pairwise precision/recall of the residents against labelled people, from contingency counts.

    A record pair is predicted when both share a resident_id and true when both share a person_id;
    only records present in `labels` count.
    """
    labelled = links[["source", "record_id", "resident_id"]].merge(labels, on=["source", "record_id"])
    true_positive = pairs_within(labelled.groupby(["resident_id", "person_id"], sort=False).size())
    predicted = pairs_within(labelled.groupby("resident_id", sort=False).size())
    actual = pairs_within(labelled.groupby("person_id", sort=False).size())
    precision = true_positive / predicted if predicted else np.nan
    recall = true_positive / actual if actual else np.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else np.nan
    return {
        "labelled records": len(labelled),
        "records without a label": len(links) - len(labelled),
        "predicted pairs": predicted,
        "true pairs": actual,
        "correctly linked pairs": true_positive,
        "precision": precision,
        "recall": recall,
        "F1": f1,
    }


def in_same_order(links: pd.DataFrame, records: pd.DataFrame) -> bool:
    """Whether row i of `links` is row i of `records` (the order a run writes both in)."""
    return len(links) == len(records) and all(
        np.array_equal(links[key].to_numpy(), records[key].to_numpy()) for key in ("source", "record_id")
    )


def resident_members(links: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Standardised records with the resident_id each one was given."""
    if in_same_order(links, records):
        # A run's own outputs: no million-row merge, and no copy of the records' columns.
        members = records.copy(deep=False)
        members.index = pd.RangeIndex(len(members))  # as the merge gives
        members["resident_id"] = links["resident_id"].to_numpy()
        return members
    return records.merge(links[["source", "record_id", "resident_id"]], on=["source", "record_id"], how="left")


def probability_to_weight(probability: float | np.ndarray) -> float | np.ndarray:
    probability = np.clip(probability, 1e-12, 1 - 1e-12)
    return np.log2(probability / (1 - probability))

"""`link-encoded`: two encoded files -> one resident per record, from the encodings alone.

1. **Compatible or refused.** Both files must come from the same method, parameters and key
   (the key's fingerprint): filters made under two keys share bits only by chance, so linking
   them would quietly find nobody.
2. **Candidates** are the pairs of records (across the two files and within each: a borough's
   file has its own duplicates) sharing an encoded blocking key. A key held by more than
   `MAX_BLOCK` records (a very common surname code with an initial) is skipped, and counted.
3. **Dice coefficient** of the two filters, 2|A∧B| / (|A| + |B|), by popcount over 64-bit words.
4. **Threshold.** Pairs at or above `threshold` (Dice) are links. The default, `DEFAULT_THRESHOLD`,
   was measured on the two-borough benchmark (BENCHMARKS.md, "Linking encoded files"): it lies in
   the trough between the scores of matches and non-matches. Each pair's `match_probability` is
   estimated from the file pair itself: a two-component mixture fitted to the Dice scores of all
   candidates (`dice_mixture`), the share of matches among candidates scoring alike.
5. **Clustering** is `residentview.cluster.cluster_records`, the clusterer `link` uses, with the
   anti-chaining evidence the encodings still carry: two records put together by a chain of
   links (father ~ "Mr J Smith" ~ son) whose own filters are far apart (Dice under
   `APART_BELOW`) are a cannot-link pair, so the greedy merge keeps them apart as it keeps apart
   records a reviewer said are different people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from residentview.cluster import cluster_records
from residentview.errors import DataError
from residentview.pprl.encoding import EncodedRecords, filters
from residentview.resident_view.ids import RESIDENT_IDS, group_fingerprints, mint_ids

DEFAULT_THRESHOLD = 0.8
APART_BELOW = 0.6  # Dice of two records in one would-be resident below which they are two people
MAX_BLOCK = 500  # records sharing one blocking key, beyond which the key is skipped
_PER_FILE = ("key_fingerprint", "organisation", "n_records", "sources")
LINK_COLUMNS = ["organisation", "source", "record_id", "resident_id", "match_probability"]


@dataclass
class EncodedLinks:
    """`links`: one row per record of both files (LINK_COLUMNS); `pairs`: the candidate pairs
    with their Dice; `summary`: counts and settings, no values (written as pprl_summary.json)."""

    links: pd.DataFrame
    pairs: pd.DataFrame
    summary: dict = field(default_factory=dict)


def check_compatible(left: EncodedRecords, right: EncodedRecords, names: tuple[str, str] = ("left", "right")) -> None:
    """Refuse (DataError, one line) two files that cannot be linked to each other."""
    a, b = left.metadata, right.metadata
    if a.get("key_fingerprint") != b.get("key_fingerprint"):
        raise DataError(f"{names[0]} and {names[1]} were encoded under different keys (fingerprints "
                        f"{a.get('key_fingerprint')} and {b.get('key_fingerprint')}); both sides must encode with the same shared key")
    differing = sorted(k for k in set(a) | set(b) if k not in _PER_FILE and a.get(k) != b.get(k))
    if differing:
        raise DataError(f"{names[0]} and {names[1]} were encoded with different parameters ({', '.join(differing)}); "
                        "both sides must use the same residentview version of `encode`")
    if a.get("organisation") == b.get("organisation"):
        raise DataError(f"{names[0]} and {names[1]} both come from {a.get('organisation')!r}; "
                        "link-encoded links two organisations' files (give each its own config name)")


def candidate_pairs(blocks: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """unique_id_l < unique_id_r of every pair sharing a blocking key, each once; and per rule
    how many keys were skipped as too common."""
    found, skipped = [], {}
    for column in blocks.columns:
        keyed = pd.DataFrame({"unique_id": np.arange(len(blocks)), "key": blocks[column].to_numpy()}).dropna()
        sizes = keyed.groupby("key")["unique_id"].transform("size")
        skipped[column.removeprefix("block_")] = int(keyed.loc[sizes > MAX_BLOCK, "key"].nunique())
        keyed = keyed[(sizes > 1) & (sizes <= MAX_BLOCK)]
        joined = keyed.merge(keyed, on="key", suffixes=("_l", "_r"))
        found.append(joined.loc[joined["unique_id_l"] < joined["unique_id_r"], ["unique_id_l", "unique_id_r"]])
    pairs = pd.concat(found, ignore_index=True).drop_duplicates(ignore_index=True) if found else \
        pd.DataFrame({"unique_id_l": [], "unique_id_r": []}, dtype=np.int64)
    return pairs.astype(np.int64), skipped


def dice(words: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
    """Dice coefficient of the filters at rows `left` and `right` (uint64 words), in chunks."""
    ones = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), chunk):
        lo, hi = left[start:start + chunk], right[start:start + chunk]
        shared = np.bitwise_count(words[lo] & words[hi]).sum(axis=1, dtype=np.int64)
        total = ones[lo] + ones[hi]
        out[start:start + chunk] = np.divide(2 * shared, total, out=np.zeros(len(lo)), where=total > 0)
    return out


def dice_mixture(scores: np.ndarray, iterations: int = 200) -> np.ndarray:
    """P(match | Dice) for each score: a two-component beta mixture fitted by EM (method of
    moments in the M step), started with the matches above DEFAULT_THRESHOLD. Candidates are
    mostly non-matches that shared a blocking key by chance; their Dice sits well below that of
    records of one person."""
    x = np.clip(scores, 1e-4, 1 - 1e-4)
    if len(x) < 10:
        return (scores >= DEFAULT_THRESHOLD).astype(float)
    responsibility = (x >= DEFAULT_THRESHOLD).astype(float)
    if responsibility.all() or not responsibility.any():
        return responsibility
    from scipy.stats import beta

    for _ in range(iterations):
        densities = []
        for weights in (responsibility, 1 - responsibility):
            total = weights.sum()
            mean = (weights * x).sum() / total
            var = max((weights * (x - mean) ** 2).sum() / total, 1e-6)
            common = max(mean * (1 - mean) / var - 1, 1e-3)
            densities.append(total / len(x) * beta.pdf(x, mean * common, (1 - mean) * common))
        match, other = densities
        updated = match / np.maximum(match + other, 1e-300)
        if np.abs(updated - responsibility).max() < 1e-6:
            responsibility = updated
            break
        responsibility = updated
    # a mixture's tails can cross: never let a higher Dice mean a lower probability
    order = np.argsort(x, kind="stable")
    responsibility[order] = np.maximum.accumulate(responsibility[order])
    return responsibility


def similarity(encodings: dict[str, tuple[np.ndarray, np.ndarray]], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The score of each pair: the mean Dice coefficient of the encodings both records hold;
    NaN when they hold none in common."""
    total, count = np.zeros(len(left)), np.zeros(len(left))
    for words, held in encodings.values():
        both = held[left] & held[right]
        total += np.where(both, dice(words, left, right), 0.0)
        count += both
    return np.divide(total, count, out=np.full(len(left), np.nan), where=count > 0)


def _apart(encodings: dict, candidates: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Pairs of records joined by a chain of links whose own filters are far apart (Dice under
    APART_BELOW): a cannot-link pair for the clusterer."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = candidates[candidates["dice"] >= threshold]
    n = len(next(iter(encodings.values()))[0])
    graph = coo_matrix((np.ones(len(links), np.int8), (links["unique_id_l"], links["unique_id_r"])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members = pd.DataFrame({"unique_id": np.arange(n), "component": component})
    size = members.groupby("component")["unique_id"].transform("size")
    members = members[size > 2]  # a pair alone cannot chain
    within = members.merge(members, on="component", suffixes=("_l", "_r"))
    within = within[within["unique_id_l"] < within["unique_id_r"]]
    left, right = within["unique_id_l"].to_numpy(np.int64), within["unique_id_r"].to_numpy(np.int64)
    score = similarity(encodings, left, right)
    far = ~(score >= APART_BELOW)  # no encoding in common: nothing says they are one person
    return pd.DataFrame({"unique_id_l": left[far], "unique_id_r": right[far]})


def link_encoded(left: EncodedRecords, right: EncodedRecords, threshold: float = DEFAULT_THRESHOLD,
                 names: tuple[str, str] = ("left", "right")) -> EncodedLinks:
    """Link two organisations' encoded files: one row per record of either, with its resident."""
    if not 0 < threshold <= 1:
        raise DataError(f"threshold {threshold}: expected a Dice coefficient above 0 and at most 1")
    check_compatible(left, right, names)
    records = pd.concat([
        left.frame.assign(organisation=left.metadata["organisation"]),
        right.frame.assign(organisation=right.metadata["organisation"]),
    ], ignore_index=True)
    encodings = {}
    for encoding in left.metadata["encodings"]:
        (words_l, held_l), (words_r, held_r) = filters(left, encoding), filters(right, encoding)
        encodings[encoding] = (np.concatenate([words_l, words_r]), np.concatenate([held_l, held_r]))
    blocks = records[[c for c in records.columns if c.startswith("block_")]]
    candidates, skipped = candidate_pairs(blocks)
    l, r = candidates["unique_id_l"].to_numpy(), candidates["unique_id_r"].to_numpy()
    candidates["dice"] = similarity(encodings, l, r)
    candidates = candidates[candidates["dice"].notna()].reset_index(drop=True)
    candidates["match_probability"] = dice_mixture(candidates["dice"].to_numpy())
    candidates["match_weight"] = candidates["dice"]  # the clusterer takes the strongest first

    # Link on the Dice threshold: the probability is reported, not used to decide, because a
    # mixture fitted to one file pair should not move which pairs link.
    scored = candidates.assign(match_probability=np.where(candidates["dice"] >= threshold, 1.0, 0.0))
    apart = _apart(encodings, candidates, threshold)
    clustered = cluster_records(pd.DataFrame({"unique_id": np.arange(len(records))}), scored, 0.5, cannot_link=apart)
    member = records["organisation"] + "\x1f" + records["source"] + "\x1f" + records["record_id"]
    fingerprints = group_fingerprints(pd.Series(clustered["cluster_key"].to_numpy()), member, RESIDENT_IDS)
    ids = mint_ids(fingerprints, RESIDENT_IDS, taken=[])
    probability = _membership(candidates, clustered["cluster_key"].to_numpy(), threshold)
    links = pd.DataFrame({
        "organisation": records["organisation"].to_numpy(), "source": records["source"].to_numpy(),
        "record_id": records["record_id"].to_numpy(),
        "resident_id": ids.reindex(clustered["cluster_key"].to_numpy()).to_numpy(),
        "match_probability": probability,
    })
    crossing = links.groupby("resident_id")["organisation"].nunique()
    summary = {
        "threshold": threshold, "records": {names[0]: len(left.frame), names[1]: len(right.frame)},
        "organisations": [left.metadata["organisation"], right.metadata["organisation"]],
        "key_fingerprint": left.metadata["key_fingerprint"], "method": left.metadata["method"],
        "candidate_pairs": int(len(candidates)), "linked_pairs": int((candidates["dice"] >= threshold).sum()),
        "apart_pairs": int(len(apart)), "blocking_keys_skipped_as_too_common": skipped,
        "residents": int(links["resident_id"].nunique()),
        "residents_in_both": int((crossing > 1).sum()),
        "dice_histogram": _histogram(candidates["dice"].to_numpy()),
    }
    return EncodedLinks(links, candidates, summary)


def _membership(candidates: pd.DataFrame, key: np.ndarray, threshold: float) -> np.ndarray:
    """Each record's strongest within-resident pair probability (1.0 for a resident of one)."""
    linked = candidates[candidates["dice"] >= threshold]
    same = key[linked["unique_id_l"].to_numpy()] == key[linked["unique_id_r"].to_numpy()]
    linked = linked[same]
    best = pd.concat([
        linked[["unique_id_l", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
        linked[["unique_id_r", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
    ]).groupby("unique_id")["p"].max()
    return best.reindex(np.arange(len(key))).fillna(1.0).to_numpy(float)


def _histogram(scores: np.ndarray) -> dict[str, int]:
    """Candidate pairs per Dice band of 0.05: where the trough between the two humps lies."""
    edges = np.round(np.arange(0, 1.0001, 0.05), 2)
    counts, _ = np.histogram(scores, bins=edges)
    return {f"{lo:.2f}-{hi:.2f}": int(n) for lo, hi, n in zip(edges[:-1], edges[1:], counts)}


def write_links(result: EncodedLinks, folder: Path) -> Path:
    """resident_links.parquet and pprl_summary.json, all at once or not at all (CONTRACT §3)."""
    from residentview.outputs import folder_lock, staged_output

    from residentview.audit import append_entries, os_user, versions
    from residentview.review.store import file_digest

    folder = Path(folder)
    with folder_lock(folder, "link-encoded"), staged_output(folder) as staging:
        result.links.to_parquet(staging / "resident_links.parquet", index=False)
        (staging / "pprl_summary.json").write_text(json.dumps(result.summary, indent=2), encoding="utf-8")
        # Who linked which organisations' encodings under which key (its fingerprint), and what
        # came out: counts and the file's hash, no record ids.
        summary = result.summary
        append_entries(folder, staging, [{
            "event": "link-encoded", "user": os_user(), "versions": versions(),
            "organisations": summary["organisations"], "key_fingerprint": summary["key_fingerprint"],
            "method": summary["method"], "threshold": summary["threshold"], "records": summary["records"],
            "residents": summary["residents"], "residents_in_both": summary["residents_in_both"],
            "file": "resident_links.parquet", "sha256": file_digest(staging / "resident_links.parquet"),
        }])
    return folder

"""Re-cluster only the residents an update touches.

A resident is touched when one of its records changed or left, when a new or changed record is
tied to it (by a pair at or above the threshold, or by a pair an initial-only record could
attach by), or when a reviewer's decision names one of its records. Everything such a resident
is joined to by confident pairs, and every previous resident sharing a record with those, is
re-clustered with it, until the set closes: what is left out is joined to it by nothing
clustering would follow, so clustering all the records again groups it as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from residentview.cluster import ATTACH_FLOOR, cluster_records, clustering_context
from residentview.review.in_force import DecisionsInForce

log = logging.getLogger(__name__)


@dataclass
class Reclustered:
    clusters: pd.DataFrame  # unique_id, cluster_key, match_probability: every record
    touched_records: int
    touched_residents: int  # previous residents re-clustered
    measured: dict  # what clustering measured over all the records (adult sources, kept references)
    reclustered: np.ndarray  # per record, whether it was clustered again


def _components(n_ids: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n_ids, n_ids))
    return connected_components(graph, directed=False)[1]


def _decided_ids(in_force: DecisionsInForce) -> np.ndarray:
    frames = [f for f in (in_force.must_link, in_force.cannot_link) if f is not None and len(f)]
    if not frames:
        return np.array([], dtype=np.int64)
    return np.unique(np.concatenate([f[c].to_numpy(np.int64) for f in frames for c in ("unique_id_l", "unique_id_r")]))


def _initial_only(records: pd.DataFrame) -> np.ndarray:
    """Records that give only an initial and no date of birth: those `_attach_initials` may join
    to a resident by a pair below the threshold."""
    if "first_name_key" not in records:
        return np.zeros(len(records), dtype=bool)
    initial = records["first_name_key"].str.len().eq(1).to_numpy()
    if "date_of_birth" in records:
        initial &= records["date_of_birth"].isna().to_numpy()
    return initial


def touched(records: pd.DataFrame, previous_resident: np.ndarray, seeds: np.ndarray, pairs: pd.DataFrame,
            threshold: float, in_force: DecisionsInForce) -> np.ndarray:
    """A mask over `records` (unique_ids 0..n-1, in order) of the records to re-cluster: the
    `seeds` mask, closed under confident pairs, must-links, previous residents
    (`previous_resident`: a code per record, -1 for a record the previous run did not have) and
    the pairs by which an initial-only record may attach to a resident."""
    n = len(records)
    weights = pairs["match_probability"].to_numpy()
    pl, pr = pairs["unique_id_l"].to_numpy(np.int64), pairs["unique_id_r"].to_numpy(np.int64)
    confident = weights >= threshold
    left, right = pl[confident], pr[confident]
    if in_force.must_link is not None and len(in_force.must_link):
        left = np.r_[left, in_force.must_link["unique_id_l"].to_numpy(np.int64)]
        right = np.r_[right, in_force.must_link["unique_id_r"].to_numpy(np.int64)]
    # Previous residents join their records too: one graph, closed in one pass.
    had = np.flatnonzero(previous_resident >= 0)
    n_nodes = n + (int(previous_resident.max()) + 1 if len(had) else 0)
    component = _components(n_nodes, np.r_[left, had], np.r_[right, n + previous_resident[had]])[:n]
    initial = _initial_only(records)
    band = (weights >= ATTACH_FLOOR) & ~confident
    band &= initial[pl] | initial[pr]
    bl, br = pl[band], pr[band]
    mask = seeds
    while True:
        closed = np.isin(component, np.unique(component[mask]))
        grown = closed.copy()
        grown[bl[closed[br]]] = True
        grown[br[closed[bl]]] = True
        if np.array_equal(grown, closed):
            return closed
        mask = grown


def recluster(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float, in_force: DecisionsInForce,
              previous_resident: np.ndarray, previous_probability: np.ndarray, seeds: np.ndarray) -> Reclustered:
    """Clusters for every record of `records` (unique_ids 0..n-1 in order): the touched records
    clustered afresh, as `link` clusters, with what clustering learns from all the records; the
    others kept in their previous residents with their previous confidence of membership."""
    ids = records["unique_id"].to_numpy(np.int64)
    assert (ids == np.arange(len(ids))).all(), "records must be in unique_id order"
    mask = touched(records, previous_resident, seeds | np.isin(ids, _decided_ids(in_force)), pairs, threshold, in_force)
    rows = np.flatnonzero(mask)
    context, measured, references = clustering_context(records, pairs, threshold, in_force.must_link)

    inside = mask[pairs["unique_id_l"].to_numpy(np.int64)] & mask[pairs["unique_id_r"].to_numpy(np.int64)]
    decided = {}
    for name in ("must_link", "cannot_link"):
        frame = getattr(in_force, name)
        if frame is not None and len(frame):
            frame = frame[mask[frame["unique_id_l"].to_numpy(np.int64)] & mask[frame["unique_id_r"].to_numpy(np.int64)]]
        decided[name] = frame
    part = cluster_records(records.iloc[rows], pairs[inside], threshold, decided["must_link"], decided["cannot_link"],
                           context=(context.take(rows), measured, references))

    key = np.empty(len(ids), dtype=np.int64)
    probability = np.empty(len(ids), dtype=float)
    key[rows] = part["cluster_key"].to_numpy(np.int64)
    probability[rows] = part["match_probability"].to_numpy(float)
    kept = np.flatnonzero(~mask)
    if len(kept):
        # The lowest member of each previous resident, as cluster keys are.
        groups = previous_resident[kept]
        if (groups < 0).any():
            raise RuntimeError("a record new to this update was left out of re-clustering")
        lowest = pd.Series(ids[kept]).groupby(groups).transform("min").to_numpy(np.int64)
        key[kept] = lowest
        probability[kept] = previous_probability[kept]
    touched_residents = int(len(np.unique(previous_resident[rows][previous_resident[rows] >= 0])))
    log.info("update: re-clustered %d records of %d previous residents", len(rows), touched_residents)
    clusters = pd.DataFrame({"unique_id": ids, "cluster_key": key, "match_probability": probability})
    return Reclustered(clusters, int(len(rows)), touched_residents,
                       {"adult_sources": measured, "kept_references": references}, mask)

"""Stage 4 — cluster: pairwise scores -> one resident per record (placeholder: connected components)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def cluster_records(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    n = len(records)
    kept = pairs[pairs["match_probability"] >= threshold]
    graph = coo_matrix((np.ones(len(kept)), (kept["unique_id_l"].to_numpy(), kept["unique_id_r"].to_numpy())), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    ids = records["unique_id"].to_numpy()
    key = pd.Series(ids).groupby(labels).transform("min").to_numpy()
    return pd.DataFrame({"unique_id": ids, "cluster_key": key, "match_probability": 1.0})

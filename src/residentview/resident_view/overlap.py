"""Service overlap: how many residents each combination of sources knows.

The joined-up view's first question from a service: of the people we know, who else knows them?
`service_overlap` counts residents by the exact set of sources holding their records (the
`service_overlap` table of resident_view.duckdb, the bars of the report's UpSet chart);
`pairwise_overlap` counts, for each two sources, the residents both know (the report's matrix).
Organisations and 'The Occupier' are not residents of anybody's service and are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SEPARATOR = "+"


def _people(residents: pd.DataFrame) -> pd.DataFrame:
    if "is_person" in residents:
        residents = residents[residents["is_person"].astype("boolean").fillna(True).to_numpy(bool)]
    return residents


def combinations(residents: pd.DataFrame) -> pd.Series:
    """Each resident's sources as one text, sorted and joined: 'council_tax+electoral_register'.

    Joined by Arrow first and sorted once per distinct combination: a Python function per
    resident took most of a second at a million."""
    lists = pa.array(residents["sources"].to_numpy(dtype=object), type=pa.list_(pa.string()))
    codes, distinct = pd.factorize(pc.binary_join(lists, "\x1f").to_numpy(zero_copy_only=False))
    labels = np.array([SEPARATOR.join(sorted(d.split("\x1f"))) if d else "" for d in distinct] + [""], dtype=object)
    return pd.Series(labels[codes], index=residents.index, dtype=object)


def service_overlap(residents: pd.DataFrame) -> pd.DataFrame:
    """One row per combination of sources: sources ('a+b'), n_sources, residents; largest first."""
    people = _people(residents)
    counts = combinations(people).value_counts()
    counts = counts[counts.index != ""]
    frame = pd.DataFrame({"sources": counts.index.astype(str), "residents": counts.to_numpy(dtype=np.int64)})
    frame.insert(1, "n_sources", frame["sources"].str.count(r"\+").astype(np.int64) + 1)
    return frame.sort_values(["residents", "sources"], ascending=[False, True], kind="stable").reset_index(drop=True)


def pairwise_overlap(overlap: pd.DataFrame) -> pd.DataFrame:
    """Sources × sources: residents known to both (the diagonal: to the source at all), from
    `service_overlap`'s counts."""
    names = sorted({s for combo in overlap["sources"] for s in combo.split(SEPARATOR)})
    grid = pd.DataFrame(0, index=names, columns=names, dtype=np.int64)
    for combo, n in zip(overlap["sources"], overlap["residents"]):
        held = combo.split(SEPARATOR)
        grid.loc[held, held] += int(n)
    return grid


def services_per_resident(overlap: pd.DataFrame) -> pd.DataFrame:
    """How many residents n sources know, for n = 1, 2, …, from `service_overlap`'s counts."""
    return overlap.groupby("n_sources", as_index=False)["residents"].sum()

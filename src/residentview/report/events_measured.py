"""Life events measured against a truth: of the true events, how many were reported (recall), and
of the reported, how many are true (precision), per kind of event.

A resident stands for the person most of its records belong to (`truth`: source, record_id,
person_id); a resident that left is looked up in the links of the run before (`links_before`).
An event is the pair (person, kind): one person reported twice, or under two residents, counts
once. Used by the report (the demo's extracts come with their truth) and by
benchmarks/events.py.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

KINDS = ("moved", "died", "name_changed", "turned_18", "new_resident", "left")


def person_of_resident(links: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """resident_id -> the person most of its records belong to."""
    keys = ["source", "record_id"]
    joined = links[[*keys, "resident_id"]].astype({"record_id": str}).merge(
        truth[[*keys, "person_id"]].astype({"record_id": str}), on=keys, how="inner")
    counts = joined.groupby(["resident_id", "person_id"]).size().rename("n").reset_index()
    best = counts.sort_values(["resident_id", "n", "person_id"], ascending=[True, False, True])
    return best.drop_duplicates("resident_id").set_index("resident_id")["person_id"].astype(str)


def measure_events(events: pd.DataFrame, links: pd.DataFrame, truth: pd.DataFrame, events_truth: pd.DataFrame,
                   links_before: Optional[pd.DataFrame] = None, truth_before: Optional[pd.DataFrame] = None,
                   kinds=KINDS) -> pd.DataFrame:
    """One row per kind of event: reported, true, reported_true, precision, recall; and, when
    the truth says which events the extracts show (`shown`, from `synthetic.with_shown`): shown,
    the true events the data shows, and recall_shown, the share of them reported — what a
    linkage can be asked for, since no method reports a move no system has heard of.

    `events`: the reported events (one run's); `events_truth`: person_id, event[, shown]."""
    person = person_of_resident(links, truth)
    if links_before is not None:
        before = person_of_resident(links_before, truth_before if truth_before is not None else truth)
        person = pd.concat([person, before[~before.index.isin(person.index)]])
    reported = pd.DataFrame({"person_id": events["resident_id"].astype(str).map(person), "event": events["event"]})
    has_shown = "shown" in events_truth
    true = events_truth[["person_id", "event", *(["shown"] if has_shown else [])]].astype({"person_id": str})
    true = true.drop_duplicates(["person_id", "event"])
    rows = []
    for kind in kinds:
        said = reported[reported["event"] == kind]
        found = set(said["person_id"].dropna())
        actual = set(true.loc[true["event"] == kind, "person_id"])
        if not len(said) and not actual:
            continue
        hits = len(found & actual)
        # Unmapped residents (no record in the truth) count as reported and wrong.
        n_reported = len(found) + int(said["person_id"].isna().sum())
        row = {"event": kind, "reported": n_reported, "true": len(actual), "reported_true": hits,
               "precision": hits / n_reported if n_reported else float("nan"),
               "recall": hits / len(actual) if actual else float("nan")}
        if has_shown:
            shown = set(true.loc[(true["event"] == kind) & true["shown"].astype(bool), "person_id"])
            row |= {"shown": len(shown), "recall_shown": len(found & shown) / len(shown) if shown else float("nan")}
        rows.append(row)
    columns = ["event", "reported", "true", "reported_true", "precision", "recall"]
    return pd.DataFrame(rows, columns=columns + (["shown", "recall_shown"] if has_shown else []))

"""The queue on the page: the next pair of review_queue.csv nobody has decided, both records side
by side, and the model's evidence for the pair as a waterfall."""

from __future__ import annotations

from typing import Optional

import pandas as pd

from residentview.review.explain import _exact_tf_weights, waterfalls
from residentview.review.web.changes import History
from residentview.review.web.plain import side_by_side, source_label, waterfall_bars
from residentview.review.web.problems import NotFound
from residentview.review.web.snapshot import Snapshot


def queue_row(snapshot: Snapshot, review_id: int) -> tuple[pd.Series, tuple]:
    """The queue's row `review_id` and its pair as the store names it."""
    found = snapshot.queue.index[snapshot.queue["review_id"] == int(review_id)]
    if not len(found):
        raise NotFound(f"no pair {review_id} in this run's review queue (it holds {len(snapshot.queue)}); "
                       "reload the page for the next pair")
    return snapshot.queue.loc[found[0]], snapshot.queue_pairs[found[0]]


def progress(snapshot: Snapshot, past: History, skipped: set[int]) -> dict:
    decided = sum(past.current(pair) is not None for pair in snapshot.queue_pairs)
    skipped_open = sum(1 for rid, pair in zip(snapshot.queue["review_id"], snapshot.queue_pairs)
                       if int(rid) in skipped and past.current(pair) is None)
    total = len(snapshot.queue_pairs)
    return {"total": total, "decided": decided, "skipped": skipped_open, "left": total - decided - skipped_open}


def next_review_id(snapshot: Snapshot, past: History, skipped: set[int]) -> Optional[int]:
    """The first pair of the queue with no decision in force that this reviewer has not skipped."""
    for rid, pair in zip(snapshot.queue["review_id"], snapshot.queue_pairs):
        if int(rid) not in skipped and past.current(pair) is None:
            return int(rid)
    return None


def pair_waterfall(snapshot: Snapshot, uid_l: int, uid_r: int) -> Optional[dict]:
    """The pair's evidence as waterfall bars (explain's steps); None when the model cannot be read
    or the pair was not scored."""
    levels, prior, comparisons, _ = snapshot.model()
    if levels is None:
        return None
    low, high = min(uid_l, uid_r), max(uid_l, uid_r)
    pairs = snapshot.run.pairs_touching([low, high])
    pairs = pairs[(pairs["unique_id_l"] == low) & (pairs["unique_id_r"] == high)].reset_index(drop=True)
    if not len(pairs):
        return None
    steps = waterfalls(pairs, levels, prior, comparisons, _exact_tf_weights(snapshot.folder, pairs, comparisons))[0]
    return waterfall_bars(steps, float(pairs["match_weight"].iloc[0]))


def _record(row: pd.Series, side: str) -> dict:
    source = str(row[f"source_{side}"])
    return {"key": f"{source}:{row[f'record_id_{side}']}", "source": source, "source_label": source_label(source),
            "record_id": str(row[f"record_id_{side}"]), "resident_id": str(row.get(f"resident_id_{side}", "")) or None}


def pair_card(snapshot: Snapshot, review_id: int, blind: bool) -> dict:
    """What the page shows of a queued pair. Blind: nothing of the model's view of it — no score,
    no waterfall (its bars add up to the score) and not whether this run put the two together."""
    row, _ = queue_row(snapshot, review_id)
    values = {side: {f: row.get(f"{f}_{side}") for f in snapshot.fields} for side in ("l", "r")}
    fields, absent = side_by_side(values["l"], values["r"], snapshot.fields)
    card = {"review_id": int(review_id), "left": _record(row, "l"), "right": _record(row, "r"),
            "fields": fields, "absent": absent, "reason": row.get("reason") or None, "blind": blind}
    if blind:
        for side in ("left", "right"):
            card[side]["resident_id"] = None
        return card
    card["match_probability"] = float(row["match_probability"]) if row.get("match_probability") else None
    card["match_weight"] = float(row["match_weight"]) if row.get("match_weight") else None
    card["same_resident"] = card["left"]["resident_id"] == card["right"]["resident_id"]
    card["threshold"] = snapshot.threshold
    card["waterfall"] = pair_waterfall(snapshot, int(row["unique_id_l"]), int(row["unique_id_r"]))
    return card

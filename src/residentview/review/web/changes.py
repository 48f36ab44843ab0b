"""What changed: the decisions store read as the page's actions, and undo.

An action is what one click stored: one decision from the queue, the decisions of a split, the
one of a merge (rows sharing their origin and time). The store never deletes a decision, so undo
stores new ones: on each pair of the action undone, what was in force before it — the previous
decision, or `unsure` where there was none (unsure has no effect on linking). An undo's origin
names the decisions it undoes; read back, that tells which pairs have no decision again (they
return to the queue) and which action a reviewer may undo next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from residentview.review.store import PAIR_COLUMNS
from residentview.review.web.problems import Conflict

PAGE_ORIGIN = "review page"
BLIND_ORIGIN = "review page (blind)"  # decided with the model's score hidden
_UNDO = re.compile(r"^review page: undo of decisions? ([\d, ]+)$")
CHANGES_SHOWN = 200

Pair = tuple  # (source_l, record_id_l, source_r, record_id_r), records in the store's order


def undo_origin(ids: list[int]) -> str:
    return f"review page: undo of decision{'s' if len(ids) > 1 else ''} {', '.join(str(i) for i in ids)}"


def undone_by(origin) -> list[int]:
    """The decision ids an undo's origin names (none for any other origin)."""
    found = _UNDO.match(str(origin or ""))
    return [int(i) for i in re.findall(r"\d+", found.group(1))] if found else []


def pair_of(row) -> Pair:
    return tuple(str(getattr(row, c)) for c in PAIR_COLUMNS)


def pair_name(pair: Pair) -> str:
    return f"{pair[0]}:{pair[1]} / {pair[2]}:{pair[3]}"


@dataclass
class History:
    """Each pair's decisions in the order made, each with the decision in force after it once
    undos are read as restoring what came before (None: no decision)."""

    states: dict  # Pair -> [(decision_id, decision in force after it or None)]
    undone: set  # decision ids an undo has undone

    def current(self, pair: Pair) -> Optional[str]:
        states = self.states.get(pair)
        return states[-1][1] if states else None

    def before(self, pair: Pair, decision_id: int) -> Optional[str]:
        earlier = [state for i, state in self.states.get(pair, []) if i < decision_id]
        return earlier[-1] if earlier else None


def history(store: pd.DataFrame) -> History:
    states: dict = {}
    undone: set = set()
    for row in store.sort_values("decision_id", kind="stable").itertuples(index=False):
        pair, decision_id = pair_of(row), int(row.decision_id)
        seen = states.setdefault(pair, [])
        targets = [i for i in undone_by(row.origin) if any(i == d for d, _ in seen)]
        if targets:
            undone.update(targets)
            earlier = [state for i, state in seen if i < targets[0]]
            state = earlier[-1] if earlier else None
        else:
            state = row.decision
        seen.append((decision_id, state))
    return History(states, undone)


@dataclass
class Action:
    ids: list[int]
    origin: str
    reviewer: Optional[str]
    decided_at: pd.Timestamp
    rows: pd.DataFrame

    @property
    def is_undo(self) -> bool:
        return bool(undone_by(self.origin))

    @property
    def from_page(self) -> bool:
        return self.origin in (PAGE_ORIGIN, BLIND_ORIGIN)

    def describe(self) -> str:
        words = self.rows["decision"].value_counts()
        what = ", ".join(f"{n} {word}" for word, n in words.items())
        if len(self.rows) == 1:
            what = f"{self.rows['decision'].iloc[0]} {pair_name(pair_of(next(self.rows.itertuples(index=False))))}"
        return f"decision{'s' if len(self.ids) > 1 else ''} {', '.join(map(str, self.ids))}: {what}"


def actions(store: pd.DataFrame) -> list[Action]:
    """The store's decisions grouped by the click (or file) that made them, newest first."""
    if not len(store):
        return []
    keyed = store.assign(_origin=store["origin"].fillna(""), _at=pd.to_datetime(store["decided_at"], utc=True))
    out = []
    for (origin, at), rows in keyed.groupby(["_origin", "_at"], sort=False, dropna=False):
        rows = rows.sort_values("decision_id").drop(columns=["_origin", "_at"])
        reviewer = rows["reviewer"].dropna()
        out.append(Action([int(i) for i in rows["decision_id"]], origin, reviewer.iloc[0] if len(reviewer) else None,
                          at, rows))
    return sorted(out, key=lambda a: a.ids[-1], reverse=True)


def last_undoable(store: pd.DataFrame, reviewer: str) -> Optional[Action]:
    """The reviewer's latest action on this page that is not undone yet (undos are not undone:
    undoing again goes one action further back)."""
    undone = history(store).undone
    for action in actions(store):
        if action.from_page and action.reviewer == reviewer and not set(action.ids) <= undone:
            return action
    return None


def undo_rows(store: pd.DataFrame, action: Action, reviewer: str) -> pd.DataFrame:
    """The decisions that undo `action`: on each of its pairs, what was in force before it (unsure
    where nothing was). Conflict when a pair was decided again since, other than by actions
    undone since: undoing would overrule that later decision."""
    past = history(store)
    later = store[(store["decision_id"] > action.ids[-1]) & ~store["decision_id"].isin(past.undone)]
    later = later[[not undone_by(o) for o in later["origin"]]]
    pairs = {pair_of(row) for row in action.rows.itertuples(index=False)}
    for row in later.itertuples(index=False):
        if pair_of(row) in pairs:
            raise Conflict(f"{pair_name(pair_of(row))} was decided again since ({row.decision}, decision "
                           f"{row.decision_id} by {row.reviewer or 'no reviewer named'}); undoing would overrule "
                           "it, so nothing was undone — decide that pair again on the resident page instead")
    rows = []
    for row in action.rows.itertuples(index=False):
        pair = pair_of(row)
        restored = past.before(pair, int(row.decision_id))
        rows.append({**dict(zip(PAIR_COLUMNS, pair)), "decision": restored or "unsure", "reviewer": reviewer,
                     "note": f"undoes decision {row.decision_id}"
                             + ("" if restored else " (there was no decision before: unsure)")})
    return pd.DataFrame(rows)


def decided_since(store: pd.DataFrame, pairs: list[Pair], version: int) -> None:
    """Conflict when one of `pairs` was decided after the store was at `version` (its highest
    decision_id then): someone else decided it while this page showed it."""
    if not len(store):
        return
    wanted = set(pairs)
    newer = store[store["decision_id"] > version]
    for row in newer.itertuples(index=False):
        if pair_of(row) in wanted:
            when = pd.Timestamp(row.decided_at).strftime("%H:%M") if pd.notna(row.decided_at) else "a moment ago"
            raise Conflict(f"{pair_name(pair_of(row))} was decided meanwhile by {row.reviewer or 'someone'} "
                           f"({row.decision}, at {when} UTC, decision {row.decision_id}); nothing was recorded")


def store_version(store: pd.DataFrame) -> int:
    return int(store["decision_id"].max()) if len(store) else 0


def changes_list(store: pd.DataFrame, limit: int = CHANGES_SHOWN) -> list[dict]:
    """The latest decisions, newest first, as the page lists them (notes included: it shows
    personal data)."""
    undone = history(store).undone
    newest = store.sort_values("decision_id", ascending=False).head(limit)
    return [{
        "decision_id": int(row.decision_id), "decision": row.decision, "pair": pair_name(pair_of(row)),
        "left": f"{row.source_l}:{row.record_id_l}", "right": f"{row.source_r}:{row.record_id_r}",
        "reviewer": row.reviewer if pd.notna(row.reviewer) else None,
        "note": row.note if pd.notna(row.note) else None,
        "decided_at": pd.Timestamp(row.decided_at).isoformat() if pd.notna(row.decided_at) else None,
        "origin": row.origin if pd.notna(row.origin) else None,
        "undone": int(row.decision_id) in undone,
    } for row in newest.itertuples(index=False)]

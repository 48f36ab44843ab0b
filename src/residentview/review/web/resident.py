"""A resident on the page: finding one, its records, households, addresses and edges (from
`explain`), and the decisions that split a record out of it or merge it with another resident."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.review.explain import Pair, explain, resolve_key
from residentview.review.web.plain import field_label, plain_value, source_label, waterfall_bars
from residentview.review.web.problems import NotFound, PageProblem
from residentview.review.web.snapshot import Snapshot

PAIRS_SHOWN = 50  # of each kind, strongest first
NAME_MATCHES_SHOWN = 20
NAME_COLUMNS = ("first_name", "middle_names", "last_name", "previous_last_name")
TAKES_EFFECT = ("It takes effect at the next `residentview link` (or `update`) into this folder; until then "
                "this page shows residents as the last run left them.")


def _message(exc: DataError, folder: Path) -> str:
    """A DataError's message without the folder it starts with: the page is about one folder."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(str(folder)) and ": " in text else text


def find(snapshot: Snapshot, query: str, by_name: bool) -> dict:
    """{"resident_id"} for a resident id or SOURCE:RECORD_ID; with `by_name`, {"matches"}: the
    residents with a record whose names hold every word of `query`."""
    query = (query or "").strip()
    if not query:
        raise PageProblem("type a resident id or SOURCE:RECORD_ID" + (", or a name" if by_name else ""))
    if by_name:
        return {"matches": _by_name(snapshot, query)}
    try:
        resident_id, record_key, _ = resolve_key(snapshot.run, query)
    except DataError as exc:
        raise NotFound(f"{_message(exc, snapshot.folder)}; to look for a name, turn on \"Search by name\"") from None
    return {"resident_id": resident_id, "record": record_key}


def _by_name(snapshot: Snapshot, query: str) -> list[dict]:
    columns = [c for c in NAME_COLUMNS if c in snapshot.run.record_columns]
    names = pd.read_parquet(snapshot.folder / "records.parquet", columns=["unique_id", *columns])
    full = names[columns].fillna("").astype(str).agg(" ".join, axis=1).str.upper()
    hit = np.ones(len(names), dtype=bool)
    for word in query.upper().split():
        hit &= full.str.contains(word, regex=False).to_numpy()
    found = snapshot.run.records.set_index("unique_id").loc[names.loc[hit, "unique_id"], ["resident_id", "key"]]
    out = []
    for resident_id, group in found.groupby("resident_id", sort=False):
        if len(out) == NAME_MATCHES_SHOWN:
            break
        first = snapshot.values(group.index[:1])[int(group.index[0])]
        name = " ".join(str(first[c]) for c in ("first_name", "middle_names", "last_name") if first.get(c))
        out.append({"resident_id": resident_id, "name": name,
                    "date_of_birth": plain_value("date_of_birth", first.get("date_of_birth")),
                    "n_records": int((snapshot.run.records["resident_id"] == resident_id).sum())})
    return out


def _members(snapshot: Snapshot, resident_id: str) -> pd.DataFrame:
    members = snapshot.members(resident_id)
    if not len(members):
        raise NotFound(f"no resident '{resident_id}' in this run")
    return members


def _filtered(path: Path, column: str, values: list[str]) -> Optional[pd.DataFrame]:
    if not path.is_file() or not values:
        return None
    try:
        return pq.read_table(path, filters=[(column, "in", values)]).to_pandas()
    except Exception:
        return None  # a file of an older or newer layout: the page shows what it can


def _households(snapshot: Snapshot, resident_id: str, records: pd.DataFrame) -> list[dict]:
    links = _filtered(snapshot.folder / "resident_links.parquet", "resident_id", [resident_id])
    if links is None or "household_id" not in links:
        return []
    ids = [h for h in links["household_id"].dropna().astype(str).unique()]
    homes = _filtered(snapshot.folder / "households.parquet", "household_id", ids)
    if homes is None:
        return [{"household_id": h} for h in ids]
    out = []
    for row in homes.to_dict("records"):
        others = [str(r) for r in (row.get("resident_ids") if row.get("resident_ids") is not None else []) if str(r) != resident_id]
        out.append({"household_id": row["household_id"], "address": plain_value("address", row.get("address")),
                    "postcode": plain_value("postcode", row.get("postcode")), "size": int(row.get("size") or 0),
                    "other_residents": others})
    return out


def _addresses(snapshot: Snapshot, resident_id: str, values: dict[int, dict], members: pd.DataFrame) -> list[dict]:
    """Where the resident has lived: addresses.parquet when the run wrote one, else its records'
    addresses, each with the dates of the records that give it."""
    kept = _filtered(snapshot.folder / "addresses.parquet", "resident_id", [resident_id])
    if kept is not None and "address" in kept:
        kept = kept.sort_values([c for c in ("last_seen", "first_seen") if c in kept] or ["address"], ascending=False)
        return [{"address": plain_value("address", r.get("address")), "postcode": plain_value("postcode", r.get("postcode")),
                 "first_seen": plain_value("record_date", r.get("first_seen")),
                 "last_seen": plain_value("record_date", r.get("last_seen")), "current": bool(r.get("current"))}
                for r in kept.to_dict("records")]
    rows = []
    for member in members.itertuples(index=False):
        v = values.get(int(member.unique_id), {})
        if plain_value("address", v.get("address")) or plain_value("postcode", v.get("postcode")):
            rows.append({"address": plain_value("address", v.get("address")) or "",
                         "postcode": plain_value("postcode", v.get("postcode")) or "",
                         "date": pd.to_datetime(v.get("record_date"), errors="coerce"), "source": source_label(member.source)})
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["address", "postcode"], sort=False).agg(
        first=("date", "min"), last=("date", "max"), sources=("source", lambda s: ", ".join(sorted(set(s)))))
    grouped = grouped.sort_values("last", ascending=False, na_position="last").reset_index()
    return [{"address": r.address or None, "postcode": r.postcode or None, "first_seen": plain_value("record_date", r.first),
             "last_seen": plain_value("record_date", r.last), "sources": r.sources} for r in grouped.itertuples(index=False)]


def _edge(pair: Pair, threshold: float) -> dict:
    return {"left": pair.left, "right": pair.right, "match_probability": pair.match_probability,
            "match_weight": round(pair.match_weight, 3), "joined": pair.match_probability >= threshold,
            "other_resident": pair.other_resident, "refused_by": pair.refused_by,
            "waterfall": waterfall_bars(pair.steps, pair.match_weight) if pair.steps else None}


def resident_page(snapshot: Snapshot, resident_id: str) -> dict:
    members = _members(snapshot, resident_id)
    explanation = explain(snapshot.folder, resident_id, show_values=True, limit=PAIRS_SHOWN)
    values = snapshot.values(members["unique_id"].to_numpy())
    shown = [*snapshot.fields, "record_date"]
    records = []
    for member in members.itertuples(index=False):
        v = values.get(int(member.unique_id), {})
        fields = [{"label": field_label(f), "value": plain_value(f, v.get(f))} for f in shown]
        records.append({"key": member.key, "source": member.source, "source_label": source_label(member.source),
                        "record_id": member.record_id, "membership": float(member.membership),
                        "fields": [f for f in fields if f["value"] is not None]})
    decisions = [{"decision_id": d.decision_id, "decision": d.decision, "left": d.left, "right": d.right,
                  "other_resident": d.other_resident, "reviewer": d.reviewer, "note": d.note, "status": d.status,
                  "decided_at": d.decided_at.isoformat() if d.decided_at is not None else None}
                 for d in explanation.decisions]
    return {
        "resident_id": resident_id, "threshold": explanation.threshold, "records": records,
        "households": _households(snapshot, resident_id, members),
        "addresses": _addresses(snapshot, resident_id, values, members),
        "edges": [_edge(p, explanation.threshold) for p in explanation.pairs], "n_edges": explanation.n_pairs,
        "refused": [_edge(p, explanation.threshold) for p in explanation.refused], "n_refused": explanation.n_refused,
        "decisions": decisions, "notes": explanation.notes,
    }


def _pair_row(left: str, right: str, decision: str) -> dict:
    (source_l, record_l), (source_r, record_r) = left.split(":", 1), right.split(":", 1)
    return {"source_l": source_l, "record_id_l": record_l, "source_r": source_r, "record_id_r": record_r,
            "decision": decision}


def split_rows(snapshot: Snapshot, resident_id: str, record_key: str) -> pd.DataFrame:
    """Splitting a record out of a resident: a non-match between it and each other record of it."""
    members = _members(snapshot, resident_id)
    if record_key not in set(members["key"]):
        raise NotFound(f"{record_key} is not a record of resident {resident_id} in this run")
    others = [k for k in members["key"] if k != record_key]
    if not others:
        raise PageProblem(f"{record_key} is the only record of resident {resident_id}: there is nothing to split it from")
    return pd.DataFrame([_pair_row(record_key, other, "non-match") for other in others])


def merge_rows(snapshot: Snapshot, resident_id: str, other: str) -> tuple[pd.DataFrame, str]:
    """Merging two residents: a match between one record of each — the record `other` names, or
    each resident's most firmly held record. Also returns the other resident's id."""
    members = _members(snapshot, resident_id)
    try:
        other_id, other_record, _ = resolve_key(snapshot.run, (other or "").strip())
    except DataError as exc:
        raise NotFound(_message(exc, snapshot.folder)) from None
    if other_id == resident_id:
        raise PageProblem(f"{other.strip()} is already resident {resident_id}: nothing to merge")
    theirs = other_record or _members(snapshot, other_id)["key"].iloc[0]
    return pd.DataFrame([_pair_row(members["key"].iloc[0], theirs, "match")]), other_id

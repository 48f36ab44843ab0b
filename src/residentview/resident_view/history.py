"""Address history: every address each resident has given, when it was first and last seen, which
sources hold it, and which is current (`addresses.parquet`).

An address is the pair (address, postcode) as standardised, the unit the golden address is chosen
from; `address_id` names it by a hash of that text, the same for every resident and every run.
`first_seen` is the earliest `record_date` of the resident's records giving it (else the date of
the extracts that first held it); `last_seen` is the date of the latest extracts holding it. An
address no source holds any more stays in the history (`current` False, no sources, no records)
for as long as its resident does: a move leaves its trace. `current` is the golden address
(recency, then source priority: see golden.py). "The date of the extracts" (`as_of`) is the latest
`record_date` of the run's records — when the data was taken, not when residentview ran.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from residentview.resident_view.coding import Coded, coded, distinct_lists
from residentview.resident_view.golden import record_dates

ADDRESS_COLUMNS = ("resident_id", "address_id", "address", "postcode", "uprn", "sources", "n_records",
                   "first_seen", "last_seen", "current")


def extracts_date(records: pd.DataFrame) -> pd.Timestamp:
    """When the extracts were taken: the latest record_date (today when none has one)."""
    latest = record_dates(records).max()
    return pd.Timestamp.today().normalize() if pd.isna(latest) else pd.Timestamp(latest).normalize()


def address_ids(keys: np.ndarray) -> np.ndarray:
    """'ADR-' and 12 hex digits of the SHA-256 of each "ADDRESS|POSTCODE" key."""
    return np.array(["ADR-" + hashlib.sha256(str(k).encode("utf-8")).hexdigest()[:12] for k in keys], dtype=object)


def empty_addresses() -> pd.DataFrame:
    return pd.DataFrame({
        "resident_id": pd.Series(dtype=object), "address_id": pd.Series(dtype=object),
        "address": pd.Series(dtype=object), "postcode": pd.Series(dtype=object), "uprn": pd.Series(dtype=object),
        "sources": pd.Series(dtype=object), "n_records": pd.Series(dtype="int64"),
        "first_seen": pd.Series(dtype="datetime64[ns]"), "last_seen": pd.Series(dtype="datetime64[ns]"),
        "current": pd.Series(dtype=bool),
    })


def address_history(records: pd.DataFrame, resident: np.ndarray, resident_ids: np.ndarray, keys: Coded,
                    key_ids: np.ndarray, current_key: np.ndarray, previous: pd.DataFrame, id_moves: dict[str, str],
                    as_of: pd.Timestamp) -> pd.DataFrame:
    """The history after this run. `resident`: each record's resident (a position in
    `resident_ids`); `keys`: each record's address key, coded (-1 for none), and `key_ids` the
    address_id of each of its values; `current_key`: each resident's golden address key code (-1
    for none); `previous`: the previous run's history; `id_moves`: a previous resident id -> the
    id its records now carry (merges)."""
    held = keys.codes >= 0
    frame = pd.DataFrame({
        "owner": resident[held], "key": keys.codes[held],
        "date": record_dates(records).to_numpy()[held],
        "address": records["address"].to_numpy(dtype=object)[held] if "address" in records else None,
        "postcode": records["postcode"].to_numpy(dtype=object)[held] if "postcode" in records else None,
        "uprn": records["uprn"].to_numpy(dtype=object)[held] if "uprn" in records else None,
        "source": records["source"].to_numpy(dtype=object)[held],
    })
    grouped = frame.groupby(["owner", "key"], sort=True)
    rows = grouped.agg(n_records=("source", "size"), first_seen=("date", "min"), address=("address", "first"),
                       postcode=("postcode", "first"), uprn=("uprn", "first")).reset_index()
    pair = grouped.ngroup().to_numpy()
    sources = distinct_lists(pair, coded(frame["source"].to_numpy(dtype=object)), len(rows))
    out = pd.DataFrame({
        "resident_id": resident_ids[rows["owner"].to_numpy()],
        "address_id": key_ids[rows["key"].to_numpy()],
        "address": rows["address"], "postcode": rows["postcode"], "uprn": rows["uprn"],
        "sources": sources.to_numpy(), "n_records": rows["n_records"].astype("int64"),
        "first_seen": rows["first_seen"].fillna(as_of).to_numpy(dtype="datetime64[ns]"),
        "last_seen": np.full(len(rows), as_of.to_datetime64(), dtype="datetime64[ns]"),
        "current": current_key[rows["owner"].to_numpy()] == rows["key"].to_numpy(),
    })
    if len(previous):
        out = _with_previous(out, previous, id_moves, set(resident_ids.tolist()))
    return out.sort_values(["resident_id", "first_seen", "address_id"], kind="stable").reset_index(drop=True)


def _with_previous(now: pd.DataFrame, previous: pd.DataFrame, id_moves: dict[str, str], alive: set) -> pd.DataFrame:
    """Carry the previous history over: an address seen before keeps its first_seen; one no
    record holds now stays, no longer current, with its last_seen."""
    before = previous.copy()
    before["resident_id"] = before["resident_id"].astype(str).map(lambda r: id_moves.get(r, r))
    before = before[before["resident_id"].isin(alive)]
    before = before.sort_values("first_seen").drop_duplicates(["resident_id", "address_id"])
    merged = now.merge(before[["resident_id", "address_id", "first_seen"]], on=["resident_id", "address_id"],
                       how="left", suffixes=("", "_before"))
    earlier = pd.to_datetime(merged["first_seen_before"])
    now = now.assign(first_seen=np.where(earlier.notna() & (earlier < merged["first_seen"]), earlier,
                                         merged["first_seen"]).astype("datetime64[ns]"))
    held = pd.MultiIndex.from_frame(now[["resident_id", "address_id"]])
    gone = before[~pd.MultiIndex.from_frame(before[["resident_id", "address_id"]]).isin(held)]
    if not len(gone):
        return now
    gone = gone.assign(current=False, n_records=0, sources=[[] for _ in range(len(gone))])
    return pd.concat([now, gone[list(ADDRESS_COLUMNS)]], ignore_index=True)

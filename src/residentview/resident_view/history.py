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
from pathlib import Path

import numpy as np
import pandas as pd

from residentview.resident_view.coding import Coded, coded, distinct_lists
from residentview.resident_view.previous import as_python_strings
from residentview.resident_view.golden import _column, record_dates

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
    """The history after this run, grouped by resident (in `resident_ids` order, then the
    addresses' text). `resident`: each record's resident (a position in `resident_ids`); `keys`:
    each record's address key, coded (-1 for none), and `key_ids` the address_id of each of its
    values; `current_key`: each resident's golden address key code (-1 for none); `previous`:
    the previous run's history; `id_moves`: a previous resident id -> the id its records now
    carry (merges).

    Integers throughout (a million records' text grouped by pandas took seconds): a pair of
    resident and address is one int64, and the text is looked up once per distinct address."""
    held = np.flatnonzero(keys.codes >= 0)
    width = max(len(keys.values), 1)
    pair_codes, pairs = pd.factorize(resident[held] * width + keys.codes[held], sort=True)
    owner, key = np.divmod(pairs, width)
    n = len(pairs)
    dates = record_dates(records).to_numpy(dtype="datetime64[ns]")[held]
    first_seen = pd.Series(dates).groupby(pair_codes).min().reindex(range(n)).to_numpy(dtype="datetime64[ns]")
    uprn = coded(_column(records, "uprn").to_numpy(dtype=object)[held])
    best_uprn = np.full(n, -1, dtype=np.int64)
    np.maximum.at(best_uprn, pair_codes, uprn.codes)
    address, postcode = _split_keys(keys.values)
    out = pd.DataFrame({
        "resident_id": resident_ids[owner],
        "address_id": key_ids[key],
        "address": address[key], "postcode": postcode[key], "uprn": uprn.decoded(best_uprn),
        "sources": distinct_lists(pair_codes, coded(records["source"].to_numpy(dtype=object)[held]), n).to_numpy(),
        "n_records": np.bincount(pair_codes, minlength=n).astype(np.int64),
        "first_seen": np.where(np.isnat(first_seen), as_of.to_datetime64(), first_seen).astype("datetime64[ns]"),
        "last_seen": np.full(n, as_of.to_datetime64(), dtype="datetime64[ns]"),
        "current": current_key[owner] == key,
    })
    if len(previous):
        out = _with_previous(out, pairs, width, resident_ids, key_ids, previous, id_moves)
    return out


def _split_keys(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """"ADDRESS|POSTCODE" keys -> their address and postcode (None for an empty part)."""
    if not len(values):
        return np.array([], dtype=object), np.array([], dtype=object)
    parts = pd.Series(values, dtype=object).astype(str).str.rpartition("|")
    address = parts[0].where(parts[0] != "", None).to_numpy(dtype=object)
    postcode = parts[2].where(parts[2] != "", None).to_numpy(dtype=object)
    return address, postcode


def _with_previous(now: pd.DataFrame, pairs: np.ndarray, width: int, resident_ids: np.ndarray, key_ids: np.ndarray,
                   previous: pd.DataFrame, id_moves: dict[str, str]) -> pd.DataFrame:
    """Carry the previous history over: an address seen before keeps its first_seen; one no
    record holds now stays, no longer current, with its last_seen. `pairs`: now's rows as
    resident * width + address key codes, sorted. The previous rows are coded into the same
    numbering, so the matching is integer arithmetic, not a join of a million texts."""
    before_ids = previous["resident_id"].to_numpy(dtype=object, na_value=None) if isinstance(
        previous["resident_id"].dtype, pd.ArrowDtype) else previous["resident_id"].to_numpy(dtype=object)
    if id_moves:
        before_ids = np.array([id_moves.get(r, r) for r in before_ids.tolist()], dtype=object)
    owner = pd.Index(resident_ids).get_indexer(before_ids)
    key = pd.Index(key_ids).get_indexer(previous["address_id"].astype(str).to_numpy(dtype=object))
    alive = owner >= 0
    both = alive & (key >= 0)
    pair = np.where(both, owner * width + np.maximum(key, 0), -1)
    at = np.searchsorted(pairs, pair)
    found = both & (at < len(pairs)) & (pairs[np.minimum(at, len(pairs) - 1)] == pair)
    first_seen = now["first_seen"].to_numpy(dtype="datetime64[ns]").copy()
    seen_before = pd.to_datetime(previous["first_seen"]).to_numpy(dtype="datetime64[ns]")
    dated = found & ~np.isnat(seen_before)
    np.minimum.at(first_seen, at[dated], seen_before[dated])
    now = now.assign(first_seen=first_seen)
    gone = np.flatnonzero(alive & ~found)
    if not len(gone):
        return now
    kept = as_python_strings(previous.iloc[gone]).assign(resident_id=before_ids[gone], current=False, n_records=0,
                                                         sources=[[] for _ in range(len(gone))])
    first = ~kept.duplicated(["resident_id", "address_id"]).to_numpy()
    together = pd.concat([now, kept.loc[first, list(ADDRESS_COLUMNS)]], ignore_index=True)
    owners = np.r_[pairs // width, owner[gone][first]]
    return together.take(np.argsort(owners, kind="stable")).reset_index(drop=True)


def forget_records(history: pd.DataFrame, links: pd.DataFrame, folder, forget) -> pd.DataFrame:
    """The previous run's address history without what records past their retention gave it
    (CONTRACT §10): each (resident, address) pair one of them held in the previous run is
    dropped, its first_seen with it. When a record kept now holds the address too, this run
    finds the pair again from the records it has; a pair only a forgotten record held does not
    come back as a trace of a move. `links`: the previous run's source, record_id, resident_id;
    `folder`: the previous run's, whose records.parquet gives the records' standardised address
    and postcode; `forget`: the records' keys (source and record_id joined by
    previous.MEMBER_SEPARATOR)."""
    import pyarrow.parquet as pq

    from residentview.resident_view.previous import record_members

    path = Path(folder) / "records.parquet" if folder is not None else None
    if history is None or not len(history) or not forget or path is None or not path.is_file():
        return history
    wanted = [c for c in ("source", "record_id", "address", "postcode") if c in pq.read_schema(path).names]
    previous_records = pq.read_table(path, columns=wanted).to_pandas()
    gone = previous_records[record_members(previous_records).astype(str).isin(set(forget)).to_numpy()]
    if not len(gone):
        return history
    text = {c: gone[c].astype(object).where(gone[c].notna(), "").astype(str) if c in gone else ""
            for c in ("address", "postcode")}
    keys = (text["address"] + "|" + text["postcode"]).to_numpy(dtype=object)
    owner = pd.Series(links["resident_id"].astype(str).to_numpy(),
                      index=record_members(links).astype(str).to_numpy())
    pairs = set(zip(owner.reindex(record_members(gone).astype(str).to_numpy()).to_numpy(dtype=object),
                    address_ids(keys)))
    held = pd.MultiIndex.from_arrays([history["resident_id"].astype(str).to_numpy(dtype=object),
                                      history["address_id"].astype(str).to_numpy(dtype=object)])
    return history[~held.isin(list(pairs))].reset_index(drop=True)

"""Life events (CONTRACT §7): what happened to residents, as the sources show it, appended to
`events.parquet` run after run.

Between the previous run in the folder and this one (for `link` and `update` alike):

    new_resident  a resident none of whose records the previous run had (arrived, born, newly
                  known to a service); dated by its earliest record_date
    left          a previous resident none of whose records any source holds any more
    moved         the current (golden) address changed, to another property (the same UPRN
                  written otherwise is no move); from and to address and household ids (a
                  household id follows its people, so a family moving together keeps it),
                  dated by the new address's first_seen
    died          a record now says the resident died (is_deceased), where none did before
    turned_<N>    the Nth birthday (golden date of birth) fell between the two runs' extracts
                  (for each N in `resident_view.event_ages`, default 18); dated by that birthday
    name_changed  the golden surname changed to a name that is not a retyping of the old one
                  (more than one edit apart and Jaro-Winkler under NAME_TYPO_SIMILARITY), nor
                  forename and surname swapped, nor one part of a double-barrelled name: a
                  marriage, not a correction
    merged, split this run's resident id changes (id_changes.parquet)

A first run has no previous run: it records what the data itself shows — `died` for every
resident a record says died, and `moved` for each resident whose current address was first seen
after another of their addresses — so the history starts with the moves already visible.

A change between runs counts only when a record new or changed since the previous run shows it
(by the records' hashes): a golden surname or address that changed because another record left,
or won on recency among records nobody touched, is no event.

Every event names the sources that showed it (`details`, JSON: no names, no dates of birth, no
addresses — ids only). An event already recorded for a resident (the same kind, and for a move
the same new address) is not recorded again.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

import jellyfish
import numpy as np
import pandas as pd

EVENT_COLUMNS = ("run_timestamp", "event", "resident_id", "event_date", "details")
NAME_TYPO_SIMILARITY = 0.9


def empty_events() -> pd.DataFrame:
    return pd.DataFrame({
        "run_timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "event": pd.Series(dtype=object),
        "resident_id": pd.Series(dtype=object), "event_date": pd.Series(dtype="datetime64[ns]"),
        "details": pd.Series(dtype=object),
    })


def _rows(event: str, resident_ids, dates, details: Sequence[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "event": event, "resident_id": np.asarray(resident_ids, dtype=object),
        "event_date": pd.to_datetime(pd.Series(dates, dtype=object), errors="coerce").to_numpy(dtype="datetime64[ns]")
        if len(resident_ids) else np.array([], dtype="datetime64[ns]"),
        "details": [json.dumps(d, sort_keys=True, default=str) for d in details],
    })


def _sources(values) -> list:
    return [] if values is None or (isinstance(values, float) and np.isnan(values)) else sorted(map(str, values))


def _id_change_events(changes: pd.DataFrame, residents: pd.DataFrame, previous: pd.DataFrame) -> list[pd.DataFrame]:
    """new_resident, left, merged and split, from this run's resident id changes."""
    changes = changes[changes["entity"] == "resident"]
    now = residents.set_index("resident_id")
    before = previous.set_index("resident_id") if len(previous) else pd.DataFrame()
    out = []
    new = changes.loc[changes["change"] == "new", "new_id"].astype(str)
    new = new[new.isin(now.index)]
    out.append(_rows("new_resident", new, now.loc[new, "first_seen"].to_numpy() if len(new) else [],
                     [{"sources": _sources(s)} for s in now.loc[new, "sources"]] if len(new) else []))
    left = changes.loc[changes["change"] == "retired", "old_id"].astype(str)
    held = [_sources(before.at[r, "sources"]) if "sources" in before and r in before.index else [] for r in left]
    out.append(_rows("left", left, [None] * len(left), [{"sources": s} for s in held]))
    merged = changes[changes["change"] == "merged"]
    out.append(_rows("merged", merged["new_id"].astype(str), [None] * len(merged),
                     [{"merged_from": str(o), "records": int(n)} for o, n in zip(merged["old_id"], merged["n_records"])]))
    split = changes[changes["change"] == "split"]
    out.append(_rows("split", split["old_id"].astype(str), [None] * len(split),
                     [{"split_to": str(n), "records": int(k)} for n, k in zip(split["new_id"], split["n_records"])]))
    return out


def _birthday(dob: pd.Series, age: int) -> pd.Series:
    """Each date of birth's `age`th birthday (29 February -> 1 March in a year that has none)."""
    year = dob.dt.year + age
    month, day = dob.dt.month, dob.dt.day
    leap_year = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    moved = (month == 2) & (day == 29) & ~leap_year
    parts = pd.DataFrame({"year": year, "month": month.where(~moved, 3), "day": day.where(~moved, 1)})
    known = parts.notna().all(axis=1)
    out = pd.Series(pd.NaT, index=dob.index, dtype="datetime64[ns]")
    if known.any():
        out[known] = pd.to_datetime(parts[known].astype("int64"), errors="coerce")
    return out


def _turned(residents: pd.DataFrame, ages: Sequence[int], since: pd.Timestamp, until: pd.Timestamp) -> list[pd.DataFrame]:
    if "date_of_birth" not in residents:
        return []
    dob = pd.to_datetime(residents["date_of_birth"], errors="coerce")
    living = ~residents["is_deceased"].astype("boolean").fillna(False).to_numpy(bool) if "is_deceased" in residents else True
    out = []
    for age in sorted(set(ages)):
        birthday = _birthday(dob, age)
        hit = (birthday > since) & (birthday <= until) & living
        out.append(_rows(f"turned_{age}", residents.loc[hit, "resident_id"], birthday[hit].to_numpy(),
                         [{"sources": _sources(s)} for s in residents.loc[hit, "sources"]]))
    return out


def _moved(residents: pd.DataFrame, addresses: pd.DataFrame, previous: pd.DataFrame,
           previous_addresses: pd.DataFrame) -> pd.DataFrame:
    """Residents whose current address is not the one the previous run had as current, and not
    the same property written otherwise (one UPRN: a postcode put right, a flat number added)."""
    current = addresses[addresses["current"]].set_index("resident_id")
    before = previous.dropna(subset=["current_address_id"]).set_index("resident_id") if (
        len(previous) and "current_address_id" in previous) else pd.DataFrame(columns=["current_address_id"])
    now = residents[residents["current_address_id"].notna().to_numpy() & residents["resident_id"].isin(before.index)]
    was = before.loc[now["resident_id"]]
    changed = _text(now["current_address_id"]).ne(_text(was["current_address_id"]).to_numpy()).fillna(True)
    now, was = now[changed.to_numpy(bool)], was[changed.to_numpy(bool)]
    wanted = set(now["current_address_id"].astype(str)) | set(was["current_address_id"].astype(str))
    known = [frame.loc[frame["address_id"].isin(wanted), ["address_id", "uprn"]]
             for frame in (previous_addresses, addresses) if len(frame) and "uprn" in frame]
    uprn = pd.concat(known).dropna().drop_duplicates("address_id") if known else pd.DataFrame()
    uprn = _text(uprn.set_index("address_id")["uprn"]) if len(uprn) else pd.Series(dtype="string")
    uprn_now = uprn.reindex(now["current_address_id"].astype(str)).to_numpy()
    uprn_before = uprn.reindex(was["current_address_id"].astype(str)).to_numpy()
    one_property = pd.Series(uprn_now, dtype="string").eq(pd.Series(uprn_before, dtype="string")).fillna(False)
    moved = now[~one_property.to_numpy(bool)]
    if "fresh_current_address" in moved:  # shown by a record new or changed, not by another leaving
        moved = moved[moved["fresh_current_address"].to_numpy(bool)]
    was = before.loc[moved["resident_id"]]
    details = [
        {"from_address": a, "to_address": b, "from_household": _id(h0), "to_household": _id(h1),
         "sources": _sources(current.at[r, "sources"]) if r in current.index else []}
        for r, a, b, h0, h1 in zip(moved["resident_id"], was["current_address_id"], moved["current_address_id"],
                                   was["household_id"] if "household_id" in was else [None] * len(was),
                                   moved["household_id"])
    ]
    dates = [current.at[r, "first_seen"] if r in current.index else None for r in moved["resident_id"]]
    return _rows("moved", moved["resident_id"], dates, details)


def _moves_in_the_data(residents: pd.DataFrame, addresses: pd.DataFrame) -> pd.DataFrame:
    """A first run's moves: residents whose current address was first seen after another of theirs."""
    dated = addresses.dropna(subset=["first_seen"])
    current = dated[dated["current"]].set_index("resident_id")
    older = dated[~dated["current"]].merge(current[["first_seen", "address_id"]], left_on="resident_id",
                                           right_index=True, suffixes=("", "_now"))
    older = older[older["first_seen"] < older["first_seen_now"]]
    older = older.sort_values("first_seen").drop_duplicates("resident_id", keep="last")
    household = residents.set_index("resident_id")["household_id"]
    details = [
        {"from_address": a, "to_address": b, "from_household": None, "to_household": _id(household.get(r)),
         "sources": _sources(current.at[r, "sources"])}
        for r, a, b in zip(older["resident_id"], older["address_id"], older["address_id_now"])
    ]
    return _rows("moved", older["resident_id"], older["first_seen_now"].to_numpy(), details)


def _text(values: pd.Series) -> pd.Series:
    """Ids as pandas text (missing as <NA>), however they were read."""
    return values.astype("string")


def _id(value) -> Optional[str]:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value) else str(value)


def _died(residents: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    dead = residents[residents["is_deceased"].astype("boolean").fillna(False).to_numpy(bool)]
    if len(previous) and "is_deceased" in previous:
        was_dead = previous["is_deceased"].astype("boolean").fillna(False).to_numpy(bool)
        known = set(previous.loc[was_dead, "resident_id"].astype(str))
        dead = dead[~dead["resident_id"].isin(known)]
    return _rows("died", dead["resident_id"], [None] * len(dead), [{"sources": _sources(s)} for s in dead["sources"]])


def _renamed(residents: pd.DataFrame, previous: pd.DataFrame, surname_evidence) -> pd.DataFrame:
    if not len(previous) or "last_name" not in previous or "last_name" not in residents:
        return _rows("name_changed", [], [], [])
    before = previous.dropna(subset=["last_name"]).set_index("resident_id")["last_name"]
    before = before[~before.index.duplicated()]
    now = residents[residents["last_name"].notna().to_numpy() & residents["resident_id"].isin(before.index)]
    # Most surnames did not change: only those written differently are compared.
    written = before.reindex(now["resident_id"]).astype(str).to_numpy(dtype=object) != \
        now["last_name"].astype(str).to_numpy(dtype=object)
    now = now[written]
    old = _letters(before.reindex(now["resident_id"]).astype(str)).to_numpy(dtype=object)
    new = _letters(now["last_name"].astype(str)).to_numpy(dtype=object)
    differ = np.flatnonzero(old != new)
    # Forenames and surname swapped (SMALL MICHAEL for MICHAEL SMALL) are no new name either.
    first = _letters(now["first_name"].astype(str)).to_numpy(dtype=object) if "first_name" in now else np.full(len(now), "")
    changed = np.array([new[i] != first[i] and old[i] != first[i] and _another_surname(old[i], new[i])
                        for i in differ.tolist()], dtype=bool)
    who = now["resident_id"].to_numpy(dtype=object)[differ[changed]] if len(differ) else np.array([], dtype=object)
    sources, dates = surname_evidence(who)
    who = np.array([r for r in who if r in sources], dtype=object)  # shown by a record new or changed
    return _rows("name_changed", who, [dates.get(r) for r in who], [{"sources": sources.get(r, [])} for r in who])


def _another_surname(old: str, new: str) -> bool:
    """Another name, not the same one retyped (one letter wrong, missing, extra or swapped; or
    Jaro-Winkler at NAME_TYPO_SIMILARITY or more) nor one part of a double-barrelled name."""
    if not old or not new or old in new or new in old:
        return False
    return (jellyfish.damerau_levenshtein_distance(old, new) > 1
            and jellyfish.jaro_winkler_similarity(old, new) < NAME_TYPO_SIMILARITY)


def _letters(names: pd.Series) -> pd.Series:
    """Surnames as their letters only, upper case: O'BRIEN and OBRIEN are one name."""
    return names.str.upper().str.replace(r"[\W\d_]+", "", regex=True)


def _event_key(frame: pd.DataFrame) -> pd.Series:
    """What makes an event the same event again: its kind and resident, and a move's new address."""
    to = frame["details"].map(lambda d: json.loads(d).get("to_address") if isinstance(d, str) else None)
    return frame["event"].astype(str) + "|" + frame["resident_id"].astype(str) + "|" + to.fillna("").astype(str)


SLIM = ("resident_id", "current_address_id", "household_id", "first_name", "last_name", "date_of_birth",
        "is_deceased", "sources", "first_seen", "fresh_current_address")
ONCE = ("died", "moved", "name_changed")  # and every turned_<N>: kinds a resident has once (a move, once per address)


def life_events(residents: pd.DataFrame, addresses: pd.DataFrame, changes: pd.DataFrame, previous: pd.DataFrame,
                previous_addresses: pd.DataFrame, previous_events: pd.DataFrame, first_run: bool, ages: Sequence[int], as_of: pd.Timestamp,
                previous_as_of: Optional[pd.Timestamp], run_timestamp: pd.Timestamp,
                surname_evidence, aging: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """events.parquet after this run: the previous events and this run's (see the module doc).

    `residents`: this run's, with current_address_id; `previous`: the previous run's residents
    (with `sources` for those that left); `surname_evidence(resident_ids)`: per resident, the
    sources whose records give its golden surname, and their latest record_date (two dicts).
    `aging`: more residents whose birthdays count, none of whom changed this run (an update
    passes the residents it did not touch: resident_id, date_of_birth, is_deceased, sources)."""
    residents = residents[[c for c in SLIM if c in residents]]  # not every golden column, copied at each step
    if first_run:
        found = [_died(residents, previous.iloc[:0]), _moves_in_the_data(residents, addresses)]
    else:
        found = _id_change_events(changes, residents, previous)
        found += [_moved(residents, addresses, previous, previous_addresses), _died(residents, previous),
                  _renamed(residents, previous, surname_evidence)]
        if previous_as_of is not None and as_of > previous_as_of:
            # A resident met for the first time is a new resident, whatever birthday it just had.
            new = set(changes.loc[(changes["entity"] == "resident") & (changes["change"] == "new"), "new_id"].astype(str))
            found += _turned(residents[~residents["resident_id"].isin(new)], ages, previous_as_of, as_of)
            if aging is not None:
                found += _turned(aging, ages, previous_as_of, as_of)
    found = [f for f in found if len(f)]
    events = pd.concat(found, ignore_index=True) if found else _rows("moved", [], [], [])
    if len(previous_events) and len(events):
        once = events["event"].isin(ONCE) | events["event"].str.startswith("turned_")
        repeat = once & _event_key(events).isin(set(_event_key(previous_events)))
        events = events[~repeat]
    events.insert(0, "run_timestamp", pd.Timestamp(run_timestamp))
    events = events.sort_values(["event", "resident_id"], kind="stable")[list(EVENT_COLUMNS)]
    history = [frame for frame in (previous_events, events) if len(frame)]
    return pd.concat(history, ignore_index=True) if history else empty_events()

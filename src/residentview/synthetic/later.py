"""The six extracts some months on: each system's earlier records, changed as that system would
have heard of the life events in between (`life_events.py`).

A council does not re-key its records: one whose person nothing happened to stays byte for byte
as it was, bar the few corrected or edited since (`CORRECTED`). For each event, `RESPONSES` says
what share of a system's records show it at the later date; the rest lag behind, still at the
old address, under the old surname, or listing the dead and departed.

| event | what a system that has heard does |
|---|---|
| moved | updates the address; council tax closes the account and opens a new one at the new home |
| name_changed | updates the surname (and title) |
| died | removes the record, or marks it ("(Deceased)", "Exors of") |
| left | removes the record |
| turned_18 | the register drops the attainer's date of birth; an unregistered 18-year-old may register |
| new_resident | picks them up as it picks anyone up, under a new record id |

A person who ages out of a system (18 in children's services, 19 at school) is removed like a leaver;
one who comes within reach (a new household head, a 16-year-old, a 4-year-old) is picked up like a
new resident. Changed and new records are drawn with the same noise catalogue, afresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from residentview.synthetic.extracts import SOURCE_CONFIG, SYSTEMS, SystemRecords
from residentview.synthetic.life_events import EVENTS, Later, random_days
from residentview.synthetic.noise import NoiseRates
from residentview.synthetic.population import Population


@dataclass(frozen=True)
class Response:
    """The share of one system's records that show each event at the later date."""

    moved: float           # the new address (council tax: the old account closed, a new one opened)
    renamed: float         # the new surname
    gone: float            # removed, when the person left the borough or aged out of the system
    died_removed: float    # removed, when the person died…
    died_marked: float = 0.0  # …or kept and marked as deceased


# Judgements for a gap of about a year (they do not scale with `months`). DWP's Tell Us Once
# passes a death on to council tax, benefits and the electoral registration officer within days, so
# deaths are heard of most; moves and departures reach the register at the annual canvass; a
# surname change waits for the person to say.
RESPONSES = {
    "council_tax": Response(moved=0.9, renamed=0.6, gone=0.9, died_removed=0.3, died_marked=0.6),
    "housing_benefit": Response(moved=0.9, renamed=0.8, gone=0.95, died_removed=0.95),
    "electoral_register": Response(moved=0.75, renamed=0.7, gone=0.75, died_removed=0.9),
    "adult_social_care": Response(moved=0.7, renamed=0.6, gone=0.7, died_removed=0.3, died_marked=0.65),
    "children_services": Response(moved=0.8, renamed=0.5, gone=0.8, died_removed=0.9),
    "school_census": Response(moved=0.9, renamed=0.5, gone=0.9, died_removed=0.9),
}
CORRECTED = 0.02  # per record and year: names or address re-keyed though nothing happened to the person
ACCOUNT_PER_HOME = ("council_tax",)  # an account belongs to a property: a move closes it and opens another
ATTAINER_DOB = ("electoral_register",)  # shows a date of birth only until the 18th birthday
# Most pupils leave school at 17 for college, training or work: the census holds 17-18-year-olds
# at 0.4 against 0.96 below (about two in five 16-18s study in a school sixth form, DfE).
LEAVING = {"school_census": (17, 1 - 0.4 / 0.96)}  # system: (birthday, share who leave)

# Groups of residentview fields a change rewrites together, as named in each system's config.
ADDRESS = ("address", "postcode", "uprn")
SURNAME = ("title", "last_name", "full_name", "previous_last_name")
NAME = ("first_name", "middle_names") + SURNAME
DATE_OF_BIRTH = ("date_of_birth",)
_ID_NUMBER = re.compile(r"(\d+)(?:/\d+)?$")  # CT00100123, HB200123/2, KA1-00123, 1000123, C0010023


def columns(system: str, fields: tuple[str, ...]) -> list[str]:
    """The columns of `system`'s extract that hold `fields`."""
    spec = SOURCE_CONFIG[system]["fields"]
    out = []
    for field in fields:
        column = spec.get(field)
        column = column["column"] if isinstance(column, dict) else column
        out.extend(column if isinstance(column, list) else [column] if column else [])
    return out


def _last_number(record_ids: pd.Series) -> int:
    """The highest number among a system's record ids: new records are numbered above it."""
    numbers = record_ids.str.extract(_ID_NUMBER, expand=False).dropna().astype(int)
    return int(numbers.max()) if len(numbers) else 0


def _who(after: Later) -> dict[str, np.ndarray]:
    """Per later person, whether each event happened to them."""
    index = pd.Index(after.population.people["person_id"])
    happened = {event: np.zeros(len(index), bool) for event in EVENTS}
    for event, person_ids in after.events.groupby("event")["person_id"]:
        happened[event][index.get_indexer(person_ids)] = True
    return happened


def _opened_on(after: Later, rows: np.ndarray, rng) -> np.ndarray:
    """When a new record was opened: the day the person moved or arrived, else a day in between."""
    when = after.events[after.events["event"].isin(["moved", "new_resident"])].drop_duplicates("person_id", keep="last")
    days = pd.Series(when["event_date"].to_numpy(), index=when["person_id"].to_numpy())
    person_ids = after.population.people["person_id"].to_numpy()[rows]
    known = days.reindex(person_ids).to_numpy().astype("datetime64[D]")
    return np.where(np.isnat(known), random_days(len(rows), after.start_date, after.end_date, rng), known)


def _set_record_date(frame: pd.DataFrame, system: str, dates: np.ndarray) -> None:
    spec = SOURCE_CONFIG[system]["fields"].get("record_date")
    if spec is None:
        return
    dates = pd.DatetimeIndex(dates)
    if isinstance(spec, dict):
        frame[spec["column"]] = dates.strftime(spec["format"])
    else:
        frame[spec] = dates.date


@dataclass
class _Fate:
    """What becomes of each earlier record: removed, or some of its fields rewritten."""

    removed: np.ndarray
    closed: np.ndarray  # removed because the account stays with the home its holder left
    rewrites: list[tuple[tuple[str, ...], np.ndarray]]  # (fields, which records)
    shows: dict[str, np.ndarray]  # event -> which records show it at the later date


def _fate(system: str, row: np.ndarray, before: Population, after: Later, happened: dict[str, np.ndarray],
          rng) -> _Fate:
    """Draw, record by record, whether `system` has heard of what happened to its person."""
    response, people, present = RESPONSES[system], after.population.people, after.present
    eligible = SYSTEMS[system].eligible(people) & present
    n = len(row)
    draw = rng.random(n)
    died = happened["died"][row]
    out_of_reach = happened["left"][row] | (present[row] & ~eligible[row])
    removed = (out_of_reach & (draw < response.gone)) | (died & (draw < response.died_removed))
    marked = died & ~removed & (draw < response.died_removed + response.died_marked)
    if system in LEAVING:
        birthday, share = LEAVING[system]
        age_before = np.r_[before.people["age"].to_numpy(), people["age"].to_numpy()[len(before.people):]]
        leaving = (age_before < birthday) & (people["age"].to_numpy() >= birthday) & present
        removed |= leaving[row] & (rng.random(n) < share)
    heard_of_move = happened["moved"][row] & (rng.random(n) < response.moved)
    closed = heard_of_move & (system in ACCOUNT_PER_HOME)
    removed |= closed
    renamed = happened["name_changed"][row] & (rng.random(n) < response.renamed)
    eventful = np.logical_or.reduce([happened[event] for event in EVENTS])[row]
    years = (after.end_date - after.start_date).days / 365.25
    corrected = ~eventful & (rng.random(n) < 1 - (1 - CORRECTED) ** years)
    correct_name = corrected & (rng.random(n) < 0.5)
    reopened = closed & eligible[row]  # the account at the new home (`_newly_held`)
    return _Fate(removed, closed, [
        (ADDRESS, ~removed & (heard_of_move | (corrected & ~correct_name))),
        (SURNAME, ~removed & (marked | renamed)),
        (NAME, ~removed & correct_name),
        (DATE_OF_BIRTH, ~removed & happened["turned_18"][row] & (system in ATTAINER_DOB)),
    ], shows={"moved": heard_of_move & (~removed | reopened), "name_changed": renamed & ~removed,
              "died": marked})


def _rewrite(system: str, frame: pd.DataFrame, row: np.ndarray, fate: _Fate, after: Later, noise: NoiseRates,
             rng) -> pd.DataFrame:
    """`frame` with the fields `fate` rewrites taken from the system's current view of the person,
    its noise drawn afresh. A record rewritten after a death says so."""
    changed = np.flatnonzero(np.logical_or.reduce([mask for _, mask in fate.rewrites]))
    frame = frame.copy()
    if len(changed):
        fresh, _ = SYSTEMS[system].records(after.population, row[changed], replace(noise, deceased_marker=1.0), rng,
                                           stale=np.zeros(len(changed), bool))
        fresh = fresh.iloc[:len(changed)]  # a re-keyed record is not also registered twice
        for fields, mask in fate.rewrites:
            take = mask[changed]
            cols = columns(system, fields)
            frame.loc[changed[take], cols] = fresh.loc[take, cols].to_numpy()
    return frame


def _newly_held(system: str, row: np.ndarray, fate: _Fate, before: Population, after: Later,
                happened: dict[str, np.ndarray], rng) -> np.ndarray:
    """The people `system` opens a record for: those newly within its reach, picked as it picks
    anyone, and the movers whose council-tax account moved with them."""
    spec, people = SYSTEMS[system], after.population.people
    eligible = spec.eligible(people) & after.present
    eligible_before = np.r_[spec.eligible(before.people), np.zeros(len(people) - len(before.people), bool)]
    holds = np.zeros(len(people), bool)
    holds[row[~fate.removed]] = True
    newly = ~eligible_before | happened["new_resident"]
    if system in ATTAINER_DOB:
        newly |= happened["turned_18"]
    chosen, stale = spec.holders(after.population, rng)
    if stale is not None:
        chosen = chosen[~stale]  # accounts at a former address are history, not news
    chosen = chosen[(eligible & ~holds & newly)[chosen]]
    return np.union1d(chosen, row[fate.closed & eligible[row]])


def later_records(system: str, earlier: SystemRecords, before: Population, after: Later, noise: NoiseRates,
                  rng: np.random.Generator) -> SystemRecords:
    """`system`'s records at the later date, from its `earlier` records and what happened since."""
    people = after.population.people
    happened = _who(after)
    row = pd.Index(people["person_id"]).get_indexer(earlier.truth["person_id"])
    fate = _fate(system, row, before, after, happened, rng)
    frame = _rewrite(system, earlier.frame, row, fate, after, noise, rng)[~fate.removed]
    truth = earlier.truth[~fate.removed]
    chosen = _newly_held(system, row, fate, before, after, happened, rng)
    if len(chosen):
        new_frame, new_truth = SYSTEMS[system].records(after.population, chosen, noise, rng,
                                                       stale=np.zeros(len(chosen), bool),
                                                       numbered_after=_last_number(earlier.truth["record_id"]))
        opened = pd.Index(people["person_id"]).get_indexer(new_truth["person_id"])
        _set_record_date(new_frame, system, _opened_on(after, opened, rng))
        frame, truth = pd.concat([frame, new_frame]), pd.concat([truth, new_truth])
    frame, truth = frame.reset_index(drop=True), truth.reset_index(drop=True)
    return SystemRecords(frame, truth, rng.permutation(len(frame)), _shown(system, frame, truth, row, fate, after, happened))


def _shown(system: str, frame: pd.DataFrame, truth: pd.DataFrame, row: np.ndarray, fate: _Fate, after: Later,
           happened: dict[str, np.ndarray]) -> pd.DataFrame:
    """person_id, event: the events this system's later records show. A turned_18 shows where a
    record of the person still carries a date of birth; moves, new names and deaths where the
    system heard of them (`_Fate.shows`)."""
    person_ids = after.population.people["person_id"].to_numpy()
    frames = [pd.DataFrame({"person_id": person_ids[row[mask]], "event": event}) for event, mask in fate.shows.items()]
    dob = columns(system, DATE_OF_BIRTH)
    if dob:
        dated = frame[dob[0]].fillna("").astype(str).str.strip().ne("").to_numpy()
        index = pd.Index(person_ids)
        held = truth["person_id"].to_numpy()[dated]
        adult = held[happened["turned_18"][index.get_indexer(held)]]
        frames.append(pd.DataFrame({"person_id": adult, "event": "turned_18"}))
    return pd.concat(frames, ignore_index=True).drop_duplicates(ignore_index=True)

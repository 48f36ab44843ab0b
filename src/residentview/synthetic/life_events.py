"""A year in the life of the population: who moved, died, married, turned 18, was born, arrived or left.

`live(population, months, rates, noise, rng)` takes the true population at its reference date to the date
`months` later and says what happened in between, one row per event:

| event | who | details (JSON) |
|---|---|---|
| moved | each member of a household that moved within the borough | from_uprn, to_uprn |
| died | the person | age, uprn |
| name_changed | a woman who married her partner and took his surname | from, to, why |
| turned_18 | the person | date_of_birth |
| new_resident | a baby born here, or each member of a household that arrived | how (born/arrived), uprn |
| left | each member of a household (or a communal resident) that left the borough | from_uprn |

The later population keeps every earlier row in its place (so row positions and person ids carry
over) with the dead marked and the leavers still listed; `Later.present` says who still lives here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from residentview.synthetic import identifiers as ids
from residentview.synthetic.noise import NoiseRates
from residentview.synthetic.population import LA_CODE, Population, _sample_names, make_population

EVENTS = ("moved", "died", "name_changed", "turned_18", "new_resident", "left")


@dataclass(frozen=True)
class LifeEventRates:
    """Yearly rates of life events in an English borough (rough, from the ONS figures cited).

    Census 2021 and ONS internal-migration estimates: about one person in ten changes address in a
    year, roughly half of them within the same local authority, the rest to or from elsewhere.
    """

    moved: float = 0.055         # per private household: moves to another address in the borough
    left: float = 0.045          # per household (or communal resident): leaves the borough (ONS LA outflows ~4-5%/yr)
    arrived: float = 0.045       # per resident: people arriving, in whole households (inflows about match outflows)
    births: float = 0.010        # per resident: ONS Births in England and Wales 2022, 605,479 births (~10 per 1,000)
    marriages: float = 0.0037    # per resident: ONS Marriages in England and Wales 2019, 219,850 (~3.7 per 1,000)
    takes_name: float = 0.9      # a bride who takes her husband's surname (as population.py assumes)
    # Deaths (~9-10 per 1,000 a year overall, ONS Deaths registered 2022): a Gompertz curve through the
    # ONS National life tables 2020-2022, q ~0.001 at 40, 0.007 at 60, 0.05 at 80, 0.13 at 90.
    deaths_at_80: float = 0.05   # chance of dying within the year at 80…
    deaths_double_every: float = 7.2  # …doubling every 7.2 years of age
    care_home_deaths: float = 0.25    # at least this in a care home (residents' yearly mortality is ~25-30%)


@dataclass
class Later:
    """The population `months` on, who still lives in the borough, and what happened in between."""

    population: Population
    present: np.ndarray          # per later person: alive and living in the borough at the later date
    events: pd.DataFrame         # person_id, event, event_date, details
    end_date: pd.Timestamp
    start_date: pd.Timestamp     # the earlier population's reference date


def _within(yearly: float, years: float) -> float:
    """The chance of an event with this yearly rate happening within `years`."""
    return 1 - (1 - min(yearly, 1.0)) ** years


def random_days(n: int, start: pd.Timestamp, end: pd.Timestamp, rng) -> np.ndarray:
    """`n` days drawn evenly from the day after `start` to `end`."""
    days = max(1, (end - start).days)
    return (start + pd.to_timedelta(rng.integers(1, days + 1, n), unit="D")).to_numpy().astype("datetime64[D]")


def _event_rows(people: pd.DataFrame, rows: np.ndarray, event: str, dates, details: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "person_id": people["person_id"].to_numpy()[rows],
        "event": event,
        "event_date": np.asarray(dates, dtype="datetime64[D]"),
        "details": [json.dumps(d, sort_keys=True) for d in details],
    })


def _death_chance(people: pd.DataFrame, rates: LifeEventRates, years: float) -> np.ndarray:
    age = people["age"].to_numpy()
    yearly = rates.deaths_at_80 * 2.0 ** ((age - 80) / rates.deaths_double_every)
    yearly = np.where(people["kind"].to_numpy() == "care_home", np.maximum(yearly, rates.care_home_deaths), yearly)
    return 1 - (1 - np.clip(yearly, 0.0002, 0.6)) ** years


def _promote_new_heads(people: pd.DataFrame, gone: np.ndarray, present: np.ndarray) -> None:
    """Where a household's head has gone, the partner (else the eldest other member) heads it now."""
    role, household = people["role"].to_numpy(), people["household"].to_numpy()
    head_index = people["head_index"].to_numpy().copy()
    headless = np.unique(household[(role == "head") & gone & (people["kind"].to_numpy() == "private")])
    candidates = people[np.isin(household, headless) & present & (role != "head")]
    if len(candidates):
        rank = candidates.assign(partner=candidates["role"] == "partner").sort_values(
            ["household", "partner", "age"], ascending=[True, False, False])
        new_heads = rank.drop_duplicates("household")
        position = pd.Series(new_heads.index.to_numpy(), index=new_heads["household"].to_numpy())
        members = np.isin(household, new_heads["household"].to_numpy()) & present
        head_index[members] = position.reindex(household[members]).to_numpy()
        people.loc[new_heads.index, "role"] = "head"
    people["head_index"] = head_index


def _age_on(dob: pd.DatetimeIndex, day: pd.Timestamp) -> np.ndarray:
    """Whole years between each date of birth and `day`."""
    before_birthday = (dob.month > day.month) | ((dob.month == day.month) & (dob.day > day.day))
    return (day.year - dob.year - before_birthday).to_numpy()


def _births(people: pd.DataFrame, present: np.ndarray, rates: LifeEventRates, years: float,
            start: pd.Timestamp, end: pd.Timestamp, rng) -> tuple[pd.DataFrame, np.ndarray]:
    """Babies born to women of 18-45 heading or partnering a private household, with the household's surname."""
    age, role = people["age"].to_numpy(), people["role"].to_numpy()
    mothers = np.flatnonzero(present & people["female"].to_numpy() & (age >= 18) & (age <= 45)
                             & np.isin(role, ["head", "partner"]) & (people["kind"].to_numpy() == "private"))
    expected = rates.births * present.sum() * years
    mothers = mothers[rng.random(len(mothers)) < min(0.5, expected / max(len(mothers), 1))]
    k = len(mothers)
    female = rng.random(k) < 0.488  # 105 boys are born for every 100 girls
    group = people["group"].to_numpy()[mothers]
    head = people["head_index"].to_numpy()[mothers]
    born_on = random_days(k, start, end, rng)
    babies = pd.DataFrame({
        "household": people["household"].to_numpy()[mothers],
        "head_index": head,
        "role": "child",
        "kind": "private",
        "group": group,
        "female": female,
        "age": 0,
        "dob": born_on,
        "title": None,
        "first_name": _sample_names(rng, group, female, "first"),
        "middle_names": np.where(rng.random(k) < 0.62, _sample_names(rng, group, female, "first"), None),
        "last_name": people["last_name"].to_numpy()[head],
        "maiden_name": None,
        "goes_by_middle": False,
        "junior": False,
        "twin": False,
        "deceased": False,
        "address_id": people["address_id"].to_numpy()[mothers],
        "room": None,
        "previous_address_id": -1,
        "nhs_number": ids.nhs_numbers(k, rng) if k else np.array([], dtype=object),
        "ni_number": None,
        "upn": None,
        "phone": None,
        "email": None,
    }, columns=[c for c in people.columns if c != "person_id"])
    return babies, born_on


def _arrivals(people: pd.DataFrame, first_row: int, present: np.ndarray, vacant: np.ndarray, rates: LifeEventRates,
              noise: NoiseRates, years: float, start: pd.Timestamp, end: pd.Timestamp,
              rng) -> tuple[pd.DataFrame, np.ndarray]:
    """Households from outside the borough, in private homes left vacant (as many as there are homes)."""
    n = int(rng.binomial(int(present.sum()), _within(rates.arrived, years)))
    if n == 0 or len(vacant) == 0:
        return people.iloc[:0].drop(columns="person_id"), np.array([], dtype="datetime64[D]")
    incoming = make_population(n, rng, replace(noise, communal=0.0, moved=0.0), reference=start).people
    incoming = incoming[incoming["household"] < len(vacant)].drop(columns="person_id")  # households come in order
    household = incoming["household"].to_numpy()
    dob = pd.DatetimeIndex(incoming["dob"].to_numpy()) + (end - start)  # as old at the later date as they were drawn
    arrived_on = random_days(household.max() + 1, start, end, rng)[household]
    return incoming.assign(
        household=household + people["household"].max() + 1,
        head_index=incoming["head_index"].to_numpy() + first_row,
        dob=dob.to_numpy().astype("datetime64[D]"),
        age=_age_on(dob, end),
        deceased=False,
        address_id=vacant[household],
        room=None,
        previous_address_id=-1,  # they came from outside the borough
    ), arrived_on


def _leave_and_die(people: pd.DataFrame, unit_of: np.ndarray, uprn: np.ndarray, rates: LifeEventRates,
                   years: float, start: pd.Timestamp, end: pd.Timestamp, rng) -> tuple[np.ndarray, np.ndarray, list]:
    """Who left the borough (whole households, or single communal residents) and who died here."""
    n_units = unit_of.max() + 1 if len(unit_of) else 0
    alive = ~people["deceased"].to_numpy()
    address = people["address_id"].to_numpy()
    left = alive & (rng.random(n_units) < _within(rates.left, years))[unit_of]
    left_on = random_days(n_units, start, end, rng)[unit_of]
    died = alive & ~left & (rng.random(len(people)) < _death_chance(people, rates, years))
    died_on = random_days(len(people), start, end, rng)
    ages = people["age"].to_numpy()
    return left, died, [
        _event_rows(people, np.flatnonzero(left), "left", left_on[left], [{"from_uprn": uprn[a]} for a in address[left]]),
        _event_rows(people, np.flatnonzero(died), "died", died_on[died],
                    [{"age": int(age), "uprn": uprn[a]} for age, a in zip(ages[died], address[died])]),
    ]


def _move(people: pd.DataFrame, unit_of: np.ndarray, present: np.ndarray, addresses: pd.DataFrame,
          rates: LifeEventRates, years: float, start: pd.Timestamp, end: pd.Timestamp,
          rng) -> tuple[pd.DataFrame, np.ndarray]:
    """Private households moving within the borough, as a chain through the empty homes: each takes
    the next free home and frees its own for a later one. The moves, and the homes still free."""
    n_units = unit_of.max() + 1 if len(unit_of) else 0
    old_address = people["address_id"].to_numpy()
    occupied = np.zeros(len(addresses), bool)
    occupied[old_address[present | people["deceased"].to_numpy()]] = True  # the long dead stay on the records
    vacant = rng.permutation(np.flatnonzero(~occupied & (addresses["kind"].to_numpy() == "private")))
    movable = np.zeros(n_units, bool)
    np.logical_or.at(movable, unit_of, present & (people["kind"].to_numpy() == "private"))
    unit_address = np.zeros(n_units, int)
    unit_address[unit_of] = old_address
    moving = np.flatnonzero(movable & (rng.random(n_units) < _within(rates.moved, years)))
    moving = rng.permutation(moving) if len(vacant) else moving[:0]
    queue = np.concatenate([vacant, unit_address[moving]])
    destination = np.full(n_units, -1)
    destination[moving] = queue[:len(moving)]
    moved = present & (destination[unit_of] >= 0)
    moved_on = random_days(n_units, start, end, rng)[unit_of]
    new_address = np.where(moved, destination[unit_of], old_address)
    uprn = addresses["uprn"].to_numpy()
    events = _event_rows(people, np.flatnonzero(moved), "moved", moved_on[moved], [
        {"from_uprn": uprn[a], "to_uprn": uprn[b]} for a, b in zip(old_address[moved], new_address[moved])])
    people["previous_address_id"] = np.where(moved, old_address, people["previous_address_id"].to_numpy())
    people["address_id"] = new_address
    people["room"] = np.where(moved, None, people["room"].to_numpy())
    return events, queue[len(moving):]


def _marry(people: pd.DataFrame, present: np.ndarray, rates: LifeEventRates, years: float,
           start: pd.Timestamp, end: pd.Timestamp, rng) -> pd.DataFrame:
    """Cohabiting mixed-sex couples with different surnames marry; most brides take his surname."""
    head_index, female = people["head_index"].to_numpy(), people["female"].to_numpy()
    last = people["last_name"].to_numpy().copy()
    partner = np.flatnonzero((people["role"].to_numpy() == "partner") & present)
    couple = np.column_stack([head_index[partner], partner])
    couple = couple[present[couple[:, 0]] & (female[couple[:, 0]] != female[couple[:, 1]])
                    & (last[couple[:, 0]] != last[couple[:, 1]])]
    she_heads = female[couple[:, 0]]
    bride, groom = np.where(she_heads, couple[:, 0], couple[:, 1]), np.where(she_heads, couple[:, 1], couple[:, 0])
    expected = rates.marriages * present.sum() * years
    marry = rng.random(len(bride)) < min(0.5, expected / max(len(bride), 1))
    renamed = marry & (rng.random(len(bride)) < rates.takes_name)
    bride, groom = bride[renamed], groom[renamed]
    events = _event_rows(people, bride, "name_changed", random_days(len(bride), start, end, rng),
                         [{"from": a, "to": b, "why": "marriage"} for a, b in zip(last[bride], last[groom])])
    people.loc[bride, "maiden_name"] = last[bride]
    people.loc[bride, "last_name"] = last[groom]
    people.loc[bride, "title"] = np.where(people["title"].to_numpy()[bride] == "Dr", "Dr", "Mrs")
    return events


def _grow_older(people: pd.DataFrame, present: np.ndarray, start: pd.Timestamp, end: pd.Timestamp,
                rng) -> pd.DataFrame:
    """Everyone here has their birthdays: the 16th brings an NI number, the 4th a pupil number.
    Returns the 18th birthdays (a voter now, out of children's services)."""
    dob = pd.DatetimeIndex(people["dob"].to_numpy())
    age_before, age_after = _age_on(dob, start), _age_on(dob, end)

    def turns(age: int) -> np.ndarray:
        return present & (age_before < age) & (age_after >= age)

    people["age"] = np.where(present, people["age"].to_numpy() + age_after - age_before, people["age"].to_numpy())
    new_16 = np.flatnonzero(turns(16) & pd.isna(people["ni_number"]).to_numpy())
    people.loc[new_16, "ni_number"] = ids.ni_numbers(len(new_16), rng)
    new_4 = np.flatnonzero(turns(4) & pd.isna(people["upn"]).to_numpy())
    people.loc[new_4, "upn"] = ids.upn_numbers(len(new_4), rng, LA_CODE)
    turned_18 = np.flatnonzero(turns(18))
    return _event_rows(people, turned_18, "turned_18", dob[turned_18] + pd.DateOffset(years=18),
                       [{"date_of_birth": str(d.date())} for d in dob[turned_18]])


def live(population: Population, months: int, rates: LifeEventRates, noise: NoiseRates,
         rng: np.random.Generator) -> Later:
    """The population `months` after its reference date, and the life events that led there."""
    start = population.reference
    end = start + pd.DateOffset(months=months)
    years = months / 12
    people = population.people.copy()
    addresses = population.addresses
    uprn = addresses["uprn"].to_numpy()
    n = len(people)
    # Private households move and leave together; communal residents each on their own.
    private = people["kind"].to_numpy() == "private"
    unit = np.where(private, people["household"].to_numpy(), people["household"].max() + 1 + np.arange(n))
    unit_of = np.unique(unit, return_inverse=True)[1]

    left, died, events = _leave_and_die(people, unit_of, uprn, rates, years, start, end, rng)
    present = ~people["deceased"].to_numpy() & ~left & ~died
    _promote_new_heads(people, left | died, present)
    moves, free_homes = _move(people, unit_of, present, addresses, rates, years, start, end, rng)
    events += [moves, _marry(people, present, rates, years, start, end, rng), _grow_older(people, present, start, end, rng)]

    babies, born_on = _births(people, present, rates, years, start, end, rng)
    incoming, arrived_on = _arrivals(people, n + len(babies), present, free_homes, rates, noise, years, start, end, rng)
    newcomers = pd.concat([babies, incoming], ignore_index=True)
    newcomers.insert(0, "person_id", np.char.add("P", np.char.zfill(np.arange(n, n + len(newcomers)).astype(str), 8)).astype(object))
    how = ["born"] * len(babies) + ["arrived"] * len(incoming)
    events.append(_event_rows(newcomers, np.arange(len(newcomers)), "new_resident", np.concatenate([born_on, arrived_on]),
                              [{"how": h, "uprn": uprn[a]} for h, a in zip(how, newcomers["address_id"].to_numpy())]))
    people["deceased"] = people["deceased"].to_numpy() | died
    later = pd.concat([people, newcomers[people.columns]], ignore_index=True)
    table = pd.concat(events, ignore_index=True).sort_values(["event_date", "person_id", "event"], kind="stable")
    return Later(Population(later, addresses, end), np.r_[present, np.ones(len(newcomers), bool)],
                 table.reset_index(drop=True), end, start)

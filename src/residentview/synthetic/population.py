"""The true population: addresses, households and people, before any council system sees them.

Everything is drawn per column with numpy. People live in private households (singles, couples,
families, sharers) or in communal establishments (care homes, student halls, hostels, houses in
multiple occupation) where many unrelated people share one address.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from residentview.synthetic import identifiers as ids
from residentview.synthetic.noise import NoiseRates, strip_accents
from residentview.synthetic.vocabulary import (
    COMMUNAL_NAMES,
    HOUSE_NAMES,
    INWARD_LETTERS,
    WOMENS_SURNAMES,
    STREET_TYPE_P,
    STREET_TYPES,
    name_pools,
    place_words,
)

REFERENCE_DATE = pd.Timestamp("2026-10-01")  # the extracts' "today", fixed so output is reproducible
LA_CODE = 383  # the local-authority number inside UPNs

# Private household sizes 1..6 (ONS-like: a third live alone, few households above five).
HOUSEHOLD_SIZE_P = np.array([0.30, 0.34, 0.15, 0.13, 0.05, 0.03])
COMMUNAL_KINDS = ("care_home", "student_hall", "hostel", "hmo")
COMMUNAL_KIND_P = np.array([0.30, 0.35, 0.15, 0.20])
COMMUNAL_SIZE = {"care_home": (15, 50), "student_hall": (40, 150), "hostel": (8, 30), "hmo": (4, 9)}
COMMUNAL_AGE = {"care_home": (70, 101), "student_hall": (18, 23), "hostel": (18, 65), "hmo": (19, 45)}


@dataclass
class Population:
    people: pd.DataFrame
    addresses: pd.DataFrame
    reference: pd.Timestamp = REFERENCE_DATE  # the date the population is as of: the extracts' "today"


def _choice(rng, values: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    return values[rng.choice(len(values), size=n, p=p)]


# Addresses -------------------------------------------------------------------------------

# A real postcode district holds some 10,000-30,000 addresses; up to 350,000 addresses (about a
# million records) the generator's fourteen districts hold fewer, and draw as they always have.
ADDRESSES_PER_DISTRICT = 25_000


def make_addresses(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` residential addresses on streets of ~10–60 houses, ~15 addresses per postcode."""
    stems, towns = place_words()
    n_streets = max(1, n // 30)
    street_len = rng.integers(10, 60, n_streets)
    street_len = street_len * (n / street_len.sum())
    street_len = np.maximum(1, np.round(street_len)).astype(int)
    street_len[-1] += n - street_len.sum()
    if street_len[-1] < 1:
        # The rounding of many streets can leave more houses than `n` than the last street holds:
        # take the excess off the longest streets a house at a time, none below one house.
        street_len[-1] = 1
        excess = int(street_len.sum() - n)
        while excess > 0:
            take = min(excess, int((street_len > 1).sum()))
            street_len[np.argsort(-street_len, kind="stable")[:take]] -= 1
            excess -= take
    street_names = (
        pd.Series(stems[rng.integers(0, len(stems), n_streets)])
        + " "
        + _choice(rng, np.array(STREET_TYPES, dtype=object), STREET_TYPE_P, n_streets)
    )
    # Two postcode areas; fourteen districts, or one per ADDRESSES_PER_DISTRICT addresses when that
    # is more (a region rather than a borough), so a postcode holds about fifteen addresses at any
    # size, as a real one does: with fourteen districts at five million records, it held 32.
    areas = np.array(["LS", "WF"])
    n_districts = max(14, -(-n // ADDRESSES_PER_DISTRICT))
    district_names = np.char.add(areas[np.arange(n_districts) % 2], (np.arange(n_districts) // 2 + 1).astype(str))
    street_district = rng.integers(0, n_districts, n_streets)
    street_sector = rng.integers(0, 10, n_streets)
    street_town = towns[street_district % len(towns)]

    street = np.repeat(np.arange(n_streets), street_len)
    number = pd.Series(street).groupby(street).cumcount().to_numpy() + 1
    # ~15 houses share a postcode unit; units are numbered within a street.
    unit = number // 15
    unit_key = street * 100 + unit
    uniq_units, unit_index = np.unique(unit_key, return_inverse=True)
    unit_letters = np.char.add(
        INWARD_LETTERS[rng.integers(0, 20, len(uniq_units))], INWARD_LETTERS[rng.integers(0, 20, len(uniq_units))]
    )
    postcode = np.char.add(
        np.char.add(district_names[street_district[street]], " "),
        np.char.add(street_sector[street].astype(str), unit_letters[unit_index]),
    )
    # Converted houses and small blocks: runs of 2–8 flats that share one street number, so
    # their addresses differ only by the flat number.
    position = np.arange(n)
    starts = rng.random(n) < 0.035
    block_end = np.maximum.accumulate(np.where(starts, position + rng.integers(2, 9, n), 0))
    block_start = np.maximum.accumulate(np.where(starts, position, 0))
    in_block = (block_end > position) & (street[block_start] == street)
    flat = np.where(in_block, position - block_start + 1, 0)
    number = np.where(in_block, number[block_start], number)
    house_name = np.where(rng.random(n) < 0.02, HOUSE_NAMES[0], None).astype(object)
    named = house_name != None  # noqa: E711 - elementwise comparison on an object array
    house_name[named] = np.array(HOUSE_NAMES, dtype=object)[rng.integers(0, len(HOUSE_NAMES), named.sum())]
    return pd.DataFrame(
        {
            "flat": np.where(flat > 0, pd.Series(flat).astype(str).radd("Flat ").to_numpy(), None),
            "building": house_name,
            "number": number.astype(str),
            "street": street_names.to_numpy()[street],
            "locality": None,
            "town": street_town[street],
            "postcode": postcode.astype(object),
            "uprn": ids.uprns(n, rng),
            "kind": "private",
        }
    )


# People ----------------------------------------------------------------------------------

def _sample_names(rng, group: np.ndarray, female: np.ndarray, kind: str) -> np.ndarray:
    """One name per person from their naming tradition: kind is 'first' or 'surname'."""
    out = np.empty(len(group), dtype=object)
    for name, (pool, _) in name_pools().items():
        for is_female in (False, True) if kind == "first" else (None,):
            mask = group == name
            if is_female is not None:
                mask &= female == is_female
                values, p = (pool.female, pool.female_p) if is_female else (pool.male, pool.male_p)
            else:
                values, p = pool.surnames, pool.surnames_p
            if mask.any():
                out[mask] = _choice(rng, values, p, int(mask.sum()))
    return out


EMAIL_DOMAINS = np.array(["gmail.com", "hotmail.co.uk", "outlook.com", "yahoo.co.uk", "btinternet.com", "icloud.com", "live.co.uk"], dtype=object)
EMAIL_DOMAIN_P = np.array([0.35, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05])


def _emails(first: np.ndarray, last: np.ndarray, age: np.ndarray, rng) -> np.ndarray:
    """Personal email addresses for most adults, built from their names as people do."""
    n = len(first)
    everyone = np.ones(n, dtype=bool)
    first_part = pd.Series(strip_accents(first, everyone)).str.lower().str.replace(r"[^a-z]", "", regex=True)
    last_part = pd.Series(strip_accents(last, everyone)).str.lower().str.replace(r"[^a-z]", "", regex=True)
    style = rng.integers(0, 4, n)
    local = np.select(
        [style == 0, style == 1, style == 2],
        [first_part + "." + last_part, first_part.str[:1] + last_part, first_part + last_part],
        first_part + "_" + last_part,
    )
    digits = np.where(rng.random(n) < 0.4, rng.integers(1, 100, n).astype(str), "")
    domain = _choice(rng, EMAIL_DOMAINS, EMAIL_DOMAIN_P, n)
    email = pd.Series(local) + digits + "@" + domain
    return email.where((age >= 16) & (rng.random(n) < 0.6), None).to_numpy()


def _ages(rng, n: int, low: int = 18, high: int = 95) -> np.ndarray:
    """Adult ages with fewer very old people, like a real borough."""
    span = high - low
    return (low + span * rng.beta(1.3, 2.0, n)).astype(int)


def make_population(people: int, rng: np.random.Generator, rates: NoiseRates,
                    reference: pd.Timestamp = REFERENCE_DATE) -> Population:
    """The true population of `people` residents with their addresses and identifiers.

    Uses the population-level rates of `rates` (communal, moved, twins, junior, double_barrelled,
    goes_by_middle); the per-record errors are the extracts' business.
    """
    communal_share, moved_share, twins_rate = rates.communal, rates.moved, rates.twins
    junior_rate, double_barrelled_rate, goes_by_middle_rate = rates.junior, rates.double_barrelled, rates.goes_by_middle
    pools = name_pools()
    group_names = np.array(list(pools))
    group_p = np.array([share for _, share in pools.values()])

    # Communal establishments: sizes drawn until they hold ~communal_share of people.
    n_communal_target = int(people * communal_share)
    estab_kind, estab_size = [], []
    total = 0
    while total < n_communal_target:
        kind = COMMUNAL_KINDS[rng.choice(len(COMMUNAL_KINDS), p=COMMUNAL_KIND_P)]
        low, high = COMMUNAL_SIZE[kind]
        size = int(min(rng.integers(low, high), n_communal_target - total))
        estab_kind.append(kind)
        estab_size.append(size)
        total += size
    n_private = people - total

    # Private households.
    sizes = rng.choice(np.arange(1, 7), size=int(n_private / 2.2) + 10, p=HOUSEHOLD_SIZE_P)
    cum = np.cumsum(sizes)
    n_households = int(np.searchsorted(cum, n_private) + 1)
    sizes = sizes[:n_households]
    sizes[-1] -= cum[n_households - 1] - n_private
    sizes = sizes[sizes > 0]
    n_households = len(sizes)
    household_type = np.where(
        sizes == 1, "single",
        np.where(rng.random(n_households) < 0.12, "sharers", np.where(rng.random(n_households) < 0.82, "couple", "lone_parent")),
    )
    household = np.repeat(np.arange(n_households), sizes)
    position = pd.Series(household).groupby(household).cumcount().to_numpy()
    htype = household_type[household]
    role = np.select(
        [position == 0, (htype == "sharers"), (htype == "couple") & (position == 1)],
        ["head", "sharer", "partner"],
        "child",
    ).astype(object)
    role[(htype == "single")] = "head"

    # Establishment members.
    n_estab = len(estab_kind)
    estab_of = np.repeat(np.arange(n_estab), estab_size) if n_estab else np.array([], dtype=int)
    kinds_of = np.array(estab_kind, dtype=object)[estab_of] if n_estab else np.array([], dtype=object)

    n = n_private + len(estab_of)
    person_household = np.concatenate([household, n_households + estab_of]).astype(int)
    roles = np.concatenate([role, np.full(len(estab_of), "resident", dtype=object)])
    kinds = np.concatenate([np.full(n_private, "private", dtype=object), kinds_of])

    # Ages: heads of families are of parenting age; children fit under their parents.
    has_children = np.zeros(n_households, dtype=bool)
    np.logical_or.at(has_children, household, role == "child")
    head_age = np.where(has_children, rng.integers(22, 56, n_households), _ages(rng, n_households))
    age = np.empty(n, dtype=int)
    hh_age = head_age[household]
    private_age = np.select(
        [role == "head", role == "partner", role == "sharer"],
        [hh_age, np.clip(hh_age + rng.normal(0, 3, n_private).round().astype(int), 18, 99), rng.integers(18, 45, n_private)],
        rng.integers(0, 18, n_private),
    )
    is_child = role == "child"
    private_age[is_child] = np.minimum(private_age[is_child], np.maximum(hh_age[is_child] - 18, 0))
    age[:n_private] = private_age
    for kind in COMMUNAL_KINDS:
        mask = kinds == kind
        low, high = COMMUNAL_AGE[kind]
        age[mask] = rng.integers(low, high, mask.sum())

    # Sex: couples are mostly mixed-sex.
    female = rng.random(n) < 0.51
    partner = roles == "partner"
    head_female = np.zeros(n_households + n_estab, dtype=bool)
    head_female[person_household[roles == "head"]] = female[roles == "head"]
    same_sex = rng.random(n) < 0.04
    female[partner] = np.where(same_sex[partner], head_female[person_household[partner]], ~head_female[person_household[partner]])

    # Naming tradition: households share one; communal residents each have their own.
    unit_group = _choice(rng, group_names, group_p, n_households + n_estab)
    group = unit_group[person_household]
    individual = np.isin(roles, ["sharer", "resident"])
    group[individual] = _choice(rng, group_names, group_p, int(individual.sum()))
    first = _sample_names(rng, group, female, "first")
    has_middle = rng.random(n) < 0.62
    middle = np.where(has_middle, _sample_names(rng, group, female, "first"), None).astype(object)
    two_middle = has_middle & (rng.random(n) < 0.15)
    middle[two_middle] = middle[two_middle] + " " + _sample_names(rng, group[two_middle], female[two_middle], "first")
    own_surname = _sample_names(rng, group, female, "surname")
    household_surname = own_surname[np.searchsorted(person_household, np.arange(n_households + n_estab)).clip(0, n - 1)]

    double = rng.random(n_households + n_estab) < double_barrelled_rate
    second = _sample_names(rng, unit_group, np.zeros(len(unit_group), dtype=bool), "surname")
    joiner = np.where(rng.random(len(unit_group)) < 0.8, "-", " ")
    household_surname = np.where(double, household_surname + joiner + second, household_surname)

    surname = own_surname.copy()
    family = ~individual
    surname[family] = household_surname[person_household[family]]
    maiden = np.full(n, None, dtype=object)
    married = partner & (rng.random(n) < 0.7)
    took_name = married & np.where(female, rng.random(n) < 0.9, rng.random(n) < 0.05)
    maiden[took_name] = own_surname[took_name]
    # Widowed and divorced women living alone or as lone parents mostly kept a married name.
    unit_has_partner = np.zeros(n_households + n_estab, dtype=bool)
    unit_has_partner[person_household[partner]] = True
    once_married = (roles == "head") & female & (age >= 30) & ~unit_has_partner[person_household] & (rng.random(n) < 0.5)
    maiden[once_married] = _sample_names(rng, group[once_married], female[once_married], "surname")
    kept_own = partner & ~took_name
    surname[kept_own] = own_surname[kept_own]
    # Children of unmarried couples sometimes carry both parents' surnames.
    partner_surname = np.full(n_households + n_estab, None, dtype=object)
    partner_surname[person_household[kept_own]] = own_surname[kept_own]
    is_child_all = roles == "child"
    ps = partner_surname[person_household]
    hyphen_kids = is_child_all & (ps != None) & (rng.random(n) < 0.2)  # noqa: E711
    surname[hyphen_kids] = surname[hyphen_kids] + "-" + ps[hyphen_kids].astype(str)

    for tradition, womens in WOMENS_SURNAMES.items():
        own = (group == tradition) & female & (age >= 16) & (rng.random(n) < 0.3)
        surname[own] = np.array(womens, dtype=object)[rng.integers(0, len(womens), own.sum())]

    # A son named after his father (and a daughter after her mother, more rarely).
    head_idx = np.zeros(n_households + n_estab, dtype=int)
    head_idx[person_household[roles == "head"]] = np.flatnonzero(roles == "head")
    # Communal residents have no household head: they are their own "parent" (nobody to copy from).
    parent = np.where(roles == "resident", np.arange(n), head_idx[person_household])
    junior = is_child_all & (female == female[parent]) & (rng.random(n) < junior_rate * np.where(female, 0.3, 1.7))
    first[junior] = first[parent[junior]]
    middle[junior] = middle[parent[junior]]

    # Dates of birth.
    dob = (reference - pd.to_timedelta(age * 365.25 + rng.integers(0, 365, n), unit="D")).normalize()
    dob = dob.to_numpy().astype("datetime64[D]")
    # Twins: the next child in the family shares the birthday of the previous one.
    prev_same_household = np.r_[False, (person_household[1:] == person_household[:-1]) & is_child_all[1:] & is_child_all[:-1]]
    twin = prev_same_household & (rng.random(n) < twins_rate)
    twin_idx = np.flatnonzero(twin)
    dob[twin_idx] = dob[twin_idx - 1]
    age[twin_idx] = age[twin_idx - 1]
    # Identical-looking twins: one in five twin pairs get near-identical names.
    similar = twin_idx[rng.random(len(twin_idx)) < 0.2]
    middle[similar] = middle[similar - 1]

    # Addresses: one per household / establishment, plus spare ones movers came from.
    n_units = n_households + n_estab
    addresses = make_addresses(int(n_units * 1.15) + 5, rng)
    unit_address = rng.permutation(len(addresses))[:n_units]
    estab_addr = unit_address[n_households:]
    if n_estab:
        kinds_e = np.array(estab_kind, dtype=object)
        addresses.loc[estab_addr, "kind"] = kinds_e
        names = np.array([COMMUNAL_NAMES[k][rng.integers(0, len(COMMUNAL_NAMES[k]))] for k in estab_kind], dtype=object)
        addresses.loc[estab_addr, "building"] = names
        addresses.loc[estab_addr, "flat"] = None
    address_id = unit_address[person_household]
    # Communal residents sometimes have a room or flat number; HMOs mostly do not.
    room = np.full(n, None, dtype=object)
    in_estab = kinds != "private"
    with_room = in_estab & (rng.random(n) < np.where(kinds == "hmo", 0.15, 0.35))
    room[with_room] = np.where(kinds[with_room] == "student_hall", "Room ", "Flat ") + rng.integers(1, 200, with_room.sum()).astype(str)

    # Movers: whole households that lived elsewhere in the borough before.
    moved_unit = rng.random(n_units) < moved_share
    previous_address = np.where(moved_unit, rng.integers(0, len(addresses), n_units), -1)[person_household]

    # Identifiers.
    nhs = ids.nhs_numbers(n, rng)
    nino = np.where(age >= 16, ids.ni_numbers(n, rng), None).astype(object)
    school_age = (age >= 4) & (age <= 18)
    upn = np.full(n, None, dtype=object)
    upn[school_age] = ids.upn_numbers(int(school_age.sum()), rng, LA_CODE)
    phone = np.where((age >= 14) & (rng.random(n) < 0.75), ids.mobile_numbers(n, rng), None).astype(object)

    email = _emails(first, surname, age, rng)

    deceased = (age >= 75) & (rng.random(n) < 0.04)
    title = np.select(
        [age < 16, ~female, took_name | (female & (age >= 60) & (rng.random(n) < 0.6)), female & (age < 30)],
        [None, "Mr", "Mrs", "Miss"],
        "Ms",
    ).astype(object)
    doctor = (age >= 28) & (rng.random(n) < 0.01)
    title[doctor] = "Dr"

    people_frame = pd.DataFrame(
        {
            "person_id": np.char.add("P", np.char.zfill(np.arange(n).astype(str), 8)).astype(object),
            "household": person_household,
            "head_index": parent,
            "role": roles,
            "kind": kinds,
            "group": group,
            "female": female,
            "age": age,
            "dob": dob,
            "title": title,
            "first_name": first,
            "middle_names": middle,
            "last_name": surname,
            "maiden_name": maiden,
            "goes_by_middle": has_middle & (rng.random(n) < goes_by_middle_rate),
            "junior": junior,
            "twin": twin,
            "deceased": deceased,
            "address_id": address_id,
            "room": room,
            "previous_address_id": previous_address,
            "nhs_number": nhs,
            "ni_number": nino,
            "upn": upn,
            "phone": phone,
            "email": email,
        }
    )
    return Population(people_frame, addresses, reference)

"""Six council system extracts drawn from one population, each in its own house style.

Every system picks the people it would hold, copies their details with its own errors
(`noise.py`), and writes them with its own column names, record-id format, date format, case
and file type — as real council systems differ:

| system | file | id | holds |
|---|---|---|---|
| council_tax | CSV (UTF-8) | CT00012345 | liable party as free text, address, UPRN, account start, e-billing email; no DOB |
| housing_benefit | Parquet | HB123456/1 | claimant and partner, DOB (date type), NINO, phone, email |
| electoral_register | CSV (cp1252) | KA1-01234 | forename, middle, surname, address, UPRN; DOB for attainers only |
| adult_social_care | CSV (UTF-8 with BOM) | 1234567 | names, previous surname, DOB 05-Mar-1941, NHS number, phone |
| children_services | Excel | C0012345 | child names, DOB, NHS number, UPN for some |
| school_census | CSV | 100234 | pupil names, DOB ISO, UPN |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

from residentview.synthetic import noise
from residentview.synthetic.noise import NoiseRates
from residentview.synthetic.population import Population

# How careful each system is, relative to the catalogue's rates (online self-registration and
# school MIS data are cleaner than free text keyed at a council-tax counter).
SYSTEM_CARE = {
    "council_tax": 1.3,
    "housing_benefit": 0.8,
    "electoral_register": 0.7,
    "adult_social_care": 1.1,
    "children_services": 1.0,
    "school_census": 0.6,
}
ASCII_ONLY = ("council_tax", "school_census")
# Systems that normally hold a date of birth but, at `NoiseRates.dob_withheld`, send it without one.
DOB_WITHHELD_SYSTEMS = ("housing_benefit", "adult_social_care")


# How each system's columns map to residentview's fields: the sources of the config `generate` writes.
SOURCE_CONFIG = {
    "council_tax": {
        "id": "account_ref",
        "fields": {
            "full_name": "liable_party",
            "address": ["addr_line_1", "addr_line_2", "addr_line_3", "addr_line_4"],
            "postcode": "postcode",
            "uprn": "uprn",
            "record_date": {"column": "account_start", "format": "%Y-%m-%d"},
            "email": "ebilling_email",
        },
    },
    "housing_benefit": {
        "id": "person_ref",
        "fields": {
            "title": "title",
            "first_name": "forenames",
            "last_name": "surname",
            "date_of_birth": "dob",
            "ni_number": "nino",
            "address": ["address_1", "address_2", "address_3"],
            "postcode": "post_code",
            "phone": "telephone",
            "email": "email",
            "record_date": "claim_start",
        },
    },
    "electoral_register": {
        "id": "elector_number",
        "encoding": "cp1252",
        "fields": {
            "first_name": "forename",
            "middle_names": "middle_names",
            "last_name": "surname",
            "date_of_birth": {"column": "attainer_dob", "format": "%d/%m/%Y"},
            "address": ["property_name", "street_address", "town"],
            "postcode": "postcode",
            "uprn": "uprn",
        },
    },
    "adult_social_care": {
        "id": "person_id",
        "fields": {
            "first_name": "first_name",
            "last_name": "last_name",
            "previous_last_name": "previous_surname",
            "date_of_birth": {"column": "date_of_birth", "format": "%d-%b-%Y"},
            "sex": "gender",
            "nhs_number": "nhs_number",
            "address": "address",
            "postcode": "postcode",
            "phone": "telephone",
        },
    },
    "children_services": {
        "id": "child_id",
        "sheet": "Children",
        "fields": {
            "first_name": "forename",
            "last_name": "surname",
            "date_of_birth": {"column": "dob", "format": "%d/%m/%Y"},
            "sex": "sex",
            "nhs_number": "nhs_no",
            "address": ["address_line1", "address_line2", "town"],
            "postcode": "postcode",
            "identifiers": {"upn": "upn"},
        },
    },
    "school_census": {
        "id": "pupil_id",
        "fields": {
            "first_name": "legal_forename",
            "middle_names": "middle_names",
            "last_name": "legal_surname",
            "date_of_birth": {"column": "dob", "format": "%Y-%m-%d"},
            "sex": "gender",
            "address": ["address", "town"],
            "postcode": "postcode",
            "identifiers": {"upn": "upn"},
        },
    },
}


def _unique_numbers(n: int, start: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct integers from `start` upward, in random order (ids are not issued in file order)."""
    return rng.permutation(start + np.cumsum(rng.integers(1, 4, n)))


def _text(values) -> pd.Series:
    """Any column as an object Series with a fresh 0..n-1 index (so joins never align on labels)."""
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _join(*parts, sep: str = " ") -> np.ndarray:
    """Join columns element-wise, skipping blanks (vectorised over pandas string columns)."""
    out = None
    for part in parts:
        part = _text(part).fillna("").astype(str)
        if out is None:
            out = part
        else:
            glue = np.where((out != "") & (part != ""), sep, "")
            out = out + glue + part
    return out.where(out != "", None).to_numpy()


def _upper(values) -> np.ndarray:
    return _text(values).str.upper().to_numpy()


def _mangle_case(values: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """All upper or all lower case for a share of records, as keyed in a hurry."""
    series = _text(values)
    draw = rng.random(len(series))
    series = series.where(~(draw < rate / 2), series.str.upper())
    series = series.where(~((draw >= rate / 2) & (draw < rate)), series.str.lower())
    return series.to_numpy()


def _format_date(dates: np.ndarray, fmt: str) -> np.ndarray:
    series = pd.Series(pd.to_datetime(dates))
    return series.dt.strftime(fmt).where(series.notna(), None).to_numpy()


class Extract:
    """One system's view of the chosen people: noisy canonical columns, one row per record.

    `chosen` are row positions in the population (repeats allowed); a share of them is registered
    twice. `stale`, when given, says per chosen record whether the system holds the person's
    previous address (a closed council-tax account) instead of drawing it from the noise rates.
    """

    def __init__(self, population: Population, chosen: np.ndarray, system: str, rates: NoiseRates,
                 rng: np.random.Generator, stale: np.ndarray | None = None):
        rates = rates.scaled(SYSTEM_CARE[system])
        people = population.people
        duplicated = np.flatnonzero(rng.random(len(chosen)) < rates.duplicate)
        index = np.concatenate([chosen, chosen[duplicated]])
        if stale is not None:
            stale = np.concatenate([stale, stale[duplicated]])
        p = people.iloc[index].reset_index(drop=True)
        n = len(p)
        self.system, self.rates, self.n = system, rates, n
        self.person_id = p["person_id"].to_numpy()
        self.female = p["female"].to_numpy()
        self.age = p["age"].to_numpy()
        self.reference = population.reference
        self.deceased = p["deceased"].to_numpy()
        self.title = p["title"].to_numpy()
        self.role = p["role"].to_numpy()
        self.head_person_id = people["person_id"].to_numpy()[p["head_index"].to_numpy()]
        self.is_duplicate = np.arange(n) >= len(chosen)
        self._names(p, rates, rng, ascii_only=system in ASCII_ONLY)
        self.dob = noise.dob_errors(p["dob"].to_numpy(), rates, rng)
        if rates.dob_withheld > 0 and system in DOB_WITHHELD_SYSTEMS:
            withheld = rng.random(n) < rates.dob_withheld
            self.dob = np.where(withheld, np.datetime64("NaT"), self.dob).astype("datetime64[D]")
        self._address(population, p, rates, rng, stale)
        self._identifiers(people, p, rates, rng)

    def _names(self, p: pd.DataFrame, rates: NoiseRates, rng, ascii_only: bool) -> None:
        n = self.n
        first = p["first_name"].to_numpy().copy()
        middle = p["middle_names"].to_numpy().copy()
        last = p["last_name"].to_numpy().copy()

        by_middle = p["goes_by_middle"].to_numpy() & (rng.random(n) < rates.middle_as_first)
        middle_words = _text(middle[by_middle]).str.split(" ", n=1)
        first[by_middle] = middle_words.str[0].to_numpy()
        middle[by_middle] = middle_words.str[1].to_numpy()

        maiden = p["maiden_name"].to_numpy()
        use_maiden = pd.notna(maiden) & (rng.random(n) < rates.maiden_name)
        last[use_maiden] = maiden[use_maiden]

        compound = _text(last).str.contains(r"[- ]", regex=True, na=False).to_numpy() & (rng.random(n) < rates.surname_part)
        parts = _text(last[compound]).str.split(r"[- ]", n=1, regex=True)
        how = rng.integers(0, 4, compound.sum())
        last[compound] = np.select(
            [how == 0, how == 1, how == 2],
            [parts.str[0].to_numpy(), parts.str[1].to_numpy(), _text(last[compound]).str.replace("-", " ").to_numpy()],
            _text(last[compound]).str.replace(r"[- ]", "", regex=True).to_numpy(),
        )

        first = noise.nicknames(first, rng.random(n) < rates.nickname, rng)
        first = noise.typos(first, rng.random(n) < rates.typo, rng)
        last = noise.typos(last, rng.random(n) < rates.typo, rng)
        first = noise.ocr_errors(first, rng.random(n) < rates.ocr, rng)
        last = noise.ocr_errors(last, rng.random(n) < rates.ocr, rng)
        # Hostile damage (each step skipped, drawing nothing, when its rate is 0).
        if rates.heavy_typo > 0:
            first = noise.heavy_typos(first, rng.random(n) < rates.heavy_typo, rng)
            last = noise.heavy_typos(last, rng.random(n) < rates.heavy_typo, rng)
        if rates.name_fragment > 0:
            first = noise.fragments(first, rng.random(n) < rates.name_fragment, rng)
            last = noise.fragments(last, rng.random(n) < rates.name_fragment, rng)
        if rates.name_truncated > 0:
            first = noise.truncate(first, rng.random(n) < rates.name_truncated, rng)
            last = noise.truncate(last, rng.random(n) < rates.name_truncated, rng)
        if ascii_only:
            lose = rng.random(n) < rates.accents_lost
            first, middle, last = (noise.strip_accents(v, lose) for v in (first, middle, last))

        swap = rng.random(n) < rates.name_swap
        first[swap], last[swap] = last[swap], first[swap].copy()
        middle = noise.blank(middle, rng.random(n) < rates.middle_dropped)
        titled = (rng.random(n) < rates.title_in_name) & pd.notna(self.title)
        first[titled] = _join(self.title[titled], first[titled])
        marked = self.deceased & (rng.random(n) < rates.deceased_marker)
        last[marked] = _join(last[marked], np.full(marked.sum(), "(Deceased)", dtype=object))
        self.first, self.middle, self.last = first, middle, last
        # The surname before marriage, when the system also keeps it ("also known as").
        self.former_surname = np.where(use_maiden, None, maiden)

    def _address(self, population: Population, p: pd.DataFrame, rates: NoiseRates, rng, stale) -> None:
        addresses = population.addresses
        current = p["address_id"].to_numpy()
        previous = p["previous_address_id"].to_numpy()
        use_old = (previous >= 0) & (rng.random(self.n) < rates.stale_address)
        if stale is not None:  # the system itself says which records are at the old address
            use_old = stale & (previous >= 0)
        address_id = np.where(use_old, previous, current)
        a = addresses.iloc[address_id].reset_index(drop=True)
        room = np.where(use_old, None, p["room"].to_numpy())
        self.flat = np.where(pd.notna(room), room, a["flat"].to_numpy())
        self.building = a["building"].to_numpy()
        number = a["number"].to_numpy()
        if rates.house_number_error > 0:
            number = noise.house_number_errors(number, rng.random(self.n) < rates.house_number_error, rng)
        self.street_line = _join(number, a["street"])
        self.town = a["town"].to_numpy()
        if rates.town_typo > 0:
            slips = rng.random(self.n) < rates.town_typo
            self.town = noise.typos(self.town, slips, rng)
            self.town = noise.typos(self.town, slips & (rng.random(self.n) < 0.3), rng)  # a second slip
        postcode = noise.typos(a["postcode"].to_numpy(), rng.random(self.n) < rates.postcode_typo, rng)
        if rates.postcode_cut > 0:
            postcode = noise.cut_last_character(postcode, rng.random(self.n) < rates.postcode_cut)
        self.postcode = noise.blank(postcode, rng.random(self.n) < rates.missing)
        if rates.postcode_blank > 0:
            self.postcode = noise.blank(self.postcode, rng.random(self.n) < rates.postcode_blank)
        self.uprn = noise.blank(a["uprn"].to_numpy(), rng.random(self.n) < rates.missing * 2)

    def _identifiers(self, people: pd.DataFrame, p: pd.DataFrame, rates: NoiseRates, rng) -> None:
        head = p["head_index"].to_numpy()
        for column in ("nhs_number", "ni_number", "upn", "phone", "email"):
            values = p[column].to_numpy().copy()
            copied = (p["role"].to_numpy() != "head") & (rng.random(self.n) < rates.copied_identifier)
            values[copied] = people[column].to_numpy()[head[copied]]
            values = noise.one_digit_wrong(values, rng.random(self.n) < rates.identifier_typo, rng)
            values = noise.blank(values, rng.random(self.n) < rates.missing)
            setattr(self, column, values)

    def truth(self, record_ids: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"source": self.system, "record_id": record_ids.astype(str), "person_id": self.person_id})


# The six systems ---------------------------------------------------------------------------
#
# Each system is three small functions: who it could hold (`*_eligible`), who it does hold
# (`*_holders`: every draw that picks people) and their records (`*_records`: the noisy copy in
# the system's style, ids numbered above `numbered_after`). `generate` runs holders then records;
# a later extract (`later.py`) renders records only for the people whose record changed or is new.

Holders = tuple[np.ndarray, Optional[np.ndarray]]  # chosen population rows; per row, held at the old address?
Records = tuple[pd.DataFrame, pd.DataFrame]  # the extract and its truth (source, record_id, person_id)


def council_tax_eligible(people: pd.DataFrame) -> np.ndarray:
    """The liable party: a private household's head, or one tenant of a house in multiple occupation."""
    return (((people["role"] == "head") & (people["kind"] == "private"))
            | ((people["kind"] == "hmo") & ~people["household"].duplicated())).to_numpy()


def council_tax_holders(pop: Population, rng) -> Holders:
    people = pop.people
    liable = np.flatnonzero(council_tax_eligible(people))
    # A mover also still has the closed account at the address they left.
    movers = liable[people["previous_address_id"].to_numpy()[liable] >= 0]
    old_accounts = movers[rng.random(len(movers)) < 0.6]
    chosen = np.concatenate([liable, old_accounts])
    stale = np.r_[np.zeros(len(liable), bool), np.ones(len(old_accounts), bool)]
    return chosen, stale


def council_tax_records(pop: Population, chosen: np.ndarray, rates: NoiseRates, rng,
                        stale: Optional[np.ndarray] = None, numbered_after: int = 100000) -> Records:
    ex = Extract(pop, chosen, "council_tax", rates, rng, stale=stale)
    first_initial = _text(ex.first).str[:1]
    middle_initial = _text(ex.middle).str[:1]
    surname_upper = _upper(ex.last)
    style = rng.choice(5, ex.n, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    liable_party = np.select(
        [style == 0, style == 1, style == 2, style == 3],
        [
            _join(_text(surname_upper).add(","), ex.first, middle_initial),          # SMITH, John A
            _join(ex.title, first_initial, ex.last),                                   # Mr J Smith
            _join(ex.title, ex.first, ex.last),                                        # Mrs Jane Smith
            _upper(_join(ex.first, ex.middle, ex.last)),                               # JOHN ANDREW SMITH
        ],
        _join(ex.first, ex.last),                                                       # Jane Smith
    )
    exors = ex.deceased & (rng.random(ex.n) < 0.7)
    liable_party[exors] = _join(np.full(exors.sum(), "Exors of", dtype=object), _join(ex.title[exors], first_initial[exors], ex.last[exors]))
    # An account opens once its holder is an adult: between their 18th birthday (or April 1993,
    # when council tax began) and today.
    adult = ex.reference - pd.to_timedelta((ex.age - 18).clip(min=0) * 365.25, unit="D")
    earliest = np.maximum(adult.to_numpy(), np.datetime64("1993-04-01"))
    span = (ex.reference.to_datetime64() - earliest).astype("timedelta64[D]").astype(int).clip(min=1)
    start = pd.DatetimeIndex(earliest) + pd.to_timedelta((rng.random(ex.n) * span).astype(int), unit="D")
    ids = np.char.add("CT", np.char.zfill(_unique_numbers(ex.n, numbered_after, rng).astype(str), 8))
    frame = pd.DataFrame({
        "account_ref": ids,
        "liable_party": liable_party,
        "addr_line_1": _upper(_join(ex.flat, ex.building, sep=", ")),
        "addr_line_2": _upper(ex.street_line),
        "addr_line_3": _upper(ex.town),
        "addr_line_4": np.where(rng.random(ex.n) < 0.3, "WEST YORKSHIRE", ""),
        "postcode": ex.postcode,
        "uprn": ex.uprn,
        "account_start": start.strftime("%Y-%m-%d"),
        "ebilling_email": np.where(rng.random(ex.n) < 0.35, ex.email, None),
        "band": np.array(list("ABCDEFGH"))[rng.choice(8, ex.n, p=[0.35, 0.2, 0.18, 0.1, 0.08, 0.05, 0.03, 0.01])],
    })
    return frame, ex.truth(ids)


def housing_benefit_eligible(people: pd.DataFrame) -> np.ndarray:
    """A claimant or their partner in a private household, or anyone in a hostel or HMO."""
    role, kind = people["role"].to_numpy(), people["kind"].to_numpy()
    return (np.isin(role, ["head", "partner"]) & (kind == "private")) | np.isin(kind, ["hostel", "hmo"])


def housing_benefit_holders(pop: Population, rng) -> Holders:
    people = pop.people
    role, kind, age = people["role"].to_numpy(), people["kind"].to_numpy(), people["age"].to_numpy()
    household = people["household"].to_numpy()
    n_units = household.max() + 1
    has_child = np.zeros(n_units, bool)
    np.logical_or.at(has_child, household, role == "child")
    has_partner = np.zeros(n_units, bool)
    np.logical_or.at(has_partner, household, role == "partner")
    lone_parent = (has_child & ~has_partner)[household]
    alone = ~has_partner[household]
    claim_p = np.where(lone_parent, 0.5, np.where(alone & (age >= 65), 0.25, 0.08))
    claims = (rng.random(len(people)) < claim_p) & (role == "head") & (kind == "private")
    claims |= (kind == "hostel") & (rng.random(len(people)) < 0.6)
    claims |= (kind == "hmo") & (rng.random(len(people)) < 0.3)
    claiming_household = np.zeros(n_units, bool)
    claiming_household[household[claims & (role == "head")]] = True
    partners = (role == "partner") & claiming_household[household]
    chosen = np.flatnonzero(claims | partners)
    return chosen, None


def housing_benefit_records(pop: Population, chosen: np.ndarray, rates: NoiseRates, rng,
                            stale: Optional[np.ndarray] = None, numbered_after: int = 200000) -> Records:
    ex = Extract(pop, chosen, "housing_benefit", rates, rng, stale=stale)
    # Claimant and partner share a claim; a duplicate registration is a second, separate claim.
    claimant = np.where(ex.role == "partner", ex.head_person_id, ex.person_id).astype(str)
    claim_key = np.char.add(claimant, np.where(ex.is_duplicate, ":again", ""))
    keys, claim_index = np.unique(claim_key, return_inverse=True)
    claim_numbers = np.char.add("HB", np.char.zfill(_unique_numbers(len(keys), numbered_after, rng).astype(str), 6))
    claim_no = claim_numbers[claim_index]
    is_partner = ex.role == "partner"
    ids = np.char.add(claim_no, np.where(is_partner, "/2", "/1"))
    frame = pd.DataFrame({
        "person_ref": ids,
        "claim_no": claim_no,
        "role": np.where(is_partner, "PARTNER", "CLAIMANT"),
        "title": _upper(ex.title),
        "forenames": _upper(_join(ex.first, ex.middle)),
        "surname": _upper(ex.last),
        "dob": pd.to_datetime(noise.blank(ex.dob.astype(object), rng.random(ex.n) < ex.rates.missing / 3)).date,
        "nino": _nino_style(ex.ni_number, rng),
        "address_1": _upper(_join(ex.flat, ex.building, ex.street_line)),
        "address_2": _upper(ex.town),
        "address_3": None,
        "post_code": ex.postcode,
        "telephone": np.where(rng.random(ex.n) < 0.6, ex.phone, None),
        "email": np.where(rng.random(ex.n) < 0.5, _text(ex.email).str.upper().to_numpy(), None),
        "claim_start": (ex.reference - pd.to_timedelta(rng.integers(30, 4000, ex.n), unit="D")).date,
    })
    frame["dob"] = frame["dob"].where(pd.notna(frame["dob"]), None)
    return frame, ex.truth(ids)


def _nino_style(values: np.ndarray, rng) -> np.ndarray:
    """NI numbers as keyed: AB123456C, AB 12 34 56 C, or lower case."""
    series = _text(values)
    spaced = series.str.replace(r"^(..)(..)(..)(..)(.)$", r"\1 \2 \3 \4 \5", regex=True)
    draw = rng.random(len(series))
    return np.select([draw < 0.25, draw < 0.3], [spaced.to_numpy(), series.str.lower().to_numpy()], series.to_numpy())


def electoral_register_eligible(people: pd.DataFrame) -> np.ndarray:
    """Everyone aged 16 or over (attainers register before they can vote)."""
    return people["age"].to_numpy() >= 16


def electoral_register_holders(pop: Population, rng) -> Holders:
    people = pop.people
    kind = people["kind"].to_numpy()
    register_p = np.select([kind == "student_hall", kind == "hostel", kind == "care_home"], [0.7, 0.35, 0.5], 0.9)
    alive = ~people["deceased"].to_numpy() | (rng.random(len(people)) < 0.3)
    chosen = np.flatnonzero(electoral_register_eligible(people) & alive & (rng.random(len(people)) < register_p))
    return chosen, None


def electoral_register_records(pop: Population, chosen: np.ndarray, rates: NoiseRates, rng,
                               stale: Optional[np.ndarray] = None, numbered_after: int = 1) -> Records:
    ex = Extract(pop, chosen, "electoral_register", rates, rng, stale=stale)
    attainer = ex.age < 18
    dob = np.where(attainer | (rng.random(ex.n) < 0.03), _format_date(ex.dob, "%d/%m/%Y"), None)
    district = np.char.add(np.array(["KA", "KB", "LA", "LB", "MA", "MC"])[rng.integers(0, 6, ex.n)], rng.integers(1, 5, ex.n).astype(str))
    ids = np.char.add(np.char.add(district, "-"), np.char.zfill(_unique_numbers(ex.n, numbered_after, rng).astype(str), 5))
    frame = pd.DataFrame({
        "elector_number": ids,
        "surname": ex.last,
        "forename": ex.first,
        "middle_names": ex.middle,
        "attainer_dob": dob,
        "property_name": _join(ex.flat, ex.building, sep=", "),
        "street_address": ex.street_line,
        "town": ex.town,
        "postcode": ex.postcode,
        "uprn": ex.uprn,
        "franchise": np.where(rng.random(ex.n) < 0.95, "", "G"),
    })
    for column in ("surname", "forename"):
        frame[column] = _mangle_case(frame[column].to_numpy(), ex.rates.case_mangled, rng)
    return frame, ex.truth(ids)


def adult_social_care_eligible(people: pd.DataFrame) -> np.ndarray:
    """Adults, and everyone in a care home."""
    return (people["age"].to_numpy() >= 18) | (people["kind"].to_numpy() == "care_home")


def adult_social_care_holders(pop: Population, rng) -> Holders:
    people = pop.people
    age, kind = people["age"].to_numpy(), people["kind"].to_numpy()
    care_p = np.select([kind == "care_home", age >= 75, age >= 18], [0.95, 0.25, 0.02], 0.0)
    chosen = np.flatnonzero(rng.random(len(people)) < care_p)
    return chosen, None


def adult_social_care_records(pop: Population, chosen: np.ndarray, rates: NoiseRates, rng,
                              stale: Optional[np.ndarray] = None, numbered_after: int = 1_000_000) -> Records:
    ex = Extract(pop, chosen, "adult_social_care", rates, rng, stale=stale)
    ids = _unique_numbers(ex.n, numbered_after, rng).astype(str)
    nhs = _text(ex.nhs_number)
    nhs = nhs.where(rng.random(ex.n) < 0.6, nhs.str.replace(r"^(...)(...)(....)$", r"\1 \2 \3", regex=True))
    phone = _text(ex.phone)
    phone = phone.where(rng.random(ex.n) < 0.5, phone.str.replace(r"^0(\d{4})(\d{6})$", r"+44 \1 \2", regex=True))
    frame = pd.DataFrame({
        "person_id": ids,
        "first_name": _mangle_case(ex.first, ex.rates.case_mangled, rng),
        "last_name": _mangle_case(ex.last, ex.rates.case_mangled, rng),
        "previous_surname": np.where(rng.random(ex.n) < 0.5, ex.former_surname, None),
        "date_of_birth": _format_date(noise.blank(ex.dob.astype(object), rng.random(ex.n) < ex.rates.missing), "%d-%b-%Y"),
        "gender": np.where(ex.female, "Female", "Male"),
        "nhs_number": nhs.to_numpy(),
        "address": _join(ex.flat, ex.building, ex.street_line, ex.town, sep=", "),
        "postcode": ex.postcode,
        "telephone": phone.to_numpy(),
    })
    return frame, ex.truth(ids)


def children_services_eligible(people: pd.DataFrame) -> np.ndarray:
    """Children under 18."""
    return people["age"].to_numpy() < 18


def children_services_holders(pop: Population, rng) -> Holders:
    people = pop.people
    chosen = np.flatnonzero(children_services_eligible(people) & (rng.random(len(people)) < 0.05))
    return chosen, None


def children_services_records(pop: Population, chosen: np.ndarray, rates: NoiseRates, rng,
                              stale: Optional[np.ndarray] = None, numbered_after: int = 10000) -> Records:
    ex = Extract(pop, chosen, "children_services", rates, rng, stale=stale)
    ids = np.char.add("C", np.char.zfill(_unique_numbers(ex.n, numbered_after, rng).astype(str), 7))
    frame = pd.DataFrame({
        "child_id": ids,
        "forename": ex.first,
        "surname": ex.last,
        "dob": _format_date(noise.blank(ex.dob.astype(object), rng.random(ex.n) < ex.rates.missing), "%d/%m/%Y"),
        "sex": np.where(ex.female, "F", "M"),
        "nhs_no": ex.nhs_number,
        "upn": np.where(rng.random(ex.n) < 0.4, ex.upn, None),
        "address_line1": _join(ex.flat, ex.building, ex.street_line, sep=", "),
        "address_line2": None,
        "town": ex.town,
        "postcode": ex.postcode,
    })
    return frame, ex.truth(ids)


def school_census_eligible(people: pd.DataFrame) -> np.ndarray:
    """Children of school age, 4 to 18."""
    age = people["age"].to_numpy()
    return (age >= 4) & (age <= 18)


def school_census_holders(pop: Population, rng) -> Holders:
    people = pop.people
    age = people["age"].to_numpy()
    school_p = np.select([(age >= 4) & (age <= 16), (age >= 17) & (age <= 18)], [0.96, 0.4], 0.0)
    chosen = np.flatnonzero(rng.random(len(people)) < school_p)
    return chosen, None


def school_census_records(pop: Population, chosen: np.ndarray, rates: NoiseRates, rng,
                          stale: Optional[np.ndarray] = None, numbered_after: int = 100000) -> Records:
    ex = Extract(pop, chosen, "school_census", rates, rng, stale=stale)
    ids = _unique_numbers(ex.n, numbered_after, rng).astype(str)
    frame = pd.DataFrame({
        "pupil_id": ids,
        "upn": ex.upn,
        "legal_forename": ex.first,
        "middle_names": ex.middle,
        "legal_surname": ex.last,
        "dob": _format_date(ex.dob, "%Y-%m-%d"),
        "gender": np.where(ex.female, "F", "M"),
        "address": _join(ex.flat, ex.building, ex.street_line, sep=", "),
        "town": ex.town,
        "postcode": ex.postcode,
    })
    return frame, ex.truth(ids)




@dataclass
class SystemRecords:
    """One system's records (frame), their truth row by row, and the order its file lists them in."""

    frame: pd.DataFrame
    truth: pd.DataFrame
    order: np.ndarray
    # Later extracts only: person_id, event — the life events this system's records show
    # (a record rewritten or opened because the system heard of it). The rest it lags behind on.
    shows: Optional[pd.DataFrame] = None


@dataclass(frozen=True)
class System:
    """One council system: who it could hold, who it holds, and how it writes their records."""

    eligible: Callable[[pd.DataFrame], np.ndarray]
    holders: Callable[[Population, np.random.Generator], Holders]
    records: Callable[..., Records]

    def __call__(self, pop: Population, rates: NoiseRates, rng) -> Records:
        chosen, stale = self.holders(pop, rng)
        return self.records(pop, chosen, rates, rng, stale=stale)


SYSTEMS = {
    "council_tax": System(council_tax_eligible, council_tax_holders, council_tax_records),
    "housing_benefit": System(housing_benefit_eligible, housing_benefit_holders, housing_benefit_records),
    "electoral_register": System(electoral_register_eligible, electoral_register_holders, electoral_register_records),
    "adult_social_care": System(adult_social_care_eligible, adult_social_care_holders, adult_social_care_records),
    "children_services": System(children_services_eligible, children_services_holders, children_services_records),
    "school_census": System(school_census_eligible, school_census_holders, school_census_records),
}

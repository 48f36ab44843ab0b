"""Word lists the generator samples from: Faker's locale data plus a few curated UK lists.

Faker is used only to *fetch* its lists (once, cached); sampling is numpy. Weights give the
realistic skew of a UK population: a handful of surnames (Smith, Jones, Khan…) are far more common
than the long tail, and a borough's residents come from several naming traditions.

The nickname list here is written by hand from UK usage on purpose, not taken from the
`nicknames` package the matcher may use: a generator that shares the matcher's tables would make
the matcher look better than it is.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def _person_provider(locale: str):
    return importlib.import_module(f"faker.providers.person.{locale}").Provider


@dataclass(frozen=True)
class NamePool:
    """Names of one naming tradition with sampling weights (each sums to 1)."""

    male: np.ndarray
    male_p: np.ndarray
    female: np.ndarray
    female_p: np.ndarray
    surnames: np.ndarray
    surnames_p: np.ndarray


def _zipf(n: int, exponent: float = 1.0) -> np.ndarray:
    """Rank-frequency weights: the first names listed are the most common."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _unique(names) -> np.ndarray:
    return np.array(list(dict.fromkeys(str(n).strip() for n in names if str(n).strip())), dtype=object)


def _pool(male, female, surnames, surname_p=None, first_exponent=0.9) -> NamePool:
    male, female = _unique(male), _unique(female)
    if surname_p is None:
        surnames = _unique(surnames)
        surname_p = _zipf(len(surnames), 0.9)
    else:  # a surname listed twice keeps its first (head-of-distribution) weight
        weights = {}
        for name, weight in zip(surnames, surname_p):
            weights.setdefault(str(name).strip(), weight)
        surnames = np.array(list(weights), dtype=object)
        surname_p = np.array(list(weights.values()), dtype=float)
    return NamePool(
        male, _zipf(len(male), first_exponent), female, _zipf(len(female), first_exponent),
        surnames, surname_p / surname_p.sum(),
    )


# Names British systems meet and mangle: accents that cp1252 can hold, and Welsh/Irish spellings.
ACCENTED_FEMALE = ("Siân", "Zoë", "Chloë", "Renée", "Anaïs", "Inès", "Rhiannon", "Niamh", "Aoife", "Siobhán", "Lowri", "Ffion")
ACCENTED_MALE = ("Dafydd", "Rhys", "Seán", "Noël", "José", "André", "François", "Jérôme", "Björn", "Ciarán", "Eóin", "Iwan")

SOUTH_ASIAN_MUSLIM_MALE = ("Mohammed", "Muhammad", "Mohammad", "Ahmed", "Ali", "Hassan", "Imran", "Bilal", "Omar", "Yusuf", "Tariq", "Asif", "Zain", "Ibrahim", "Hamza", "Usman", "Faisal", "Adnan", "Shahid", "Abdul")
SOUTH_ASIAN_MUSLIM_FEMALE = ("Fatima", "Aisha", "Ayesha", "Maryam", "Zainab", "Khadija", "Nadia", "Saima", "Shazia", "Sana", "Amina", "Rukhsana", "Nasreen", "Samina", "Hafsa", "Safia")
MUSLIM_SURNAMES = ("Khan", "Ali", "Ahmed", "Hussain", "Rahman", "Akhtar", "Iqbal", "Mahmood", "Islam", "Uddin", "Miah", "Shah", "Chaudhry", "Malik", "Butt", "Raza", "Aslam", "Bashir", "Hussein", "Mohammed", "Rashid", "Sheikh", "Qureshi", "Javed")
INDIAN_SURNAMES = ("Patel", "Singh", "Kaur", "Sharma", "Gill", "Sandhu", "Mistry", "Parmar", "Chauhan", "Kumar", "Lal", "Bains")
# Many Bangladeshi and Pakistani women carry Begum or Bibi rather than the family surname.
WOMENS_SURNAMES = {"south_asian_muslim": ("Begum", "Bibi")}
POLISH_SURNAMES_M = ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Kwiatkowski", "Krawczyk", "Piotrowski", "Grabowski", "Nowakowski", "Pawłowski")
POLISH_FEMALE = ("Anna", "Katarzyna", "Małgorzata", "Agnieszka", "Magdalena", "Joanna", "Monika", "Ewa", "Karolina", "Aleksandra", "Natalia", "Zuzanna")

# Hand-written from UK usage (see module docstring). Formal name -> forms it appears as.
NICKNAMES = {
    "William": ("Bill", "Will", "Billy", "Liam"), "Margaret": ("Peggy", "Maggie", "Meg", "Margo"),
    "Robert": ("Bob", "Rob", "Bobby"), "Richard": ("Dick", "Rich", "Ricky"), "James": ("Jim", "Jimmy", "Jamie"),
    "Elizabeth": ("Liz", "Beth", "Betty", "Lizzie"), "Catherine": ("Cathy", "Kate", "Kath"),
    "Katherine": ("Kate", "Kathy", "Katie"), "Christopher": ("Chris", "Kit"), "Christine": ("Chris", "Chrissie"),
    "Thomas": ("Tom", "Tommy"), "Michael": ("Mike", "Mick", "Micky"), "Anthony": ("Tony", "Ant"),
    "Edward": ("Ed", "Eddie", "Ted", "Ned"), "Daniel": ("Dan", "Danny"), "David": ("Dave", "Davy"),
    "Stephen": ("Steve",), "Steven": ("Steve",), "Andrew": ("Andy", "Drew"), "Jonathan": ("Jon", "Jonny"),
    "Matthew": ("Matt",), "Nicholas": ("Nick", "Nicky"), "Patrick": ("Pat", "Paddy"), "Peter": ("Pete",),
    "Samuel": ("Sam", "Sammy"), "Joseph": ("Joe", "Joey"), "Benjamin": ("Ben", "Benny"), "Alexander": ("Alex", "Sandy"),
    "Frederick": ("Fred", "Freddie"), "Henry": ("Harry", "Hal"), "John": ("Jack", "Johnny"), "Charles": ("Charlie", "Chas", "Chuck"),
    "Susan": ("Sue", "Susie"), "Jennifer": ("Jenny", "Jen"), "Rebecca": ("Becky", "Becca"), "Deborah": ("Debbie", "Debs"),
    "Victoria": ("Vicky", "Tori"), "Jacqueline": ("Jackie",), "Patricia": ("Pat", "Trish", "Patsy"), "Barbara": ("Babs",),
    "Dorothy": ("Dot", "Dolly"), "Mary": ("Molly", "Polly"), "Sarah": ("Sally",), "Helen": ("Nell",), "Eleanor": ("Ellie", "Nell"),
    "Abigail": ("Abbie", "Abby"), "Samantha": ("Sam", "Sammie"), "Alexandra": ("Alex", "Lexi"), "Kimberley": ("Kim",),
    "Nicola": ("Nicky", "Nikki"), "Gemma": ("Gem",), "Josephine": ("Jo", "Josie"), "Joanne": ("Jo",), "Amanda": ("Mandy",),
    "Kenneth": ("Ken", "Kenny"), "Leonard": ("Len", "Lenny"), "Terence": ("Terry",), "Raymond": ("Ray",), "Ronald": ("Ron", "Ronnie"),
    "Donald": ("Don",), "Gerald": ("Gerry",), "Lawrence": ("Larry", "Laurie"), "Timothy": ("Tim",), "Gregory": ("Greg",),
    "Philip": ("Phil",), "Mohammed": ("Mo",), "Muhammad": ("Mohammed", "Mohamed"), "Aleksandra": ("Ola",), "Katarzyna": ("Kasia",),
    "Małgorzata": ("Gosia",), "Oluwaseun": ("Seun",), "Abimbola": ("Bimbo",),
}

COMMUNAL_NAMES = {
    "care_home": ("Oakwood Care Home", "Beech House Nursing Home", "The Laurels Residential Home", "Meadowbank Care Centre", "St Anne's Nursing Home", "Willow Court Care Home"),
    "student_hall": ("Albert Hall of Residence", "Clarendon Student Village", "Victoria Halls", "Kingsway Student Residence", "Parkside Halls"),
    "hostel": ("St Mungo's Hostel", "Riverside House Hostel", "The Salvation Army Lifehouse", "Hope House", "Foyer Young People's Hostel"),
    "hmo": (None,),
}

STREET_TYPES = ("Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Gardens", "Crescent", "Grove", "Place", "Terrace", "Court", "Walk", "Hill", "Rise", "Mews", "Parade", "View", "Green")
STREET_TYPE_P = _zipf(len(STREET_TYPES), 1.0)
STREET_STEMS_EXTRA = ("Church", "Station", "Mill", "Park", "High", "Victoria", "Albert", "Queens", "Kings", "Manor", "Chapel", "School", "Hollin", "Beech", "Oak", "Elm", "Ash", "Willow", "Meadow", "Springfield", "Westfield", "Moor", "Bridge", "Castle", "Farm", "Orchard", "Grange", "Valley", "Windsor", "York")
HOUSE_NAMES = ("Rose Cottage", "The Old Rectory", "Ivy House", "The Cottage", "Orchard House", "Hillside", "The Willows", "Fairview")
TOWN_NAMES = ("Brackenfield", "Holmbury", "Cresswell", "Ashby Marsh", "Kirkholme", "Thornley", "Westmoor", "Eastbrook", "Netherton", "Highgate Vale", "Millbridge", "Oldcastle")

# Inward-code letters: the Royal Mail never uses C, I, K, M, O, V there.
INWARD_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


@lru_cache(maxsize=1)
def name_pools() -> dict[str, tuple[NamePool, float]]:
    """Naming traditions of an English borough and the share of households using each."""
    gb = _person_provider("en_GB")
    ie = _person_provider("en_IE")
    surnames = list(gb.last_names) + list(ie.last_names)
    # Faker's en_GB weights carry the head of the distribution (Smith ~1.2%); Irish and other
    # British surnames make the long tail a real borough has.
    weights = [w for w in gb.last_names.values()] + [0.004] * len(ie.last_names)
    british = _pool(
        list(gb.first_names_male) + list(ACCENTED_MALE), list(gb.first_names_female) + list(ACCENTED_FEMALE),
        surnames, weights, first_exponent=0.75,
    )
    south_asian_muslim = _pool(SOUTH_ASIAN_MUSLIM_MALE, SOUTH_ASIAN_MUSLIM_FEMALE, MUSLIM_SURNAMES, first_exponent=0.8)
    indian = _person_provider("en_IN")
    south_asian_other = _pool(
        indian.first_names_male, indian.first_names_female, list(INDIAN_SURNAMES) + list(indian.last_names)
    )
    yoruba, twi = _person_provider("yo_NG"), _person_provider("tw_GH")
    west_african = _pool(
        list(yoruba.first_names_male) + list(twi.first_names_male),
        list(yoruba.first_names_female) + list(twi.first_names_female),
        list(yoruba.last_names) + list(twi.last_names),
    )
    polish, romanian = _person_provider("pl_PL"), _person_provider("ro_RO")
    east_european = _pool(
        list(polish.first_names_male) + list(romanian.first_names_male),
        list(POLISH_FEMALE) + list(polish.first_names_female) + list(romanian.first_names_female),
        list(POLISH_SURNAMES_M) + list(romanian.last_names),
    )
    fr, pt, it = _person_provider("fr_FR"), _person_provider("pt_PT"), _person_provider("it_IT")
    south_european = _pool(
        list(fr.first_names_male) + list(pt.first_names_male) + list(it.first_names_male)[:80],
        list(fr.first_names_female) + list(pt.first_names_female) + list(it.first_names_female)[:80],
        list(fr.last_names)[:150] + list(pt.last_names) + list(it.last_names)[:150],
    )
    return {
        "british": (british, 0.80),
        "south_asian_muslim": (south_asian_muslim, 0.06),
        "south_asian_other": (south_asian_other, 0.03),
        "west_african": (west_african, 0.04),
        "east_european": (east_european, 0.04),
        "south_european": (south_european, 0.03),
    }


@lru_cache(maxsize=1)
def nickname_table() -> tuple[np.ndarray, np.ndarray]:
    """(formal, nickname) pairs as two aligned arrays, for a vectorised lookup."""
    formal, short = [], []
    for name, forms in NICKNAMES.items():
        for form in forms:
            formal.append(name)
            short.append(form)
    return np.array(formal, dtype=object), np.array(short, dtype=object)


@lru_cache(maxsize=1)
def place_words() -> tuple[np.ndarray, np.ndarray]:
    """Stems for street names (surnames, first names, places) and the towns of the borough."""
    from faker.providers.address.en_GB import Provider as Address

    gb = _person_provider("en_GB")
    stems = _unique(list(STREET_STEMS_EXTRA) + list(gb.last_names)[:300] + list(gb.first_names_female)[:40])
    towns = _unique(
        list(TOWN_NAMES)
        + [f"{p} {t}" for p in Address.city_prefixes[:4] for t in TOWN_NAMES[:3]]
    )
    return stems, towns

"""Person names as council systems write them, into title / first / middle / last.

Handles "SMITH, John", "Mr John SMITH", "SMITH John" (surname in capitals first), "(Deceased)",
"Exors of", "The late", "The Occupier" and organisations (flagged as not a person: their names
are kept out of person matching), placeholders (UNKNOWN, BABY, TBC…), generational suffixes
(JR, SNR, III) and surname particles (VAN DER BERG, DE LA CRUZ, AL HASSAN). Display values keep
accents; the `*_key` columns are folded to A–Z for matching.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Optional

import jellyfish
import pandas as pd
from nicknames import NickNamer

from residentview.standardise.text import (
    PLACEHOLDER, coalesce, extract, extract_groups, extract_groups_where, fold_accents, map_distinct,
    nullify, per_unique, reasons, replace_where, squash, word_alternation,
)

TITLES = {
    "MR": "MR", "MRS": "MRS", "MS": "MS", "MISS": "MISS", "MX": "MX", "MASTER": "MASTER",
    "DR": "DR", "DOCTOR": "DR", "PROF": "PROF", "PROFESSOR": "PROF",
    "REV": "REV", "REVD": "REV", "REVEREND": "REV", "FR": "FR", "RABBI": "RABBI", "IMAM": "IMAM",
    "SIR": "SIR", "DAME": "DAME", "LADY": "LADY", "LORD": "LORD", "HON": "HON",
    "CLLR": "CLLR", "COUNCILLOR": "CLLR", "CAPT": "CAPT", "CAPTAIN": "CAPT", "LT": "LT",
    "COL": "COL", "SGT": "SGT",
}
GENERATIONAL_SUFFIXES = {
    "JR": "JR", "JNR": "JR", "JUNIOR": "JR", "SR": "SR", "SNR": "SR", "SENIOR": "SR",
    "II": "II", "III": "III", "IV": "IV",
}
_HONOURS = ("OBE", "MBE", "CBE", "KBE", "DBE", "QC", "KC", "MP", "JP", "PHD", "ESQ", "BSC", "MSC", "MA", "BA")
NAME_PLACEHOLDERS = (
    "UNKNOWN", "NOT KNOWN", "NOTKNOWN", "NK", "N K", "N/K", "N/A", "NA", "NONE", "NULL", "BABY",
    "BABY OF", "INFANT", "UNBORN", "NEWBORN", "TBC", "TBA", "TEST", "NO NAME", "NAME UNKNOWN",
    "NOT GIVEN", "NOT STATED", "REFUSED", "ANON", "ANONYMOUS", "UNNAMED", "XX", "XXX", "XXXX",
)
SURNAME_PARTICLES = (
    "VAN", "VON", "DER", "DEN", "DE", "DEL", "DELLA", "DA", "DI", "DOS", "DAS", "DU", "LA", "LE",
    "TER", "TEN", "AL", "EL", "BIN", "BINTI", "BINT", "ABU", "AP", "MC", "MAC",
)
# Whole words that mark an organisation; deliberately not CHURCH, COLLEGE or other surnames.
ORGANISATION_WORDS = (
    "LTD", "LIMITED", "PLC", "LLP", "LLC", "INC", "CIC", "TRUST", "TRUSTEES", "COUNCIL",
    "ASSOCIATION", "HOUSING", "CHARITY", "SOCIETY", "FOUNDATION", "PARTNERSHIP", "COMPANY",
    "SERVICES", "PROPERTIES", "PROPERTY", "HOLDINGS", "GROUP", "INVESTMENTS", "ESTATES",
    "LETTINGS", "MANAGEMENT", "DEVELOPMENTS", "ENTERPRISES", "SOLUTIONS", "UNIVERSITY", "SCHOOL",
    "ACADEMY", "NHS", "SURGERY", "DIOCESE", "BOROUGH", "AUTHORITY", "DEPARTMENT", "MINISTRY", "BANK",
)

_TITLE = word_alternation(TITLES)
_GENERATIONAL = word_alternation(GENERATIONAL_SUFFIXES)
_SUFFIX = word_alternation(list(GENERATIONAL_SUFFIXES) + list(_HONOURS))
_TITLE_WORDS = tuple(TITLES)
_SUFFIX_ENDINGS = tuple(f" {word}" for word in list(GENERATIONAL_SUFFIXES) + list(_HONOURS))
_DECEASED = (
    r"\(\s*DEC(?:EASED|'?D)?\s*\)|\bDECEASED\b|\bDEC'?D\b"
    r"|^(?:THE\s+)?(?:EXORS?|EXECUTORS?|EXECUTRIX|REPS?|(?:PERSONAL\s+)?REPRESENTATIVES?|ADMINISTRATORS?"
    r"|ESTATE)\s+OF\b(?:\s+THE\s+LATE\b)?|^THE\s+LATE\b"
)
_OCCUPIER = r"^(?:THE\s+)?(?:OCCUPIERS?|OWNERS?|RESIDENTS?|HOUSEHOLDERS?|TENANTS?|LEASEHOLDERS?)$"
_ORGANISATION = rf"\b(?:{word_alternation(ORGANISATION_WORDS)})\b|&\s*(?:SONS|CO)\b"
_LETTER = r"[^\W\d_]"
_PLACEHOLDER_RE = rf"^(?:{word_alternation(NAME_PLACEHOLDERS)})$"

NICKNAMES = NickNamer()
MAX_ALIASES = 8

# Short forms in everyday use in the UK that the `nicknames` package (built from American
# records) lacks, and spellings of one name that councils meet daily. Short form -> the names
# it may stand for; read alongside the package, never instead of it.
UK_SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "NIKKI": ("NICOLA", "NICOLE"), "NIKI": ("NICOLA", "NICOLE"), "NICKY": ("NICOLA", "NICOLE", "NICHOLAS"),
    "NICKI": ("NICOLA", "NICOLE"), "LAURIE": ("LAURENCE", "LAWRENCE", "LAURA"),
    "GEM": ("GEMMA",), "MO": ("MOHAMMED", "MAUREEN", "MAURICE"), "MOHD": ("MOHAMMED",), "MD": ("MOHAMMED",),
    "MUHAMMAD": ("MOHAMMED",), "MOHAMMAD": ("MOHAMMED",), "MOHAMED": ("MOHAMMED",), "MUHAMMED": ("MOHAMMED",),
    "MOHAMMOD": ("MOHAMMED",),
    "ALF": ("ALFRED",), "ALFIE": ("ALFRED",), "GAZ": ("GARY", "GARETH"), "BAZ": ("BARRY",),
    "KATH": ("KATHLEEN", "KATHERINE", "KATHRYN", "CATHERINE"), "CATH": ("CATHERINE", "CATHRYN", "KATHERINE"),
    "CHARLIE": ("CHARLOTTE", "CHARLES"), "LOTTIE": ("CHARLOTTE",), "LOTTE": ("CHARLOTTE",),
    "IZZY": ("ISABEL", "ISOBEL", "ISABELLA", "ISABELLE"), "IZZIE": ("ISABEL", "ISOBEL", "ISABELLA", "ISABELLE"),
    "ISSY": ("ISABEL", "ISOBEL", "ISABELLA", "ISABELLE"),
    "BEX": ("REBECCA",), "BECKS": ("REBECCA",), "DEL": ("DEREK",), "TEL": ("TERENCE", "TERRY"),
    "BEV": ("BEVERLEY", "BEVERLY"), "TASH": ("NATASHA",), "STEPH": ("STEPHANIE",), "SOPH": ("SOPHIE", "SOPHIA"),
    "MEL": ("MELANIE", "MELISSA"), "VAL": ("VALERIE",), "VIV": ("VIVIEN", "VIVIENNE", "VIVIAN"),
    "GILL": ("GILLIAN",), "JILL": ("GILLIAN",), "JOSH": ("JOSHUA",), "ZAK": ("ZACHARY",), "ZAC": ("ZACHARY",),
    "FRAN": ("FRANCES", "FRANCESCA"), "FRANKIE": ("FRANCES", "FRANCESCA", "FRANCIS"), "HATTIE": ("HARRIET",),
    "TILLY": ("MATILDA",), "TILLIE": ("MATILDA",), "MILLIE": ("AMELIA", "CAMILLA", "MILDRED"),
    "MILLY": ("AMELIA", "CAMILLA", "MILDRED"), "KEV": ("KEVIN",), "SHAZ": ("SHARON",), "DEBS": ("DEBORAH", "DEBRA"),
    "ROZ": ("ROSALIND", "ROSEMARY"), "ROS": ("ROSALIND", "ROSEMARY"), "DAI": ("DAVID",), "DEWI": ("DAVID",),
    "ANGIE": ("ANGELA",), "LEXI": ("ALEXANDRA", "ALEXIS"), "LEXIE": ("ALEXANDRA", "ALEXIS"),
    "OLLIE": ("OLIVER", "OLIVIA"), "ARCHIE": ("ARCHIBALD",), "PADDY": ("PATRICK",), "JAZ": ("JASMINE",),
    "KASIA": ("KATARZYNA",), "GOSIA": ("MALGORZATA",), "BASIA": ("BARBARA",), "KUBA": ("JAKUB",),
    "TOMEK": ("TOMASZ",), "KRZYS": ("KRZYSZTOF",),
    "SAMMIE": ("SAMANTHA", "SAMUEL"), "NAT": ("NATALIE", "NATASHA", "NATHAN", "NATHANIEL"),
    "MAGS": ("MARGARET",), "DEE": ("DEBORAH", "DENISE", "DEIRDRE"), "STEVIE": ("STEPHEN", "STEVEN", "STEPHANIE"),
    "NELL": ("ELEANOR", "HELEN", "ELLEN"), "ALLY": ("ALISON", "ALEXANDRA", "ALISTAIR"), "STAN": ("STANLEY",),
    "TREV": ("TREVOR",), "KIT": ("CHRISTOPHER", "KATHERINE"), "JACQUI": ("JACQUELINE",),
    "DAVY": ("DAVID",), "DAVEY": ("DAVID",), "DAZ": ("DARREN",), "GAV": ("GAVIN",), "KEZ": ("KERRY",),
    "LOZ": ("LAUREN", "LAURA"), "CAZ": ("CAROLINE", "CAROL"), "NIC": ("NICOLA", "NICHOLAS"),
    "GEORGIE": ("GEORGINA", "GEORGIA"), "MADDIE": ("MADELEINE", "MADISON"), "EVIE": ("EVELYN", "EVA"),
    "DES": ("DESMOND",), "RAB": ("ROBERT",), "JOJO": ("JOANNE", "JOANNA"), "SAL": ("SALLY", "SARAH"),
}
# The other way round, for the initials a full name may be written with (see `alias_initials`).
_UK_FULL_FORMS: dict[str, set[str]] = {}
for _short, _fulls in UK_SHORT_FORMS.items():
    for _full in _fulls:
        if _full != _short:
            _UK_FULL_FORMS.setdefault(_full, set()).add(_short)


@per_unique
def prepare_name(values: pd.Series) -> pd.DataFrame:
    """Upper case name text with markers read off: text, is_deceased, is_person, placeholder.

    Hyphens, apostrophes and commas (for "SURNAME, Forename") are kept; other punctuation and
    digits become spaces. "SMITH John" (surname in capitals, then a mixed-case forename) is
    rewritten as "SMITH, John".
    """
    original = values.str.replace(r"[’‘`´]", "'", regex=True).str.replace(r"\s+", " ", regex=True)
    surname_first = original.str.match(
        rf"^(?!(?:{_TITLE})\b)[A-Z][A-Z'\-]+ [A-Z][a-z]", na=False
    ) & ~original.str.contains(",", regex=False, na=False)
    original = original.where(~surname_first, original.str.replace(" ", ", ", n=1, regex=False))
    text = squash(original)
    written_placeholder = text.str.match(_PLACEHOLDER_RE, na=False)
    deceased = text.str.contains(_DECEASED, na=False)
    text = replace_where(deceased, text, _DECEASED, " ")
    organisation = text.str.contains(_ORGANISATION, na=False)  # before '&' goes with the punctuation
    before = text
    text = text.str.replace(r"[^\w\s',\-]|[\d_]", " ", regex=True)
    # Most names hold no hyphen, apostrophe or comma: these passes run only where they can act.
    hyphen, apostrophe = _holds(text, "-"), _holds(text, "'")
    text = replace_where(hyphen, text, r"\s*-\s*", "-")
    text = replace_where(apostrophe, text, r"\b([OD])'\s+(?=[A-Z])", r"\1'")  # "O' BRIEN"
    text = replace_where(hyphen | apostrophe, text, rf"(?<!{_LETTER})['\-]+|['\-]+(?!{_LETTER})", " ")
    text = replace_where(_holds(text, ","), text, r"\s*,[\s,]*", ", ").str.strip(" ,")
    text = squash(text)
    # ... and again where digits or punctuation went: 'LTD0' is 'LTD', so that cleaning a
    # cleaned name changes nothing.
    changed = text.notna().to_numpy() & (text.to_numpy() != before.to_numpy())
    if changed.any():
        organisation |= text.where(changed).str.contains(_ORGANISATION, na=False)
    occupier = text.str.match(_OCCUPIER, na=False)
    not_person = organisation | occupier
    cleaned_placeholder = text.str.replace(",", "", regex=False).str.match(_PLACEHOLDER_RE, na=False)
    placeholder = written_placeholder | cleaned_placeholder
    return pd.DataFrame({
        "text": nullify(text, placeholder | not_person),
        "is_deceased": deceased,
        "is_person": ~not_person,
        "placeholder": placeholder,
        "present": values.notna(),
        # The word alone ("TENANT", "OCCUPIER"): in a column holding one part of a name it is a
        # surname when the other part holds a forename (JESSE TENANT), see `name_part`.
        "occupier_word": occupier & ~organisation,
        "unmarked_text": text,
    })


def name_part(prepared: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Text and is_person for a column holding one part of a name: a word like TENANT is kept,
    and whether the record is a person is decided with the other parts (`occupier_word`)."""
    word = prepared["occupier_word"]
    return prepared["text"].where(~word, prepared["unmarked_text"]), prepared["is_person"] | word


def _holds(text: pd.Series, character: str) -> pd.Series:
    return text.str.contains(character, regex=False, na=False)


def _strip_titles(text: pd.Series) -> pd.DataFrame:
    """Leading titles ("MR & MRS" keeps the first) -> title; the rest -> text."""
    # A cheap test first, so the costly regex runs only on names that can hold a title (the text
    # comes from `prepare_name`: no newline, which '.' and '$' would treat specially).
    titled = text.str.startswith(_TITLE_WORDS, na=False)
    parts = extract_groups_where(titled, text, rf"^(?P<titles>(?:(?:{_TITLE})(?: |$))+)?(?P<rest>.*)$")
    title = parts["titles"].str.split(" ").str[0].map(TITLES).astype(object)
    rest = parts["rest"].where(titled, text)
    return pd.DataFrame({"title": nullify(title, title == ""), "text": _blank_to_none(rest)})


def _strip_suffix(text: pd.Series) -> pd.DataFrame:
    """Trailing JR / SNR / III (kept in name_suffix) and honours such as OBE (dropped)."""
    suffixed = text.str.endswith(_SUFFIX_ENDINGS, na=False)  # a cheap test first, as in _strip_titles
    parts = extract_groups_where(suffixed, text, rf"^(?P<rest>.*?)(?P<suffixes>(?: (?:{_SUFFIX}))*)$")
    generational = extract(parts["suffixes"], rf"\b({_GENERATIONAL})\b").map(GENERATIONAL_SUFFIXES)
    rest = parts["rest"].where(suffixed, text)
    return pd.DataFrame({"name_suffix": generational, "text": _blank_to_none(rest)})


def _blank_to_none(text: pd.Series) -> pd.Series:
    text = text.str.strip(" ,")
    return nullify(text, text == "")


def _split_forenames(forenames: pd.Series) -> pd.DataFrame:
    """'MARY JANE ANN' -> first 'MARY', middle 'JANE ANN'."""
    parts = extract_groups(forenames, r"^(?P<first>\S+)\s*(?P<middle>.*)$")
    first = _placeholder_to_none(parts["first"])
    # Middle names after a placeholder ("BABY BOY", "NK JANE") are not a name to match on.
    return pd.DataFrame({
        "first_name": first,
        "middle_names": _placeholder_to_none(parts["middle"]).where(first.notna(), None),
    })


def _placeholder_to_none(text: pd.Series) -> pd.Series:
    text = _blank_to_none(text)
    return nullify(text, text.str.match(_PLACEHOLDER_RE, na=False))


_SURNAME_LAST = rf"^(?P<fore>\S.*?) (?P<sur>(?:(?:{word_alternation(SURNAME_PARTICLES)}) )*\S+)$"


def name_reason(prepared: pd.DataFrame, name_found: pd.Series) -> pd.Series:
    """Why a present name gave no person name: placeholder, not_a_person or no_name."""
    return reasons(
        (prepared["placeholder"], PLACEHOLDER),
        (~prepared["is_person"], "not_a_person"),
        (~name_found, "no_name"),
        present=prepared["present"],
    )


@per_unique
def split_full_name(values: pd.Series) -> pd.DataFrame:
    """'Mr John Paul SMITH Jnr' -> title MR, first JOHN, middle PAUL, last SMITH, suffix JR.

    "SURNAME, Forenames" is read surname first; otherwise the last word (with any particles
    before it: DE LA CRUZ) is the surname, and a single word is a surname ("Mr Smith").
    """
    prepared = prepare_name(values)
    text = prepared["text"]
    comma = extract_groups(text, r"^(?P<sur>[^,]*), (?P<fore>.*)$")
    is_comma = comma["sur"].notna()
    plain_titled = _strip_titles(text.where(~is_comma))
    plain_suffixed = _strip_suffix(plain_titled["text"])
    plain = extract_groups(plain_suffixed["text"], _SURNAME_LAST)
    surname = coalesce(comma["sur"], plain["sur"], plain_suffixed["text"])
    forenames = coalesce(comma["fore"].str.replace(", ", " ", regex=False), plain["fore"])
    fore = _strip_titles(forenames)
    # "SMITH, John (Mr)": a title after the forenames, seen only in the surname-first form.
    trailing = extract_groups_where(
        fore["text"].str.endswith(_TITLE_WORDS, na=False), fore["text"], rf"^(?P<rest>.*?) ?(?P<title>{_TITLE})$"
    )
    fore_text = fore["text"].where(trailing["title"].isna(), trailing["rest"])
    title = coalesce(plain_titled["title"], fore["title"], trailing["title"].map(TITLES))
    sur = _strip_suffix(surname.astype(object))
    fore_suffix = _strip_suffix(_blank_to_none(fore_text.astype(object)))
    names = _split_forenames(fore_suffix["text"])
    last_name = _placeholder_to_none(sur["text"])
    in_order = squash(
        names["first_name"].str.cat([names["middle_names"], last_name], sep=" ", na_rep="").astype(object)
    )
    return pd.DataFrame({
        "full_name": in_order,
        "title": title.astype(object),
        "first_name": names["first_name"],
        "middle_names": names["middle_names"],
        "last_name": last_name,
        "name_suffix": coalesce(
            plain_suffixed["name_suffix"], sur["name_suffix"], fore_suffix["name_suffix"]
        ),
        "is_deceased": prepared["is_deceased"].astype(bool),
        "is_person": prepared["is_person"].astype(bool),
        "reason": name_reason(prepared, names["first_name"].notna() | last_name.notna()),
    })


@per_unique
def split_forenames(values: pd.Series) -> pd.DataFrame:
    """A first-name column that may hold a title and several forenames: 'Mr Mary Jane'."""
    prepared = prepare_name(values)
    text, is_person = name_part(prepared)
    titled = _strip_titles(text.str.replace(", ", " ", regex=False))
    suffixed = _strip_suffix(titled["text"])
    names = _split_forenames(suffixed["text"])
    return pd.DataFrame({
        "title": titled["title"],
        **names,
        "name_suffix": suffixed["name_suffix"],
        "is_deceased": prepared["is_deceased"].astype(bool),
        "is_person": is_person.astype(bool),
        "occupier_word": prepared["occupier_word"].astype(bool),
        "reason": name_reason(prepared.assign(is_person=is_person), names["first_name"].notna()),
    })


@per_unique
def clean_surname(values: pd.Series) -> pd.DataFrame:
    """A surname column: 'o'brien (deceased)' -> "O'BRIEN", is_deceased."""
    prepared = prepare_name(values)
    text, is_person = name_part(prepared)
    suffixed = _strip_suffix(text.str.replace(", ", " ", regex=False))
    last_name = _placeholder_to_none(squash(suffixed["text"]))
    return pd.DataFrame({
        "last_name": last_name,
        "name_suffix": suffixed["name_suffix"],
        "is_deceased": prepared["is_deceased"].astype(bool),
        "is_person": is_person.astype(bool),
        "occupier_word": prepared["occupier_word"].astype(bool),
        "reason": name_reason(prepared.assign(is_person=is_person), last_name.notna()),
    })


@per_unique
def clean_middle_names(values: pd.Series) -> pd.DataFrame:
    """Middle names: upper case, single spaces, no placeholders."""
    prepared = prepare_name(values)
    text, is_person = name_part(prepared)
    middle = _placeholder_to_none(squash(text.str.replace(", ", " ", regex=False)))
    return pd.DataFrame({
        "middle_names": middle,
        "is_deceased": prepared["is_deceased"].astype(bool),
        "is_person": is_person.astype(bool),
        "reason": name_reason(prepared.assign(is_person=is_person), middle.notna()),
    })


@per_unique
def clean_title(values: pd.Series) -> pd.DataFrame:
    """'Mr.' -> 'MR', 'Revd' -> 'REV'; unrecognised titles kept as written (upper case)."""
    text = squash(values.str.replace(r"[^\w\s]", " ", regex=True))
    known = text.map(TITLES).astype(object)
    placeholder = text.str.match(_PLACEHOLDER_RE, na=False)
    return pd.DataFrame({
        "title": nullify(coalesce(known, text), placeholder),
        "reason": reasons((placeholder, PLACEHOLDER), present=values.notna()),
    })


# Matching keys ------------------------------------------------------------------------------
@per_unique
def name_key(names: pd.Series) -> pd.Series:
    """Accent-folded A–Z only: "O'BRIEN" -> 'OBRIEN', 'JOSÉ' -> 'JOSE'."""
    key = fold_accents(names).str.upper().str.replace(r"[^A-Z]", "", regex=True)
    return nullify(key, key == "")


@per_unique
def names_key(names: pd.Series) -> pd.Series:
    """As `name_key` for a list of names, keeping one space between them: 'ANNE MARIE'."""
    key = fold_accents(names).str.upper().str.replace(r"[^A-Z ]", "", regex=True)
    key = key.str.replace(r"\s+", " ", regex=True).str.strip()
    return nullify(key, key == "")


def _aliases_of(key: str, counts: Optional[Mapping[str, int]] = None) -> list[str]:
    """The key, its UK short-form expansions, then the package's names it may stand for — the
    commonest in `counts` first (then alphabetically) — at most MAX_ALIASES of them. The package
    gives CHRIS eighteen names: cut alphabetically, CHRISTOPHER did not make the first eight."""
    counts = counts or {}
    canonicals = sorted((c.upper() for c in NICKNAMES.canonicals_of(key.lower())),
                        key=lambda name: (-counts.get(name, 0), name))
    names = dict.fromkeys([key, *UK_SHORT_FORMS.get(key, ()), *canonicals])
    return list(names)[:MAX_ALIASES]


@functools.lru_cache(maxsize=None)
def alias_initials(key: str) -> str:
    """The initials a forename may be written with: its own, those of the names it may be short
    for (BETH -> E for ELIZABETH) and those of its own short forms (REBECCA -> B for BECKY,
    MARGARET -> P for PEGGY). Sorted, one letter each."""
    if not key or len(key) < 2:
        return key or ""
    names = [key, *NICKNAMES.canonicals_of(key.lower()), *NICKNAMES.nicknames_of(key.lower()),
             *UK_SHORT_FORMS.get(key, ()), *_UK_FULL_FORMS.get(key, ())]
    return "".join(sorted({n[0].upper() for n in names if n and n[0].isalpha()}))


def first_name_aliases(first_name_key: pd.Series, counts: Optional[dict] = None) -> pd.Series:
    """The canonical forenames a first name may stand for: BILL -> [BILL, ROBERT, WILL, WILLIAM, …].
    Where a short form may stand for more names than are kept, the ones these records hold most
    often are kept: the data says which of CHRIS's eighteen names are in use. `counts`: records
    per first_name_key when these are only some of the records; else counted here."""
    if counts is None:
        counts = first_name_key.value_counts().to_dict()
    return map_distinct(lambda key: _aliases_of(key, counts), first_name_key)


def phonetic_key(key: pd.Series) -> pd.Series:
    """Metaphone code of a name key, for blocking: SMITH and SMYTH -> 'SM0'."""
    code = map_distinct(jellyfish.metaphone, key)
    return nullify(code, code == "")


@per_unique
def forename_keys(first_names: pd.Series) -> pd.DataFrame:
    """key and phonetic code of each first name, worked out once per distinct name (not once
    per distinct name for each of the two). The aliases need every record's key: see
    `first_name_aliases`."""
    key = name_key(first_names)
    return pd.DataFrame({"key": key, "phonetic": phonetic_key(key)})


@per_unique
def surname_keys(surnames: pd.Series) -> pd.DataFrame:
    """key and phonetic code of each surname (see `forename_keys`)."""
    key = name_key(surnames)
    return pd.DataFrame({"key": key, "phonetic": phonetic_key(key)})

"""Which column is which canonical field: guessed from each column's name and, above all, from
its values, checked with the very cleaners the pipeline standardises with.

Each guess carries its evidence in words ("98% of values are valid UK postcodes") and never a
value: the config it goes into is often shared or committed, and values are personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Optional

import numpy as np
import pandas as pd

from residentview.sources import _text
from residentview.standardise.dates import DEFAULT_FORMATS
from residentview.standardise.identifiers import parse_email, parse_nhs_number, parse_nino, parse_phone
from residentview.standardise.names import TITLES, UK_SHORT_FORMS
from residentview.standardise.postcodes import parse_postcode
from residentview.standardise.sex import parse_sex

SAMPLE = 2000  # values looked at per column (evenly spread through the file)
STRONG = 0.8  # share of values that makes content evidence on its own
UPN = "identifiers.upn"  # the pupil number: the one named identifier recognised by its shape
SINGLE_FIELDS = (
    "title", "full_name", "first_name", "middle_names", "last_name", "previous_last_name", "date_of_birth",
    "sex", "postcode", "uprn", "nhs_number", "ni_number", "phone", "email", "record_date", UPN,
)

# What a column's name says, tried in order (the first match wins): `previous_surname` is a
# previous last name before it is a last name, `post_code` a postcode before an address.
_NAME_HINTS = (
    ("previous_last_name", r"(previous|former|maiden|birth|prior|old|other)_?(sur|last_?|family_?)?name"),
    ("date_of_birth", r"(^|_)(dob|d_o_b|birth|born|birthdate|date_?of_?birth)(_|$)|birth"),
    ("postcode", r"post_?code|postal_?code|(^|_)pcode|zip"),
    ("uprn", r"uprn"),
    ("nhs_number", r"(^|_)nhs"),
    ("ni_number", r"nino|(^|_)ni_?(no|num|number)?($|_)|national_?insurance"),
    ("email", r"e_?mail"),
    ("phone", r"phone|(^|_)tel($|_|no|ephone)|mobile|contact_?(no|number)"),
    (UPN, r"(^|_)upn($|_)|unique_?pupil|pupil_?(no|number)"),
    ("title", r"^(title|salutation|prefix|honorific)$"),
    ("middle_names", r"middle|other_?forenames?|second_?names?|other_?given"),
    ("first_name", r"first_?names?|fore_?names?|given_?names?|christian_?names?|(^|_)f_?name$|^first$"),
    ("last_name", r"last_?name|surname|family_?name|(^|_)l_?name$|^last$"),
    ("full_name", r"full_?name|^names?$|liable|account_?holder|(person|client|claimant|customer|resident|party)_?name"
                  r"|^party$|display_?name"),
    ("sex", r"^(sex|gender)(_?code)?$"),
    ("record_date", r"(^|_)(start|updated?|modified|changed|confirmed|registered|created|effective|last_?seen"
                    r"|as_?at|from|entry|record)(_?date)?($|_)|date$"),
    ("address", r"addr|street|road|town|city|locality|propert|house|building|premises|(^|_)line_?\d|(^|_)flat"
                r"|village|county|district|area$"),
)
_ID_NAME = r"(^|_)(id|ref|reference|no|num|number|key|urn|identifier|code)($|_)|id$|ref$"
_STREET = (r"\b(?:ROAD|RD|STREET|ST|AVENUE|AVE|LANE|LN|DRIVE|DR|CLOSE|WAY|PLACE|COURT|CT|GARDENS|CRESCENT"
           r"|TERRACE|GROVE|RISE|HILL|SQUARE|FLAT|HOUSE|WALK|VIEW|PARK|MEWS|ROW|GREEN|VALE|PARADE)\b")
_HOUSE_NUMBER = r"(?:^|[\s,])\d+[A-Z]?[\s,]+[A-Z]{3,}"  # 12 MILL ROAD, 4A HIGH ST
_UPN_SHAPE = r"^[A-Z][0-9]{11}[0-9A-Z]$"
_DATE_SHAPE = r"^(\d{1,4}[-/. ]\d{1,2}[-/. ]\d{2,4}|\d{1,2}[-/ ][A-Za-z]{3,9}[-/ ]\d{2,4}|\d{8})$"
_TIME_OF_DAY = r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"


@lru_cache(maxsize=1)
def known_forenames() -> frozenset[str]:
    """Forenames from the `nicknames` package (an American list of ~1,400) and the British short
    forms the standardiser knows: enough to tell a forename column from a surname column."""
    text = resources.files("nicknames").joinpath("names.csv").read_text(encoding="utf-8")
    names = set()
    for line in text.splitlines()[1:]:
        parts = line.split(",")
        if len(parts) == 3:
            names.update((parts[0].upper(), parts[2].upper()))
    names.update(UK_SHORT_FORMS)
    names.update(name for fulls in UK_SHORT_FORMS.values() for name in fulls)
    return frozenset(n for n in names if len(n) > 1)


@dataclass
class Guess:
    """What one column was taken for: a canonical field (or `identifiers.<name>`), or nothing."""

    column: str
    field: Optional[str]
    evidence: str
    strength: float = 0.0  # settles two columns claiming one field: content over name, then fill
    date_format: Optional[str] = None


@dataclass
class Profile:
    """One column's name and the facts about its values the guesses are made from."""

    column: str
    position: int
    n_rows: int
    present: int
    sample: pd.Series  # non-blank values as text, at most SAMPLE of them
    hint: Optional[str]
    shares: dict = field(default_factory=dict)

    @property
    def fill(self) -> float:
        return self.present / self.n_rows if self.n_rows else 0.0


def name_hint(column: str) -> Optional[str]:
    """The field a column's name suggests: 'Date of Birth' -> date_of_birth."""
    key = re.sub(r"[^a-z0-9]+", "_", str(column).lower()).strip("_")
    return next((name for name, pattern in _NAME_HINTS if re.search(pattern, key)), None)


def _spread_sample(values: pd.Series) -> pd.Series:
    values = values.dropna()
    if len(values) > SAMPLE:
        values = values.iloc[np.linspace(0, len(values) - 1, SAMPLE).astype(int)]
    return pd.Series(values.astype(str).to_numpy(dtype=object))


def profile(frame: pd.DataFrame, column: str, position: int) -> Profile:
    text = _text(frame[column])
    return Profile(column, position, len(frame), int(text.notna().sum()), _spread_sample(text), name_hint(column))


# Shares of values that fit a field: each checked by the pipeline's own cleaner -----------------

def _valid_share(parse, values: pd.Series) -> float:
    if not len(values):
        return 0.0
    return float(parse(values)["reason"].isna().mean())


def date_format(values: pd.Series) -> tuple[Optional[str], float, pd.Series]:
    """The strptime format (of those the standardiser tries) that reads the most values, the
    share it reads, and the dates read."""
    text = values.str.replace(_TIME_OF_DAY, "", regex=True).str.strip()
    if not len(text) or text.str.match(_DATE_SHAPE).mean() < 0.5:
        return None, 0.0, pd.Series(dtype="datetime64[ns]")
    best: tuple[Optional[str], float, pd.Series] = (None, 0.0, pd.Series(dtype="datetime64[ns]"))
    for fmt in DEFAULT_FORMATS:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        share = float(parsed.notna().mean())
        if share > best[1] + 1e-9:
            best = (fmt, share, parsed.dropna())
    return best


def _phone_share(values: pd.Series) -> float:
    # A phone number is written with its trunk 0 or a +: bare ten-digit numbers are more often
    # NHS numbers or references, which `parse_phone` would also accept.
    dialled = values.str.replace(r"[\s\-().]", "", regex=True).str.match(r"^(\+|00|0)[0-9]{8,14}$")
    return min(float(dialled.mean()), _valid_share(parse_phone, values)) if len(values) else 0.0


def _title_share(values: pd.Series) -> float:
    return float(values.str.upper().str.replace(".", "", regex=False).str.strip().isin(TITLES).mean())


def _sex_share(values: pd.Series) -> float:
    parsed = parse_sex(values)
    known = parsed["reason"].isna() | (parsed["reason"] == "placeholder")
    letters = values.str.contains(r"[A-Za-z]").mean()  # 1/2 alone could be any code
    return float(known.mean()) if values.nunique() <= 12 and letters >= 0.5 else 0.0


def _digits_share(values: pd.Series) -> float:
    return float(values.str.replace(r"\s", "", regex=True).str.fullmatch(r"[0-9]{6,12}").mean())


def content_shares(p: Profile) -> dict[str, float]:
    """Per typed field, the share of the sampled values valid as that field."""
    if p.shares:
        return p.shares
    v = p.sample
    if not len(v):
        return {}
    p.shares = {
        "email": _valid_share(parse_email, v) if v.str.contains("@").mean() >= 0.5 else 0.0,
        "postcode": _valid_share(parse_postcode, v),
        "nhs_number": _valid_share(parse_nhs_number, v),
        "ni_number": _valid_share(parse_nino, v),
        UPN: float(v.str.upper().str.match(_UPN_SHAPE).mean()),
        "phone": _phone_share(v),
        "sex": _sex_share(v),
        "title": _title_share(v),
        "digits": _digits_share(v),
    }
    return p.shares


_EVIDENCE = {
    "email": "{:.0%} of values are email addresses",
    "postcode": "{:.0%} of values are valid UK postcodes",
    "nhs_number": "{:.0%} of values are NHS numbers with a valid check digit",
    "ni_number": "{:.0%} of values are valid NI numbers",
    UPN: "{:.0%} of values are shaped like unique pupil numbers",
    "phone": "{:.0%} of values are phone numbers",
    "sex": "{:.0%} of values are sex codes",
    "title": "{:.0%} of values are titles",
}
_TYPED_ORDER = ("email", "postcode", "nhs_number", "ni_number", UPN, "phone", "sex", "title")


def _typed(p: Profile) -> Optional[tuple[str, float]]:
    """The typed field most of the values are valid as, if any."""
    shares = content_shares(p)
    for name in _TYPED_ORDER:
        if shares.get(name, 0.0) >= STRONG:
            return name, shares[name]
    return None


def _example(fmt: str) -> str:
    return pd.Timestamp("1980-12-31").strftime(fmt)


# Names and addresses by their words -------------------------------------------------------

@dataclass
class Words:
    letters: float  # share of values with letters and no digits
    tokens: float  # mean words per value
    first_forename: float  # share whose first word (after a title) is a known forename
    any_forename: float  # share holding a known forename anywhere
    all_forenames: float  # share whose every word is a known forename
    distinct: float  # distinct values / values
    n_distinct: int
    numbered: float  # share with a number and a word (a house number and street)
    street: float  # share naming a street, a flat, a house


def words(p: Profile) -> Words:
    v = p.sample.str.upper()
    names = known_forenames()
    split = v.str.replace(r"[^A-Z' \-]", " ", regex=True).str.split()
    without_title = split.map(lambda ws: [w for w in ws if w.replace(".", "") not in TITLES] if ws else ws)
    first = without_title.map(lambda ws: bool(ws) and ws[0] in names)
    anywhere = without_title.map(lambda ws: any(w in names for w in ws))
    every = without_title.map(lambda ws: bool(ws) and all(w in names for w in ws))
    return Words(
        letters=float((v.str.contains(r"[A-Z]") & ~v.str.contains(r"\d")).mean()),
        tokens=float(split.map(len).mean()),
        first_forename=float(first.mean()),
        any_forename=float(anywhere.mean()),
        all_forenames=float(every.mean()),
        distinct=float(v.nunique() / len(v)),
        n_distinct=int(v.nunique()),
        numbered=float(v.str.contains(_HOUSE_NUMBER).mean()),
        street=float(v.str.contains(_STREET).mean()),
    )


def _word_kind(p: Profile) -> Optional[tuple[str, str]]:
    """For a column of words no name told: full name, forenames, surname, address or place."""
    if len(p.sample) < 2:
        return None
    w = words(p)
    if len(p.sample) < 5:  # too few to say more than "words, not forenames"
        few = w.letters == 1 and w.tokens <= 1.5 and w.first_forename == 0
        return ("surname", f"only {len(p.sample)} values, words that are not forenames") if few else None
    if w.numbered >= 0.5 or w.street >= 0.4:
        return "address", f"{max(w.numbered, w.street):.0%} of values hold a house number or a street"
    if w.letters < 0.8:
        return None
    if len(p.sample) >= 20 and w.distinct <= 0.2 and w.n_distinct <= 60:
        # a borough's towns, a county, a status: few values, each on many records (names are not)
        return "place", f"a few values repeated ({w.n_distinct} distinct), like towns"
    full_names = w.tokens >= 1.8 and w.any_forename >= 0.3 and w.all_forenames < 0.5 * w.any_forename
    if full_names and w.distinct > 0.2:  # people's full names are nearly all different; a county is not
        return "full_name", f"{w.any_forename:.0%} of values hold a known forename beside other names"
    if w.first_forename >= 0.35:
        return "forenames", f"{w.first_forename:.0%} of values begin with a known forename"
    if w.tokens <= 1.6:
        return "surname", f"names, seldom a known forename ({w.first_forename:.0%}), {w.distinct:.0%} distinct"
    return None


# The whole table ---------------------------------------------------------------------------

def guess_fields(frame: pd.DataFrame) -> list[Guess]:
    """One guess per column (field None where nothing fits), in the table's column order."""
    profiles = [profile(frame, c, i) for i, c in enumerate(frame.columns)]
    guesses: dict[str, Guess] = {}
    dates: list[tuple[Profile, str, float, pd.Series]] = []
    wordy: list[tuple[Profile, str, str]] = []
    for p in profiles:
        guesses[p.column] = _guess_one(p, dates, wordy)
    _settle_dates(dates, guesses)
    _settle_words(wordy, guesses)
    _one_column_per_field(guesses, profiles)
    return [guesses[p.column] for p in profiles]


def _guess_one(p: Profile, dates: list, wordy: list) -> Guess:
    if not p.present:
        if p.hint:
            return Guess(p.column, p.hint, "the column name (the column is empty in this file)", 0.1)
        wordy.append((p, "empty", "empty in this file"))
        return Guess(p.column, None, "empty in this file")
    typed = _typed(p)
    if typed and not (typed[0] == "sex" and p.hint not in (None, "sex")) and not (
            typed[0] == "title" and p.hint in ("full_name", "first_name")):
        name, share = typed
        agrees = " and the column name" if p.hint == name else ""
        return Guess(p.column, name, _EVIDENCE[name].format(share) + agrees, 2 + share)
    fmt, share, parsed = date_format(p.sample)
    if fmt is not None and share >= STRONG:
        dates.append((p, fmt, share, parsed))
        return Guess(p.column, None, "", 0)  # settled with the table's other dates
    shares = content_shares(p)
    if p.hint:
        evidence = "the column name"
        if p.hint in shares and p.hint not in ("sex", "title"):
            evidence += f"; {shares[p.hint]:.0%} of values are valid"
        if p.hint in ("date_of_birth", "record_date"):
            evidence += f"; only {share:.0%} of values read as dates" if fmt else "; its values do not read as dates"
        if p.hint == "uprn":
            evidence += f"; {shares.get('digits', 0):.0%} of values are 6-12 digit numbers"
        evidence += _word_evidence(p)
        return Guess(p.column, p.hint, evidence, 1 + p.fill)
    if shares.get("digits", 0) >= 0.95 and p.sample.nunique() < len(p.sample):
        # UPRNs: long numbers that repeat (people share a property); a record id never repeats
        return Guess(p.column, "uprn", f"{shares['digits']:.0%} of values are 6-12 digit numbers, some shared "
                                       "by several records, like property references", 0.5 + p.fill)
    kind = _word_kind(p)
    if kind is not None:
        wordy.append((p, *kind))
    return Guess(p.column, None, "no field recognised")


def _word_evidence(p: Profile) -> str:
    """What the values add to a name or address column's name (empty for other fields)."""
    if p.hint not in ("first_name", "middle_names", "last_name", "previous_last_name", "full_name", "address") \
            or len(p.sample) < 5:
        return ""
    w = words(p)
    if p.hint in ("first_name", "middle_names"):
        return f"; {w.first_forename:.0%} of values begin with a known forename"
    if p.hint == "full_name":
        return f"; {w.any_forename:.0%} of values hold a known forename"
    if p.hint == "address":
        return f"; {max(w.numbered, w.street):.0%} of values hold a house number or a street" if w.numbered or w.street else ""
    return f"; {w.letters:.0%} of values are words without digits, {w.first_forename:.0%} known forenames"


def _settle_dates(dates: list, guesses: dict[str, Guess]) -> None:
    """Date columns: by name where the name says which; otherwise the earliest dates (never in
    the future) are the dates of birth, and a later date column the record date."""
    taken = set()
    by_birth = sorted(dates, key=lambda d: d[3].median() if len(d[3]) else pd.Timestamp.max)
    for p, fmt, share, parsed in sorted(by_birth, key=lambda d: d[0].hint is None):
        said = p.hint if p.hint in ("date_of_birth", "record_date") else None
        future = bool(len(parsed)) and float((parsed > pd.Timestamp.today()).mean()) > 0.01
        if said is not None:
            field_name, why = said, " and the column name"
        elif "date_of_birth" not in taken and not future:
            field_name, why = "date_of_birth", ", the table's earliest dates and none in the future"
        else:
            field_name, why = "record_date", (", some in the future, so not dates of birth" if future
                                               else ", later than the dates of birth")
        if field_name in taken:
            field_name, why = None, f"; another column is the {said or 'record_date'} already"
        taken.add(field_name)
        evidence = f"{share:.0%} of values are dates like {_example(fmt)} ({fmt}){why}"
        guesses[p.column] = Guess(p.column, field_name, evidence, 2 + share, date_format=fmt if field_name else None)


def _settle_words(wordy: list, guesses: dict[str, Guess]) -> None:
    """Columns of words no name told: forenames become the first name (then the middle names),
    surnames the last name (then a sparse one the previous last name), a full name only when no
    first or last name was found; towns join the address when they sit beside it."""
    taken = {g.field for g in guesses.values() if g.field}

    def assign(p: Profile, field_name: str, evidence: str, strength: float = 0.5) -> None:
        guesses[p.column] = Guess(p.column, field_name, evidence, strength + p.fill)
        taken.add(field_name)

    by_fill = sorted(wordy, key=lambda w: (-w[0].fill, w[0].position))
    for p, kind, evidence in by_fill:
        if kind == "forenames":
            for field_name in ("first_name", "middle_names"):
                if field_name not in taken:
                    assign(p, field_name, evidence)
                    break
        elif kind == "surname":
            if "last_name" not in taken:
                assign(p, "last_name", evidence)
            elif "previous_last_name" not in taken and p.fill < 0.5:
                assign(p, "previous_last_name", evidence + "; mostly blank, beside another surname")
        elif kind == "address":
            assign(p, "address", evidence)
    for p, kind, evidence in by_fill:
        if kind == "full_name" and not taken & {"first_name", "last_name", "full_name"}:
            assign(p, "full_name", evidence)
    # guesses are in column order: a place beside an address column (named or found) is its town
    address_at = {i for i, g in enumerate(guesses.values()) if g.field == "address"}
    # An empty column between or after address lines is an address line nobody filled in; words
    # repeated there (a town, a county) are the address's last lines, even in a small file.
    beside = sorted((w for w in wordy if w[1] in ("place", "empty", "surname") and not guesses[w[0].column].field
                     and (w[1] != "surname" or words(w[0]).distinct <= 0.5)), key=lambda w: w[0].position)
    for p, kind, evidence in beside:
        if kind == "surname":
            evidence = f"names repeated ({words(p).distinct:.0%} distinct), like towns"
        if address_at & {p.position - 1, p.position + 1}:
            assign(p, "address", evidence + ", beside the address lines", 0.0 if kind == "empty" else 0.5)
            address_at.add(p.position)


def _one_column_per_field(guesses: dict[str, Guess], profiles: list[Profile]) -> None:
    """A source maps one column to each field (the address excepted: its columns are joined):
    the strongest claim keeps it, the others are listed as also fitting."""
    for name in SINGLE_FIELDS:
        claims = [g for g in guesses.values() if g.field == name]
        if len(claims) < 2:
            continue
        keep = max(claims, key=lambda g: g.strength)
        for g in claims:
            if g is not keep:
                guesses[g.column] = Guess(g.column, None, f"also looks like {name} ({g.evidence}), "
                                                          f"but {keep.column!r} fits better")


# The record id -----------------------------------------------------------------------------

@dataclass
class IdChoice:
    column: Optional[str]
    evidence: str


def choose_id(frame: pd.DataFrame, guesses: list[Guess]) -> IdChoice:
    """The source's record id: a column unique and filled in every row. A column named like a
    reference, holding no canonical field, and further left wins; an NHS number or an email
    can be unique too, but they are facts about the person, not the record's key."""
    field_of = {g.column: g.field for g in guesses}
    candidates = []
    for position, column in enumerate(frame.columns):
        if list(frame.columns).count(column) > 1:
            continue
        text = _text(frame[column])
        if not len(text) or text.isna().any() or text.duplicated().any():
            continue
        key = re.sub(r"[^a-z0-9]+", "_", str(column).lower()).strip("_")
        named = bool(re.search(_ID_NAME, key))
        score = 2 * named - 3 * (field_of.get(column) is not None) - position / max(1, len(frame.columns))
        candidates.append((score, column, named))
    if not candidates:
        return IdChoice(None, "no column is unique and filled in every row")
    candidates.sort(key=lambda c: -c[0])
    _, column, named = candidates[0]
    evidence = f"unique and filled in all {len(frame):,} rows" + ("; named like a reference" if named else "")
    others = [c for _, c, _ in candidates[1:4]]
    if others:
        evidence += "; also unique: " + ", ".join(others)
    return IdChoice(column, evidence)

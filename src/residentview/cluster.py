"""Stage 4 — cluster: scored pairs -> exactly one resident per record.

Connected components alone chain households together: father ~ council-tax "Mr J Smith" ~ son,
or two partners sharing a copied NI number. So clustering is constrained:

1. Pairs at or above the threshold are joined into connected components.
2. A component whose records cannot conflict (one NHS number, NI number, date of birth and
   first name at most, and no record dated before someone in it was born) is one resident —
   most components, decided in bulk.
3. The rest are rebuilt greedily, strongest pair first, and two groups are never merged when a
   record of one carries conflicting strong evidence against a record of the other: different
   valid NHS numbers, NI numbers more than a typo apart, dates of birth that no typo explains
   (unless a shared reference number ties the records), or a record confirmed before the other
   was born. First names are judged against the whole resident (`names_fit`): names that do
   not fit and that no shared number ties together are twins or siblings. A name with heavy
   but recognisable damage (two letters wrong, cut short, Jaro-Winkler from 0.7 under the same
   first letter) fits when nothing else conflicts.

Records that are not people, or that no pair reached, are residents on their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import jellyfish
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from residentview.linkage.frame import implied_sex, sex_of_names
from residentview.memory import cycle_collector_paused
from residentview.standardise.names import alias_initials

log = logging.getLogger(__name__)

FIRST_NAME_SIMILAR = 0.8  # Jaro-Winkler at which two first names may be one name mistyped
# Heavy but recognisable damage to a first name (`first_names_damaged`), accepted on a pair the
# model is sure of when nothing else conflicts: Jaro-Winkler from 0.7 under the same first
# letter, two letters wrong in a name of four or more, or one name cut short of the other.
FIRST_NAME_DAMAGED = 0.7
DOB_TYPO_MAX_DAYS = 365
# Systems of adults (council tax, the electoral register, benefits) are told apart from systems
# of children or of everyone by the data itself (`adult_sources`).
# On a system of adults nobody is younger when it records them without a date of birth: council
# tax is owed from 18, and the electoral register gives the date of birth of every entry under
# 16 (attainers from 14 in Scotland and Wales), so an undated elector is at least 16. Dated
# records of such a system (an attainer) are judged by their own date instead.
ADULT_AGE = 16
ADULT_SOURCE_MAX_YOUNG_SHARE = 0.2
ADULT_SOURCE_MIN_PAIRS = 30
# ...or by its own dated records: a system that has dated at least this many people and (but
# for mistyped dates) never anyone under ADULT_AGE holds no children.
ADULT_SOURCE_MIN_DATED = 30
ADULT_SOURCE_MAX_YOUNG_DATED = 0.05
# Whatever its source, a record titled as only adults are ('MR J SMITH' on a council tax bill)
# was an adult when recorded. Not MISS or MASTER, which children have, nor the courtesy titles
# a peer's children are born with (LADY, LORD, HON).
ADULT_TITLES = ("MR", "MRS", "MS", "DR", "PROF", "REV", "FR", "RABBI", "IMAM", "SIR", "DAME", "CLLR",
                "CAPT", "LT", "COL", "SGT")
# A system's own reference (a pupil number, a client id: an `id_` column) that one person keeps:
# on confident pairs under one first name and date of birth it is almost never two numbers.
OWN_REFERENCE_MAX_DIFFERING = 0.02
OWN_REFERENCE_MIN_PAIRS = 30


@dataclass(slots=True)
class _Person:
    """The evidence about one record that can rule a merge out."""

    nhs: Optional[str]
    nino: Optional[str]
    dob: Optional[pd.Timestamp]
    first: Optional[str]
    last: Optional[str]
    aliases: frozenset
    middle: frozenset
    ids: frozenset  # (column, value) of every reference number the record carries
    seen: Optional[pd.Timestamp] = None  # the record's record_date
    sex: Optional[str] = None  # recorded, or implied by the title or the first name
    adult_when: Optional[float] = None  # a system of adults held the record then (days since 1970)
    born: Optional[float] = None  # dob in days since 1970, for quick age arithmetic
    refs: frozenset = frozenset()  # (column, value) of references one person keeps (`kept_references`)


def _hamming_more_than_one(a: str, b: str) -> bool:
    if len(a) != len(b):
        return jellyfish.damerau_levenshtein_distance(a, b) > 1
    return sum(x != y for x, y in zip(a, b)) > 1 and jellyfish.damerau_levenshtein_distance(a, b) > 1


def _number_close(a: str, b: str) -> bool:
    """The same reference number, allowing one typo or two digits swapped in a long one."""
    if a == b:
        return True
    if len(a) < 6 or len(a) != len(b):
        return False
    differing = sum(x != y for x, y in zip(a, b))
    return differing == 1 or (differing == 2 and sorted(a) == sorted(b))


def share_a_number(a: frozenset | set, b: frozenset | set) -> bool:
    """Whether two sets of (column, number) hold the same number, typos allowed."""
    if not a or not b:
        return False
    if not a.isdisjoint(b):
        return True
    return any(ca == cb and _number_close(va, vb) for ca, va in a for cb, vb in b)


def _references_differ(a: frozenset, b: frozenset) -> bool:
    """Two numbers of one kept reference that no typo explains: two pupils, two clients."""
    return any(ca == cb and not _number_close(va, vb) for ca, va in a for cb, vb in b)


def _share_own_reference(a: _Person, b: _Person) -> bool:
    """The very same value of a named identifier (an `id_` column) on both records."""
    return any(column.startswith("id_") for column, _ in a.ids & b.ids)


def dob_compatible(a: pd.Timestamp, b: pd.Timestamp) -> bool:
    """Equal, day and month swapped, one digit wrong or two transposed, or within a year."""
    if a == b:
        return True
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return True
    if abs((a - b).days) <= DOB_TYPO_MAX_DAYS:
        return True
    sa, sb = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    return not _hamming_more_than_one(sa, sb)


def first_names_compatible(a: _Person, b: _Person) -> bool:
    if a.first is None or b.first is None or a.first == b.first:
        return True
    if min(len(a.first), len(b.first)) >= 3 and jellyfish.damerau_levenshtein_distance(a.first, b.first) <= 1:
        return True
    if min(len(a.first), len(b.first)) == 2 and a.first[0] == b.first[0] and (
            jellyfish.damerau_levenshtein_distance(a.first, b.first) <= 1):
        return True  # AY for AMY, KZ for KA: a two-letter name mistyped, its first letter kept
    if a.first == b.last or b.first == a.last:
        return True  # forename and surname swapped
    if a.aliases & b.aliases:
        return True
    if a.first in b.middle or b.first in a.middle:
        return True
    if (len(a.first) == 1 and a.first in {m[0] for m in b.middle}) or (
        len(b.first) == 1 and b.first in {m[0] for m in a.middle}
    ):
        return True  # an initial that stands for a middle name
    if len(a.first) == 1 or len(b.first) == 1:
        initial, full = (a, b) if len(a.first) == 1 else (b, a)
        return initial.first == full.first[0] or initial.first in alias_initials(full.first)
    return jellyfish.jaro_winkler_similarity(a.first, b.first) >= FIRST_NAME_SIMILAR


def first_names_damaged(a: str, b: str) -> bool:
    """Two full first names that may be one name badly damaged: one cut short of the other
    (CHRIS, CHRISTOPHER; ALEXA, ALEXANDRA), two letters wrong in a name of four or more (SSUIE,
    SUSAN's SUSIE; ASUNNN, ADUNNI), or Jaro-Winkler from FIRST_NAME_DAMAGED with the first letter
    kept. Weaker than `first_names_compatible`: only a resident the model is sure of and that
    nothing else conflicts with may take in such a name (`names_fit`). Names that merely look
    alike with another first letter (LAUREN, CHARLENE; ANDREA, LINDA) are not damage."""
    if len(a) < 2 or len(b) < 2:
        return False
    if a.startswith(b) or b.startswith(a):
        return True
    if min(len(a), len(b)) >= 4 and jellyfish.damerau_levenshtein_distance(a, b) <= 2:
        return True
    return a[0] == b[0] and jellyfish.jaro_winkler_similarity(a, b) >= FIRST_NAME_DAMAGED


def _dated_before_birth(a: _Person, b: _Person) -> bool:
    return a.seen is not None and b.dob is not None and a.seen < b.dob - pd.Timedelta(days=DOB_TYPO_MAX_DAYS)


def _too_young(a: _Person, b: _Person) -> bool:
    """a is a record of a system of adults, made when b was a child."""
    return a.adult_when is not None and b.born is not None and (a.adult_when - b.born) / 365.25 < ADULT_AGE


def _age_years(elapsed):
    """Years in a Timedelta (or an array of timedelta64), counted as 365.25 days each."""
    return elapsed / np.timedelta64(1, "D") / 365.25


def cannot_link(a: _Person, b: _Person, groups_tied: bool = False, dates_meet: bool = False) -> bool:
    """Whether two records carry conflicting strong evidence that they are different people.
    `groups_tied`: the residents the two records belong to already share a reference number.
    `dates_meet`: some date of birth of one resident agrees with some date of the other (one of
    them already holds a date a shared number showed to be wrong).
    (Different first names alone are judged against the whole resident: `names_fit`.)"""
    if a.nhs and b.nhs and a.nhs != b.nhs:
        return True
    if a.nino and b.nino and a.nino != b.nino and _hamming_more_than_one(a.nino, b.nino):
        return True
    if a.refs and b.refs and _references_differ(a.refs, b.refs):
        return True
    if _too_young(a, b) or _too_young(b, a):
        # A council-tax payer or an elector and a schoolchild sharing a surname and a home:
        # parent and child, even under one first name.
        return not (groups_tied or share_a_number(a.ids, b.ids))
    if a.sex and b.sex and a.sex != b.sex and a.first != b.first:
        # "MRS J SMITH" and JOHN SMITH: a couple. (With the very same first name, one of the
        # two sexes is more likely mistyped.)
        return not (groups_tied or share_a_number(a.ids, b.ids))
    if a.dob is not None and b.dob is not None and not dob_compatible(a.dob, b.dob):
        if not first_names_compatible(a, b):
            # Another member of the household, even one sharing a copied NI or NHS number
            # (partners' NI numbers and a mother's NHS number are copied onto the wrong
            # record) — but not one sharing a system's own reference (a pupil number, a
            # client id), which is issued per person and rarely copied.
            return not _share_own_reference(a, b)
        # Same name, dates that no typo explains: parent and child (Jr / Sr), brothers named
        # alike — unless a shared reference number says one of the dates is simply wrong, or
        # the other resident also holds this record's date.
        return not (groups_tied or dates_meet or share_a_number(a.ids, b.ids))
    if (_dated_before_birth(a, b) or _dated_before_birth(b, a)) and a.first != b.first:
        # A record confirmed before the other person was born, tied only by a similar name
        # (an initial, a nickname): a parent and child. With the very same first name the
        # date is more likely wrong than the match.
        return True
    return False


def _full_names(group: list[_Person]) -> list[_Person]:
    return [p for p in group if p.first and len(p.first) > 1]


def _fits(x: _Person, group: list[_Person]) -> bool:
    """Whether record x's first name fits some first name the other resident is known by —
    its full names when it has any, else its initials."""
    full = _full_names(group)
    pool = full if (full and len(x.first) > 1) else [y for y in group if y.first]
    return not pool or any(
        first_names_compatible(x, y) or share_a_number(x.ids, y.ids)
        or (len(x.first) > 1 and len(y.first) > 1 and first_names_damaged(x.first, y.first))
        for y in pool
    )


def names_fit(group_a: list[_Person], group_b: list[_Person]) -> bool:
    """Judge one resident's first names against the other's, not one record against one
    neighbour. A resident is represented by its full first names when it has any (an initial
    then adds nothing: 'J' cannot vouch for JOHN and JANE at once), else by its initials.
    Every name of one resident must fit a name of the other (either way round: a resident
    already known by two names, tied by a reference number, may take in a record under either
    of them). Different first names with nothing to reconcile them are twins or siblings —
    unless a reference number ties the records. A name badly damaged (`first_names_damaged`)
    still fits: names_fit is asked only of groups the model joined at the threshold and that no
    NHS or NI number, date of birth, sex or age rule (`cannot_link`) keeps apart — on noisy data
    reading such a name as another person split far more true pairs than it kept siblings apart."""
    def speakers(group):
        return _full_names(group) or [p for p in group if p.first]

    return all(_fits(x, group_b) for x in speakers(group_a)) or all(_fits(y, group_a) for y in speakers(group_b))


def _positions(ids: np.ndarray) -> np.ndarray:
    """unique_id -> row position, as an array indexed by unique_id (-1 where no record)."""
    position = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    position[ids] = np.arange(len(ids))
    return position


def _reference_date(records: pd.DataFrame) -> pd.Timestamp:
    """When the extracts were taken: the latest record_date, else today."""
    latest = pd.to_datetime(records["record_date"], errors="coerce").max() if "record_date" in records else pd.NaT
    return pd.Timestamp.today().normalize() if pd.isna(latest) else latest


def adult_when(records: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, dict]:
    """For each record of a system of adults, when that system held it (its record_date, else
    the extracts' date); NaT for every other record. Also what was measured, per source.

    A system of adults is recognised from the confident pairs (`left`, `right`: unique_ids)
    that join one of its records without a date of birth to a record with one under the very
    same full first name: on a children's system, or one of everybody, many of those people
    were under ADULT_AGE when it recorded them; on a system of adults only the odd parent and
    child named alike were. Or from the source's own dated records, when they hold no child.
    No source names or config needed, and the data decides. A record with an adult's title
    (ADULT_TITLES) is an adult's whatever its source."""
    nat = np.full(len(records), np.datetime64("NaT"), dtype="datetime64[ns]")
    if not len(left) or not {"date_of_birth", "first_name_key", "source"} <= set(records.columns):
        return nat, {}
    ids = records["unique_id"].to_numpy(dtype=np.int64)
    position = _positions(ids)
    dob = pd.to_datetime(records["date_of_birth"], errors="coerce").to_numpy(dtype="datetime64[ns]")
    dated = (
        pd.to_datetime(records["record_date"], errors="coerce") if "record_date" in records
        else pd.Series(pd.NaT, index=records.index)
    )
    seen = dated.fillna(_reference_date(records)).to_numpy(dtype="datetime64[ns]")
    first = records["first_name_key"].to_numpy(dtype=object)
    named = records["first_name_key"].str.len().gt(1).to_numpy()
    source = records["source"].to_numpy(dtype=object)

    found = []
    for a, b in ((position[left], position[right]), (position[right], position[left])):
        keep = np.isnat(dob[a]) & ~np.isnat(dob[b]) & named[a] & (first[a] == first[b])
        a, b = a[keep], b[keep]
        found.append(pd.DataFrame({"source": source[a], "young": _age_years(seen[a] - dob[b]) < ADULT_AGE}))
    pairs = pd.concat(found, ignore_index=True)
    measured = pairs.groupby("source")["young"].agg(["size", "mean"])
    by_pairs = set(measured.index[(measured["size"] >= ADULT_SOURCE_MIN_PAIRS)
                                  & (measured["mean"] < ADULT_SOURCE_MAX_YOUNG_SHARE)])
    # The pairs can only be trusted as far as the linkage: when the only dated records an
    # adults' system meets are a school's, a father is joined to the son named after him as
    # often as not, and the pairs say 'children'. A system whose own dated records hold no
    # child says 'adults' without any linkage (the register dates its attainers, over 16).
    dated = ~np.isnat(dob)
    own = pd.DataFrame({"source": source[dated], "young": _age_years(seen[dated] - dob[dated]) < ADULT_AGE})
    own = own.groupby("source")["young"].agg(["size", "mean"])
    by_own = set(own.index[(own["size"] >= ADULT_SOURCE_MIN_DATED) & (own["mean"] <= ADULT_SOURCE_MAX_YOUNG_DATED)])
    adults = sorted(by_pairs | by_own, key=str)
    report = {}
    for s in sorted(set(measured.index) | set(own.index), key=str):
        entry = {"pairs": 0, "share_under_age": None}
        if s in measured.index:
            entry = {"pairs": int(measured.at[s, "size"]), "share_under_age": round(float(measured.at[s, "mean"]), 3)}
        if s in own.index:
            entry |= {"dated_records": int(own.at[s, "size"]), "share_dated_under_age": round(float(own.at[s, "mean"]), 3)}
        report[str(s)] = entry | {"adults_only": s in adults}
    if adults:
        log.info("sources of adults only (age %d+ when recorded): %s", ADULT_AGE, ", ".join(map(str, adults)))
    titled = records["title"].isin(ADULT_TITLES).to_numpy() if "title" in records else False
    # A dated record (an attainer on the register) speaks for itself: its own date of birth.
    return np.where((np.isin(source, np.array(adults, dtype=object)) | titled) & np.isnat(dob), seen, nat), report


def kept_references(records: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> tuple[list[str], dict]:
    """The `id_` columns one person keeps, and what was measured for each.

    A pupil number stays with its pupil; a claim reference may change with every claim, and a
    benchmark's identifiers may be corrupted like any other field. So the data decides: among
    the confident pairs (`left`, `right`: unique_ids) that agree on a full first name and a
    date of birth and both carry the reference, a reference whose two numbers differ beyond a
    typo on under OWN_REFERENCE_MAX_DIFFERING of at least OWN_REFERENCE_MIN_PAIRS pairs is kept
    by one person, and two of its numbers then mean two people."""
    columns = [c for c in records.columns if c.startswith("id_")]
    if not columns or not len(left) or not {"date_of_birth", "first_name_key"} <= set(records.columns):
        return [], {}
    position = _positions(records["unique_id"].to_numpy(dtype=np.int64))
    a, b = position[left], position[right]
    dob = pd.to_datetime(records["date_of_birth"], errors="coerce").to_numpy(dtype="datetime64[ns]")
    first = records["first_name_key"].to_numpy(dtype=object)
    named = records["first_name_key"].str.len().gt(1).to_numpy()
    alike = ~np.isnat(dob[a]) & (dob[a] == dob[b]) & named[a] & (first[a] == first[b])
    kept, report = [], {}
    for column in columns:
        values = records[column].to_numpy(dtype=object)
        both = alike & pd.notna(values[a]) & pd.notna(values[b])
        if not both.any():
            continue
        differing = [not _number_close(str(x), str(y)) for x, y in zip(values[a[both]], values[b[both]])]
        share = float(np.mean(differing))
        keeps = len(differing) >= OWN_REFERENCE_MIN_PAIRS and share < OWN_REFERENCE_MAX_DIFFERING
        report[column] = {"pairs": len(differing), "share_differing": round(share, 4), "kept_by_one_person": keeps}
        if keeps:
            kept.append(column)
    if kept:
        log.info("references one person keeps (two numbers mean two people): %s", ", ".join(kept))
    return kept, report


CONFLICT_COLUMNS = ("nhs_number", "ni_number", "date_of_birth", "first_name_key", "implied_sex")


def _values(frame: pd.DataFrame, column: str) -> list:
    """A column as a Python list with every kind of missing value as None."""
    if column not in frame:
        return [None] * len(frame)
    series = frame[column]
    return series.astype(object).where(series.notna(), None).tolist()


def _timestamps(frame: pd.DataFrame, column: str) -> list:
    if column not in frame:
        return [None] * len(frame)
    dates = pd.to_datetime(frame[column], errors="coerce")
    return [None if d is pd.NaT else d for d in dates.tolist()]


def _days(dates: np.ndarray) -> list:
    """datetime64 values as days since 1970 (floats), None for NaT."""
    days = dates.astype("datetime64[D]").astype("int64").astype(float)
    return [None if missing else d for d, missing in zip(days.tolist(), np.isnat(dates).tolist())]


@dataclass(frozen=True)
class _Context:
    """What clustering learned about every record from the data as a whole, row-aligned:
    when a system of adults held it (`adult_when`), the references one person keeps
    (`kept_references`), and its sex — recorded, by title, or by first name (`sex_of_names`)."""

    adult: np.ndarray
    kept: tuple
    sex: np.ndarray

    def take(self, rows: np.ndarray) -> "_Context":
        """The context of some of the records (`rows`: positions), for clustering only them."""
        return _Context(self.adult[rows], self.kept, self.sex[rows])


def _context(records: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> tuple[_Context, dict, dict]:
    adult, measured = adult_when(records, left, right)
    kept, references = kept_references(records, left, right)
    columns = [c for c in ("sex", "title", "first_name_key") if c in records]
    sex = implied_sex(records[columns], sex_of_names(records[columns])).to_numpy(dtype=object)
    return _Context(adult, tuple(kept), sex), measured, references


# Millions of small objects (a _Person, frozensets and tuples per record) with no reference
# cycles set the cycle collector off again and again: at a million records a third of the
# clustering stage's time. Paused only while building them and in the merge loop, where no
# pandas objects (which do hold cycles) are left behind to pile up.
@cycle_collector_paused()
def _people(records: pd.DataFrame, ids: np.ndarray, context: _Context) -> dict[int, _Person]:
    """The evidence each record carries, as plain Python objects for the merge loop."""
    adult, kept = context.adult, context.kept
    wanted = ["unique_id", "date_of_birth", "record_date", "first_name_key", "first_name_aliases",
              "middle_names_key", "last_name_key", "nhs_number", "ni_number"]
    wanted += [c for c in records.columns if c.startswith("id_")]
    chosen = records["unique_id"].isin(ids).to_numpy()
    sub = records.loc[chosen, [c for c in wanted if c in records]]
    sex = pd.Series(context.sex[chosen])
    dobs, seen = _timestamps(sub, "date_of_birth"), _timestamps(sub, "record_date")
    firsts, aliases = _values(sub, "first_name_key"), _values(sub, "first_name_aliases")
    middles, lasts = _values(sub, "middle_names_key"), _values(sub, "last_name_key")
    nhs, nino = _values(sub, "nhs_number"), _values(sub, "ni_number")
    sexes = sex.astype(object).where(sex.notna(), None).tolist()
    adults = _days(adult[chosen])
    born = _days(pd.to_datetime(sub["date_of_birth"], errors="coerce").to_numpy()) if "date_of_birth" in sub else [None] * len(sub)
    id_columns = [c for c in ("nhs_number", "ni_number") if c in sub] + [c for c in sub.columns if c.startswith("id_")]
    # (column, number) pairs per row, gathered column by column: most records carry none.
    numbers: dict[int, list] = {}
    for column in id_columns:
        values = sub[column].to_numpy(dtype=object)
        for i in np.flatnonzero(sub[column].notna().to_numpy()).tolist():
            numbers.setdefault(i, []).append((column, values[i]))
    no_numbers: frozenset = frozenset()
    out = {}
    for i, uid in enumerate(sub["unique_id"].tolist()):
        first = firsts[i]
        alias = aliases[i]
        alias_set = frozenset(alias) if alias is not None and len(alias) else frozenset([first] if first else [])
        out[int(uid)] = _Person(
            nhs=nhs[i],
            nino=nino[i],
            dob=dobs[i],
            first=first,
            last=lasts[i],
            aliases=alias_set,
            middle=frozenset(middles[i].split()) if isinstance(middles[i], str) else frozenset(),
            ids=frozenset(numbers[i]) if i in numbers else no_numbers,
            seen=seen[i],
            sex=sexes[i],
            adult_when=adults[i],
            born=born[i],
            refs=frozenset(n for n in numbers[i] if n[0] in kept) if kept and i in numbers else no_numbers,
        )
    return out


def _components(n_ids: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n_ids, n_ids))
    _, labels = connected_components(graph, directed=False)
    return labels


def _may_conflict(records: pd.DataFrame, labels: pd.Series, context: _Context) -> set:
    """Components holding more than one NHS number, NI number, date of birth, first name, sex or
    number of a reference one person keeps, a record dated before someone in it was born, or a
    record of a system of adults made when someone in it was a child."""
    suspects: set = set()
    adult = context.adult
    conflict_columns = (*CONFLICT_COLUMNS, *context.kept)
    columns = [c for c in (*conflict_columns, "record_date") if c in records]
    frame = records[columns].assign(component=labels.to_numpy())
    frame["implied_sex"] = context.sex
    for col in conflict_columns:
        if col in frame:
            counts = frame.groupby("component")[col].nunique()
            suspects |= set(counts[counts > 1].index)
    if "record_date" in frame and "date_of_birth" in frame:
        by = frame.groupby("component")
        early = pd.to_datetime(by["record_date"].min(), errors="coerce")
        late_birth = pd.to_datetime(by["date_of_birth"].max(), errors="coerce")
        suspects |= set(early.index[(early < late_birth).to_numpy()])
    if "date_of_birth" in records and not np.isnat(adult).all():
        by = pd.DataFrame({
            "adult": adult, "dob": pd.to_datetime(records["date_of_birth"], errors="coerce").to_numpy(),
            "component": labels.to_numpy(),
        }).groupby("component")
        gap = _age_years((by["adult"].min() - by["dob"].max()).to_numpy())
        suspects |= set(by["adult"].min().index[gap < ADULT_AGE])
    return suspects


def _dates_meet(group_a: list, group_b: list, people: dict[int, _Person]) -> bool:
    """One group already holds two or more dates of birth (a shared number tied a record with a
    wrong date in), and some date in one group agrees, typos allowed, with some in the other."""
    dates_a = {people[x].dob for x in group_a if people[x].dob is not None}
    dates_b = {people[y].dob for y in group_b if people[y].dob is not None}
    if len(dates_a) + len(dates_b) < 3 or not dates_a or not dates_b:
        return False
    return any(dob_compatible(x, y) for x in dates_a for y in dates_b)


def _apart(pairs: Optional[pd.DataFrame]) -> dict[int, set]:
    """unique_id -> the records a reviewer said are someone else (`non-match` decisions)."""
    apart: dict[int, set] = {}
    if pairs is None:
        return apart
    for left, right in zip(pairs["unique_id_l"].tolist(), pairs["unique_id_r"].tolist()):
        apart.setdefault(int(left), set()).add(int(right))
        apart.setdefault(int(right), set()).add(int(left))
    return apart


@cycle_collector_paused()  # see _people
def _constrained(edges: pd.DataFrame, people: dict[int, _Person], must: Optional[pd.DataFrame] = None,
                 apart: Optional[dict[int, set]] = None) -> dict[int, int]:
    """Greedy merge, strongest pair first, refusing merges that would join conflicting records.
    A reviewer's word comes first: `must` pairs (unique_id_l, unique_id_r) are joined before
    any other and whatever their evidence; two groups holding records a reviewer set `apart`
    (unique_id -> unique_ids) are never joined."""
    parent = {uid: uid for uid in people}
    members = {uid: [uid] for uid in people}
    numbers = {uid: set(p.ids) for uid, p in people.items()}
    banned = {uid: set(others) for uid, others in (apart or {}).items() if uid in people}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a, b):
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a].extend(members.pop(b))
        numbers[a] |= numbers.pop(b)
        if b in banned:
            banned.setdefault(a, set()).update(banned.pop(b))

    if must is not None:
        for left, right in zip(must["unique_id_l"].tolist(), must["unique_id_r"].tolist()):
            a, b = find(int(left)), find(int(right))
            if a != b:
                join(a, b)
    for left, right in zip(edges["unique_id_l"].to_numpy(), edges["unique_id_r"].to_numpy()):
        a, b = find(int(left)), find(int(right))
        if a == b:
            continue
        if (a in banned and not banned[a].isdisjoint(members[b])) or (b in banned and not banned[b].isdisjoint(members[a])):
            continue
        tied = share_a_number(numbers[a], numbers[b])
        meet = _dates_meet(members[a], members[b], people)
        if any(cannot_link(people[x], people[y], tied, meet) for x in members[a] for y in members[b]):
            continue
        if not names_fit([people[x] for x in members[a]], [people[y] for y in members[b]]):
            continue
        join(a, b)
    return {uid: find(uid) for uid in people}


EDGE_COLUMNS = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]


def _decided_edges(must_link: Optional[pd.DataFrame], edges: pd.DataFrame) -> pd.DataFrame:
    """A reviewer's `match` pairs as edges stronger than any score (probability 1)."""
    if must_link is None or not len(must_link):
        return edges.iloc[:0]
    return pd.DataFrame({
        "unique_id_l": must_link["unique_id_l"].to_numpy(np.int64),
        "unique_id_r": must_link["unique_id_r"].to_numpy(np.int64),
        "match_weight": np.inf, "match_probability": 1.0,
    })


def clustering_context(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float,
                       must_link: Optional[pd.DataFrame] = None) -> tuple[_Context, dict, dict]:
    """What clustering learns from all the records and their confident pairs (see `_Context`),
    for clustering only some of them (`cluster_records(..., context=context.take(rows))`), and
    what was measured (adult sources, kept references)."""
    edges = pairs.loc[pairs["match_probability"] >= threshold, EDGE_COLUMNS]
    decided = _decided_edges(must_link, edges)
    if len(decided):
        edges = pd.concat([decided, edges], ignore_index=True) if len(edges) else decided
    return _context(records, edges["unique_id_l"].to_numpy(np.int64), edges["unique_id_r"].to_numpy(np.int64))


def cluster_records(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float,
                    must_link: Optional[pd.DataFrame] = None,
                    cannot_link: Optional[pd.DataFrame] = None,
                    context: Optional[tuple[_Context, dict, dict]] = None) -> pd.DataFrame:
    """One row per record: unique_id, cluster_key (lowest member unique_id), match_probability
    (the strongest pair tying the record to its resident; 1.0 for a resident of one record).

    Reviewers' decisions are inputs like the scored pairs: `must_link` pairs (unique_id_l,
    unique_id_r) share a resident whatever their score, `cannot_link` pairs never do, not even
    through other records. The two must not contradict each other (see `review.in_force`).

    `context`: what `clustering_context` learnt from a larger set of records, row-aligned with
    `records` — when these are only the records an update touches."""
    ids = records["unique_id"].to_numpy(dtype=np.int64)
    n_ids = int(ids.max()) + 1 if len(ids) else 0
    edges = pairs.loc[pairs["match_probability"] >= threshold, EDGE_COLUMNS]
    decided = _decided_edges(must_link, edges)
    if len(decided):
        edges = pd.concat([decided, edges], ignore_index=True) if len(edges) else decided
    edges = edges.sort_values(["match_weight", "unique_id_l", "unique_id_r"], ascending=[False, True, True], kind="mergesort")
    left, right = edges["unique_id_l"].to_numpy(np.int64), edges["unique_id_r"].to_numpy(np.int64)

    component = _components(n_ids, left, right)
    labels = pd.Series(component[ids], index=records.index)
    root = pd.Series(ids, index=records.index).groupby(labels).transform("min").to_numpy()
    root_of = dict(zip(ids.tolist(), root.tolist()))

    context, measured, references = context if context is not None else _context(records, left, right)
    suspects = _may_conflict(records, labels, context)
    apart = _apart(cannot_link)
    if cannot_link is not None and len(cannot_link):
        cl, cr = cannot_link["unique_id_l"].to_numpy(np.int64), cannot_link["unique_id_r"].to_numpy(np.int64)
        suspects |= set(component[cl][component[cl] == component[cr]].tolist())
    people: dict[int, _Person] = {}
    if suspects:
        suspect_ids = ids[labels.isin(suspects).to_numpy()]
        people = _people(records, suspect_ids, context)
        inside = np.isin(left, suspect_ids)
        scored = ~np.isinf(edges["match_weight"].to_numpy())  # the decided edges go first, as `must`
        must = decided[np.isin(decided["unique_id_l"].to_numpy(np.int64), suspect_ids)] if len(decided) else None
        assigned = _constrained(edges[inside & scored], people, must, apart)
        group = pd.Series(assigned)
        lowest = group.index.to_series().groupby(group.values).transform("min")
        root_of.update(dict(zip(lowest.index.tolist(), lowest.tolist())))

    key = np.array([root_of[i] for i in ids.tolist()], dtype=np.int64)
    attached = _attach_initials(records, pairs, key, threshold, context, people, apart)
    if len(attached):
        key = _lowest_member_keys(ids, key, attached)
        edges = pd.concat([edges, attached[edges.columns]], ignore_index=True)
    membership = _membership(ids, key, edges)
    out = pd.DataFrame({"unique_id": ids, "cluster_key": key, "match_probability": membership})
    out.attrs["adult_sources"] = measured  # for run.json: what each source's pairs showed
    out.attrs["kept_references"] = references
    return out


ATTACH_FLOOR = 0.1  # an initial's pair with the only resident at its address it could stand for


def _same_place(records: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows a and b (positions) share a UPRN, or an address and postcode."""
    same = np.zeros(len(a), dtype=bool)
    if "uprn" in records:
        uprn = records["uprn"].to_numpy(dtype=object)
        same |= pd.notna(uprn[a]) & (uprn[a] == uprn[b])
    if "address" in records and "postcode" in records:
        address, postcode = records["address"].to_numpy(dtype=object), records["postcode"].to_numpy(dtype=object)
        same |= pd.notna(address[a]) & pd.notna(postcode[a]) & (address[a] == address[b]) & (postcode[a] == postcode[b])
    return same


@cycle_collector_paused()  # see _people
def _attach_initials(records: pd.DataFrame, pairs: pd.DataFrame, key: np.ndarray, threshold: float,
                     context: _Context, known: dict[int, _Person], apart: dict[int, set]) -> pd.DataFrame:
    """'MR T THOMPSON' on the council tax at the home of THOMAS THOMPSON: an initial and a surname
    score like any member of the household, below the threshold. A record that is a resident on
    its own, gives only an initial and no date of birth, and scored at least ATTACH_FLOOR with
    records of exactly one resident living at the same address, joins that resident — when none
    of its records conflicts with it and the names fit. With two residents it could stand for
    (THOMAS and TOM), it stays alone. `known`: evidence already gathered, by unique_id.
    Returns the attaching pairs (one per record)."""
    empty = pairs.iloc[:0]
    if "first_name_key" not in records or not len(pairs):
        return empty
    ids = records["unique_id"].to_numpy(dtype=np.int64)
    position = _positions(ids)
    alone = np.bincount(key - key.min(), minlength=1)[key - key.min()] == 1 if len(key) else np.array([], bool)
    initial = records["first_name_key"].str.len().eq(1).to_numpy()
    if "date_of_birth" in records:
        initial &= records["date_of_birth"].isna().to_numpy()
    band = pairs[(pairs["match_probability"] >= ATTACH_FLOOR) & (pairs["match_probability"] < threshold)]
    found = []
    for mine, theirs in (("unique_id_l", "unique_id_r"), ("unique_id_r", "unique_id_l")):
        a, b = position[band[mine].to_numpy(np.int64)], position[band[theirs].to_numpy(np.int64)]
        keep = alone[a] & initial[a] & ~(alone[b] & initial[b]) & _same_place(records, a, b)
        found.append(band[keep].assign(record=ids[a[keep]], resident=key[b[keep]]))
    candidates = pd.concat(found, ignore_index=True)
    if not len(candidates):
        return empty
    # The strongest pair with each resident, judged against that resident's records.
    best = candidates.sort_values(["record", "resident", "match_weight"], ascending=[True, True, False])
    best = best.drop_duplicates(["record", "resident"])
    wanted = np.isin(key, best["resident"].unique())
    order = np.argsort(key[wanted], kind="stable")
    keys, starts = np.unique(key[wanted][order], return_index=True)
    members = dict(zip(keys.tolist(), np.split(ids[wanted][order], starts[1:])))
    involved = np.unique(np.r_[best["record"].to_numpy(), ids[wanted]])
    missing = involved[~np.isin(involved, np.fromiter(known, dtype=np.int64, count=len(known)))]
    people = {**known, **_people(records, missing, context)} if len(missing) else known

    def fits(record: int, group: list) -> bool:
        if not apart.get(record, set()).isdisjoint(group):
            return False  # a reviewer said this record is someone else than one of them
        x = people[record]
        tied = share_a_number(x.ids, set().union(*(people[m].ids for m in group)))
        return not any(cannot_link(x, people[m], tied) for m in group) and names_fit([x], [people[m] for m in group])

    fitting = [fits(r, members[k].tolist()) for r, k in zip(best["record"].tolist(), best["resident"].tolist())]
    best = best.loc[np.array(fitting, dtype=bool)]
    best = best[~best["record"].duplicated(keep=False)]  # exactly one resident it could stand for
    keep = []
    joined: dict[int, list] = {}  # records attached so far, by resident: later ones are judged with them
    for record, resident in zip(best["record"].tolist(), best["resident"].tolist()):
        ok = not joined.get(resident) or fits(record, joined[resident])
        if ok:
            joined.setdefault(resident, []).append(record)
        keep.append(ok)
    attached = best[np.array(keep, dtype=bool)]
    if len(attached):
        log.info("%d initial-only records joined the only resident at their address they could stand for", len(attached))
    return attached


def _lowest_member_keys(ids: np.ndarray, key: np.ndarray, attached: pd.DataFrame) -> np.ndarray:
    """Keys after the attached records joined their residents: each resident's lowest unique_id."""
    moved = pd.Series(key, index=ids)
    moved.loc[attached["record"].to_numpy()] = attached["resident"].to_numpy()
    return pd.Series(ids).groupby(moved.to_numpy()).transform("min").to_numpy(dtype=np.int64)


def _membership(ids: np.ndarray, key: np.ndarray, edges: pd.DataFrame) -> np.ndarray:
    """The strongest within-resident pair probability for each record (1.0 when alone)."""
    cluster_of = pd.Series(key, index=ids)
    e = edges.assign(kl=cluster_of.reindex(edges["unique_id_l"]).to_numpy(), kr=cluster_of.reindex(edges["unique_id_r"]).to_numpy())
    e = e[e["kl"] == e["kr"]]
    best = pd.concat([
        e[["unique_id_l", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
        e[["unique_id_r", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
    ]).groupby("unique_id")["p"].max()
    return best.reindex(ids).astype(float).fillna(1.0).to_numpy(dtype=float)

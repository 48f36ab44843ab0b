"""`link-encoded`: two encoded files -> one resident per record, from the encodings alone.

1. **Compatible or refused.** Both files must come from the same method, parameters and key
   (the key's fingerprint): filters made under two keys share bits only by chance, so linking
   them would quietly find nobody. (`read_encoded` has already refused a file of another
   version of `encode`.)
2. **Candidates** are the pairs of records (across the two files and within each: a borough's
   file has its own duplicates) sharing an encoded blocking key, or an exact token of a
   person's number or of a place (`encoding.BLOCKING_TOKENS`). A key held by more than
   `MAX_BLOCK` records (a very common surname code with an initial) is skipped, and counted.
3. **What each pair's encodings say** (`compare`): the Dice coefficient of the two record
   filters, 2|A∧B| / (|A| + |B|), by popcount over 64-bit words; the Dice of their name parts
   (nickname aliases included), and whether one record's other name (swapped, or known by its
   middle name) is the other's name (`other_name`); how many records of both files share the
   name's blocking code (a rare name);
   whether a person's own number agrees (NHS, NI, email, phone, a system's reference), whether
   an NHS number or a system's reference disagrees; one place (UPRN or address token); dates of
   birth agreeing in two of their three parts; first initials no nickname reconciles; two
   sexes; a child and an adult (`learn_adult_sources` first finds the systems of adults among
   the undated records, as `cluster.adult_when` does in the clear).
4. **Which pairs link** (`decide`), the rules of the clear clusterer's conflicts on encoded
   evidence: no conflict (`conflicting`: two NHS numbers, a child and an adult, dates or
   initials no typo or nickname explains, a couple of two sexes), and a record Dice at
   `threshold` with first names that fit (`names_fit`), or at THRESHOLD_SHARED_NUMBER with a
   person's number in common, or at THRESHOLD_SAME_PLACE at one address (lower for an
   initial, THRESHOLD_OTHER_NAME_AT_PLACE for another name of the person; NAMES_FIT_ONE_SEX and
   THRESHOLD_INITIAL_ONE_SEX where both records state one sex), or at
   THRESHOLD_RARE_NAME for one rare name (at most RARE_NAME_RECORDS records) where no two
   known places differ; between two known places that differ, on names alone, only from
   THRESHOLD_ELSEWHERE. An initial that fits two people at hand links to neither
   (`_ambiguous_initials`). The defaults were measured on the two-borough benchmark
   (BENCHMARKS.md, "Linking encoded files") for a precision of 0.98: a false link between two
   organisations is the costlier mistake. Each pair's `match_probability` is estimated from
   the file pair itself: a two-component mixture fitted to the Dice scores of the candidates
   (`dice_mixture`), reported, not used to decide.
5. **Clustering** is `residentview.cluster.cluster_records`, the clusterer `link` uses,
   strongest link first (a shared number, then one place, then Dice), with the anti-chaining
   evidence the encodings carry: two records put together by a chain of links (father ~
   "Mr J Smith" ~ son) that conflict, or whose filters are far apart (Dice under
   `APART_BELOW`), are a cannot-link pair, so the greedy merge keeps them apart as it keeps
   apart records a reviewer said are different people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from residentview.cluster import cluster_records
from residentview.errors import DataError
from residentview.pprl.encoding import EncodedRecords, filters
from residentview.resident_view.ids import RESIDENT_IDS, group_fingerprints, mint_ids

DEFAULT_THRESHOLD = 0.8
APART_BELOW = 0.6  # Dice of two records in one would-be resident below which they are two people
MAX_BLOCK = 500  # records sharing one blocking key, beyond which the key is skipped
_PER_FILE = ("key_fingerprint", "organisation", "n_records", "sources", "tokens")
LINK_COLUMNS = ["organisation", "source", "record_id", "resident_id", "match_probability"]


@dataclass
class EncodedLinks:
    """`links`: one row per record of both files (LINK_COLUMNS); `pairs`: the candidate pairs
    with their Dice; `summary`: counts and settings, no values (written as pprl_summary.json)."""

    links: pd.DataFrame
    pairs: pd.DataFrame
    summary: dict = field(default_factory=dict)


def check_compatible(left: EncodedRecords, right: EncodedRecords, names: tuple[str, str] = ("left", "right")) -> None:
    """Refuse (DataError, one line) two files that cannot be linked to each other."""
    a, b = left.metadata, right.metadata
    if a.get("key_fingerprint") != b.get("key_fingerprint"):
        raise DataError(f"{names[0]} and {names[1]} were encoded under different keys (fingerprints "
                        f"{a.get('key_fingerprint')} and {b.get('key_fingerprint')}); both sides must encode with the same shared key")
    differing = sorted(k for k in set(a) | set(b) if k not in _PER_FILE and a.get(k) != b.get(k))
    if differing:
        raise DataError(f"{names[0]} and {names[1]} were encoded with different parameters ({', '.join(differing)}); "
                        "both sides must use the same residentview version of `encode`")
    if a.get("organisation") == b.get("organisation"):
        raise DataError(f"{names[0]} and {names[1]} both come from {a.get('organisation')!r}; "
                        "link-encoded links two organisations' files (give each its own config name)")


def candidate_pairs(blocks: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """unique_id_l < unique_id_r of every pair sharing a blocking key, each once; and per rule
    how many keys were skipped as too common."""
    found, skipped = [], {}
    for column in blocks.columns:
        keyed = pd.DataFrame({"unique_id": np.arange(len(blocks)), "key": blocks[column].to_numpy()}).dropna()
        sizes = keyed.groupby("key")["unique_id"].transform("size")
        skipped[column.removeprefix("block_")] = int(keyed.loc[sizes > MAX_BLOCK, "key"].nunique())
        keyed = keyed[(sizes > 1) & (sizes <= MAX_BLOCK)]
        joined = keyed.merge(keyed, on="key", suffixes=("_l", "_r"))
        found.append(joined.loc[joined["unique_id_l"] < joined["unique_id_r"], ["unique_id_l", "unique_id_r"]])
    pairs = pd.concat(found, ignore_index=True).drop_duplicates(ignore_index=True) if found else \
        pd.DataFrame({"unique_id_l": [], "unique_id_r": []}, dtype=np.int64)
    return pairs.astype(np.int64), skipped


def blocking_columns(left: dict, right: dict) -> list[str]:
    """The columns whose equal values make two records a candidate pair, given both files'
    metadata: every blocking rule's key, and the tokens of a person's number or a place both
    files hold (`encoding.BLOCKING_TOKENS`, every `identifiers` reference)."""
    tokens = [t for t in left["tokens"] if t in right["tokens"]]
    return [*(f"block_{rule}" for rule in left["blocking_rules"]),
            *(f"token_{t}" for t in tokens if t in left["blocking_tokens"] or t.startswith("id_"))]


def dice(words: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
    """Dice coefficient of the filters at rows `left` and `right` (uint64 words), in chunks."""
    ones = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), chunk):
        lo, hi = left[start:start + chunk], right[start:start + chunk]
        shared = np.bitwise_count(words[lo] & words[hi]).sum(axis=1, dtype=np.int64)
        total = ones[lo] + ones[hi]
        out[start:start + chunk] = np.divide(2 * shared, total, out=np.zeros(len(lo)), where=total > 0)
    return out


def dice_mixture(scores: np.ndarray, iterations: int = 200, sample: int = 20_000) -> np.ndarray:
    """P(match | Dice) for each score: a two-component beta mixture fitted by EM (method of
    moments in the M step), started with the matches above DEFAULT_THRESHOLD, on at most
    `sample` of the scores (drawn with a fixed seed: a million candidates take minutes and say
    no more). Candidates are mostly non-matches that shared a blocking key by chance; their Dice
    sits well below that of records of one person."""
    x = np.clip(scores, 1e-4, 1 - 1e-4)
    if len(x) < 10:
        return (scores >= DEFAULT_THRESHOLD).astype(float)
    fit = x if len(x) <= sample else np.random.default_rng(0).choice(x, sample, replace=False)
    responsibility = (fit >= DEFAULT_THRESHOLD).astype(float)
    if responsibility.all() or not responsibility.any():
        return (x >= DEFAULT_THRESHOLD).astype(float)
    from scipy.stats import beta

    def components(weights_of_match: np.ndarray, at: np.ndarray) -> list[np.ndarray]:
        densities = []
        for weights in (weights_of_match, 1 - weights_of_match):
            total = weights.sum()
            mean = (weights * fit).sum() / total
            var = max((weights * (fit - mean) ** 2).sum() / total, 1e-6)
            common = max(mean * (1 - mean) / var - 1, 1e-3)
            densities.append(total / len(fit) * beta.pdf(at, mean * common, (1 - mean) * common))
        return densities

    for _ in range(iterations):
        match, other = components(responsibility, fit)
        updated = match / np.maximum(match + other, 1e-300)
        converged = np.abs(updated - responsibility).max() < 1e-6
        responsibility = updated
        if converged:
            break
    match, other = components(responsibility, x)
    responsibility = match / np.maximum(match + other, 1e-300)
    # a mixture's tails can cross: never let a higher Dice mean a lower probability
    order = np.argsort(x, kind="stable")
    responsibility[order] = np.maximum.accumulate(responsibility[order])
    return responsibility


def similarity(encodings: dict[str, tuple[np.ndarray, np.ndarray]], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The score of each pair: the mean Dice coefficient of the encodings both records hold;
    NaN when they hold none in common."""
    total, count = np.zeros(len(left)), np.zeros(len(left))
    for words, held in encodings.values():
        both = held[left] & held[right]
        total += np.where(both, dice(words, left, right), 0.0)
        count += both
    return np.divide(total, count, out=np.full(len(left), np.nan), where=count > 0)


# Numbers issued to one person whose disagreement means two people (an NHS number, a system's
# own reference such as a pupil number: validated, rarely mistyped). An NI number, an email
# address or a phone number shared by a couple, or mistyped, says less: its agreement counts,
# not its disagreement.
PERSONAL_NUMBERS = ("nhs_number",)
THRESHOLD_SHARED_NUMBER = 0.6  # record Dice at which records sharing a person's number link
THRESHOLD_SAME_PLACE = 0.66  # record Dice at which records at one place (UPRN or address) link
# ... and an initial ('MR J SMITH') with a name at one place, the initial fitting nobody else there:
# an initial alone sets few bits, and a record without a postcode fewer, so its Dice is lower
THRESHOLD_INITIAL_AT_PLACE = 0.6
THRESHOLD_ELSEWHERE = 0.9  # record Dice at which records at two known places link on names alone
# Dice of the name parts (first name and surname in one filter, see `encoding.PARTS`): from
# NAMES_FIT two records' first names may be one, mistyped (a household's members, one surname
# and two first names, score below); from NAMES_SAME they are one name.
# The name filter carries the first name's aliases (SALLY ~ SARAH), which lifts the Dice of a
# household's members a little too: NAMES_FIT 0.73 (0.77 without them), THRESHOLD_SAME_PLACE
# 0.66 (0.70) kept precision at 0.98 under four keys at 10k.
NAMES_FIT = 0.73
NAMES_SAME = 0.88
# Two records at one place whose sex tokens agree (recorded, by title, or by a first name each
# organisation learned: `encoding.name_sexes`) link with names from NAMES_FIT_ONE_SEX (a nickname
# or typo: GILL and JILL), and an initial of that sex that fits from record Dice
# THRESHOLD_INITIAL_ONE_SEX: a household's members of two sexes no longer compete for them.
NAMES_FIT_ONE_SEX = 0.70
THRESHOLD_INITIAL_ONE_SEX = 0.5
# One record's other name (`encoding.NAME_VARIANTS`: swapped, known by its middle name) that is
# the other's name from NAMES_OTHER; such a pair, at one place, links from a record Dice of
# THRESHOLD_OTHER_NAME_AT_PLACE: the record filters hold the first names in other places.
NAMES_OTHER = 0.88
THRESHOLD_OTHER_NAME_AT_PLACE = 0.4
# A name (its blocking code, counted over both files, as the linker sees it anyway) held by at
# most RARE_NAME_RECORDS records, one name (NAMES_SAME), links from THRESHOLD_RARE_NAME where one
# place is unknown: the house number and postcode bits left in the record filter are the place
# evidence. Not between two known places: there most such links were namesakes (BENCHMARKS.md).
RARE_NAME_RECORDS = 4
THRESHOLD_RARE_NAME = 0.65
ADULT_PAIRS_DICE = 0.85  # record Dice of the close pairs `learn_adult_sources` measures on


@dataclass
class _Evidence:
    """What the files say of each record besides its filter, row-aligned over both files:
    `tokens` name -> (int64 values, held), `initials` (bit masks, 0 when none), `initial_only`,
    `age` ('child', 'adult' or None; `learn_adult_sources` fills some in) and `parts` name ->
    (uint64 words, held)."""

    tokens: dict[str, tuple[np.ndarray, np.ndarray]]
    initials: np.ndarray
    initial_only: np.ndarray
    age: np.ndarray
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _evidence(records: pd.DataFrame, tokens: list[str], parts: dict) -> _Evidence:
    columns = {}
    for name in tokens:
        values = records[f"token_{name}"]
        held = values.notna().to_numpy()
        columns[name] = (values.fillna(0).to_numpy(np.int64), held)
    return _Evidence(columns, records["initials"].fillna(0).to_numpy(np.int64),
                     records["first_initial_only"].fillna(False).to_numpy(bool),
                     records["age_group"].astype(object).where(records["age_group"].notna(), None).to_numpy(object),
                     parts)


def _person_tokens(evidence: _Evidence) -> list[str]:
    from residentview.pprl.encoding import PERSON_TOKENS

    return [t for t in evidence.tokens if t in PERSON_TOKENS or t.startswith("id_")]


def compare(evidence: _Evidence, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    """Per pair (rows `left`, `right`), what the parts and tokens say: `<part>_dice`,
    `shared_number` (a person's own number agrees), `numbers_differ` (an NHS number or a
    system's own reference disagrees), `same_place` (UPRN or address), `dates` (both dated),
    `dates_agree` (two of year, month and day agree, or day and month swapped),
    `places_differ` (both places known, none shared), `initials_differ` (no first initial in
    common, nicknames allowed), `initial_only` (either gives only an initial), `sexes_differ`
    and `sexes_agree` (both records' sex tokens known), and `ages_differ` (a child and an
    adult)."""
    def agree(name):
        values, held = evidence.tokens[name]
        both = held[left] & held[right]
        return both, both & (values[left] == values[right])

    out = pd.DataFrame(index=np.arange(len(left)))
    shared, differ = np.zeros(len(left), bool), np.zeros(len(left), bool)
    for name in _person_tokens(evidence):
        both, same = agree(name)
        shared |= same
        if name in PERSONAL_NUMBERS or name.startswith("id_"):
            differ |= both & ~same
    place, elsewhere = np.zeros(len(left), bool), np.zeros(len(left), bool)
    for name in ("uprn", "address"):
        if name in evidence.tokens:
            both, same = agree(name)
            place |= same
            elsewhere |= both & ~same
    out["places_differ"] = elsewhere & ~place
    dated, dates_agree = np.zeros(len(left), bool), np.zeros(len(left), bool)
    for name in ("dob_year_month", "dob_year_day", "dob_day_month"):
        if name in evidence.tokens:
            both, same = agree(name)
            dated |= both
            dates_agree |= same
    for name, (words, held) in evidence.parts.items():
        if name.startswith("name_"):
            continue
        out[f"{name}_dice"] = np.where(held[left] & held[right], dice(words, left, right), np.nan)
    # the other name of one record (names swapped, known by a middle name) against the other's name
    other = np.full(len(left), np.nan)
    if "name" in evidence.parts:
        words, held = evidence.parts["name"]
        n = len(held)
        for name, (variant, has) in evidence.parts.items():
            if not name.startswith("name_"):
                continue
            stacked = np.concatenate([words, variant])
            for a, b in ((left, right), (right, left)):
                both = has[a] & held[b]
                other = np.fmax(other, np.where(both, dice(stacked, a + n, b), np.nan))
    out["other_name"] = (other >= NAMES_OTHER) & ~(out["name_dice"].to_numpy() >= NAMES_FIT)
    sexes = agree("sex") if "sex" in evidence.tokens else (np.zeros(len(left), bool),) * 2
    out["sexes_differ"] = sexes[0] & ~sexes[1]
    out["sexes_agree"] = sexes[1]
    out["initial_only"] = evidence.initial_only[left] | evidence.initial_only[right]
    il, ir = evidence.initials[left], evidence.initials[right]
    al, ar = evidence.age[left], evidence.age[right]
    out["shared_number"], out["numbers_differ"], out["same_place"] = shared, differ, place
    out["dates"], out["dates_agree"] = dated, dates_agree
    out["initials_differ"] = (il > 0) & (ir > 0) & ((il & ir) == 0) & ~out["other_name"].to_numpy()
    # two dated records are judged by their dates (the files may have been extracted years apart)
    out["ages_differ"] = (al != None) & (ar != None) & (al != ar) & ~dated  # noqa: E711 (elementwise, object arrays)
    return out


def conflicting(evidence: pd.DataFrame) -> np.ndarray:
    """Pairs the tokens say are two people, whatever their filters (`compare`'s columns): two
    of a person's own numbers; a child and an adult; dates of birth no typo explains, first
    initials that no nickname reconciles, or two sexes under first names that are not one,
    unless a person's own number ties them."""
    untied = ~evidence["shared_number"].to_numpy()
    dates_differ = evidence["dates"].to_numpy() & ~evidence["dates_agree"].to_numpy()
    other_name = ~(evidence["name_dice"].to_numpy() >= NAMES_SAME) & ~evidence["other_name"].to_numpy()
    couple = evidence["sexes_differ"].to_numpy() & other_name
    return (evidence["numbers_differ"].to_numpy() | evidence["ages_differ"].to_numpy()
            | (untied & (dates_differ | evidence["initials_differ"].to_numpy() | couple)))


def names_fit(evidence: pd.DataFrame) -> np.ndarray:
    """First names that may be one: name parts alike (NAMES_FIT); or, where one side gives only
    an initial (whose name part is then mostly its surname), an initial that the other's first
    name, or a short or long form of it, begins with."""
    initial = evidence["initial_only"].to_numpy()
    return np.where(initial, ~evidence["initials_differ"].to_numpy(),
                    (evidence["name_dice"].to_numpy() >= NAMES_FIT) | evidence["other_name"].to_numpy())


def _apart(encodings: dict, evidence: _Evidence, linked: pd.DataFrame, n: int) -> pd.DataFrame:
    """Pairs of records joined by a chain of links that the tokens say are two people
    (`conflicting`) or whose own filters are far apart (Dice under APART_BELOW): a cannot-link
    pair for the clusterer."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(linked), np.int8), (linked["unique_id_l"], linked["unique_id_r"])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members = pd.DataFrame({"unique_id": np.arange(n), "component": component})
    size = members.groupby("component")["unique_id"].transform("size")
    members = members[size > 2]  # a linked pair alone has passed these tests already
    within = members.merge(members, on="component", suffixes=("_l", "_r"))
    within = within[within["unique_id_l"] < within["unique_id_r"]]
    left, right = within["unique_id_l"].to_numpy(np.int64), within["unique_id_r"].to_numpy(np.int64)
    score = similarity(encodings, left, right)
    far = ~(score >= APART_BELOW) | conflicting(compare(evidence, left, right))
    return pd.DataFrame({"unique_id_l": left[far], "unique_id_r": right[far]})


def learn_adult_sources(records: pd.DataFrame, evidence: _Evidence, candidates: pd.DataFrame) -> dict:
    """Give the undated records of a system of adults (council tax) the age group 'adult', as
    `cluster.adult_when` does in the clear: a source whose undated records, in close pairs
    (record Dice from ADULT_PAIRS_DICE, names from NAMES_SAME), meet records dated as children
    in under ADULT_SOURCE_MAX_YOUNG_SHARE of at least ADULT_SOURCE_MIN_PAIRS pairs holds adults.
    A parent and the child named after him share a home and a name, so the test is a share,
    not any one pair. Changes `evidence.age` in place; returns what was measured per source."""
    from residentview.cluster import ADULT_SOURCE_MAX_YOUNG_SHARE, ADULT_SOURCE_MIN_PAIRS

    dated = np.zeros(len(records), bool)
    for name in ("dob_year_month", "dob_year_day", "dob_day_month"):
        if name in evidence.tokens:
            dated |= evidence.tokens[name][1]
    close = candidates[(candidates["dice"].to_numpy() >= ADULT_PAIRS_DICE)
                       & (candidates["name_dice"].to_numpy() >= NAMES_SAME)]
    source = records["source"].to_numpy(object)
    found = []
    for mine, theirs in (("unique_id_l", "unique_id_r"), ("unique_id_r", "unique_id_l")):
        a, b = close[mine].to_numpy(np.int64), close[theirs].to_numpy(np.int64)
        keep = ~dated[a] & dated[b] & (evidence.age[b] != None)  # noqa: E711
        found.append(pd.DataFrame({"source": source[a[keep]], "young": evidence.age[b[keep]] == "child"}))
    measured = pd.concat(found).groupby("source")["young"].agg(["size", "mean"])
    enough = (measured["size"] >= ADULT_SOURCE_MIN_PAIRS) & (measured["mean"] < ADULT_SOURCE_MAX_YOUNG_SHARE)
    adults = measured.index[enough]
    unknown = np.isin(source, adults.to_numpy(object)) & ~dated & (evidence.age == None)  # noqa: E711
    evidence.age[unknown] = "adult"
    return {str(s): {"pairs": int(measured.at[s, "size"]), "share_under_age": round(float(measured.at[s, "mean"]), 3),
                     "adults_only": s in adults} for s in measured.index}


def decide(candidates: pd.DataFrame, threshold: float) -> np.ndarray:
    """Which candidate pairs link: no conflict (`conflicting`), and a record Dice at
    `threshold` with first names that fit (`names_fit`), or at THRESHOLD_SHARED_NUMBER with a
    person's own number in common, or at THRESHOLD_SAME_PLACE at one place with first names
    that fit (THRESHOLD_INITIAL_AT_PLACE for an initial, THRESHOLD_OTHER_NAME_AT_PLACE for
    another name; where both records state one sex, names from NAMES_FIT_ONE_SEX and an initial
    from THRESHOLD_INITIAL_ONE_SEX), or at THRESHOLD_RARE_NAME for one rare name where no two known places
    differ; not on names alone between two known places below THRESHOLD_ELSEWHERE; less any
    link resting on an initial that fits two people (`_ambiguous_initials`)."""
    score = candidates["dice"].to_numpy()
    shared, place = candidates["shared_number"].to_numpy(), candidates["same_place"].to_numpy()
    fitting = names_fit(candidates)
    initial = candidates["initial_only"].to_numpy()
    at_place = np.where(initial, min(threshold, THRESHOLD_INITIAL_AT_PLACE), min(threshold, THRESHOLD_SAME_PLACE))
    at_place = np.where(candidates["other_name"].to_numpy(), THRESHOLD_OTHER_NAME_AT_PLACE, at_place)
    enough = (fitting & (score >= threshold)) | (shared & (score >= THRESHOLD_SHARED_NUMBER)) | (
        place & fitting & (score >= at_place))
    # one sex at one place: a nickname or typo (names a little less alike), or an initial of
    # that sex with a lower Dice (a household member of the other sex is no longer a rival)
    one_sex = place & candidates["sexes_agree"].to_numpy()
    enough |= one_sex & ~initial & (candidates["name_dice"].to_numpy() >= NAMES_FIT_ONE_SEX) & (score >= at_place)
    enough |= one_sex & initial & fitting & (score >= THRESHOLD_INITIAL_ONE_SEX)
    # Two records whose places are both known and differ are linked by their names alone: a
    # namesake's filters are as alike once a postcode is missing (only names and a house number
    # left), and with 100k records namesakes are many. Unless a date or number ties them, such a
    # link needs THRESHOLD_ELSEWHERE.
    tied = shared | (candidates["dates"].to_numpy() & candidates["dates_agree"].to_numpy())
    by_name_alone = candidates["places_differ"].to_numpy() & ~tied & (score < THRESHOLD_ELSEWHERE)
    rare = ((candidates["name_records"].to_numpy() <= RARE_NAME_RECORDS)
            & (candidates["name_dice"].to_numpy() >= NAMES_SAME))
    enough |= rare & ~candidates["places_differ"].to_numpy() & (score >= THRESHOLD_RARE_NAME)
    linked = enough & ~conflicting(candidates) & ~by_name_alone
    return linked & ~_ambiguous_initials(candidates, linked)


def _ambiguous_initials(candidates: pd.DataFrame, linked: np.ndarray) -> np.ndarray:
    """Links that rest on an initial ('MR J SMITH' ~ JOHN SMITH) where the initial also fits
    another person at hand (JANE SMITH, whose name does not fit JOHN's): which of them the
    initial stands for is unknown, so it links to neither, as `cluster._attach_initials` keeps
    such a record alone in the clear."""
    by_initial = linked & candidates["initial_only"].to_numpy()
    if not by_initial.any():
        return by_initial
    # two records the initial fits may be one person: names that fit, nothing in conflict
    one = names_fit(candidates) & ~candidates["initial_only"].to_numpy() & ~conflicting(candidates)
    alike = set(zip(candidates["unique_id_l"].to_numpy()[one].tolist(),
                    candidates["unique_id_r"].to_numpy()[one].tolist()))
    # the same initial and name twice ('MS S HUSSAIN' on two council-tax records) is one record
    # written twice, not a second person it could stand for
    copies = by_initial & (candidates["name_dice"].to_numpy() >= NAMES_SAME) & ~candidates["initials_differ"].to_numpy()
    copy_of = set(zip(candidates["unique_id_l"].to_numpy()[copies].tolist(),
                      candidates["unique_id_r"].to_numpy()[copies].tolist()))
    copy_of |= {(b, a) for a, b in copy_of}
    rows = np.flatnonzero(by_initial)
    left, right = candidates["unique_id_l"].to_numpy()[rows], candidates["unique_id_r"].to_numpy()[rows]
    partners: dict[int, list] = {}
    for row, a, b in zip(rows.tolist(), left.tolist(), right.tolist()):
        partners.setdefault(a, []).append((row, b))
        partners.setdefault(b, []).append((row, a))
    ambiguous = np.zeros(len(candidates), bool)
    for mine, group in partners.items():
        others = sorted({other for _, other in group if (mine, other) not in copy_of})
        if len(others) > 1 and any((x, y) not in alike for i, x in enumerate(others) for y in others[i + 1:]):
            ambiguous[[row for row, _ in group]] = True
    return ambiguous


def link_encoded(left: EncodedRecords, right: EncodedRecords, threshold: float = DEFAULT_THRESHOLD,
                 names: tuple[str, str] = ("left", "right")) -> EncodedLinks:
    """Link two organisations' encoded files: one row per record of either, with its resident."""
    if not 0 < threshold <= 1:
        raise DataError(f"threshold {threshold}: expected a Dice coefficient above 0 and at most 1")
    check_compatible(left, right, names)
    records = pd.concat([
        left.frame.assign(organisation=left.metadata["organisation"]),
        right.frame.assign(organisation=right.metadata["organisation"]),
    ], ignore_index=True)
    encodings = {}
    for encoding in left.metadata["encodings"]:
        (words_l, held_l), (words_r, held_r) = filters(left, encoding), filters(right, encoding)
        encodings[encoding] = (np.concatenate([words_l, words_r]), np.concatenate([held_l, held_r]))
    tokens = [t for t in left.metadata["tokens"] if t in right.metadata["tokens"]]
    parts = {}
    for part in left.metadata["parts"]:
        (words_l, held_l), (words_r, held_r) = (filters(f, part, "part", "part_bits") for f in (left, right))
        parts[part] = (np.concatenate([words_l, words_r]), np.concatenate([held_l, held_r]))
    for variant in left.metadata.get("name_variants", []):
        (words_l, held_l), (words_r, held_r) = (filters(f, f"name_{variant}", "part", "part_bits")
                                                for f in (left, right))
        parts[f"name_{variant}"] = (np.concatenate([words_l, words_r]), np.concatenate([held_l, held_r]))
    evidence = _evidence(records, tokens, parts)
    candidates, skipped = candidate_pairs(records[blocking_columns(left.metadata, right.metadata)])
    l, r = candidates["unique_id_l"].to_numpy(), candidates["unique_id_r"].to_numpy()
    candidates["dice"] = similarity(encodings, l, r)
    candidates = candidates[candidates["dice"].notna()].reset_index(drop=True)
    l, r = candidates["unique_id_l"].to_numpy(), candidates["unique_id_r"].to_numpy()
    candidates = pd.concat([candidates, compare(evidence, l, r)], axis=1)
    # how many records of both files share each record's name code: a rare name
    name_code = records.get("block_forename_surname")
    if name_code is not None:
        sizes = name_code.map(name_code.value_counts()).astype(float).fillna(np.inf).to_numpy(float)
        candidates["name_records"] = np.maximum(sizes[l], sizes[r])
    else:
        candidates["name_records"] = np.inf
    adult_sources = learn_adult_sources(records, evidence, candidates)
    if any(v["adults_only"] for v in adult_sources.values()):
        candidates["ages_differ"] = compare(evidence, l, r)["ages_differ"].to_numpy()
    candidates["match_probability"] = dice_mixture(candidates["dice"].to_numpy())
    # The clusterer takes the strongest first: a shared number, then one address, then Dice.
    candidates["match_weight"] = candidates["dice"] + candidates["shared_number"] + 0.1 * candidates["same_place"]
    linked = decide(candidates, threshold)
    candidates["linked"] = linked

    # Link on the rules of `decide`: the probability is reported, not used to decide, because a
    # mixture fitted to one file pair should not move which pairs link.
    scored = candidates.assign(match_probability=np.where(linked, 1.0, 0.0))
    apart = _apart(encodings, evidence, candidates[linked], len(records))
    clustered = cluster_records(pd.DataFrame({"unique_id": np.arange(len(records))}), scored, 0.5, cannot_link=apart)
    member = records["organisation"] + "\x1f" + records["source"] + "\x1f" + records["record_id"]
    fingerprints = group_fingerprints(pd.Series(clustered["cluster_key"].to_numpy()), member, RESIDENT_IDS)
    ids = mint_ids(fingerprints, RESIDENT_IDS, taken=[])
    probability = _membership(candidates, clustered["cluster_key"].to_numpy())
    links = pd.DataFrame({
        "organisation": records["organisation"].to_numpy(), "source": records["source"].to_numpy(),
        "record_id": records["record_id"].to_numpy(),
        "resident_id": ids.reindex(clustered["cluster_key"].to_numpy()).to_numpy(),
        "match_probability": probability,
    })
    crossing = links.groupby("resident_id")["organisation"].nunique()
    summary = {
        "threshold": threshold, "records": {names[0]: len(left.frame), names[1]: len(right.frame)},
        "organisations": [left.metadata["organisation"], right.metadata["organisation"]],
        "key_fingerprint": left.metadata["key_fingerprint"], "method": left.metadata["method"],
        "candidate_pairs": int(len(candidates)), "linked_pairs": int(linked.sum()),
        "conflicting_pairs": int(conflicting(candidates).sum()),
        "apart_pairs": int(len(apart)), "adult_sources": adult_sources, "blocking_keys_skipped_as_too_common": skipped,
        "residents": int(links["resident_id"].nunique()),
        "residents_in_both": int((crossing > 1).sum()),
        "dice_histogram": _histogram(candidates["dice"].to_numpy()),
    }
    return EncodedLinks(links, candidates, summary)


def _membership(candidates: pd.DataFrame, key: np.ndarray) -> np.ndarray:
    """Each record's strongest within-resident pair probability (1.0 for a resident of one)."""
    linked = candidates[candidates["linked"]]
    same = key[linked["unique_id_l"].to_numpy()] == key[linked["unique_id_r"].to_numpy()]
    linked = linked[same]
    best = pd.concat([
        linked[["unique_id_l", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
        linked[["unique_id_r", "match_probability"]].set_axis(["unique_id", "p"], axis=1),
    ]).groupby("unique_id")["p"].max()
    return best.reindex(np.arange(len(key))).fillna(1.0).to_numpy(float)


def _histogram(scores: np.ndarray) -> dict[str, int]:
    """Candidate pairs per Dice band of 0.05: where the trough between the two humps lies."""
    edges = np.round(np.arange(0, 1.0001, 0.05), 2)
    counts, _ = np.histogram(scores, bins=edges)
    return {f"{lo:.2f}-{hi:.2f}": int(n) for lo, hi, n in zip(edges[:-1], edges[1:], counts)}


def write_links(result: EncodedLinks, folder: Path) -> Path:
    """resident_links.parquet and pprl_summary.json, all at once or not at all (CONTRACT §3)."""
    from residentview.outputs import folder_lock, staged_output

    from residentview.audit import append_entries, os_user, versions
    from residentview.review.store import file_digest

    folder = Path(folder)
    with folder_lock(folder, "link-encoded"), staged_output(folder) as staging:
        result.links.to_parquet(staging / "resident_links.parquet", index=False)
        (staging / "pprl_summary.json").write_text(json.dumps(result.summary, indent=2), encoding="utf-8")
        # Who linked which organisations' encodings under which key (its fingerprint), and what
        # came out: counts and the file's hash, no record ids.
        summary = result.summary
        append_entries(folder, staging, [{
            "event": "link-encoded", "user": os_user(), "versions": versions(),
            "organisations": summary["organisations"], "key_fingerprint": summary["key_fingerprint"],
            "method": summary["method"], "threshold": summary["threshold"], "records": summary["records"],
            "residents": summary["residents"], "residents_in_both": summary["residents_in_both"],
            "file": "resident_links.parquet", "sha256": file_digest(staging / "resident_links.parquet"),
        }])
    return folder

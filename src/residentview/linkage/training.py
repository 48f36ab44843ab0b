"""Unsupervised, deterministic training: λ from deterministic rules, u by seeded random sampling,
m by expectation maximisation over several blocking rules. A level that training could not
estimate never silently keeps Splink's default: it is set to a stated fallback and logged."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from splink import block_on

log = logging.getLogger(__name__)

U_SAMPLE_PAIRS = 1_000_000
EM_MAX_PAIRS = 1_500_000
LAMBDA_RULE_RECALL = 0.7  # deterministic rules find most, not all, true matches
PRIOR_CAP = 0.5  # λ when the deterministic rules find (nearly) every pair of a tiny input


def deterministic_rules(columns: set[str]) -> list:
    """Rules that admit almost no false matches. Several, because council extracts often lack
    a date of birth: a rule needing one would miss most true pairs and understate λ."""
    rules = []
    for col in ("nhs_number", "ni_number"):
        if col in columns:
            rules.append(block_on(col))
    names = {"first_name_key", "last_name_key"}
    for place in ("dob", "postcode", "address_key"):
        if names | {place} <= columns:
            rules.append(block_on("first_name_key", "last_name_key", place))
    return rules


def em_rules(columns: set[str]) -> list:
    """Each rule leaves different comparisons free to train, so between them every comparison is
    estimated at least once. No rule blocks on address alone: pairs sharing an address are
    mostly members of one household, and EM would learn 'same household', not 'same person'."""
    rules = []
    if "dob" in columns:
        rules.append(block_on("dob"))
    if {"first_name_key", "last_name_key"} <= columns:
        rules.append(block_on("first_name_key", "last_name_key"))
    if len(rules) < 2:
        for col in ("nhs_number", "ni_number", "last_name_key", "first_name_key"):
            if col in columns and all(col not in str(r) for r in rules):
                rules.append(block_on(col))
            if len(rules) >= 2:
                break
    return rules


# How often a true match lands on a partial-agreement level: typical data-entry error rates,
# used only for levels EM never observed (e.g. initials, which live in systems with no DOB).
PRIOR_M = {
    "Forename and surname swapped": 0.005,
    "Nickname of the same name": 0.03,
    "Middle name used as first name": 0.02,
    "Initial of a middle name": 0.01,
    "Initial agrees": 0.05,
    "Matches a previous surname": 0.02,
    "Part of a double-barrelled surname": 0.01,
    "One address within the other": 0.05,
    "Day and month swapped": 0.005,
    "One digit wrong": 0.01,
    "Same month and year": 0.005,
    "Within a year": 0.005,
    "One typo": 0.005,
    "Two typos": 0.002,
    # Whole comparisons no EM session could train: agreement is what a true pair mostly shows.
    "Exact match": 0.9,
    "All other comparisons": 0.05,
}
DEFAULT_PRIOR_M = 0.01


@contextmanager
def em_values_clamped():
    """While EM runs, an m or u it estimates below Splink's floor (1e-300) is set to the floor.

    A level no true pair ever reaches (two phone numbers that differ, where every person has one)
    sees its m driven towards zero iteration by iteration, until it passes below 1e-300 and Splink
    5 refuses the value: the whole session is lost, and with it every m it was training. Splink
    clamps to that same floor when it turns m and u into weights, so the weights are unchanged."""
    try:
        from splink.internals import expectation_maximisation as em
        from splink.internals.comparison_level import M_U_CLAMP_MIN
        original = em.populate_m_u_from_lookup
    except (ImportError, AttributeError):  # a Splink without these internals: nothing to guard
        yield
        return

    def clamped(fixed, level, output_column_name, lookup):
        for record in lookup.get(output_column_name, {}).values():
            for key in ("m_probability", "u_probability"):
                value = record.get(key)
                if isinstance(value, (int, float)) and value < M_U_CLAMP_MIN:
                    record[key] = M_U_CLAMP_MIN
        return original(fixed, level, output_column_name, lookup)

    em.populate_m_u_from_lookup = clamped
    try:
        yield
    finally:
        em.populate_m_u_from_lookup = original


def initial_prior(first_names) -> float:
    """How often a true pair meets as an initial and a full first name, read off the data: with
    a share s of records giving only an initial, about 2·s·(1-s) of true pairs do. Council tax
    extracts ("Mr J Smith") carry no date of birth, so EM never sees these pairs."""
    named = first_names.dropna()
    if len(named) == 0:
        return PRIOR_M["Initial agrees"]
    share = float((named.str.len() == 1).mean())
    return max(PRIOR_M["Initial agrees"], 2 * share * (1 - share))


def fill_untrained(linker, u_sample_pairs: int, priors: dict | None = None) -> list[str]:
    """Replace values training could not estimate with stated priors, and keep every partial
    agreement at least as strong as total disagreement; return what was done."""
    priors = {**PRIOR_M, **(priors or {})}
    notes = []
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        for level in levels:
            label = f"{comparison.output_column_name}: {level.label_for_charts}"
            if not level._u_is_trained:
                # Never seen among random pairs: it is at most about one in the sample size.
                level.u_probability = 1.0 / u_sample_pairs
                notes.append(f"{label}: u not observed in random pairs; set to 1/{u_sample_pairs:,}")
            if not level._m_is_trained:
                prior = round(priors.get(level.label_for_charts, DEFAULT_PRIOR_M), 6)
                level.m_probability = prior
                notes.append(f"{label}: m not estimated by EM; prior m = {prior}")
        else_level = levels[-1]
        floor = else_level.m_probability / else_level.u_probability
        for level in levels[:-1]:
            if level.m_probability / level.u_probability < floor:
                # EM drove this level's m to ~0 (few true pairs there); agreeing in part must
                # not count as more evidence against than disagreeing entirely.
                level.m_probability = min(0.999, floor * level.u_probability)
                notes.append(f"{comparison.output_column_name}: {level.label_for_charts}: weight raised to the 'all other' level's")
    _round_parameters(linker)
    for note in notes:
        log.info("training: %s", note)
    return notes


def _round_parameters(linker, digits: int = 10) -> None:
    """DuckDB sums in parallel, so the last bits of a float vary between runs; rounding makes
    the same input give the same model.json, byte for byte."""
    for comparison in linker._settings_obj.comparisons:
        for level in comparison.comparison_levels:
            if level.is_null_level:
                continue
            level.m_probability = float(f"{level.m_probability:.{digits}g}")
            level.u_probability = float(f"{level.u_probability:.{digits}g}")
    settings = linker._settings_obj
    settings._probability_two_random_records_match = float(
        f"{settings._probability_two_random_records_match:.{digits}g}"
    )


def prior_when_no_rule_matches(n_records: int) -> float:
    """λ when the deterministic rules find no pair at all: as if they had found one (the least
    they could have seen), at their assumed recall. Zero would make every pair impossible, and
    Splink cannot score with it."""
    pairs = max(n_records * (n_records - 1) / 2, 1.0)
    return min(PRIOR_CAP, 1.0 / LAMBDA_RULE_RECALL / pairs)


def _estimate_prior(linker, columns: set[str], n_records: int) -> list[str]:
    """λ from the deterministic rules; what was assumed instead, when they cannot give it."""
    rules = deterministic_rules(columns)
    settings = linker._settings_obj
    if not rules:
        note = (f"λ: no deterministic rule fits these fields; Splink's default "
                f"{settings._probability_two_random_records_match:g} kept")
    else:
        try:
            linker.training.estimate_probability_two_random_records_match(rules, recall=LAMBDA_RULE_RECALL)
            prior = settings._probability_two_random_records_match
        except ValueError:  # more pairs than the assumed recall allows: a handful of records, all alike
            prior = 1.0
        if 0 < prior < 1:
            return []
        if prior <= 0:
            settings._probability_two_random_records_match = prior_when_no_rule_matches(n_records)
            note = (f"λ: the deterministic rules found no pair; set to "
                    f"{settings._probability_two_random_records_match:.3g}, as if they had found one")
        else:
            settings._probability_two_random_records_match = PRIOR_CAP
            note = f"λ: the deterministic rules found nearly every pair; set to {PRIOR_CAP}"
    log.warning("training: %s", note)
    return [note]


def train(linker, columns: set[str], seed: int, priors: dict | None = None, n_records: int = 0) -> dict:
    """Train `linker` in place (on `n_records` records). Returns diagnostics for run.json and the report."""
    training = linker.training
    diagnostics: dict = {}
    prior_notes = _estimate_prior(linker, columns, n_records)
    training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=seed, min_count_per_level=30)
    # λ is the deterministic rules' estimate; an EM session that fails part-way can leave its own.
    prior = linker._settings_obj._probability_two_random_records_match
    sessions = []
    for rule in em_rules(columns):
        try:
            with em_values_clamped():
                training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS,
                )
            sessions.append(str(rule.get_blocking_rule("duckdb").blocking_rule_sql))
        except Exception as exc:  # EM fails when a rule yields no pairs or fixes every comparison
            log.warning("training: EM session skipped (%s)", type(exc).__name__)
    diagnostics["em_sessions"] = sessions
    linker._settings_obj._probability_two_random_records_match = prior
    diagnostics["fallbacks"] = prior_notes + fill_untrained(linker, U_SAMPLE_PAIRS, priors)
    diagnostics["probability_two_random_records_match"] = (
        linker._settings_obj._probability_two_random_records_match
    )
    return diagnostics

"""Unsupervised, deterministic training: λ from deterministic rules, u by seeded random sampling,
m by expectation maximisation over several blocking rules. A level that training could not
estimate never silently keeps Splink's default: it is set to a stated fallback and logged."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from splink import block_on

from residentview import interrupts

log = logging.getLogger(__name__)

U_SAMPLE_PAIRS = 1_000_000
EM_MAX_PAIRS = 1_500_000
LAMBDA_RULE_RECALL = 0.7  # deterministic rules find most, not all, true matches
PRIOR_CAP = 0.5  # λ when the deterministic rules find (nearly) every pair of a tiny input
# Fewer records than this give too few pairs for random sampling to see any level but total
# disagreement, or for EM to see a true pair: such an input is scored with stated priors instead.
MIN_TRAINING_RECORDS = 20


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

# How often two different people agree, used only when there are too few records to estimate it:
# a comparison's most specific level (exact agreement) by comparison, a partial level by label.
PRIOR_U_EXACT = {
    "first_name": 0.01,
    "last_name": 0.005,
    "middle_names": 0.02,
    "date_of_birth": 0.0003,
    "location": 0.0005,
    "sex": 0.5,
    "phone": 0.00001,
    "email": 0.00001,
}
PRIOR_U_IDENTIFIER = 0.000001  # NHS and NI numbers and other reference numbers
PRIOR_U_PARTIAL = {
    "Initial agrees": 0.05,
    "Jaro-Winkler >= 0.8": 0.02,
    "Sounds alike (Metaphone)": 0.02,
    "Within a year": 0.02,
    "Same postcode district": 0.05,
    "Same postcode sector": 0.02,
}
DEFAULT_PRIOR_U_PARTIAL = 0.005


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


def initial_prior(share: float | None) -> float:
    """How often a true pair meets as an initial and a full first name, read off the data: with
    a share s of the records giving a first name giving only an initial, about 2·s·(1-s) of
    true pairs do (None: no record gives a first name). Council tax extracts ("Mr J Smith")
    carry no date of birth, so EM never sees these pairs."""
    if share is None:
        return PRIOR_M["Initial agrees"]
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
    notes += _partial_agreement_not_below_disagreement(linker)
    _round_parameters(linker)
    for note in notes:
        log.info("training: %s", note)
    return notes


def _partial_agreement_not_below_disagreement(linker) -> list[str]:
    """Where training drove a level's m to ~0 (few true pairs there), raise its weight to the
    'all other' level's: agreeing in part must not count as more evidence against than
    disagreeing entirely."""
    notes = []
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        else_level = levels[-1]
        floor = else_level.m_probability / else_level.u_probability
        for level in levels[:-1]:
            if level.m_probability / level.u_probability < floor:
                level.m_probability = min(0.999, floor * level.u_probability)
                notes.append(f"{comparison.output_column_name}: {level.label_for_charts}: weight raised to the 'all other' level's")
    return notes


# How much EM's m probabilities count against reviewers' labelled matches, as if EM had seen this
# many labelled pairs: EM's m rest on thousands of pairs it believes are matches, but on a model's
# assumptions (fields independent given a match); a reviewer's labels rest on nothing but the
# records, but are few and chosen where the model is unsure. With a few hundred labelled matches
# the labels move m by about a third of the way.
EM_PSEUDO_COUNT = 500
MIN_LABELLED_PER_COMPARISON = 10


def learn_m_from_labels(linker, levels) -> dict:
    """Combine each comparison's m probabilities with those read off the pairs reviewers labelled
    as matches (`levels`: their gamma_* columns): m = (K·m_EM + n·m_labels) / (K + n), where n is
    the labelled matches the comparison has a value for and K is EM_PSEUDO_COUNT. A comparison
    with fewer than MIN_LABELLED_PER_COMPARISON such matches keeps EM's m."""
    learnt = {}
    for comparison in linker._settings_obj.comparisons:
        column = f"gamma_{comparison.output_column_name}"
        if column not in levels:
            continue
        observed = levels[column][levels[column] != -1]
        n = len(observed)
        if n < MIN_LABELLED_PER_COMPARISON:
            continue
        counts = observed.value_counts()
        for level in comparison.comparison_levels:
            if level.is_null_level:
                continue
            from_labels = counts.get(level.comparison_vector_value, 0) / n
            level.m_probability = max((EM_PSEUDO_COUNT * level.m_probability + n * from_labels) / (EM_PSEUDO_COUNT + n),
                                      1e-9)
        learnt[comparison.output_column_name] = n
    notes = _partial_agreement_not_below_disagreement(linker)
    _round_parameters(linker)
    if learnt:
        log.info("training: m probabilities combined with %s labelled matches per comparison", learnt)
    return {"labelled_matches_per_comparison": learnt, "em_pseudo_count": EM_PSEUDO_COUNT, "notes": notes}


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


def set_stated_priors(linker, priors: dict | None = None) -> None:
    """Every m and u of `linker` set to a stated prior (PRIOR_M, PRIOR_U_*), for an input too small
    to estimate them: agreement on a comparison's most specific level counts for a match, total
    disagreement against, partial agreement a little either way."""
    priors = {**PRIOR_M, **(priors or {})}
    for comparison in linker._settings_obj.comparisons:
        name = comparison.output_column_name
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        for position, level in enumerate(levels[:-1]):
            label = level.label_for_charts
            if position == 0:
                level.m_probability = priors.get(label, priors["Exact match"])
                level.u_probability = PRIOR_U_EXACT.get(name, PRIOR_U_IDENTIFIER)
            else:
                level.m_probability = priors.get(label, DEFAULT_PRIOR_M)
                level.u_probability = PRIOR_U_PARTIAL.get(label, DEFAULT_PRIOR_U_PARTIAL)
        rest = levels[-1]
        rest.m_probability = priors["All other comparisons"]
        rest.u_probability = max(0.5, 1.0 - sum(lv.u_probability for lv in levels[:-1]))
    _round_parameters(linker)


def prior_when_no_rule_matches(n_records: int) -> float:
    """λ when the deterministic rules find no pair at all: as if they had found one (the least
    they could have seen), at their assumed recall. Zero would make every pair impossible, and
    Splink cannot score with it."""
    pairs = max(n_records * (n_records - 1) / 2, 1.0)
    return min(PRIOR_CAP, 1.0 / LAMBDA_RULE_RECALL / pairs)


def _estimate_prior(linker, columns: set[str], n_records: int, level: int = logging.WARNING) -> list[str]:
    """λ from the deterministic rules; what was assumed instead, when they cannot give it (logged
    at `level`)."""
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
    log.log(level, "training: %s", note)
    return [note]


def train(linker, columns: set[str], seed: int, priors: dict | None = None, n_records: int = 0) -> dict:
    """Train `linker` in place (on `n_records` records). Returns diagnostics for run.json and the report."""
    if n_records < MIN_TRAINING_RECORDS:
        return _untrained(linker, columns, priors, n_records)
    training = linker.training
    diagnostics: dict = {}
    prior_notes = _estimate_prior(linker, columns, n_records)
    training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=seed, min_count_per_level=30)
    # λ is the deterministic rules' estimate; an EM session that fails part-way can leave its own.
    prior = linker._settings_obj._probability_two_random_records_match
    sessions = []
    for rule in em_rules(columns):
        # A session takes the comparisons its rule fixes out of the linker's own settings and
        # puts them back only when it succeeds: a failed one would leave the model without them.
        if _trains_nothing(linker, rule):
            log.info("training: EM on %s skipped: every comparison reads a column it blocks on",
                     rule.get_blocking_rule("duckdb").blocking_rule_sql)
            continue
        before = linker._settings_obj.core_model_settings.copy()
        try:
            with em_values_clamped():
                training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS,
                )
            sessions.append(str(rule.get_blocking_rule("duckdb").blocking_rule_sql))
        except Exception as exc:  # EM fails when a rule yields no pairs or fixes every comparison
            interrupts.check()  # ...or was stopped: an interrupted query is not a failed session
            linker._settings_obj.core_model_settings = before
            log.warning("training: EM session on %s skipped (%s)",
                        rule.get_blocking_rule("duckdb").blocking_rule_sql, type(exc).__name__)
    diagnostics["em_sessions"] = sessions
    linker._settings_obj._probability_two_random_records_match = prior
    diagnostics["fallbacks"] = prior_notes + fill_untrained(linker, U_SAMPLE_PAIRS, priors)
    diagnostics["probability_two_random_records_match"] = (
        linker._settings_obj._probability_two_random_records_match
    )
    return diagnostics


def _trains_nothing(linker, rule) -> bool:
    """Whether blocking on `rule` fixes every comparison (each reads a column the rule does), as
    blocking on a surname does when names are all the sources share: EM would have nothing to
    estimate, and Splink fails on the empty query rather than say so."""
    try:
        from splink.internals.parse_sql import get_columns_used_from_sql

        used = set(get_columns_used_from_sql(rule.get_blocking_rule("duckdb").blocking_rule_sql, "duckdb"))
        return all(used & {c.input_name for c in comparison._input_columns_used_by_case_statement}
                   for comparison in linker._settings_obj.comparisons)
    except (ImportError, AttributeError, TypeError):  # a Splink without these internals: let EM try
        return False


def _untrained(linker, columns: set[str], priors: dict | None, n_records: int) -> dict:
    """Diagnostics for an input too small to train on: stated m and u, λ as `_estimate_prior`
    gives it, and one warning saying so."""
    prior_notes = _estimate_prior(linker, columns, n_records, level=logging.INFO)
    set_stated_priors(linker, priors)
    prior = linker._settings_obj._probability_two_random_records_match
    note = (f"too few records to train ({n_records}, fewer than {MIN_TRAINING_RECORDS}): "
            f"stated prior m and u probabilities used, λ = {prior:.3g}")
    log.warning("training: %s", note)
    return {
        "em_sessions": [],
        "fallbacks": [note, *prior_notes],
        "probability_two_random_records_match": prior,
        "model": "stated priors (too few records to train)",
    }

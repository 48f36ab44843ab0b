"""Unsupervised, deterministic training: λ from deterministic rules, u by seeded random sampling,
m by expectation maximisation over several blocking rules. A level that training could not
estimate never silently keeps Splink's default: it is set to a stated fallback and logged."""

from __future__ import annotations

import logging

from splink import block_on

log = logging.getLogger(__name__)

U_SAMPLE_PAIRS = 1_000_000
EM_MAX_PAIRS = 1_500_000
LAMBDA_RULE_RECALL = 0.7  # deterministic rules find most, not all, true matches


def deterministic_rules(columns: set[str]) -> list:
    rules = []
    for col in ("nhs_number", "ni_number"):
        if col in columns:
            rules.append(block_on(col))
    if {"first_name_key", "last_name_key", "dob"} <= columns:
        rules.append(block_on("first_name_key", "last_name_key", "dob"))
    elif {"first_name_key", "last_name_key", "postcode"} <= columns:
        rules.append(block_on("first_name_key", "last_name_key", "postcode"))
    return rules


def em_rules(columns: set[str]) -> list:
    """Each rule leaves different comparisons free to train, so between them every comparison is
    estimated at least once."""
    rules = []
    if "dob" in columns:
        rules.append(block_on("dob"))
    if {"first_name_key", "last_name_key"} <= columns:
        rules.append(block_on("first_name_key", "last_name_key"))
    for col in ("postcode", "address_key", "uprn"):
        if col in columns:
            rules.append(block_on(col))
            break
    if len(rules) < 2:
        for col in ("nhs_number", "ni_number", "last_name_key", "first_name_key"):
            if col in columns and all(col not in str(r) for r in rules):
                rules.append(block_on(col))
            if len(rules) >= 2:
                break
    return rules


def fill_untrained(linker, u_sample_pairs: int) -> list[str]:
    """Replace values training could not estimate with stated fallbacks; return what was done."""
    notes = []
    for comparison in linker._settings_obj.comparisons:
        for level in comparison.comparison_levels:
            if level.is_null_level:
                continue
            label = f"{comparison.output_column_name}: {level.label_for_charts}"
            if not level._u_is_trained:
                # Never seen among random pairs: it is at most about one in the sample size.
                level.u_probability = 1.0 / u_sample_pairs
                notes.append(f"{label}: u not observed in random pairs; set to 1/{u_sample_pairs:,}")
            if not level._m_is_trained:
                # No evidence about how often true matches land here: make the level neutral.
                level.m_probability = level.u_probability
                notes.append(f"{label}: m not estimated by EM; level made neutral (m = u)")
    for note in notes:
        log.warning("training: %s", note)
    return notes


def train(linker, columns: set[str], seed: int) -> dict:
    """Train `linker` in place. Returns diagnostics for run.json and the report."""
    training = linker.training
    diagnostics: dict = {}
    rules = deterministic_rules(columns)
    if rules:
        training.estimate_probability_two_random_records_match(rules, recall=LAMBDA_RULE_RECALL)
    training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=seed, min_count_per_level=30)
    sessions = []
    for rule in em_rules(columns):
        try:
            training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS,
            )
            sessions.append(str(rule.get_blocking_rule("duckdb").blocking_rule_sql))
        except Exception as exc:  # EM fails when a rule yields no pairs or fixes every comparison
            log.warning("training: EM session skipped (%s)", type(exc).__name__)
    diagnostics["em_sessions"] = sessions
    diagnostics["fallbacks"] = fill_untrained(linker, U_SAMPLE_PAIRS)
    diagnostics["probability_two_random_records_match"] = (
        linker._settings_obj._probability_two_random_records_match
    )
    return diagnostics

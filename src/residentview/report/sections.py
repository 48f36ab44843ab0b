"""The report's sections, in the order an analyst or a governance board reads them. Each takes the
run's outputs and adds one section to the page; a section whose input is missing says so."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from residentview.report import linkage_metrics as metrics
from residentview.fields import IDENTIFIER_PREFIX
from residentview.report.html_page import (
    Page, cards, count, decimal, esc, heat_table, missing, note, share, share_bar, table,
)
from residentview.resident_view.overlap import pairwise_overlap, service_overlap, services_per_resident
from residentview.report.model_view import ModelView, comparison_names, comparison_weights
from residentview.report.review_queue import REVIEW_BAND, ReviewQueue
from residentview.report.run_outputs import DEFAULT_THRESHOLD, IdChangesThisRun, RunOutputs, id_changes_this_run
from residentview.review.in_force import decisions_in_force
from residentview.review.measured import f1_score, measure_on_decisions

CLUSTERS_SHOWN = 5
MEMBERS_SHOWN = 20  # per resident: a runaway cluster of thousands must not swamp the page
WATERFALL_EXAMPLES = 6
HISTOGRAM_BINS = 40
MEMBER_COLUMNS = ("source", "record_id", "first_name", "middle_names", "last_name", "date_of_birth",
                  "sex", "postcode", "address", "nhs_number", "ni_number")


@dataclass
class ReportInputs:
    """The run's outputs plus what several sections share, computed once."""

    outputs: RunOutputs
    flags: pd.DataFrame  # links + resident_size / linked / linked_other_source
    members: Optional[pd.DataFrame]  # records + resident_id
    suspicious: pd.DataFrame
    model_view: Optional[ModelView]
    model_problem: Optional[str]
    queue: Optional[ReviewQueue]
    labels: Optional[pd.DataFrame] = None

    @property
    def pairs(self) -> Optional[pd.DataFrame]:
        pairs = self.outputs.pairs
        needed = {"unique_id_l", "unique_id_r", "match_probability"}
        return pairs if pairs is not None and needed <= set(pairs.columns) else None


BANNER = ("OFFICIAL-SENSITIVE — this report contains personal data (names, dates of birth, "
          "addresses and identifiers of residents)."
          "<small>Store and share it only as your council's data protection policy allows; "
          "do not email it outside the organisation.</small>")


def summary(page: Page, inputs: ReportInputs) -> None:
    outputs, flags = inputs.outputs, inputs.flags
    n_residents = flags["resident_id"].nunique()
    singletons = int((flags["resident_size"] == 1).sum())
    households = outputs.households
    figures = {
        "records": count(len(flags)),
        "sources": count(flags["source"].nunique()),
        "residents": count(n_residents),
        "households": count(len(households)) if households is not None and len(households) else "–",
        "residents with one record": count(singletons),
        "records linked to another source": share(flags["linked_other_source"].mean()),
    }
    body = _headline(inputs, n_residents) + cards(figures)
    run = outputs.run
    facts = [f"Run {run.get('name', '(unnamed)')}", f"at {run.get('run_timestamp', 'an unknown time')}",
             f"threshold {outputs.threshold:g}"]
    if run.get("previous"):
        facts.append("resident ids carried over from a previous run")
    body += note(", ".join(facts) + ".")
    if households is None or not len(households):
        body += missing("No households in this run (households.parquet is missing or empty).")
    body += _update(run)
    body += _id_changes(outputs)
    body += "<h3>Records per source</h3>" + table(
        metrics.summary_by_source(flags),
        {"records": count, "residents": count, "linked to another record": share_bar,
         "linked to another source": share_bar, "singletons": count},
        raw_html=("linked to another record", "linked to another source"),
    )
    if outputs.problems:
        body += note("Inputs not available to this report: " + "; ".join(outputs.problems) + ".")
    page.section("summary", "Summary", body)


def _headline(inputs: ReportInputs, n_residents: int) -> str:
    """The run in two or three plain sentences, for a board member who reads nothing else."""
    outputs, flags = inputs.outputs, inputs.flags
    households = outputs.households
    sentences = [f"{len(flags):,} records from {flags['source'].nunique():,} services describe "
                 f"{n_residents:,} residents"
                 + (f" in {len(households):,} households." if households is not None and len(households) else ".")]
    if n_residents:  # link_flags already knows, per record, whether its resident spans sources
        several = flags.loc[flags["linked_other_source"].to_numpy(bool), "resident_id"].nunique()
        sentences.append(f"{several / n_residents:.0%} of residents are known to more than one service.")
    if len(inputs.suspicious):
        sentences.append(f"{len(inputs.suspicious):,} residents hold records that disagree (dates of birth or "
                         "NHS or NI numbers) and are worth a look: see Clusters.")
    update = outputs.run.get("diagnostics", {}).get("update")
    if isinstance(update, dict) and isinstance(update.get("records"), dict):
        changed = update["records"]
        sentences.append(f"This run updated the previous one: {changed.get('new', 0):,} new, "
                         f"{changed.get('changed', 0):,} changed and {changed.get('removed', 0):,} removed records.")
    return f'<p class="headline">{esc(" ".join(sentences))}</p>'


def _update(run: dict) -> str:
    """What an update (`residentview update`) found changed, and its drift report."""
    update = (run.get("diagnostics") or {}).get("update")
    if run.get("kind") != "update" or not update:
        return ""
    counts = update.get("records", {})
    body = "<h3>This run was an update</h3>" + cards({
        "new records": count(counts.get("new", 0)), "changed": count(counts.get("changed", 0)),
        "removed": count(counts.get("removed", 0)), "unchanged": count(counts.get("unchanged", 0)),
        "records re-clustered": count(update.get("records_reclustered", 0)),
    })
    body += note(
        f"Only what changed since the run of {update.get('previous_run', 'an unknown time')} was linked: "
        "new and changed records were scored against every record with that run's model (not retrained), and "
        "only the residents they touch were clustered again. The data-quality section shows the last full "
        "run's profile.")
    by_source = update.get("by_source") or {}
    if by_source:
        frame = pd.DataFrame.from_dict(by_source, orient="index").rename_axis("source").reset_index()
        body += table(frame, {c: count for c in ("new", "changed", "removed", "unchanged") if c in frame})
    drift = update.get("drift") or {}
    if drift.get("retrain_recommended"):
        body += note("A full run that retrains the model is recommended (residentview update --retrain): "
                     + "; ".join(drift.get("reasons", [])) + ".")
    elif drift:
        linked = drift.get("linked_share") or {}
        body += note(
            "No drift past the limits: the new and changed records look like the master the model learnt from"
            + (f" ({share(linked['fresh'])} of them link to another record, against {share(linked['master'])} "
               "of the master's)." if linked.get("fresh") is not None and linked.get("master") is not None else "."))
    return body


def _id_changes(outputs: RunOutputs) -> str:
    """This run's resident ids against the previous run's: kept, new, merged, split, retired.
    Only this run's rows of id_changes count (the file holds every run's)."""
    residents = id_changes_this_run(outputs, "resident")
    if residents is None:
        return "" if outputs.id_changes is None else missing(
            "Changes to resident ids cannot be shown: id_changes.parquet or run.json lacks the run's timestamp.")
    households = id_changes_this_run(outputs, "household")
    if households is not None and not (households.total or households.merged or households.split or households.retired):
        households = None  # no households now or before
    if residents.first_run:
        text = (f"This is the first run into this folder: there is no previous run to compare with, so all "
                f"{residents.total:,} residents were given new ids")
        text += f" (and all {households.total:,} households)." if households is not None else "."
        return "<h3>Resident ids</h3>" + note(text)
    body = "<h3>Resident ids compared with the previous run</h3>" + cards({
        "kept the same id": count(residents.kept),
        "new": count(residents.new),
        "merged": count(residents.merged),
        "split": count(residents.split),
        "retired": count(residents.retired),
    })
    body += note(
        f"Of this run's {residents.total:,} residents, {residents.kept:,} kept the id they had in the previous run "
        f"and {residents.new:,} are new. "
        "Kept: the same id as in the previous run, even if the resident gained or lost records. "
        "New: none of the resident's records were in the previous run. "
        "Merged: a previous resident found to be the same person as another; its records now sit under the "
        "other's id and its own id is retired. "
        "Split: a previous resident some of whose records moved to a different resident; it keeps its id on "
        "its larger part. "
        "Retired: a previous resident none of whose records are in this run. "
        "The figures are for this run only; id_changes.parquet holds the changes of every run.")
    if residents.new_from_previous:
        body += note("Residents given a new id although their records were in the previous run (records split "
                     "off from, or brought together from, other residents): "
                     f"{residents.new_from_previous:,}.")
    if households is not None:
        body += note(_household_changes(households))
    return body


def _household_changes(households: IdChangesThisRun) -> str:
    if households.first_run:
        return f"Households: all {households.total:,} were given new ids (there were none to compare with)."
    return (f"Households, counted the same way: {households.kept:,} kept the same id, {households.new:,} new, "
            f"{households.merged:,} merged, {households.split:,} split, {households.retired:,} retired.")


def _profile_of_an_update(run: dict) -> str:
    """An update profiles only the records it reads closely, so the grid is the last full run's."""
    update = (run.get("diagnostics") or {}).get("update")
    if run.get("kind") != "update" or not isinstance(update, dict):
        return ""
    since = update.get("quality_profile_from")
    return note(
        f"This run was an update: the profile below is of the last full run{f' ({since})' if since else ''}, plus any "
        "source that run did not have. The new and changed records are compared with it under drift, in the "
        "summary; `residentview update --retrain` (a full run) profiles every record afresh.")


def data_quality(page: Page, inputs: ReportInputs) -> None:
    quality = inputs.outputs.quality
    if quality is None or not len(quality) or not {"source", "field"} <= set(quality.columns):
        page.section("quality", "Data quality", missing("No data-quality profile in this run (data_quality.parquet is missing or empty)."))
        return
    shown = quality.copy()
    if {"n_valid", "n_present"} <= set(shown.columns):
        present = pd.to_numeric(shown["n_present"], errors="coerce")
        shown["validity"] = pd.to_numeric(shown["n_valid"], errors="coerce") / present.where(present > 0)
    if "invalid_reasons" in shown:
        shown["invalid_reasons"] = shown["invalid_reasons"].map(_reasons_text)
    columns = [c for c in ("source", "field", "n_records", "n_present", "completeness", "validity",
                           "n_invalid", "n_placeholder", "n_distinct", "invalid_reasons") if c in shown]
    formats = {c: count for c in ("n_records", "n_present", "n_invalid", "n_placeholder", "n_distinct")}
    formats.update(completeness=share_bar, validity=share_bar)
    for column in ("completeness", "validity", *formats):
        if column in shown:
            shown[column] = pd.to_numeric(shown[column], errors="coerce")
    body = note("Completeness: share of a source's records with the field present. Validity: share of "
                "present values in canonical form; invalid values stay in the record but are not used for matching. "
                "A hatched dash: the source does not hold the field. Red marks a shortfall in a field everyone "
                "has; blue, a field only some people have — titles, middle names, previous surnames, phone, "
                f"email, service reference numbers, and any field a source fills for under {SPARSE_SHARE:.0%} of "
                "its records (the register's dates of birth of attainers) — where a low share is expected. A "
                "field falling between runs is what `residentview update` reports as drift.")
    body += _profile_of_an_update(inputs.outputs.run)
    for measure in ("completeness", "validity"):
        if measure in shown:
            grid = shown.pivot_table(index="field", columns="source", values=measure, aggfunc="first", sort=False)
            # Validity is expected high for every field held; completeness only for fields everyone has.
            if measure == "completeness":
                sparse = tuple(f for f in grid.index if _sparse_by_design(str(f)))
                body += "<h3>Completeness</h3>" + heat_table(grid, expected_sparse=sparse,
                                                             sparse_cells=grid < SPARSE_SHARE)
            else:
                body += "<h3>Validity</h3>" + heat_table(grid)
    body += "<details><summary>Every source and field, with reasons for invalid values</summary>"
    body += table(shown[columns], formats, raw_html=("completeness", "validity")) + "</details>"
    page.section("quality", "Data quality", body)


SPARSE_BY_DESIGN = ("title", "middle_names", "previous_last_name", "phone", "email")
SPARSE_SHARE = 0.25  # a source filling a field for fewer of its records holds it for some people only


def _sparse_by_design(field: str) -> bool:
    """A field only some people have: a low completeness is expected, not a fault."""
    return field in SPARSE_BY_DESIGN or field.startswith(IDENTIFIER_PREFIX)


def _reasons_text(value: object) -> str:
    try:
        reasons = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    if not isinstance(reasons, dict):
        return "" if reasons is None else str(reasons)
    return ", ".join(f"{reason} ({n:,})" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))


def model(page: Page, inputs: ReportInputs) -> None:
    view = inputs.model_view
    if view is None:
        page.section("model", "The model", missing(f"Model charts unavailable: {inputs.model_problem}."))
        return
    body = note(f"Prior match weight {view.prior_weight:.2f} (the odds two random records are the same "
                "person). Each comparison level adds its match weight, log2(m/u): positive pushes towards "
                "a match, negative away.")
    for name, spec in view.chart_specs().items():
        body += f"<h3>{esc(name.capitalize())}</h3>" + page.chart(name, spec)
    contributions = _field_contributions(inputs)
    if contributions is not None:
        body += "<h3>What each field contributes</h3>" + note(
            "Average match weight each comparison added, over accepted pairs and over pairs scored but "
            "not accepted; a large gap means the field separates matches from non-matches.")
        body += table(contributions, {"accepted pairs": decimal(2), "rejected pairs": decimal(2),
                                      "accepted pairs where null": share})
    body += _blocking(inputs.outputs.run) + _adult_sources(inputs.outputs.run) + _kept_references(inputs.outputs.run)
    body += "<details><summary>Parameters of every comparison level</summary>" + table(
        view.comparison_levels[["comparison", "level", "label", "m", "u", "match_weight"]],
        {"m": decimal(4), "u": decimal(6), "match_weight": decimal(2)},
    ) + "</details>"
    page.section("model", "The model", body)


def _clustering_measured(run: dict, key: str, title: str, explanation: str, label: str, columns: dict) -> str:
    """A table of what clustering measured per source or reference (run.json diagnostics[key]):
    `label` names the first column, `columns` maps each measurement to its heading (a share
    column's heading contains 'share'; a bool is shown as yes/no)."""
    measured = (run.get("diagnostics") or {}).get(key) or {}
    if not measured:
        return ""
    frame = pd.DataFrame([
        {label: name, **{heading: ("yes" if m.get(field) else "no") if isinstance(m.get(field), bool) else m.get(field)
                         for field, heading in columns.items()}}
        for name, m in sorted(measured.items())
    ], dtype=object)  # as measured: a count some sources lack stays a whole number
    shares = {heading: share for heading in columns.values() if "share" in heading}
    return f"<h3>{title}</h3>" + note(explanation) + table(frame, shares)


def _blocking(run: dict) -> str:
    """Every blocking rule tried (run.json diagnostics.blocking_rules): its comparisons, whether
    it was kept and why, under the comparison budget."""
    diagnostics = run.get("diagnostics") or {}
    tried = diagnostics.get("blocking_rules") or []
    if not tried:
        return ""
    summary = diagnostics.get("blocking") or {}
    text = ("Candidate pairs are found by blocking rules chosen from the fields present. Loose rules (the "
            "postcode alone, the date of birth alone…) are kept at their loosest form that fits the "
            "comparison budget; a precise rule a kept loose rule already covers is not run again.")
    if summary:
        text += (f" Budget {summary.get('budget', 0):,} comparisons; the kept rules make about "
                 f"{summary.get('comparisons', 0):,} between them.")
    frame = pd.DataFrame([
        {"rule": row.get("rule"), "kind": row.get("kind", ""), "comparisons": row.get("comparisons"),
         "kept": "yes" if row.get("kept", True) else "no", "why": row.get("reason", "")}
        for row in tried
    ], dtype=object)
    return ("<details><summary>Blocking rules: "
            f"{int((frame['kept'] == 'yes').sum())} kept of {len(frame)} tried</summary>"
            + note(text) + table(frame, {"comparisons": count}) + "</details>")


def _adult_sources(run: dict) -> str:
    """Which sources clustering treated as holding adults only, and the pairs that showed it."""
    return _clustering_measured(
        run, "adult_sources", "Systems of adults",
        "A source is treated as holding adults only when its records without a date of birth, joined "
        "confidently to a dated record under the same first name, almost never met someone who was a "
        "child at the time (under 20% of at least 30 pairs), or when its own dated records (at least "
        "30) hold nobody under 16 (5% at most, for mistyped dates). Its undated records then never "
        "join a person under 16 when the source recorded them.",
        "source", {"pairs": "pairs measured", "share_under_age": "share under 16 when recorded",
                   "dated_records": "own dated records", "share_dated_under_age": "share of them under 16",
                   "adults_only": "treated as adults only"})


def _kept_references(run: dict) -> str:
    """Which named references clustering treated as kept by one person (two numbers: two people)."""
    return _clustering_measured(
        run, "kept_references", "References one person keeps",
        "Named references (id_ columns) on which confident pairs under one first name and date of birth "
        "almost never carry two numbers that no typo explains (under 2% of at least 30 pairs) are treated "
        "like NHS numbers: two of their numbers keep two records apart.",
        "reference", {"pairs": "pairs measured", "share_differing": "share with two numbers",
                      "kept_by_one_person": "treated as one number per person"})


def _field_contributions(inputs: ReportInputs) -> Optional[pd.DataFrame]:
    pairs = inputs.pairs
    if pairs is None or not len(pairs):
        return None
    accepted = pairs["match_probability"] >= inputs.outputs.threshold
    levels = inputs.model_view.levels if inputs.model_view else None
    rows = []
    for name in comparison_names(pairs, inputs.model_view):
        weight = comparison_weights(pairs, levels, name)
        row = {"comparison": name, "accepted pairs": weight[accepted].mean(), "rejected pairs": weight[~accepted].mean()}
        if f"gamma_{name}" in pairs:
            row["accepted pairs where null"] = (pairs.loc[accepted, f"gamma_{name}"] == -1).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def threshold(page: Page, inputs: ReportInputs) -> None:
    pairs = inputs.pairs
    outputs = inputs.outputs
    if pairs is None:
        page.section("threshold", "Threshold and accuracy", missing("No scored pairs in this run (pairs.parquet is missing)."))
        return
    truth, n_true = _pair_truth(inputs)
    table_frame = metrics.threshold_table(pairs, len(inputs.flags), outputs.threshold, truth, n_true)
    estimate = table_frame[table_frame["this run"]].iloc[0]
    body = note(f"Records join one resident when their match probability is at least {outputs.threshold:g}"
                + ("" if "threshold" in outputs.run else f" (run.json gives no threshold; {DEFAULT_THRESHOLD:g} assumed)")
                + f". {len(pairs):,} pairs were scored (kept at probability ≥ 0.01).")
    body += cards({
        "estimated precision": share(estimate["estimated precision"]),
        "estimated recall": share(estimate["estimated recall"]),
        # sums of probabilities, but counts of pairs to a reader: whole numbers ("1,361", not "1,361.3")
        "expected false matches among accepted pairs": decimal(0)(estimate["expected false matches"]),
        "expected missed matches among scored pairs": decimal(0)(estimate["expected missed matches"]),
    })
    body += note("Estimated without labels from the model's own probabilities: among accepted pairs "
                 "Σ(1−p) are expected to be wrong, and Σp over all scored pairs are expected to be true. "
                 "They are only as good as the model's calibration, and cannot see matches that were never "
                 "scored (different blocks).")
    if inputs.labels is not None:
        body += _measured(inputs)
    body += "<h3>What moving the threshold would change</h3>"
    shown = table_frame.drop(columns="this run")
    formats = {"threshold": decimal(3), "pairs accepted": count, "expected false matches": decimal(0),
               "expected missed matches": decimal(0), "estimated precision": share, "estimated recall": share,
               "residents": count, "measured precision": share, "measured recall": share}
    body += table(shown, formats, highlight=table_frame["this run"])
    body += note("Residents at each threshold: records joined by every accepted pair (connected components); "
                 "the highlighted row is this run. Precision and recall here are of the scored pairs at or above "
                 "each threshold, before clustering"
                 + (", so the measured precision can be lower than the residents' above: clustering refuses "
                    "accepted pairs whose records conflict, and those are mostly the wrong ones." if inputs.labels
                    is not None else "."))
    body += "<h3>Match weights of scored pairs</h3>" + page.chart("match weight histogram", _weight_histogram(pairs, outputs.threshold))
    page.section("threshold", "Threshold and accuracy", body)


def _pair_truth(inputs: ReportInputs) -> tuple[Optional[pd.Series], Optional[int]]:
    """Per scored pair: do both records carry the same labelled person? And how many true pairs exist."""
    labels, members, pairs = inputs.labels, inputs.members, inputs.pairs
    if labels is None or members is None:
        return None, None
    person = members[["unique_id", "source", "record_id"]].merge(labels, on=["source", "record_id"], how="left")
    person_of = person.set_index("unique_id")["person_id"]
    left, right = pairs["unique_id_l"].map(person_of), pairs["unique_id_r"].map(person_of)
    n_true = metrics.pairs_within(person["person_id"].dropna().value_counts())
    return (left.notna() & (left == right)), n_true


def _measured(inputs: ReportInputs) -> str:
    measured = metrics.measured_accuracy(inputs.flags, inputs.labels)
    body = "<h3>Measured against labels</h3>" + cards({
        "precision": share(measured["precision"]), "recall": share(measured["recall"]), "F1": share(measured["F1"]),
    })
    body += note(f"Pairwise over the residents as written, after clustering: {measured['correctly linked pairs']:,} "
                 f"of {measured['predicted pairs']:,} linked record pairs are the same person; "
                 f"{measured['true pairs']:,} true pairs exist among {measured['labelled records']:,} labelled records"
                 f" ({measured['records without a label']:,} records have no label). Clustering refuses accepted "
                 "pairs whose records conflict (two NHS or NI numbers, dates of birth or first names that do not "
                 "fit), so these can be higher than the threshold table's precision of the accepted pairs below.")
    return body


def _weight_histogram(pairs: pd.DataFrame, threshold_value: float) -> dict:
    weight = (pairs["match_weight"] if "match_weight" in pairs
              else pd.Series(metrics.probability_to_weight(pairs["match_probability"].to_numpy(float))))
    weight = weight.replace([np.inf, -np.inf], np.nan).dropna()
    counts, edges = np.histogram(weight, bins=HISTOGRAM_BINS) if len(weight) else (np.array([]), np.array([0.0]))
    bins = [{"from": float(lo), "to": float(hi), "pairs": int(n)} for lo, hi, n in zip(edges[:-1], edges[1:], counts)]
    cut = float(metrics.probability_to_weight(threshold_value))
    return {
        "width": 700, "height": 220,
        "layer": [
            {"data": {"values": bins}, "mark": "bar",
             "encoding": {"x": {"field": "from", "type": "quantitative", "title": "match weight"},
                          "x2": {"field": "to"},
                          "y": {"field": "pairs", "type": "quantitative", "title": "scored pairs"},
                          "tooltip": [{"field": "from", "format": ".1f"}, {"field": "to", "format": ".1f"}, {"field": "pairs"}]}},
            {"data": {"values": [{"weight": cut, "label": f"threshold {threshold_value:g}"}]},
             "mark": {"type": "rule", "color": "#d4351c", "strokeWidth": 2},
             "encoding": {"x": {"field": "weight", "type": "quantitative"}, "tooltip": [{"field": "label"}]}},
        ],
    }


def clusters(page: Page, inputs: ReportInputs) -> None:
    links = inputs.outputs.links
    distribution = metrics.cluster_size_distribution(links)
    body = "<h3>Records per resident</h3>" + table(distribution, {"residents": count, "records": count})
    members = inputs.members
    if members is None:
        body += missing("records.parquet is missing: cluster members and suspicious clusters cannot be shown.")
        page.section("clusters", "Clusters", body)
        return
    sizes = inputs.flags.drop_duplicates("resident_id").set_index("resident_id")["resident_size"]
    largest = sizes[sizes > 1].sort_values(ascending=False, kind="stable").head(CLUSTERS_SHOWN)
    body += "<h3>Largest residents</h3>"
    body += _cluster_members(members, largest.index) if len(largest) else note("No resident has more than one record.")
    suspicious = inputs.suspicious
    body += f"<h3>Suspicious residents ({len(suspicious):,})</h3>"
    body += note("Residents whose records carry dates of birth more than a year apart (not a typo or a "
                 "day/month swap) or more than one NHS or NI number: possibly two people joined. Their "
                 "pairs are in the review queue.")
    if len(suspicious):
        body += table(suspicious.head(20), {"n_records": count})
        body += _cluster_members(members, suspicious["resident_id"].head(CLUSTERS_SHOWN))
    page.section("clusters", "Clusters", body)


RUNS_SHOWN = 10


def life_events(page: Page, inputs: ReportInputs) -> None:
    """This run's life events, the events of the runs before, and the address history; measured
    against the truth when there is one (the demo's synthetic extracts)."""
    outputs = inputs.outputs
    events = outputs.events
    if events is None:
        page.section("events", "Life events", missing("events.parquet is missing: no life events."))
        return
    body = note("What happened to residents as the sources show it: events.parquet has one row per event, "
                "appended run after run (see the README for each kind). The run that starts a folder's history "
                "records the deaths and moves its data shows; each later run what changed since the one before.")
    if not len(events):
        body += note("No events recorded yet.")
    else:
        stamps = pd.to_datetime(events["run_timestamp"], utc=True)
        latest = stamps.max()
        this_run = events[stamps == latest]
        by_run = pd.crosstab(stamps.dt.strftime("%Y-%m-%d %H:%M:%S"), events["event"]).sort_index(ascending=False)
        body += "<h3>This run's events</h3>" + table(
            this_run["event"].value_counts().rename_axis("event").rename("residents").reset_index(),
            {"residents": count})
        body += "<h3>Events by run</h3>" + table(by_run.head(RUNS_SHOWN).rename_axis("run").reset_index(),
                                                 {c: count for c in by_run.columns})
        if outputs.events_truth is not None and inputs.labels is not None:
            from residentview.report.events_measured import KINDS, measure_events

            # `left` is left out: who a resident that left was is in the previous run's links, which a
            # report does not keep (benchmarks/events.py measures it).
            measured = measure_events(this_run, outputs.links, inputs.labels, outputs.events_truth,
                                      kinds=[k for k in KINDS if k != "left"])
            body += "<h3>Measured against the truth</h3>" + table(
                measured, {"reported": count, "true": count, "reported_true": count, "precision": share,
                           "recall": share, "shown": count, "recall_shown": share})
            body += note("Of the true events between the two extracts, the share reported (recall), and of the "
                         "reported, the share true (precision); a resident stands for the person most of its "
                         "records belong to."
                         + (" <em>shown</em>: the true events some later record shows (a system that has not "
                            "heard of a move or a marriage still holds the old address or surname, and a death "
                            "removed without a mark is a departure); <em>recall_shown</em>: the share of those "
                            "reported." if "shown" in measured else ""))
    addresses = outputs.addresses
    if addresses is not None and len(addresses):
        per_resident = addresses.groupby("resident_id").size()
        spread = per_resident.clip(upper=3).value_counts().sort_index()
        body += "<h3>Address history</h3>" + table(pd.DataFrame({
            "addresses": [f"{n}" if n < 3 else "3 or more" for n in spread.index],
            "residents": spread.to_numpy()}), {"residents": count})
    page.section("events", "Life events", body)


UPSET_COMBINATIONS = 15


def services(page: Page, inputs: ReportInputs) -> None:
    """Which services know the same residents: an UpSet chart, the pairwise matrix, and how many
    residents many services know."""
    residents = inputs.outputs.residents
    if residents is None or "sources" not in residents:  # a folder written by hand: from the links
        links = inputs.outputs.links
        residents = links.groupby("resident_id")["source"].agg(lambda s: sorted(set(s))).rename("sources").reset_index()
    overlap = service_overlap(residents)
    if not len(overlap):
        page.section("services", "Service overlap", note("No resident is known to any service."))
        return
    body = note("Residents by the exact combination of services whose records they are in (the "
                "service_overlap table of resident_view.duckdb holds every combination). Organisations "
                "and 'The Occupier' are left out.")
    body += page.chart("service overlap", _upset_spec(overlap.head(UPSET_COMBINATIONS)))
    grid = pairwise_overlap(overlap)
    shares = grid.div(np.diag(grid.to_numpy()), axis=0)
    body += "<h3>Of each service's residents, the share another service also knows</h3>" + heat_table(shares, shortfall=False)
    body += note("Row: the service; column: another service; the diagonal is 100%. Counts: "
                 + "; ".join(f"{s}: {int(grid.at[s, s]):,}" for s in grid.index) + ".")
    spread = services_per_resident(overlap)
    body += "<h3>Residents known to several services</h3>" + table(
        spread.rename(columns={"n_sources": "services"}), {"residents": count})
    page.section("services", "Service overlap", body)


def _upset_spec(overlap: pd.DataFrame) -> dict:
    """An UpSet chart: a bar per combination of services, and under it which services it joins."""
    order = overlap["sources"].tolist()
    bars = [{"combination": c, "residents": int(n)} for c, n in zip(overlap["sources"], overlap["residents"])]
    names = sorted({s for c in order for s in c.split("+")})
    dots = [{"combination": c, "service": s, "member": s in c.split("+")} for c in order for s in names]
    x = {"field": "combination", "type": "nominal", "sort": order, "axis": None}
    return {
        "vconcat": [
            {"data": {"values": bars}, "mark": "bar", "width": 40 * len(order), "height": 160,
             "encoding": {"x": x, "y": {"field": "residents", "type": "quantitative", "title": "residents"},
                          "tooltip": [{"field": "combination"}, {"field": "residents", "format": ","}]}},
            {"data": {"values": dots}, "mark": {"type": "circle", "size": 120}, "width": 40 * len(order),
             "encoding": {"x": x, "y": {"field": "service", "type": "nominal", "title": None},
                          "color": {"field": "member", "type": "nominal", "legend": None,
                                    "scale": {"domain": [False, True], "range": ["#e0e0e0", "#333333"]}}}},
        ],
        "spacing": 4,
    }


def _cluster_members(members: pd.DataFrame, resident_ids: pd.Index) -> str:
    chosen = members[members["resident_id"].isin(resident_ids)]
    columns = ["resident_id", *[c for c in MEMBER_COLUMNS if c in chosen and chosen[c].notna().any()]]
    shown = chosen[columns].copy()
    if "date_of_birth" in shown:
        shown["date_of_birth"] = pd.to_datetime(shown["date_of_birth"], errors="coerce").dt.strftime("%Y-%m-%d")
    shown["order"] = shown["resident_id"].map({rid: i for i, rid in enumerate(resident_ids)})
    shown = shown.sort_values(["order", "source", "record_id"]).drop(columns="order")
    capped = shown.groupby("resident_id", sort=False).head(MEMBERS_SHOWN)
    html = table(capped)
    if len(capped) < len(shown):
        html += note(f"Only the first {MEMBERS_SHOWN} records of each resident are shown.")
    return html


def fairness(page: Page, inputs: ReportInputs) -> None:
    flags, members = inputs.flags, inputs.members
    formats = {"records": count, "linked to another record": share_bar, "linked to another source": share_bar}
    bars = ("linked to another record", "linked to another source")
    body = note("Linkage errors fall unevenly on groups: a group with a low link rate may be under-linked "
                "(its people split into several residents) rather than truly present in one system only. "
                "Rates by source are in the summary.")
    groups = _record_groups(flags, members)
    if "date_of_birth" in groups:
        bands = metrics.age_bands(groups["date_of_birth"], inputs.outputs.run_timestamp)
        body += "<h3>By age band</h3>" + table(metrics.link_rates_by(flags, bands, "age band"), formats, raw_html=bars)
        body += note("Age at the run date, from each record's own date of birth.")
        by_band_and_source = flags["linked_other_source"].groupby([bands.to_numpy(), flags["source"].to_numpy()], observed=False).mean()
        body += "<h3>Linked to another source, by age band and source</h3>" + heat_table(by_band_and_source.unstack())
    else:
        body += missing("No dates of birth available: match rates by age band cannot be shown.")
    if "sex" in groups and groups["sex"].notna().any():
        sex = groups["sex"].fillna("not recorded")
        body += "<h3>By recorded sex</h3>" + table(metrics.link_rates_by(flags, sex, "sex"), formats, raw_html=bars)
    page.section("fairness", "Match rates by group", body)


def _record_groups(flags: pd.DataFrame, members: Optional[pd.DataFrame]) -> pd.DataFrame:
    """Each link's date of birth and sex from its record, in link order (empty when records are missing)."""
    columns = [c for c in ("date_of_birth", "sex") if members is not None and c in members]
    if not columns:
        return pd.DataFrame(index=flags.index)
    if metrics.in_same_order(flags, members):
        return pd.DataFrame({c: members[c].to_numpy() for c in columns}, index=flags.index)
    return flags[["source", "record_id"]].merge(
        members[["source", "record_id", *columns]], on=["source", "record_id"], how="left")[columns]


def waterfalls(page: Page, inputs: ReportInputs) -> None:
    pairs, view = inputs.pairs, inputs.model_view
    if pairs is None or view is None or not len(pairs):
        page.section("waterfalls", "Example match weight waterfalls",
                     missing("Waterfall charts need scored pairs and the model (pairs.parquet, model.json)."))
        return
    examples = _with_values(_example_pairs(pairs, inputs.outputs.threshold), inputs.members)
    try:
        spec = _short_labels(view.waterfall_chart(examples).chart_dict)
    except Exception as exc:  # the rest of the report is still worth having
        page.section("waterfalls", "Example match weight waterfalls",
                     missing(f"Waterfall charts could not be drawn ({type(exc).__name__})."))
        return
    body = note(f"{len(examples)} example pairs: just above and below the threshold, and the strongest "
                "and weakest links. Use the slider under the chart to step through them. Each bar is what "
                "one comparison added to the match weight.")
    page.section("waterfalls", "Example match weight waterfalls", body + page.chart("waterfall", spec))


WATERFALL_LABEL = 22  # characters of a compared value shown above its bar


def _with_values(examples: pd.DataFrame, members: Optional[pd.DataFrame]) -> pd.DataFrame:
    """The example pairs with their two records' values (`first_name_l`, `first_name_r`, …), so
    each bar says what was compared."""
    if members is None or "unique_id" not in members or not len(examples):
        return examples
    out = examples.reset_index(drop=True)
    # The examples' records only: indexing every member copied a million rows for six pairs.
    wanted = members["unique_id"].isin(np.r_[out["unique_id_l"].to_numpy(), out["unique_id_r"].to_numpy()])
    records = members.loc[wanted].drop(columns=["resident_id"], errors="ignore").set_index("unique_id")
    for side in ("l", "r"):
        values = records.reindex(out[f"unique_id_{side}"].to_numpy())
        values.columns = [f"{c}_{side}" for c in values.columns]
        out = pd.concat([out, values.drop(columns=[c for c in values.columns if c in out]).reset_index(drop=True)],
                        axis=1)
    return out


def _short_labels(spec: dict) -> dict:
    """Splink writes every input column of a comparison above its bar ("None, None, …" for the
    location's dozen): keep the values present, cut to a length that does not run into the next bar."""
    def short(text):
        if not isinstance(text, str):
            return text
        parts = [part for part in text.split(", ") if part and part not in ("None", "nan", "NaT")]
        joined = ", ".join(parts)
        return joined if len(joined) <= WATERFALL_LABEL else joined[:WATERFALL_LABEL - 1] + "…"

    for row in spec.get("data", {}).get("values", []):
        for key in ("value_l", "value_r"):
            if key in row:
                row[key] = short(row[key])
    return spec


def _example_pairs(pairs: pd.DataFrame, threshold_value: float) -> pd.DataFrame:
    p = pairs["match_probability"]
    above = p[p >= threshold_value].sort_values().head(2).index
    below = p[p < threshold_value].sort_values().tail(2).index
    extremes = [p.idxmax(), p.idxmin()]
    chosen = pd.Index(above).append(pd.Index(below)).append(pd.Index(extremes)).unique()[:WATERFALL_EXAMPLES]
    return pairs.loc[chosen].sort_values("match_probability", ascending=False)


def review(page: Page, inputs: ReportInputs) -> None:
    queue = inputs.queue
    if queue is None:
        page.section("review", "Review queue", missing("No review queue: it needs scored pairs and records (pairs.parquet, records.parquet)."))
        return
    body = cards({
        "pairs in review_queue.csv": count(len(queue.rows)),
        "pairs near the threshold": count(queue.n_near_threshold),
        "pairs inside suspicious residents": count(queue.n_suspicious),
    })
    body += note(f"review_queue.csv lists pairs whose match weight is within {REVIEW_BAND:g} of the threshold's "
                 "(odds within 16 times either way) and pairs inside suspicious residents, most uncertain first, "
                 "with both records side by side and what each comparison contributed. Fill the decision column "
                 "with match, non-match or unsure (notebooks/02_review_matches.ipynb helps).")
    if queue.capped:
        body += missing(f"The queue is capped at {len(queue.rows):,} of {queue.n_qualified:,} qualifying pairs: "
                        "the most uncertain are listed, keeping room for pairs inside suspicious residents.")
    if len(queue.rows):
        reasons = queue.rows["reason"].str.split("; ").explode().str.replace(r":.*", "", regex=True).value_counts()
        body += table(reasons.rename_axis("reason").reset_index(name="pairs"), {"pairs": count})
    page.section("review", "Review queue", body)


def decisions(page: Page, inputs: ReportInputs) -> None:
    """What reviewers decided, what this run honoured, and how the model fares on their decisions."""
    title = "Reviewers' decisions"
    store, records = inputs.outputs.decisions, inputs.outputs.records
    if store is None or not len(store):
        page.section("decisions", title, note(
            "No decisions yet. Fill the decision column of review_queue.csv (match, non-match or unsure) and "
            "run <code>residentview review apply OUTDIR review_queue.csv</code>, or simply run again into this "
            "folder: a filled-in queue is imported before it is replaced. Every later run honours them."))
        return
    if records is None or not {"unique_id", "source", "record_id"} <= set(records.columns):
        page.section("decisions", title, missing("records.parquet is missing: the decisions cannot be matched to records."))
        return
    in_force = decisions_in_force(store, records)
    summary = in_force.summary()
    body = cards({
        "decisions made": count(len(store)),
        "pairs kept together (match)": count(summary["match"]),
        "pairs kept apart (non-match)": count(summary["non-match"]),
        "unsure": count(summary["unsure"]),
        "overruled by a later decision": count(summary["overruled"]),
        "on records no longer in the sources": count(summary["inactive"]),
    })
    body += note("Every run into this folder honours the decisions in force: the records of a match share a "
                 "resident whatever the model scores, and the records of a non-match never do, not even "
                 "through other records. A later decision on the same pair replaces an earlier one; decisions "
                 "are never deleted (decisions.parquet, and the decisions table of resident_view.duckdb).")
    measured = measure_on_decisions(in_force, inputs.pairs, inputs.outputs.threshold)
    if measured is not None:
        rows = pd.DataFrame({
            "at the threshold": ["precision", "recall", "F1"],
            "measured on the decisions": [measured.precision, measured.recall, measured.f1_at_threshold],
            "the model's own estimate, same pairs": [measured.expected_precision, measured.expected_recall,
                                                     f1_score(measured.expected_precision, measured.expected_recall)],
        })
        body += f"<h3>The model against {measured.n_match + measured.n_non_match:,} decided pairs</h3>"
        body += table(rows, {"measured on the decisions": decimal(3), "the model's own estimate, same pairs": decimal(3)})
        if measured.best_threshold is not None:
            body += note(
                f"On these pairs a threshold of {measured.best_threshold:g} would give F1 {measured.best_f1:.3f} "
                f"(at {inputs.outputs.threshold:g}: {measured.f1_at_threshold or 0:.3f}). The pairs reviewers see are "
                "the uncertain ones, not a random sample of all pairs: read these figures as the model's accuracy "
                "where it is least sure, and change the threshold only when they hold over several rounds.")
    if len(in_force.overruled):
        overruled = in_force.overruled.assign(
            pair=in_force.overruled["source_l"] + ":" + in_force.overruled["record_id_l"] + " / "
            + in_force.overruled["source_r"] + ":" + in_force.overruled["record_id_r"],
            decided_at=pd.to_datetime(in_force.overruled["decided_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        )
        body += "<h3>Decisions that contradict later ones</h3>"
        body += note("Matches that chain across a non-match (A = B and B = C, but A ≠ C) cannot all hold. The later "
                     "decision wins; these earlier ones are overruled. Review the pairs again if that is wrong.")
        body += table(overruled[["decision_id", "decision", "pair", "reviewer", "decided_at"]])
    by_reviewer = store.assign(reviewer=store["reviewer"].fillna("(not named)")).pivot_table(
        index="reviewer", columns="decision", values="decision_id", aggfunc="count", fill_value=0)
    body += "<h3>By reviewer</h3>" + table(by_reviewer.reset_index())
    page.section("decisions", title, body)


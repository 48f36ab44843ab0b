"""Stage 6 — the match-quality report and review queue, built from a run's output folder.

The fixture run is small and visible: ten records of seven people, two of whom (a father and son
sharing a name and address) have been wrongly joined, and one resident whose two records carry
different NI numbers. Pairs are scored by a real Splink model with fixed m/u parameters.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from residentview.errors import DataError
from residentview.report import rebuild_report, write_report
from residentview.report import linkage_metrics as metrics
from residentview.report.review_queue import REVIEW_BAND, build_review_queue

THRESHOLD = 0.95

# person, source, record_id, resident_id, first, last, date of birth, postcode, ni_number
RECORDS = [
    ("p1", "register", "A1", "R1", "JOHN", "SMITH", "1980-05-01", "SW1A 1AA", None),
    ("p1", "benefits", "B1", "R1", "JOHN", "SMITH", "1980-05-01", "SW1A 1AA", None),
    ("p2", "register", "A2", "R1", "JOHN", "SMITH", "2005-03-12", "SW1A 1AA", None),  # son, wrongly joined
    ("p3", "register", "A3", "R3", "MARY", "JONES", "1950-03-07", "N1 9GU", None),
    ("p3", "benefits", "B3", "R3", "MARY", "JONES", "1950-07-03", "N1 9GU", None),  # day/month swap
    ("p4", "register", "A4", "R4", "AISHA", "KHAN", "1992-11-30", "E1 6AN", "AB123456C"),
    ("p4", "benefits", "B4", "R4", "AISHA", "KHAN", "1992-11-30", "E1 6AN", "CE654321A"),
    ("p5", "register", "A5", "R5", "PETER", "BROWN", "1975-01-15", "M1 1AE", None),
    ("p5", "benefits", "B5", "R6", "PETE", "BROWN", "1975-01-15", "M1 1AE", None),  # missed link
    ("p6", "benefits", "B6", "R7", "ZOE", "ADAMS", None, "LS1 4AP", None),
]


def _records() -> pd.DataFrame:
    frame = pd.DataFrame(RECORDS, columns=["person_id", "source", "record_id", "resident_id", "first_name",
                                           "last_name", "date_of_birth", "postcode", "ni_number"])
    frame = frame.sort_values(["source", "record_id"], ignore_index=True)
    frame.insert(0, "unique_id", np.arange(len(frame), dtype="int64"))
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
    frame["first_name_key"] = frame["first_name"]
    frame["last_name_key"] = frame["last_name"]
    frame["nhs_number"] = None
    return frame


def _score(records: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """A real Splink prediction with fixed parameters, so no training is needed."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    table = records[["unique_id", "first_name_key", "last_name_key", "date_of_birth", "postcode"]].copy()
    table["date_of_birth"] = table["date_of_birth"].dt.strftime("%Y-%m-%d")
    settings = SettingsCreator(
        link_type="dedupe_only",
        probability_two_random_records_match=0.05,
        comparisons=[
            cl.ExactMatch("first_name_key").configure(m_probabilities=[0.9, 0.1], u_probabilities=[0.05, 0.95]),
            cl.ExactMatch("last_name_key").configure(m_probabilities=[0.9, 0.1], u_probabilities=[0.1, 0.9]),
            cl.ExactMatch("date_of_birth").configure(m_probabilities=[0.8, 0.2], u_probabilities=[0.01, 0.99]),
            cl.ExactMatch("postcode").configure(m_probabilities=[0.8, 0.2], u_probabilities=[0.05, 0.95]),
        ],
        blocking_rules_to_generate_predictions=[block_on("last_name_key")],
        retain_intermediate_calculation_columns=True,
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(table, dataset_display_name="records"), settings)
    pairs = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    return pairs, linker.misc.save_model_to_json()


def make_run_folder(folder: Path) -> Path:
    """An output folder as a run leaves it (before the report), from the records above."""
    folder.mkdir(parents=True, exist_ok=True)
    records = _records()
    pairs, model = _score(records)
    links = records[["source", "record_id", "resident_id"]].assign(match_probability=1.0)
    links.to_parquet(folder / "resident_links.parquet", index=False)
    records.drop(columns=["person_id", "resident_id"]).to_parquet(folder / "records.parquet", index=False)
    pairs.to_parquet(folder / "pairs.parquet", index=False)
    pd.DataFrame({"resident_id": ["R1"], "n_records": [3]}).to_parquet(folder / "residents.parquet", index=False)
    pd.DataFrame({"household_id": ["H1"]}).to_parquet(folder / "households.parquet", index=False)
    pd.DataFrame({
        "source": ["register", "register"], "field": ["date_of_birth", "postcode"], "n_records": [5, 5],
        "n_present": [5, 5], "completeness": [1.0, 1.0], "n_valid": [5, 4], "n_invalid": [0, 1],
        "invalid_reasons": ["{}", json.dumps({"not a UK postcode": 1})],
    }).to_parquet(folder / "data_quality.parquet", index=False)
    (folder / "model.json").write_text(json.dumps(model), encoding="utf-8")
    adult_sources = {
        "register": {"pairs": 40, "share_under_age": 0.05, "dated_records": 271, "share_dated_under_age": 0.0,
                     "adults_only": True},
        "bills": {"pairs": 35, "share_under_age": 0.1, "adults_only": True},  # no dated records of its own
    }
    (folder / "run.json").write_text(json.dumps({"name": "fixture", "threshold": THRESHOLD,
                                                 "run_timestamp": "2026-01-01T00:00:00+00:00",
                                                 "diagnostics": {"adult_sources": adult_sources,
                                                                 "blocking_rules": BLOCKING_RULES,
                                                                 "blocking": {"budget": 2_000_000,
                                                                              "comparisons": 1_234_567}}}),
                                          encoding="utf-8")
    records[["source", "record_id", "person_id"]].to_csv(folder.parent / "labels.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    folder = make_run_folder(tmp_path_factory.mktemp("run") / "output")
    write_report(folder)
    return folder


@pytest.fixture(scope="module")
def report_html(run_folder) -> str:
    return (run_folder / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def queue(run_folder) -> pd.DataFrame:
    return pd.read_csv(run_folder / "review_queue.csv", dtype={"decision": str}, keep_default_na=False)


# report.html ------------------------------------------------------------------------------------
def test_report_opens_with_a_personal_data_banner(report_html):
    banner = report_html.index('class="banner"')
    assert "contains personal data" in report_html[banner:banner + 300]
    assert banner < report_html.index("<h1>")


def test_report_has_every_section(report_html):
    for heading in ("Summary", "Data quality", "The model", "Threshold and accuracy", "Clusters",
                    "Service overlap", "Match rates by group", "Example match weight waterfalls", "Review queue"):
        assert f"<h2>{heading}</h2>" in report_html


def test_report_needs_no_network(report_html):
    assert not re.search(r"""<script[^>]+src=|<link[^>]+href=["']?https?:""", report_html)
    assert "cdn.jsdelivr" not in report_html
    assert report_html.count("vega-embed") >= 1 and report_html.count("<script>") >= 4


def test_vega_libraries_are_inlined_once_however_many_charts(report_html):
    from splink.internals.html_utils import load_chart_libraries

    assert report_html.count('class="chart"') >= 4
    for name, source in load_chart_libraries().items():
        assert report_html.count(source[-300:]) == 1, name


def test_chart_specs_are_valid_vega_lite_json(report_html):
    specs = [json.loads(s) for s in re.findall(r'<script type="application/json" id="spec-\d+">(.*?)</script>', report_html)]
    assert len(specs) >= 4
    assert all("vega-lite/v5" in spec["$schema"] for spec in specs)


def test_the_service_overlap_section_charts_which_services_know_the_same_residents(report_html):
    section = report_html[report_html.index("<h2>Service overlap</h2>"):]
    section = section[:section.index("</section>")]
    assert 'aria-label="service overlap"' in section and "the share another service also knows" in section
    assert "Residents known to several services" in section


def test_the_model_section_says_which_sources_hold_adults_only(report_html):
    section = report_html[report_html.index("Systems of adults"):]
    section = section[:section.index("</table>")]
    assert "register" in section and "yes" in section
    assert "<td>271</td>" in section and "271.0" not in section  # a count stays a count
    assert "bills" in section


BLOCKING_RULES = [
    {"rule": "postcode", "kind": "loose: same postcode", "comparisons": 1_200_000, "kept": True,
     "reason": "the loosest step of its family within the budget"},
    {"rule": "dob", "kind": "loose: same date of birth", "comparisons": 3_500_000, "kept": False,
     "reason": "the rules would make 4,700,000 comparisons, over the budget of 2,000,000; tightened"},
    {"rule": "first_name_key & postcode", "kind": "precise", "comparisons": 20_000, "kept": False,
     "reason": "covered by postcode"},
]


def test_the_model_section_lists_every_blocking_rule_tried_and_why_it_was_kept_or_dropped(report_html):
    section = report_html[report_html.index("Blocking rules: 1 kept of 3 tried"):]
    section = section[:section.index("</table>")]
    assert "Budget 2,000,000 comparisons" in section and "about 1,234,567" in section
    for rule in BLOCKING_RULES:
        assert f"<td>{html.escape(rule['rule'])}</td>" in section and rule["reason"] in section
    assert "3,500,000" in section and "covered by postcode" in section


def test_suspicious_residents_are_named_with_their_reason(report_html):
    assert "dates of birth 24.9 years apart" in report_html
    assert "2 different ni numbers" in report_html


def test_summary_counts_records_and_residents(report_html):
    summary = report_html[report_html.index('id="summary"'):report_html.index('id="quality"')]
    assert "<b>10</b>records" in summary
    assert "<b>6</b>residents" in summary


def test_measured_precision_and_recall_appear_only_with_labels(run_folder, report_html, tmp_path):
    assert "Measured against labels" not in report_html
    copy = tmp_path / "output"
    shutil.copytree(run_folder, copy)
    write_report(copy, labels=run_folder.parent / "labels.csv")
    labelled = (copy / "report.html").read_text(encoding="utf-8")
    assert "Measured against labels" in labelled and "measured precision" in labelled
    # the two precisions on one page say which is which
    assert "Pairwise over the residents as written, after clustering" in labelled
    assert "Precision and recall here are of the scored pairs at or above each threshold, before clustering" in labelled


def test_expected_false_and_missed_matches_are_whole_numbers(report_html):
    import re

    section = report_html[report_html.index("expected false matches among accepted pairs") - 400:]
    for label in ("expected false matches among accepted pairs", "expected missed matches among scored pairs"):
        card = re.search(r"<b>([^<]*)</b>\s*" + label, section) or re.search(label + r"[^<]*</[^>]+>\s*<b>([^<]*)</b>", section)
        assert card is not None, label
        assert re.fullmatch(r"[\d,]+", card.group(1)), card.group(1)


# Resident ids against the previous run -----------------------------------------------------------
# Real runs of the `linkable_pair` extracts (30 people; the even ones in both sources) into one
# folder. id_changes.parquet keeps every run's changes; the report must count this run's only.

ID_CARDS = ("kept the same id", "new", "merged", "split", "retired")


def link_into_output(config: Path) -> Path:
    import residentview as rv

    return rv.link(config, progress=False).write(config.parent / "out")


def resident_id_cards(folder: Path) -> dict[str, int]:
    """The summary's cards comparing this run's resident ids with the previous run's."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    summary = page[page.index('id="summary"'):page.index('id="quality"')]
    found = dict((label, int(number.replace(",", ""))) for number, label in re.findall(
        r'<div class="card"><b>([\d,]+)</b>(kept the same id|new|merged|split|retired)</div>', summary))
    return found


def edit_benefits(config: Path, edit) -> None:
    path = config.parent / "benefits.csv"
    frame = pd.read_csv(path, dtype=str, encoding="cp1252")
    edit(frame)
    frame.to_csv(path, index=False, encoding="cp1252")


def unlink_first_benefits_record(frame: pd.DataFrame) -> None:
    """B0000 (person 0) no longer looks like anyone: a resident of its own."""
    frame.loc[frame["Année"] == "B0000", ["Prénom", "Nom.de famille", "Naissance"]] = ["Xavier", "QUILL", "17/09/1933"]


def test_a_first_run_says_it_is_the_first_run_into_its_folder(linkable_pair):
    from residentview.report.run_outputs import id_changes_this_run, read_run_outputs

    folder = link_into_output(linkable_pair)
    page = html.unescape((folder / "report.html").read_text(encoding="utf-8"))
    assert ("This is the first run into this folder: there is no previous run to compare with, "
            "so all 30 residents were given new ids.") in page
    assert "since the previous run" not in page and resident_id_cards(folder) == {}
    figures = id_changes_this_run(read_run_outputs(folder))
    assert (figures.first_run, figures.total, figures.kept, figures.new) == (True, 30, 0, 30)


def test_an_identical_rerun_keeps_every_resident_id_and_changes_none(linkable_pair):
    from residentview.report.run_outputs import id_changes_this_run, read_run_outputs

    first = link_into_output(linkable_pair)
    ids_before = pd.read_parquet(first / "resident_links.parquet")["resident_id"]
    folder = link_into_output(linkable_pair)
    assert pd.read_parquet(folder / "resident_links.parquet")["resident_id"].equals(ids_before)
    # id_changes.parquet still holds the first run's 30 new ids: they are not this run's.
    assert len(pd.read_parquet(folder / "id_changes.parquet")) == 30
    expected = {"kept the same id": 30, "new": 0, "merged": 0, "split": 0, "retired": 0}
    assert resident_id_cards(folder) == expected
    assert "first run" not in (folder / "report.html").read_text(encoding="utf-8")
    figures = id_changes_this_run(read_run_outputs(folder))
    assert (figures.first_run, figures.total, figures.new_from_previous) == (False, 30, 0)
    # `residentview report OUTDIR` reads the same figures back from the files.
    rebuild_report(folder)
    assert resident_id_cards(folder) == expected
    # Residents written without id_issued_at: the earlier runs' rows of id_changes tell instead.
    outputs = read_run_outputs(folder)
    outputs.residents = outputs.residents.drop(columns="id_issued_at")
    assert id_changes_this_run(outputs) == figures


def test_a_rerun_counts_this_runs_merge_and_retirement_and_not_earlier_runs(linkable_pair):
    edit_benefits(linkable_pair, unlink_first_benefits_record)
    link_into_output(linkable_pair)  # 31 residents: person 0 is two
    # Person 0's benefits record joins the register record again (two residents merge into one),
    # and person 1, on the register only, leaves (a resident retired).
    edit_benefits(linkable_pair, lambda frame: frame.update(pd.DataFrame(
        {"Prénom": ["John"], "Nom.de famille": ["SMITH"], "Naissance": ["01/01/1950"]},
        index=frame.index[frame["Année"] == "B0000"])))
    register = pd.read_csv(linkable_pair.parent / "register.csv", dtype=str)
    register[register["Ref No"] != "00001"].to_csv(linkable_pair.parent / "register.csv", index=False)
    folder = link_into_output(linkable_pair)
    assert resident_id_cards(folder) == {"kept the same id": 29, "new": 0, "merged": 1, "split": 0, "retired": 1}
    page = html.unescape((folder / "report.html").read_text(encoding="utf-8"))
    assert "Of this run's 29 residents, 29 kept the id they had in the previous run and 0 are new." in page
    # Run again unchanged: the merge and retirement stay in the history, not in this run's figures.
    folder = link_into_output(linkable_pair)
    assert resident_id_cards(folder) == {"kept the same id": 29, "new": 0, "merged": 0, "split": 0, "retired": 0}


def test_a_split_counts_the_part_given_a_new_id(tmp_path):
    # Hand-clustered: one resident of three records splits 2 + 1; the single record gets a new id.
    from residentview.resident_view import build_resident_view
    from residentview.report.run_outputs import id_changes_this_run, read_run_outputs

    records = _records().drop(columns=["resident_id", "person_id"]).iloc[:3]
    folder = tmp_path / "out"
    folder.mkdir()
    stamps = ["2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"]
    for stamp, keys in zip(stamps, ([0, 0, 0], [0, 0, 2])):
        clusters = pd.DataFrame({"unique_id": records["unique_id"], "cluster_key": keys, "match_probability": 1.0})
        view = build_resident_view(records, clusters, folder, run_timestamp=pd.Timestamp(stamp))
        for name in ("links", "residents", "households", "id_changes"):
            getattr(view, name).to_parquet(folder / f"{'resident_links' if name == 'links' else name}.parquet")
        (folder / "run.json").write_text(json.dumps({"run_timestamp": stamp, "previous": str(folder)}))
    write_report(folder)
    figures = id_changes_this_run(read_run_outputs(folder))
    assert (figures.total, figures.kept, figures.new, figures.split, figures.new_from_previous) == (2, 1, 0, 1, 1)
    assert resident_id_cards(folder) == {"kept the same id": 1, "new": 0, "merged": 0, "split": 1, "retired": 0}
    page = html.unescape((folder / "report.html").read_text(encoding="utf-8"))
    assert ("Residents given a new id although their records were in the previous run (records split off from, "
            "or brought together from, other residents): 1.") in page


# Metrics ---------------------------------------------------------------------------------------
def test_measured_accuracy_counts_pairs_across_residents_and_people():
    links = pd.DataFrame({"source": ["s"] * 4, "record_id": ["1", "2", "3", "4"], "resident_id": ["A", "A", "A", "B"]})
    labels = pd.DataFrame({"source": ["s"] * 4, "record_id": ["1", "2", "3", "4"], "person_id": ["x", "x", "y", "y"]})
    measured = metrics.measured_accuracy(links, labels)
    assert measured["predicted pairs"] == 3 and measured["true pairs"] == 2
    assert measured["correctly linked pairs"] == 1
    assert measured["precision"] == pytest.approx(1 / 3) and measured["recall"] == pytest.approx(1 / 2)


def test_estimated_accuracy_follows_the_model_probabilities():
    estimate = metrics.estimated_accuracy(pd.Series([0.99, 0.97, 0.6, 0.2]), threshold=0.95)
    assert estimate["pairs accepted"] == 2
    assert estimate["expected false matches"] == pytest.approx(0.04)
    assert estimate["estimated precision"] == pytest.approx(0.98)
    assert estimate["estimated recall"] == pytest.approx(1.96 / 2.76)


def test_raising_the_threshold_never_lowers_the_number_of_residents():
    pairs = pd.DataFrame({"unique_id_l": [0, 1, 3], "unique_id_r": [1, 2, 4], "match_probability": [0.99, 0.9, 0.6]})
    table = metrics.threshold_table(pairs, n_records=6, run_threshold=0.95)
    assert table["residents"].is_monotonic_increasing
    assert table.set_index("threshold").loc[0.5, "residents"] == 3
    assert table["this run"].sum() == 1


def test_dates_of_birth_a_few_days_apart_are_not_suspicious():
    members = pd.DataFrame({"resident_id": ["R", "R", "S", "S"], "unique_id": [0, 1, 2, 3],
                            "date_of_birth": pd.to_datetime(["1950-03-07", "1950-07-03", "1950-01-01", "1990-01-01"])})
    suspicious = metrics.suspicious_residents(members)
    assert suspicious["resident_id"].tolist() == ["S"]


def test_age_bands_put_unknown_dates_in_their_own_band():
    bands = metrics.age_bands(pd.Series(pd.to_datetime(["2010-01-01", "1990-06-01", None])), pd.Timestamp("2026-01-01"))
    assert bands.astype(str).tolist() == ["0-17", "35-64", "unknown"]


def test_link_flags_mark_records_linked_to_another_source():
    links = pd.DataFrame({"source": ["a", "a", "b"], "record_id": ["1", "2", "3"], "resident_id": ["R", "R", "S"]})
    flags = metrics.link_flags(links)
    assert flags["linked"].tolist() == [True, True, False]
    assert flags["linked_other_source"].tolist() == [False, False, False]


def test_records_get_their_resident_whichever_order_links_come_in():
    records = pd.DataFrame({"unique_id": [0, 1, 2], "source": ["a", "a", "b"], "record_id": ["1", "2", "1"],
                            "first_name": ["ANN", "BOB", "ANN"]}, index=[5, 6, 7])
    links = pd.DataFrame({"source": ["a", "a", "b"], "record_id": ["1", "2", "1"], "resident_id": ["R", "S", "R"]})
    aligned = metrics.resident_members(links, records)
    shuffled = metrics.resident_members(links.iloc[[2, 0, 1]], records)
    pd.testing.assert_frame_equal(aligned, shuffled)
    assert aligned["resident_id"].tolist() == ["R", "S", "R"]
    assert "resident_id" not in records  # the caller's records are left as they were


# review_queue.csv -------------------------------------------------------------------------------
def test_review_queue_has_an_empty_decision_column_first(queue):
    assert len(queue) > 0
    assert list(queue.columns[:2]) == ["decision", "note"] and (queue["decision"] == "").all()


def test_review_queue_shows_both_records_and_each_comparison_weight(queue):
    for column in ("source_l", "source_r", "record_id_l", "record_id_r", "resident_id_l", "resident_id_r",
                   "first_name_l", "first_name_r", "date_of_birth_l", "date_of_birth_r",
                   "date_of_birth_weight", "postcode_weight", "date_of_birth_level"):
        assert column in queue.columns


def test_review_queue_includes_pairs_inside_suspicious_residents(queue):
    father_son = queue[queue["resident_id_l"].eq("R1") & queue["date_of_birth_l"].ne(queue["date_of_birth_r"])]
    assert len(father_son) > 0
    assert father_son["reason"].str.contains("suspicious resident").all()


def test_review_queue_starts_with_the_most_uncertain_pair(queue):
    distance = (queue["match_weight"] - metrics.probability_to_weight(THRESHOLD)).abs()
    assert distance.iloc[0] == distance.min()


def test_review_queue_spreads_its_first_pairs_across_kinds_of_pair():
    # 10 pairs agreeing on first name, all nearer the threshold than 10 pairs that disagree on it.
    n = 10
    pairs = pd.DataFrame({"unique_id_l": np.arange(2 * n), "unique_id_r": np.arange(2 * n) + 2 * n,
                          "match_probability": np.r_[np.linspace(0.95, 0.951, n), np.linspace(0.96, 0.97, n)],
                          "gamma_first_name": np.r_[np.full(n, 3), np.zeros(n, dtype=int)]})
    members = pd.DataFrame({"unique_id": np.arange(4 * n), "source": "s", "record_id": np.arange(4 * n).astype(str),
                            "resident_id": [f"R{i}" for i in range(4 * n)]})
    queue = build_review_queue(pairs, members, pd.DataFrame(columns=["resident_id", "reason"]), 0.95, None, [])
    kinds = (queue.rows["unique_id_l"] < n).map({True: "agree", False: "disagree"})
    assert kinds.iloc[:2].tolist() == ["agree", "disagree"]  # one of each before a second of either
    assert queue.rows["unique_id_l"].iloc[0] == 0  # the most uncertain of all first
    assert len(queue.rows) == 2 * n


def test_review_queue_is_capped_keeping_room_for_suspicious_pairs():
    n = 50
    pairs = pd.DataFrame({"unique_id_l": np.arange(n), "unique_id_r": np.arange(n) + n,
                          "match_probability": np.linspace(0.9, 0.99, n)})
    members = pd.DataFrame({"unique_id": np.arange(2 * n), "source": "s", "record_id": np.arange(2 * n).astype(str),
                            "resident_id": [f"R{i % n}" for i in range(2 * n)]})
    suspicious = pd.DataFrame({"resident_id": ["R0"], "n_records": [2], "reason": ["dates of birth 30 years apart"]})
    queue = build_review_queue(pairs, members, suspicious, 0.95, None, [], cap=10)
    assert len(queue.rows) == 10 and queue.capped
    assert queue.rows["reason"].str.contains("suspicious").any()


def test_review_queue_band_is_symmetric_around_the_threshold():
    weights = np.array([-REVIEW_BAND - 1, -REVIEW_BAND + 0.5, REVIEW_BAND - 0.5, REVIEW_BAND + 1])
    probabilities = 1 / (1 + 2.0 ** -(weights + metrics.probability_to_weight(0.9)))
    pairs = pd.DataFrame({"unique_id_l": [0, 1, 2, 3], "unique_id_r": [4, 5, 6, 7], "match_probability": probabilities})
    members = pd.DataFrame({"unique_id": range(8), "source": "s", "record_id": [str(i) for i in range(8)],
                            "resident_id": [f"R{i}" for i in range(8)]})
    queue = build_review_queue(pairs, members, pd.DataFrame(columns=["resident_id", "n_records", "reason"]), 0.9, None, [])
    assert sorted(queue.rows["unique_id_l"]) == [1, 2]


# Degrading gracefully and the CLI -----------------------------------------------------------------
def test_report_from_a_folder_with_only_resident_links_says_what_is_missing(tmp_path):
    pd.DataFrame({"source": ["a", "b"], "record_id": ["1", "2"], "resident_id": ["R", "R"],
                  "match_probability": [1.0, 1.0]}).to_parquet(tmp_path / "resident_links.parquet")
    html = write_report(tmp_path).read_text(encoding="utf-8")
    assert "pairs.parquet is missing" in html and "model.json is missing" in html
    assert (tmp_path / "review_queue.csv").read_text().startswith("decision,note,review_id")


def test_report_survives_a_model_splink_cannot_read_and_pairs_without_weights(run_folder, tmp_path):
    copy = tmp_path / "output"
    shutil.copytree(run_folder, copy)
    (copy / "model.json").write_text('{"comparisons": "not a list"}')
    pairs = pd.read_parquet(copy / "pairs.parquet")
    pairs[["unique_id_l", "unique_id_r", "match_probability"]].to_parquet(copy / "pairs.parquet")
    html = write_report(copy).read_text(encoding="utf-8")
    assert "could not be read by Splink" in html
    assert "What moving the threshold would change" in html
    queue = pd.read_csv(copy / "review_queue.csv")
    assert len(queue) > 0 and "match_weight" in queue


def test_report_survives_a_run_with_no_scored_pairs(run_folder, tmp_path):
    copy = tmp_path / "output"
    shutil.copytree(run_folder, copy)
    pd.read_parquet(copy / "pairs.parquet").head(0).to_parquet(copy / "pairs.parquet")
    html = write_report(copy).read_text(encoding="utf-8")
    assert "<h2>Threshold and accuracy</h2>" in html
    assert pd.read_csv(copy / "review_queue.csv").empty


def test_logs_never_carry_names_dates_of_birth_or_identifiers(run_folder, tmp_path, caplog):
    copy = tmp_path / "output"
    shutil.copytree(run_folder, copy)
    (copy / "model.json").write_text("{}")  # the failure path logs too
    with caplog.at_level("DEBUG", logger="residentview"):
        write_report(copy)
    logged = caplog.text
    assert caplog.records
    for personal in ("SMITH", "AISHA", "1980-05-01", "AB123456C", "SW1A 1AA"):
        assert personal not in logged


def test_a_folder_that_is_not_a_run_is_a_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="not a residentview output folder"):
        rebuild_report(tmp_path)


def test_labels_without_person_id_are_a_data_error(run_folder, tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("source,record_id\nregister,A1\n")
    with pytest.raises(DataError, match="person_id"):
        rebuild_report(run_folder, labels=bad)


def test_cli_report_rebuilds_only_the_report_files(run_folder, tmp_path):
    from click.testing import CliRunner

    from residentview.cli import main

    copy = tmp_path / "output"
    shutil.copytree(run_folder, copy)
    (copy / "report.html").unlink()
    (copy / "notes.txt").write_text("mine")
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    result = CliRunner().invoke(main, ["report", str(copy), "--labels", str(run_folder.parent / "labels.csv")])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").is_file()
    after = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    assert {n for n in after if after[n] != before.get(n)} == {"report.html", "review_queue.csv"}
    assert (copy / "notes.txt").read_text() == "mine"


# In a real browser, with the network off ----------------------------------------------------------
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _find_chromium() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed when absent and we are root (CI runs as root on a fresh machine)."""
    found = _find_chromium()
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=900)
        found = _find_chromium()
    if found is None:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    return found


def _open_offline(chromium: str, page: Path, profile: Path) -> subprocess.CompletedProcess:
    """Load `page` headless with every network request refused; stdout is the DOM after scripts ran."""
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--proxy-server=127.0.0.1:9",  # nothing listens there: any request would fail
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def test_report_renders_every_chart_offline_without_console_errors(chromium, run_folder, tmp_path):
    opened = _open_offline(chromium, run_folder / "report.html", tmp_path / "profile")
    dom = opened.stdout
    charts = re.findall(r'<div class="chart[ "][^>]*>', dom)
    assert len(charts) >= 4, opened.stderr[-2000:]
    assert all('data-rendered="yes"' in chart for chart in charts), charts
    assert dom.count('class="marks"') >= len(charts)  # each chart drew an SVG
    console = [line for line in opened.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []


def test_a_run_writes_the_report_it_would_rebuild_from_its_own_folder(tmp_path):
    # pipeline.write hands the report the frames it has just written instead of reading them
    # back; the report must be the one `residentview report` builds from the folder alone.
    import residentview as rv
    from residentview.report import rebuild_report
    from residentview.synthetic import generate

    written = generate(people=400, out=tmp_path / "extracts", seed=3)
    result = rv.link(written.config_path, progress=False)
    before = {name: getattr(result, name).copy() for name in ("links", "residents", "households", "pairs", "records")}
    folder = result.write(tmp_path / "out")
    from_memory = {name: (folder / name).read_bytes() for name in ("report.html", "review_queue.csv")}
    rebuild_report(folder)
    assert from_memory == {name: (folder / name).read_bytes() for name in from_memory}
    # The report and the files are written side by side from the result's own frames: neither
    # may change them.
    for name, frame in before.items():
        pd.testing.assert_frame_equal(getattr(result, name), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "resident_links.parquet"), result.links)


# Data protection -----------------------------------------------------------------------------------
def _section(report: str, anchor: str) -> str:
    start = report.index(f'<section id="{anchor}">')
    return report[start:report.index("</section>", start)]


def test_the_data_protection_section_lists_each_files_personal_data_by_kind(report_html):
    section = _section(report_html, "data-protection")
    assert "<h2>Data protection</h2>" in section
    for name in ("resident_links.parquet", "records.parquet", "pairs.parquet", "review_queue.csv", "audit.jsonl"):
        assert name in section


def test_columns_are_classified_by_name_and_an_unknown_one_is_flagged():
    from residentview.report.data_protection import (DIRECT, NOT_PERSONAL, PSEUDONYMOUS, QUASI, SPECIAL,
                                                     UNCLASSIFIED, classify, personal_data_table)

    assert [classify(c) for c in ("first_name", "last_name_key_r", "id_upn", "date_of_birth", "postcode_l",
                                  "is_deceased", "resident_id", "gamma_location", "tf_postcode_l", "shoe_size")] == \
        [DIRECT, DIRECT, DIRECT, QUASI, QUASI, SPECIAL, PSEUDONYMOUS, NOT_PERSONAL, NOT_PERSONAL, UNCLASSIFIED]
    frame = personal_data_table({"residents.parquet": ["resident_id", "last_name", "shoe_size"]}, [])
    row = frame.iloc[0]
    assert (row[DIRECT], row[PSEUDONYMOUS], row[UNCLASSIFIED]) == ("last_name", "resident_id", "shoe_size")
    assert UNCLASSIFIED not in personal_data_table({"x.parquet": ["resident_id"]}, []).columns


def test_a_column_the_table_does_not_know_is_shown_for_checking(run_folder, tmp_path):
    folder = tmp_path / "output"
    shutil.copytree(run_folder, folder)
    pd.DataFrame({"resident_id": ["R1"], "n_records": [3], "mothers_maiden_name": ["X"]}).to_parquet(
        folder / "residents.parquet", index=False)
    write_report(folder)
    section = _section((folder / "report.html").read_text(encoding="utf-8"), "data-protection")
    assert "unclassified — check" in section and "mothers_maiden_name" in section


def test_the_retention_table_counts_what_each_source_left_out():
    from residentview.report.data_protection import retention_table

    frame = retention_table({"sources": {"register": 20, "benefits": 6},
                             "retention": {"benefits": {"retention": "6 years", "records_past_retention": 5}}})
    assert frame.values.tolist() == [["register", "none set", 20, 0], ["benefits", "6 years", 6, 5]]


def test_the_page_comes_from_templates_escapes_values_and_prints_on_a4():
    from residentview.report.html_page import Page, heat_table, table

    frame = pd.DataFrame({"name": ["<b>O'Neil</b>"], "share": ['<span class="share">50%</span>']})
    html = table(frame, raw_html=("share",))
    assert "&lt;b&gt;O&#39;Neil&lt;/b&gt;" in html and '<span class="share">50%</span>' in html
    grid = pd.DataFrame({"council_tax": [0.1, float("nan")], "register": [0.1, 0.9]}, index=["last_name", "phone"])
    shaded = heat_table(grid, expected_sparse=("phone",))
    assert "rgb(255,25,25)" in shaded  # a shortfall in a field everyone has: red
    assert 'class="heat not-held"' in shaded  # a source that does not hold the field
    assert "rgb(141,141,255)" in shaded and "rgb(255,229,229)" not in shaded  # phone at 90%: blue, not red
    partial = heat_table(grid, sparse_cells=grid < 0.25)  # a field a source holds for some people only
    assert "rgb(255,25,25)" not in partial and "rgb(243,243,255)" in partial
    page = Page(title="A <run>", banner="<strong>OFFICIAL</strong>")
    page.section("one", "First", "<p>body</p>")
    rendered = page.render()
    assert "<title>A &lt;run&gt;</title>" in rendered and "<strong>OFFICIAL</strong>" in rendered
    assert "<p>body</p>" in rendered and "@media print" in rendered and "size: A4" in rendered


def test_the_summary_opens_with_a_plain_english_headline(run_folder, report_html):
    import re

    links = pd.read_parquet(run_folder / "resident_links.parquet")
    headline = re.search(r'<p class="headline">(.*?)</p>', report_html).group(1)
    assert headline.startswith(f"{len(links):,} records from {links['source'].nunique()} services describe "
                               f"{links['resident_id'].nunique():,} residents")
    assert "known to more than one service" in headline and "worth a look" in headline


def test_waterfall_labels_show_the_values_compared_and_never_a_row_of_nones():
    from residentview.report.sections import WATERFALL_LABEL, _short_labels, _with_values

    spec = {"data": {"values": [{"value_l": "None, None, LS1 2AB, None", "value_r": "x" * 40},
                                {"value_l": "None, None", "value_r": None}]}}
    rows = _short_labels(spec)["data"]["values"]
    assert rows[0]["value_l"] == "LS1 2AB" and len(rows[0]["value_r"]) == WATERFALL_LABEL and rows[0]["value_r"].endswith("…")
    assert rows[1]["value_l"] == "" and rows[1]["value_r"] is None
    members = pd.DataFrame({"unique_id": [0, 1], "first_name": ["ANNA", "ANN"], "resident_id": ["R1", "R1"]})
    pairs = pd.DataFrame({"unique_id_l": [0], "unique_id_r": [1], "match_probability": [0.9]})
    shown = _with_values(pairs, members)
    assert shown.loc[0, "first_name_l"] == "ANNA" and shown.loc[0, "first_name_r"] == "ANN"
    assert "resident_id_l" not in shown

"""Reviewers' decisions (CONTRACT §5): imported whole or not at all, kept for ever, honoured by every
run, never lost with a replaced review queue, and written to a hash-chained audit log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from residentview.audit import AUDIT_FILE, verify
from residentview.cli import main
from residentview.errors import DataError
from residentview.review.importing import decision_word, read_decisions_file
from residentview.review.in_force import decisions_in_force
from residentview.review.store import DECISIONS_FILE, appended, empty_store, latest, ordered_pairs, read_store

PAIR = ["source_l", "record_id_l", "source_r", "record_id_r"]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def decisions_csv(path: Path, rows, extra_columns=None) -> Path:
    """rows: (left key, right key, decision) with keys as 'source:record_id'."""
    frame = pd.DataFrame([
        {"source_l": a.split(":")[0], "record_id_l": a.split(":")[1],
         "source_r": b.split(":")[0], "record_id_r": b.split(":")[1], "decision": word}
        for a, b, word in rows
    ])
    for name, value in (extra_columns or {}).items():
        frame[name] = value
    frame.to_csv(path, index=False)
    return path


def resident_of(folder: Path) -> dict:
    links = pd.read_parquet(folder / "resident_links.parquet")
    return dict(zip(links["source"] + ":" + links["record_id"], links["resident_id"]))


@pytest.fixture
def linked(linkable_pair):
    """A first run of the 30-person pair of extracts; returns (config, output folder)."""
    out = linkable_pair.parent / "out"
    result = run_cli("link", linkable_pair, "--out", out)
    assert result.exit_code == 0, result.output
    return linkable_pair, out


# reading a decisions file -----------------------------------------------------------------------
@given(st.sampled_from(["match", "non-match", "unsure"]), st.sampled_from(["", " ", "  "]),
       st.sampled_from([str.upper, str.lower, str.title]))
def test_decision_words_are_read_whatever_their_case_and_spacing(word, pad, case):
    assert decision_word(pad + case(word) + pad) == word


def test_decision_word_variants_and_blanks():
    assert decision_word("Non Match") == decision_word("non_match") == decision_word("NONMATCH") == "non-match"
    assert decision_word("  ") is None
    with pytest.raises(ValueError):
        decision_word("yes")


KNOWN = pd.DataFrame({"source": ["a", "a", "b"], "record_id": ["1", "2", "1"]})


def read(path, store=None, **options):
    return read_decisions_file(path, KNOWN, empty_store() if store is None else store, reviewer=options.get("reviewer"),
                               origin="test", decided_at=pd.Timestamp("2026-12-01", tz="UTC"), model_version=None)


def test_a_file_with_bad_rows_names_each_by_line_and_imports_nothing(tmp_path):
    path = decisions_csv(tmp_path / "d.csv", [("a:1", "b:1", "match"), ("a:1", "a:2", "yes"),
                                              ("a:1", "z:9", "non-match"), ("a:2", "a:2", "match"),
                                              ("a:2", "b:1", "")])
    with pytest.raises(DataError) as error:
        read(path)
    lines = str(error.value).splitlines()
    assert lines[0].endswith("3 bad row(s); nothing imported from this file")
    assert lines[1:] == ["line 3: unknown decision 'yes' (use match, non-match or unsure)",
                         "line 4: unknown record z:9", "line 5: a record paired with itself (a:2)"]


def test_a_file_without_the_pair_columns_is_one_clear_error(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"left": ["a:1"], "right": ["b:1"], "decision": ["match"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="needs the columns source_l, record_id_l, source_r, record_id_r, decision"):
        read(path)


def test_a_missing_file_and_a_folder_are_each_said_as_what_they_are(tmp_path):
    with pytest.raises(DataError, match=r"d\.csv: decisions file not found$"):
        read(tmp_path / "d.csv")
    with pytest.raises(DataError, match=r": not a decisions file \(a folder or a device\); expected a CSV file$"):
        read(tmp_path)


def test_a_file_saved_by_excel_in_windows_1252_is_read(tmp_path):
    path = tmp_path / "d.csv"
    decisions_csv(path, [("a:1", "b:1", "match")], {"note": "café"})
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    rows = read(path).rows
    assert rows["note"].tolist() == ["café"]


def test_blank_decisions_are_skipped_and_the_reviewer_option_fills_missing_names(tmp_path):
    path = decisions_csv(tmp_path / "d.csv", [("b:1", "a:1", "Match"), ("a:2", "b:1", "")],
                         {"reviewer": ["", ""], "extra": ["x", "y"]})
    found = read(path, reviewer="alice")
    assert found.n_blank == 1
    # one way round only: (a, 1) before (b, 1)
    assert found.rows[PAIR + ["decision", "reviewer"]].values.tolist() == [["a", "1", "b", "1", "match", "alice"]]


def test_a_decision_already_in_force_is_not_imported_twice(tmp_path):
    path = decisions_csv(tmp_path / "d.csv", [("a:1", "b:1", "match")])
    store = appended(empty_store(), read(path).rows)
    again = read(path, store)
    assert len(again.rows) == 0 and again.n_repeated == 1


def test_a_pair_is_one_pair_either_way_round_and_its_latest_decision_is_in_force():
    rows = pd.DataFrame({"source_l": ["b", "a"], "record_id_l": ["1", "1"], "source_r": ["a", "b"],
                         "record_id_r": ["1", "1"], "decision": ["match", "non-match"]})
    store = appended(empty_store(), ordered_pairs(rows).assign(decided_at=pd.Timestamp.now(tz="UTC")))
    assert latest(store)["decision"].tolist() == ["non-match"]


# which decisions are in force -------------------------------------------------------------------
RECORDS = pd.DataFrame({"unique_id": [0, 1, 2, 3], "source": ["s"] * 4, "record_id": ["A", "B", "C", "D"]})


def store_of(*decisions):
    """decisions: (left record_id, right record_id, word) in the order they were made."""
    rows = pd.DataFrame([{"source_l": "s", "record_id_l": a, "source_r": "s", "record_id_r": b, "decision": w}
                         for a, b, w in decisions])
    return appended(empty_store(), rows.assign(decided_at=pd.Timestamp.now(tz="UTC")))


def test_contradicting_decisions_are_settled_by_the_later_one():
    # A = B, then B = C, then A != C: the earliest match gives way.
    in_force = decisions_in_force(store_of(("A", "B", "match"), ("B", "C", "match"), ("A", "C", "non-match")), RECORDS)
    assert in_force.overruled[["record_id_l", "record_id_r"]].values.tolist() == [["A", "B"]]
    assert in_force.must_link[["unique_id_l", "unique_id_r"]].values.tolist() == [[1, 2]]
    assert in_force.cannot_link[["unique_id_l", "unique_id_r"]].values.tolist() == [[0, 2]]


def test_a_later_match_overrules_an_earlier_non_match_it_contradicts():
    in_force = decisions_in_force(store_of(("A", "C", "non-match"), ("A", "B", "match"), ("B", "C", "match")), RECORDS)
    assert in_force.overruled["decision"].tolist() == ["non-match"]
    assert len(in_force.cannot_link) == 0 and len(in_force.must_link) == 2


def test_decisions_on_records_that_left_the_sources_are_kept_inactive():
    in_force = decisions_in_force(store_of(("A", "B", "match"), ("A", "GONE", "non-match"), ("C", "D", "unsure")),
                                  RECORDS)
    assert in_force.summary() == {"match": 1, "non-match": 0, "unsure": 1, "overruled": 0, "inactive": 1}


# review apply, and runs that honour the decisions -----------------------------------------------
def test_review_apply_then_link_merges_and_splits_as_the_reviewer_said(linked, tmp_path):
    config, out = linked
    before = resident_of(out)
    assert before["all:00000"] == before["select:B0000"]  # the same person in both extracts
    assert before["all:00001"] != before["all:00003"]
    path = decisions_csv(tmp_path / "mine.csv", [("all:00000", "select:B0000", "non-match"),
                                                 ("all:00001", "all:00003", "MATCH")])
    applied = run_cli("review", "apply", out, path, "--reviewer", "alice")
    assert applied.exit_code == 0 and "imported 2 decision(s)" in applied.output
    assert resident_of(out) == before  # decisions take effect at the next run, not before

    assert run_cli("link", config, "--out", out).exit_code == 0
    after = resident_of(out)
    assert after["all:00000"] != after["select:B0000"]
    assert after["all:00001"] == after["all:00003"]
    run = json.loads((out / "run.json").read_text())
    assert run["decisions"] == {"match": 1, "non-match": 1, "unsure": 0, "overruled": 0, "inactive": 0,
                                "in_store": 2, "broken": 0}
    store = read_store(out)
    assert store["reviewer"].tolist() == ["alice", "alice"]
    with duckdb.connect(str(out / "resident_view.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM decisions").fetchone()[0] == 2


def test_a_rerun_with_no_new_decisions_changes_nothing(linked, tmp_path):
    config, out = linked
    path = decisions_csv(tmp_path / "mine.csv", [("all:00002", "select:B0002", "non-match"),
                                                 ("all:00005", "all:00007", "match")])
    assert run_cli("review", "apply", out, path).exit_code == 0
    assert run_cli("link", config, "--out", out).exit_code == 0
    first = pd.read_parquet(out / "resident_links.parquet")
    assert run_cli("link", config, "--out", out).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "resident_links.parquet"), first)
    assert len(read_store(out)) == 2


def test_review_apply_with_a_bad_row_exits_2_and_leaves_the_folder_as_it_was(linked, tmp_path):
    _, out = linked
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    path = decisions_csv(tmp_path / "bad.csv", [("all:00000", "select:B0000", "match"),
                                                ("all:00000", "nowhere:1", "match")])
    result = run_cli("review", "apply", out, path)
    assert result.exit_code == 2
    assert "line 3: unknown record nowhere:1" in result.output
    assert "Traceback" not in result.output
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_review_apply_names_the_decisions_a_later_one_overrules(linked, tmp_path):
    _, out = linked
    path = decisions_csv(tmp_path / "d.csv", [("all:00001", "all:00003", "match"), ("all:00003", "all:00005", "match"),
                                              ("all:00001", "all:00005", "non-match")])
    result = run_cli("review", "apply", out, path)
    assert result.exit_code == 0
    assert "1 decision(s) contradict later ones" in result.output
    assert "overruled: match all:00001 / all:00003" in result.output


def fill_queue(out: Path, decisions: dict[int, str]) -> pd.DataFrame:
    """Fill the decision column of rows (by position) of the folder's review queue, as a reviewer would."""
    queue = pd.read_csv(out / "review_queue.csv", dtype=str, keep_default_na=False)
    for row, word in decisions.items():
        queue.loc[row, "decision"] = word
    queue.to_csv(out / "review_queue.csv", index=False)
    return queue


def queue_pairs(queue: pd.DataFrame, rows) -> set:
    return {tuple(queue.loc[r, PAIR]) for r in rows}


def test_a_run_imports_the_decisions_filled_into_the_queue_before_replacing_it(linked):
    config, out = linked
    queue = pd.read_csv(out / "review_queue.csv", dtype=str, keep_default_na=False)
    assert len(queue) >= 2, "the tiny extracts must leave something to review"
    fill_queue(out, {0: "non-match", 1: "match"})
    assert run_cli("link", config, "--out", out).exit_code == 0
    store = read_store(out)
    assert set(map(tuple, store[PAIR].values.tolist())) == {tuple(sorted_pair(queue, r)) for r in (0, 1)}
    assert set(store["origin"]) == {"review_queue.csv"}
    new_queue = pd.read_csv(out / "review_queue.csv", dtype=str, keep_default_na=False)
    assert not queue_pairs(queue, [0, 1]) & set(map(tuple, new_queue[PAIR].values.tolist()))
    assert (new_queue["decision"] == "").all()


def sorted_pair(queue, row):
    left = (queue.loc[row, "source_l"], queue.loc[row, "record_id_l"])
    right = (queue.loc[row, "source_r"], queue.loc[row, "record_id_r"])
    a, b = sorted([left, right], key=lambda k: k[0] + "\x1f" + k[1])
    return (*a, *b)


def test_a_queue_with_a_bad_decision_stops_the_run_and_is_kept(linked):
    config, out = linked
    fill_queue(out, {0: "perhaps"})
    kept = (out / "review_queue.csv").read_bytes()
    result = run_cli("link", config, "--out", out)
    assert result.exit_code == 2
    assert "unknown decision 'perhaps'" in result.output and "nothing was changed" in result.output
    assert (out / "review_queue.csv").read_bytes() == kept


def test_rebuilding_the_report_imports_the_queue_first(linked):
    _, out = linked
    queue = fill_queue(out, {0: "match"})
    assert run_cli("report", out).exit_code == 0
    assert len(read_store(out)) == 1
    new_queue = pd.read_csv(out / "review_queue.csv", dtype=str, keep_default_na=False)
    assert not queue_pairs(queue, [0]) & set(map(tuple, new_queue[PAIR].values.tolist()))


def test_a_decisions_store_that_cannot_be_read_stops_the_run(linked):
    config, out = linked
    (out / DECISIONS_FILE).write_bytes(b"not parquet")
    result = run_cli("link", config, "--out", out)
    assert result.exit_code == 2 and "the decisions store cannot be read" in result.output


# the audit log ----------------------------------------------------------------------------------
def audit_entries(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / AUDIT_FILE).read_text().splitlines()]


def test_every_run_and_decision_is_in_an_intact_chain_without_names(linked, tmp_path):
    config, out = linked
    path = decisions_csv(tmp_path / "d.csv", [("all:00001", "all:00003", "match")],
                         {"note": "MARY SMITH born 1951"})
    assert run_cli("review", "apply", out, path, "--reviewer", "bob").exit_code == 0
    assert run_cli("link", config, "--out", out).exit_code == 0
    entries = audit_entries(out)
    assert [e["event"] for e in entries] == ["link", "decision", "review apply", "link"]
    decision = entries[1]
    assert decision["reviewer"] == "bob" and decision["pair"] == ["all:00001", "all:00003"]
    assert entries[3]["counts"]["records"] == 45 and entries[3]["decisions"]["match"] == 1
    text = (out / AUDIT_FILE).read_text()
    records = pd.read_parquet(out / "records.parquet")
    for value in [*records["first_name"].dropna().unique(), *records["last_name"].dropna().unique(), "1951"]:
        assert value.upper() not in text.upper()
    check = run_cli("audit", "verify", out)
    assert check.exit_code == 0 and "intact: 4 entries" in check.output


def test_an_edited_removed_or_reordered_entry_breaks_the_chain(linked, tmp_path):
    config, out = linked
    assert run_cli("link", config, "--out", out).exit_code == 0
    assert run_cli("link", config, "--out", out).exit_code == 0
    lines = (out / AUDIT_FILE).read_text().splitlines()
    edited = lines[1].replace('"records":45', '"records":44')
    for tampered in ([lines[0], edited, lines[2]], [lines[0], lines[2]], [lines[1], lines[0], lines[2]]):
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(out, copy)
        (copy / AUDIT_FILE).write_text("\n".join(tampered) + "\n")
        assert not verify(copy).intact
        result = run_cli("audit", "verify", copy)
        assert result.exit_code == 2 and "audit.jsonl is broken" in result.output


def test_a_decisions_store_changed_outside_residentview_is_found(linked, tmp_path):
    _, out = linked
    path = decisions_csv(tmp_path / "d.csv", [("all:00001", "all:00003", "match")])
    assert run_cli("review", "apply", out, path).exit_code == 0
    store = read_store(out)
    store.loc[0, "decision"] = "non-match"
    store.to_parquet(out / DECISIONS_FILE, index=False)
    check = verify(out)
    assert not check.intact and any("decisions.parquet" in p for p in check.problems)


# the model measured on the decisions, and the report ---------------------------------------------
def test_precision_and_recall_are_measured_on_the_decided_pairs_beside_the_models_estimate():
    from residentview.review.in_force import DecisionsInForce
    from residentview.review.measured import measure_on_decisions

    must = pd.DataFrame({"unique_id_l": range(0, 20, 2), "unique_id_r": range(1, 21, 2), "decision_id": range(10)})
    cannot = pd.DataFrame({"unique_id_l": range(100, 110), "unique_id_r": range(200, 210), "decision_id": range(10, 20)})
    # 8 of the 10 matches scored 0.99, 2 scored 0.5; 3 of the 10 non-matches scored 0.97, 7 were never scored.
    pairs = pd.concat([
        pd.DataFrame({"unique_id_l": must["unique_id_l"], "unique_id_r": must["unique_id_r"],
                      "match_probability": [0.99] * 8 + [0.5] * 2}),
        pd.DataFrame({"unique_id_l": cannot["unique_id_l"][:3], "unique_id_r": cannot["unique_id_r"][:3],
                      "match_probability": [0.97] * 3}),
    ])
    measured = measure_on_decisions(DecisionsInForce(must, cannot, empty_store(), 0, 0), pairs, 0.95)
    assert measured.precision == pytest.approx(8 / 11) and measured.recall == pytest.approx(8 / 10)
    assert measured.expected_precision == pytest.approx((8 * 0.99 + 3 * 0.97) / 11)
    assert measured.expected_recall == pytest.approx((8 * 0.99 + 3 * 0.97) / (8 * 0.99 + 3 * 0.97 + 1.0))
    assert measured.best_threshold == 0.98  # above the non-matches' 0.97, below the matches' 0.99
    assert measured.best_f1 == pytest.approx(2 * 1 * 0.8 / 1.8)


def test_the_report_shows_the_decisions_in_force_and_those_overruled(linked, tmp_path):
    _, out = linked
    path = decisions_csv(tmp_path / "d.csv", [("all:00001", "all:00003", "match"), ("all:00003", "all:00005", "match"),
                                              ("all:00001", "all:00005", "non-match")], {"reviewer": "carol"})
    assert run_cli("review", "apply", out, path).exit_code == 0
    assert run_cli("report", out).exit_code == 0
    html = (out / "report.html").read_text()
    section = html[html.index('id="decisions"'):]
    assert "Decisions that contradict later ones" in section
    assert "all:00001 / all:00003" in section and "carol" in section


def test_a_decision_keeps_its_place_when_its_record_leaves_the_sources(linked, tmp_path):
    config, out = linked
    path = decisions_csv(tmp_path / "d.csv", [("all:00001", "all:00003", "match")])
    assert run_cli("review", "apply", out, path).exit_code == 0
    register = config.parent / "register.csv"
    frame = pd.read_csv(register, dtype=str)
    frame[frame["Ref No"] != "00003"].to_csv(register, index=False)
    assert run_cli("link", config, "--out", out).exit_code == 0
    assert len(read_store(out)) == 1
    assert json.loads((out / "run.json").read_text())["decisions"]["inactive"] == 1


def test_residents_merged_or_split_by_a_decision_are_recorded_in_id_changes(linked, tmp_path):
    config, out = linked
    before = resident_of(out)
    path = decisions_csv(tmp_path / "d.csv", [("all:00000", "select:B0000", "non-match"),
                                              ("all:00001", "all:00003", "match")])
    assert run_cli("review", "apply", out, path).exit_code == 0
    assert run_cli("link", config, "--out", out).exit_code == 0
    changes = pd.read_parquet(out / "id_changes.parquet")
    latest_run = changes[changes["run_timestamp"] == changes["run_timestamp"].max()]
    residents = latest_run[latest_run["entity"] == "resident"]
    assert set(residents["change"]) >= {"merged", "split"}
    assert before["all:00000"] in set(residents.loc[residents["change"] == "split", "old_id"])


def test_a_file_that_repeats_a_decision_then_changes_it_imports_the_change(tmp_path):
    first = decisions_csv(tmp_path / "first.csv", [("a:1", "b:1", "match")])
    store = appended(empty_store(), read(first).rows)
    second = decisions_csv(tmp_path / "second.csv", [("a:1", "b:1", "match"), ("a:1", "b:1", "non-match")])
    assert read(second, store).rows["decision"].tolist() == ["non-match"]


def test_decisions_made_in_a_program_are_checked_and_stored_like_a_files(linked):
    from residentview.review.apply import record_decisions

    _, out = linked
    rows = pd.DataFrame({"source_l": ["all"], "record_id_l": ["00001"], "source_r": ["all"], "record_id_r": ["00003"],
                         "decision": ["match"], "note": [""]})
    applied = record_decisions(out, rows, origin="review page", reviewer="dana")
    assert len(applied.imported.rows) == 1
    store = read_store(out)
    assert store[["decision", "reviewer", "origin"]].values.tolist() == [["match", "dana", "review page"]]
    assert [e["event"] for e in audit_entries(out)][-2:] == ["decision", "review page"]
    with pytest.raises(DataError, match="unknown record all:99999"):
        record_decisions(out, rows.assign(record_id_r="99999"), origin="review page")

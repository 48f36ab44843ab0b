"""Retention (CONTRACT §10): a source's records whose record_date is older than its `retention`
are not used — they leave every output and history file, in `link` and in `update` — and the
audit log and run.json count them, per source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from helpers import readable_text
from residentview.cli import main
from residentview.config import load_config
from residentview.errors import ConfigError
from residentview.sources import read_sources

FIRST = ["John", "Mary", "Ahmed", "Sian", "Peter", "Zoe", "Wiktoria", "Chidi", "Aoife", "Ravi"]
LAST = ["Smith", "Jones", "Khan", "Patel", "Evans", "Brown", "Nowak", "Okafor", "Murphy", "Shah"]
EXPIRED = [f"BEN{i:03d}" for i in range(5)]  # benefit claims from 2012: past a 6-year retention
OLD_ROAD = "OLD ROAD"  # the addresses only the expired claims give


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def borough(tmp_path, write_config):
    """20 people on a register (dated 2025); 11 benefit claims of the first 11 of them: five from
    2012 at an old address of their own, five from 2024 at their register address, one undated.
    Returns a function giving the config path with or without retention on the claims."""
    people = [(FIRST[i % 10], LAST[(i * 3) % 10], f"{1 + i % 28:02d}/{1 + i % 12:02d}/{1950 + i}") for i in range(20)]
    pd.DataFrame({
        "ref": [f"REG{i:03d}" for i in range(20)],
        "forename": [p[0] for p in people], "surname": [p[1] for p in people], "dob": [p[2] for p in people],
        "address": [f"{i + 1} HIGH STREET, LEEDS" for i in range(20)],
        "postcode": [f"LS6 {i % 9 + 1}AB" for i in range(20)],
        "confirmed": ["2025-09-01"] * 20,
    }).to_csv(tmp_path / "register.csv", index=False)
    claims = range(11)
    pd.DataFrame({
        "claim": [f"BEN{i:03d}" for i in claims],
        "forename": [people[i][0] for i in claims], "surname": [people[i][1] for i in claims],
        "dob": [people[i][2] for i in claims],
        "address": [f"{90 + i} {OLD_ROAD}, BRADFORD" if i < 5 else f"{i + 1} HIGH STREET, LEEDS" for i in claims],
        "postcode": [f"BD{i + 1} 7ZZ" if i < 5 else f"LS6 {i % 9 + 1}AB" for i in claims],
        "claim_start": ["2012-03-01"] * 5 + ["2024-03-01"] * 5 + [""],
    }).to_csv(tmp_path / "benefits.csv", index=False)

    def config(retention: dict | None = {"years": 6}, name: str = "config.yaml") -> Path:
        fields = {"first_name": "forename", "last_name": "surname", "date_of_birth": "dob", "address": "address",
                  "postcode": "postcode"}
        benefits = {"path": "benefits.csv", "id": "claim", "fields": {**fields, "record_date": "claim_start"}}
        if retention is not None:
            benefits["retention"] = retention
        return write_config({"name": "borough", "sources": {
            "register": {"path": "register.csv", "id": "ref", "fields": {**fields, "record_date": "confirmed"}},
            "benefits": benefits,
        }}, name)

    return config


def expired_traces(folder: Path) -> dict[str, list[str]]:
    """Per file of `folder`, the expired claims' ids and old addresses found in it."""
    pattern = re.compile(rf"\b(?:{'|'.join(EXPIRED)})\b|{OLD_ROAD}|BD\d 7ZZ")
    return {name: sorted(set(pattern.findall(text))) for name, text in readable_text(folder).items()
            if pattern.search(text)}


def audit_entries(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "audit.jsonl").read_text(encoding="utf-8").splitlines()]


def test_reading_leaves_out_records_past_retention_and_keeps_undated_ones(borough):
    raw, summaries = read_sources(load_config(borough()), today=pd.Timestamp("2026-01-01"))
    benefits = raw[raw["source"] == "benefits"]
    assert sorted(benefits["record_id"]) == [f"BEN{i:03d}" for i in range(5, 11)]  # BEN010 has no date: kept
    summary = next(s for s in summaries if s.source == "benefits")
    assert (summary.n_records, summary.n_past_retention, summary.retention) == (6, 5, "6 years")


def test_retention_counts_back_from_the_run_date(borough):
    config = load_config(borough({"years": 14, "months": 1}))
    _, before = read_sources(config, today=pd.Timestamp("2026-03-31"))  # cutoff 2012-02-29: kept
    _, after = read_sources(config, today=pd.Timestamp("2026-04-02"))  # cutoff 2012-03-02: past
    assert [s.n_past_retention for s in before if s.source == "benefits"] == [0]
    assert [s.n_past_retention for s in after if s.source == "benefits"] == [5]


def test_a_link_with_retention_never_uses_the_old_records(borough, tmp_path):
    out = tmp_path / "out"
    assert run("--quiet", "link", borough(), "--out", out).exit_code == 0
    assert expired_traces(out) == {}
    links = pd.read_parquet(out / "resident_links.parquet")
    assert len(links) == 20 + 6
    run_info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    counts = {"benefits": {"retention": "6 years", "records_past_retention": 5}}
    assert run_info["retention"] == counts and run_info["sources"]["benefits"] == 6
    assert audit_entries(out)[-1]["retention"] == counts
    report = (out / "report.html").read_text(encoding="utf-8")
    section = report[report.index('<section id="data-protection">'):]
    section = section[:section.index("</section>")]
    assert "6 years" in section and "unclassified" not in section  # every column of a real run is known


@pytest.mark.parametrize("command", ["update", "link"])
def test_records_passing_their_retention_leave_every_output_and_the_history(borough, tmp_path, command):
    out = tmp_path / "out"
    assert run("--quiet", "link", borough(retention=None), "--out", out).exit_code == 0
    # Without retention the old claims are linked to their people, and their address is history.
    before = pd.read_parquet(out / "addresses.parquet")
    old = before[before["address"].str.contains(OLD_ROAD)]
    assert len(old) == 5 and not old["current"].any()
    links = pd.read_parquet(out / "resident_links.parquet")
    assert set(links.loc[links["source"] == "register", "resident_id"]) >= set(old["resident_id"])
    assert expired_traces(out)

    assert run("--quiet", command, borough(), "--out", out).exit_code == 0
    # Nowhere: not in the outputs, the database, the review queue, the events, the audit log, nor
    # the earlier run's report kept under runs/ (gone; its run.json, counts only, stays).
    assert expired_traces(out) == {}
    assert len(list(out.glob("runs/*/run.json"))) == 2 and len(list(out.glob("runs/*/report.html"))) == 1
    after = pd.read_parquet(out / "addresses.parquet")
    assert not after["address"].str.contains(OLD_ROAD).any()
    # The people themselves stay, with the address their kept records give.
    assert set(old["resident_id"]) <= set(after["resident_id"])
    assert len(pd.read_parquet(out / "resident_links.parquet")) == 26
    entry = audit_entries(out)[-1]
    assert entry["event"] == command
    assert entry["retention"] == {"benefits": {"retention": "6 years", "records_past_retention": 5}}
    if command == "update":
        update = json.loads((out / "run.json").read_text(encoding="utf-8"))["diagnostics"]["update"]
        assert update["by_source"]["benefits"]["removed"] == 5


def test_decisions_on_records_past_retention_stay_in_the_store(borough, tmp_path):
    out = tmp_path / "out"
    assert run("--quiet", "link", borough(retention=None), "--out", out).exit_code == 0
    decisions = tmp_path / "decisions.csv"
    pd.DataFrame({"source_l": ["benefits"], "record_id_l": ["BEN000"], "source_r": ["register"],
                  "record_id_r": ["REG000"], "decision": ["match"]}).to_csv(decisions, index=False)
    assert run("--quiet", "review", "apply", out, decisions).exit_code == 0
    assert run("--quiet", "update", borough(), "--out", out).exit_code == 0
    store = pd.read_parquet(out / "decisions.parquet")
    assert store[["record_id_l", "record_id_r", "decision"]].values.tolist() == [["BEN000", "REG000", "match"]]
    assert "BEN000" not in (out / "review_queue.csv").read_text(encoding="utf-8")
    assert run("audit", "verify", out).exit_code == 0


def test_validate_counts_the_records_past_retention(borough):
    result = run("validate", borough())
    assert result.exit_code == 0
    assert "benefits: 6 records" in result.output and "5 past the retention of 6 years, left out" in result.output


@pytest.mark.parametrize("retention, expected", [
    ({"years": 0}, "sources.benefits.retention.years: found 0, expected a number greater than 0"),
    ({"months": -3}, "sources.benefits.retention.months: found -3, expected a number greater than 0"),
    ({}, "expected years, months or both"),
    ({"yeras": 6}, "unknown key 'yeras' (did you mean 'years'?)"),
    (6, "sources.benefits.retention: found 6, expected a mapping (e.g. {years: 6})"),
])
def test_a_bad_retention_is_a_one_line_config_error(borough, retention, expected):
    with pytest.raises(ConfigError) as caught:
        load_config(borough(retention))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_retention_needs_a_record_date(tmp_path, write_config):
    pd.DataFrame({"ref": ["1"], "name": ["A"]}).to_csv(tmp_path / "a.csv", index=False)
    path = write_config({"name": "x", "sources": {"a": {"path": "a.csv", "id": "ref", "fields": {"last_name": "name"},
                                                         "retention": {"years": 2}}}})
    with pytest.raises(ConfigError, match="retention needs the record_date field mapped"):
        load_config(path)


def test_every_record_past_retention_is_a_one_line_data_error(tmp_path, write_config):
    pd.DataFrame({"ref": ["1", "2"], "name": ["A", "B"], "seen": ["2001-01-01", "2002-02-02"]}).to_csv(
        tmp_path / "a.csv", index=False)
    config = write_config({"name": "x", "sources": {"a": {
        "path": "a.csv", "id": "ref", "fields": {"last_name": "name", "record_date": "seen"}, "retention": {"years": 2}}}})
    result = run("link", config, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "every record is past its source's retention" in result.output
    assert not (tmp_path / "out").exists()

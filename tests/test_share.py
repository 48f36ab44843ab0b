"""`residentview share` (CONTRACT §8): a pseudonymised copy of the resident view for one
recipient — ids keyed by the recipient's key (stable under one key, unlinkable across keys),
direct identifiers left out, quasi-identifiers generalised, the key written nowhere."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import readable_text, snapshot
from residentview.cli import main
from residentview.keys import fingerprint
from residentview.share import SHARED, pseudonyms


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def key_file(folder: Path, name: str, key: str | None = None, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(key or secrets.token_hex(32), encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def council(tmp_path_factory):
    """A synthetic borough linked into a folder, and its records as read (the values that must
    not leave)."""
    from residentview.synthetic import generate

    base = tmp_path_factory.mktemp("share")
    written = generate(people=150, out=base / "data", seed=11)
    out = base / "out"
    assert run("--quiet", "link", written.config_path, "--out", out).exit_code == 0
    return out


@pytest.fixture
def keys(tmp_path):
    return key_file(tmp_path, "partner_a.key"), key_file(tmp_path, "partner_b.key")


def share(council: Path, key: Path, out: Path, recipient: str = "Partner A"):
    return run("--quiet", "share", council, "--recipient", recipient, "--key-file", key, "--out", out)


def test_the_share_holds_only_the_allow_listed_columns_and_a_note(council, keys, tmp_path):
    out = tmp_path / "shared"
    assert share(council, keys[0], out).exit_code == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([*(name for name in SHARED if (council / name).exists()), "SHARING_NOTE.md"])
    for name, allowed in SHARED.items():
        if (out / name).exists():
            assert pq.read_schema(out / name).names == [c.name for c in allowed]
    residents = pd.read_parquet(out / "residents.parquet")
    assert len(residents) == len(pd.read_parquet(council / "residents.parquet"))
    assert set(residents["age_band"]) <= {*(f"{a}-{a + 4}" for a in range(0, 85, 5)), "85+", "unknown"}
    assert residents["postcode_district"].str.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?|unknown").all()
    assert set(residents["household_size"]) <= {"1", "2", "3", "4", "5", "6+", "unknown"}
    assert residents["resident_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    note = (out / "SHARING_NOTE.md").read_text(encoding="utf-8")
    assert "Partner A" in note and fingerprint(keys[0].read_bytes().strip()) in note
    assert "`first_name`" in note  # named among what was left out


def test_nothing_identifying_from_the_run_reaches_the_share(council, keys, tmp_path):
    out = tmp_path / "shared"
    assert share(council, keys[0], out).exit_code == 0
    records = pd.read_parquet(council / "records.parquet")
    links = pd.read_parquet(council / "resident_links.parquet")
    addresses = pd.read_parquet(council / "addresses.parquet")
    forbidden = set()
    for column in ("first_name", "last_name", "address", "postcode", "nhs_number", "ni_number", "phone", "email",
                   "uprn", "id_upn", "record_id"):
        if column in records:
            forbidden |= {str(v) for v in records[column].dropna() if len(str(v)) >= 4}
    forbidden |= {d.strftime("%Y-%m-%d") for d in records["date_of_birth"].dropna()}
    forbidden |= set(links["resident_id"]) | set(links["household_id"].dropna()) | set(addresses["address_id"])
    assert len(forbidden) > 500
    pattern = re.compile("|".join(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])"
                                  for v in sorted(forbidden, key=len, reverse=True)))
    texts = readable_text(out)
    texts |= {f"{name} (bytes)": (out / name).read_bytes().decode("latin-1") for name in texts}
    found = {name: sorted(set(pattern.findall(text)))[:5] for name, text in texts.items() if pattern.search(text)}
    assert found == {}


def test_the_same_key_gives_the_same_pseudonyms_and_another_key_others(council, keys, tmp_path):
    assert share(council, keys[0], tmp_path / "a1").exit_code == 0
    assert share(council, keys[0], tmp_path / "a2").exit_code == 0
    assert share(council, keys[1], tmp_path / "b", recipient="Partner B").exit_code == 0
    a1, a2, b = (pd.read_parquet(tmp_path / d / "resident_links.parquet") for d in ("a1", "a2", "b"))
    pd.testing.assert_frame_equal(a1, a2)
    for column in ("record_id", "resident_id", "household_id"):
        assert not set(a1[column].dropna()) & set(b[column].dropna())
    # The same structure under both keys: pseudonyms, not a different grouping.
    assert a1.groupby("resident_id").size().sort_values().tolist() == b.groupby("resident_id").size().sort_values().tolist()
    # One resident, one pseudonym across files.
    residents = pd.read_parquet(tmp_path / "a1" / "residents.parquet")
    assert set(a1["resident_id"]) == set(residents["resident_id"])


def test_the_key_is_written_nowhere_and_the_audit_log_records_the_share(council, keys, tmp_path):
    out = tmp_path / "shared"
    before = (council / "audit.jsonl").read_bytes()
    assert share(council, keys[0], out).exit_code == 0
    key = keys[0].read_text(encoding="utf-8").strip()
    for folder in (out, council):
        assert [p for p in folder.rglob("*") if p.is_file() and key.encode() in p.read_bytes()] == []
        assert [name for name, text in readable_text(folder).items() if key in text] == []
    entry = json.loads((council / "audit.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (council / "audit.jsonl").read_bytes().startswith(before)
    assert entry["event"] == "share" and entry["recipient"] == "Partner A"
    assert entry["key_fingerprint"] == fingerprint(key.encode())
    assert entry["files"]["residents.parquet"]["rows"] == len(pd.read_parquet(out / "residents.parquet"))
    assert run("audit", "verify", council).exit_code == 0


@pytest.mark.parametrize("problem, expected", [
    ("open", "can be read or changed by others"),
    ("short", "use at least 16 random bytes"),
    ("missing", "key file not found"),
    ("in_run_json", "the key also appears in the config"),
])
def test_a_bad_key_file_is_refused_in_one_line_and_nothing_is_written(council, tmp_path, problem, expected):
    if problem == "open":
        key = key_file(tmp_path, "k", mode=0o644)
    elif problem == "short":
        key = key_file(tmp_path, "k", key="tooshort")
    elif problem == "missing":
        key = tmp_path / "nothing.key"
    else:  # a key that a config (here the run's own record of it) already holds
        key = key_file(tmp_path, "k", key=json.loads((council / "run.json").read_text())["kind"] * 4 + "-secretish")
        copy = tmp_path / "run_copy"
        import shutil
        shutil.copytree(council, copy)
        info = json.loads((copy / "run.json").read_text())
        info["name"] = key.read_text()
        (copy / "run.json").write_text(json.dumps(info))
        council = copy
    before = snapshot(council)
    result = run("share", council, "--recipient", "Partner A", "--key-file", key, "--out", tmp_path / "shared")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "shared").exists()
    assert snapshot(council) == before


def test_no_run_and_an_out_inside_the_run_are_refused(council, keys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = share(empty, keys[0], tmp_path / "shared")
    assert result.exit_code == 2 and "no run here" in result.output
    for out in (council, council / "for_partner"):
        result = share(council, keys[0], out)
        assert result.exit_code == 2 and "inside it" in result.output
    assert not (council / "for_partner").exists()
    result = run("share", council, "--recipient", "  ", "--key-file", keys[0], "--out", tmp_path / "s")
    assert result.exit_code == 2 and "recipient" in result.output


def test_a_column_added_to_the_run_later_is_not_shared(council, keys, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(council, copy)
    residents = pd.read_parquet(copy / "residents.parquet")
    residents["mothers_maiden_name"] = "SECRETNAME"
    residents.to_parquet(copy / "residents.parquet", index=False)
    out = tmp_path / "shared"
    assert share(copy, keys[0], out).exit_code == 0
    assert "mothers_maiden_name" not in pq.read_schema(out / "residents.parquet").names
    assert not any("SECRETNAME" in text for text in readable_text(out).values())
    assert "`mothers_maiden_name`" in (out / "SHARING_NOTE.md").read_text(encoding="utf-8")  # listed as left out


def test_a_birthday_event_shares_only_its_year(tmp_path, keys):
    from residentview.share import _Context, _event_date

    events = pd.DataFrame({"event": ["turned_18", "moved"],
                           "event_date": pd.to_datetime(["2026-02-24", "2025-11-07"])})
    shared = _event_date(events, _Context(b"k" * 16, None, {}))
    assert shared.tolist() == ["2026", "2025-11"]


@settings(max_examples=50)
@given(values=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30),
       key=st.binary(min_size=16, max_size=40))
def test_property_pseudonyms_are_stable_and_injective(values, key):
    series = pd.Series(values, dtype=object)
    first = pseudonyms(key, series, "resident_id")
    assert first.tolist() == pseudonyms(key, series.copy(), "resident_id").tolist()  # stable
    # one pseudonym per distinct value, and distinct values get distinct pseudonyms
    mapping = dict(zip(values, first))
    assert len(set(mapping.values())) == len(set(values))
    assert all(first[i] == mapping[v] for i, v in enumerate(values))
    # another purpose, another pseudonym: a record id equal to a resident id is not linked to it
    assert not set(pseudonyms(key, series, "record")) & set(first)

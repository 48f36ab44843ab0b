"""`residentview explain OUTDIR KEY` (CONTRACT §5): why a resident's records are together, why
records that scored as one person with them are not, and the reviewers' decisions on them —
without a data value unless --show-values."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from residentview.cli import main
from residentview.cluster import _Person
from residentview.demo import run_demo
from residentview.review.explain import (CONFLICT_RULES, RunFolder, conflict_rule, explain, render,
                                         resolve_key)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo run of about 3,000 records: (its output folder, its config)."""
    _, folder, config = run_demo(tmp_path_factory.mktemp("explain") / "demo", records=3000, progress=False)
    return folder, config


@pytest.fixture(scope="module")
def outdir(demo):
    return demo[0]


@pytest.fixture(scope="module")
def records(outdir):
    """Every record with its resident (and the values --show-values may print)."""
    recs = pd.read_parquet(outdir / "records.parquet",
                           columns=["unique_id", "source", "record_id", "first_name", "last_name", "postcode"])
    links = pd.read_parquet(outdir / "resident_links.parquet", columns=["source", "record_id", "resident_id"])
    recs = recs.merge(links, on=["source", "record_id"])
    return recs.assign(key=recs["source"] + ":" + recs["record_id"])


@pytest.fixture(scope="module")
def big_resident(records) -> str:
    """A resident of three records or more."""
    sizes = records["resident_id"].value_counts()
    return sizes.index[sizes >= 3][0]


@pytest.fixture(scope="module")
def explained(outdir, big_resident):
    return explain(outdir, big_resident, limit=None)


def pair_blocks(text: str) -> list[tuple[float, list[float], float]]:
    """Each pair of the plain-text output: (its match weight, the weights of its steps, the
    weight its final row gives)."""
    blocks, current = [], None
    for line in text.splitlines():
        heading = re.match(r"  \S+ ~ \S+.*: match weight (-?[\d.]+), probability", line)
        if heading:
            current = (float(heading.group(1)), [])
            continue
        if current is None:
            continue
        step = re.match(r"    (?!step )(\S+) .* ([+-][\d.]+) +(-?[\d.]+)$", line)
        final = re.match(r"    final +match weight +(-?[\d.]+) +(-?[\d.]+)$", line)
        if final:
            blocks.append((current[0], current[1], float(final.group(1))))
            current = None
        elif step:
            current[1].append(float(step.group(2)))
    return blocks


# What a resident is made of ------------------------------------------------------------------

def test_pairs_among_a_residents_records_show_what_each_comparison_added(outdir, big_resident, records):
    result = run("explain", outdir, big_resident)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith(f"resident {big_resident}: ")
    for key in records.loc[records["resident_id"] == big_resident, "key"]:
        assert f"  {key} " in text
    blocks = pair_blocks(text)
    assert len(blocks) >= 2  # three records: at least two pairs hold them together
    for match_weight, steps, final in blocks:
        assert len(steps) >= 3  # the prior and at least two comparisons
        assert sum(steps) == pytest.approx(match_weight, abs=0.01 * len(steps))
        assert final == pytest.approx(match_weight, abs=0.005)
    assert "prior" in text and "Exact match" in text


def test_the_steps_of_every_pair_add_up_to_its_match_weight(outdir, explained, big_resident, records):
    pairs = pd.read_parquet(outdir / "pairs.parquet")
    mine = set(records.loc[records["resident_id"] == big_resident, "unique_id"])
    among = pairs[pairs["unique_id_l"].isin(mine) & pairs["unique_id_r"].isin(mine)]
    assert explained.n_pairs == len(among) == len(explained.pairs)
    for pair in explained.pairs:
        assert pair.steps[0].name == "prior"
        assert sum(s.weight for s in pair.steps) == pytest.approx(pair.match_weight, abs=1e-4)
    weights = sorted(among["match_weight"].round(6), reverse=True)
    assert [round(p.match_weight, 6) for p in explained.pairs] == weights  # strongest first


def test_only_the_strongest_pairs_are_shown_unless_all(explained, outdir, big_resident):
    shortened = explain(outdir, big_resident, limit=1)
    assert len(shortened.pairs) == 1 and shortened.n_pairs == explained.n_pairs > 1
    assert shortened.pairs[0].match_weight == max(p.match_weight for p in explained.pairs)
    assert f"the strongest 1 of {explained.n_pairs}; --all for every one" in "\n".join(render(shortened))


def test_on_a_terminal_the_waterfall_is_drawn_as_bars(explained):
    lines = render(explained, bars=True)
    drawn = [line for line in lines if "█" in line]
    assert len(drawn) >= sum(len([s for s in p.steps if not s.no_data]) + 1 for p in explained.pairs)
    assert not any(line.lstrip().startswith("step ") for line in lines)  # no table header


def test_a_record_key_resolves_to_its_resident(outdir, big_resident, records):
    key = records.loc[records["resident_id"] == big_resident, "key"].iloc[-1]
    result = run("explain", outdir, key)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"resident {big_resident}: ")
    assert f"({key} is one of its records)" in result.stdout


def test_a_record_id_holding_a_colon_is_split_at_the_first_colon_only():
    records = pd.DataFrame({"unique_id": [0, 1], "source": ["housing", "housing:old"], "record_id": ["HB:7", "7"],
                            "resident_id": ["RAAA", "RBBB"], "membership": [1.0, 1.0]})
    records["key"] = records["source"] + ":" + records["record_id"]
    folder = RunFolder(folder=None, records=records, pair_columns=[], run={}, model=None, record_columns=[])
    assert resolve_key(folder, "housing:HB:7") == ("RAAA", "housing:HB:7", None)
    assert resolve_key(folder, "RBBB") == ("RBBB", None, None)


def test_values_are_printed_only_with_show_values(outdir, big_resident, records):
    mine = records[records["resident_id"] == big_resident]
    values = {v for column in ("first_name", "last_name", "postcode") for v in mine[column].dropna() if len(v) >= 4}
    assert values
    plain = run("explain", outdir, big_resident)
    shown = run("explain", outdir, big_resident, "--show-values")
    assert plain.exit_code == shown.exit_code == 0
    assert not [v for v in values if v in plain.stdout]
    assert all(v in shown.stdout for v in values)


# Pairs clustering refused --------------------------------------------------------------------

def test_a_refused_pair_names_the_rule_that_refused_it(outdir, records):
    pairs = pd.read_parquet(outdir / "pairs.parquet", columns=["unique_id_l", "unique_id_r", "match_probability"])
    resident = records.set_index("unique_id")["resident_id"]
    strong = pairs[pairs["match_probability"] >= 0.95]
    apart = strong[resident.reindex(strong["unique_id_l"]).to_numpy() != resident.reindex(strong["unique_id_r"]).to_numpy()]
    assert len(apart)  # households in the demo: parents and children scored as one person
    mine, theirs = int(apart["unique_id_l"].iloc[0]), int(apart["unique_id_r"].iloc[0])
    explanation = explain(outdir, resident[mine], limit=None)
    key = records.set_index("unique_id")["key"]
    refused = {(p.left, p.right): p for p in explanation.refused}
    pair = refused[(key[mine], key[theirs])]
    assert pair.other_resident == resident[theirs]
    rules = [label for label, _ in CONFLICT_RULES]
    assert any(pair.refused_by.startswith(r) for r in rules) or "first names" in pair.refused_by, pair.refused_by
    assert sum(s.weight for s in pair.steps) == pytest.approx(pair.match_weight, abs=1e-4)


def person(**evidence) -> _Person:
    blank = dict(nhs=None, nino=None, dob=None, first="JOHN", last="SMITH", aliases=frozenset({"JOHN"}),
                 middle=frozenset(), ids=frozenset())
    return _Person(**{**blank, **evidence})


def test_conflict_rule_names_the_rule_of_cannot_link_that_fires():
    assert conflict_rule(person(nhs="4857773456"), person(nhs="9434765919"), False, False) == "different NHS numbers"
    father, son = person(dob=pd.Timestamp("1961-03-04")), person(dob=pd.Timestamp("1990-07-08"))
    assert conflict_rule(father, son, False, False) == "dates of birth that no typo explains"
    assert conflict_rule(father, person(dob=pd.Timestamp("1961-04-03")), False, False) is None  # a typo


# Reviewers' decisions ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def decided(demo, records, tmp_path_factory):
    """A copy of the demo run where a reviewer said the strongest pair of a resident of three
    records is two people, linked again: (folder, the two record keys, what explain said of the
    decision before the second run)."""
    folder, config = demo
    pairs = pd.read_parquet(folder / "pairs.parquet", columns=["unique_id_l", "unique_id_r", "match_weight"])
    resident, key = records.set_index("unique_id")["resident_id"], records.set_index("unique_id")["key"]
    sizes = records["resident_id"].value_counts()
    same = resident.reindex(pairs["unique_id_l"]).to_numpy() == resident.reindex(pairs["unique_id_r"]).to_numpy()
    of_three = sizes.reindex(resident.reindex(pairs["unique_id_l"])).to_numpy() == 3
    strongest = pairs[same & of_three].sort_values("match_weight", ascending=False).iloc[0]
    left, right = key[int(strongest["unique_id_l"])], key[int(strongest["unique_id_r"])]

    copy = tmp_path_factory.mktemp("decided") / "output"
    shutil.copytree(folder, copy)
    decisions = copy.parent / "decisions.csv"
    (source_l, record_l), (source_r, record_r) = left.split(":", 1), right.split(":", 1)
    pd.DataFrame([{"source_l": source_l, "record_id_l": record_l, "source_r": source_r, "record_id_r": record_r,
                   "decision": "Non-match", "reviewer": "alice", "note": "NOTE FROM THE CASE FILE"}]).to_csv(decisions, index=False)
    assert run("review", "apply", copy, decisions).exit_code == 0
    before = run("explain", copy, left).stdout
    assert run("link", config, "--out", copy).exit_code == 0
    return copy, left, right, before


def test_a_decision_made_after_the_run_takes_effect_at_the_next(decided):
    _, left, right, before = decided
    assert f"non-match {min(left, right)} / {max(left, right)}" in before
    assert "takes effect at the next `residentview link`" in before


@pytest.mark.parametrize("side", [1, 2])
def test_a_non_match_decision_is_shown_for_both_records(decided, side):
    folder, left, right, _ = decided
    mine, other = (left, right) if side == 1 else (right, left)
    result = run("explain", folder, mine)
    assert result.exit_code == 0, result.output
    text = result.stdout
    decision = [line for line in text.splitlines() if line.startswith("  non-match ")]
    assert len(decision) == 1
    assert f"{min(left, right)} / {max(left, right)}" in decision[0]
    assert "by alice" in decision[0] and "honoured by this run" in decision[0]
    # the pair now joins two residents: refused, and why
    heading = next(i for i, line in enumerate(text.splitlines()) if line.startswith(f"  {mine} ~ {other} (resident "))
    assert text.splitlines()[heading + 1] == "    refused: a reviewer's non-match decision on this pair (decision 1)"
    assert "NOTE FROM THE CASE FILE" not in text
    assert "NOTE FROM THE CASE FILE" in run("explain", folder, mine, "--show-values").stdout


# Errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["RNOSUCHRESIDENT", "council_tax:NO-SUCH-RECORD", "no_such_source:1"])
def test_an_unknown_key_is_one_line_exit_2(outdir, key):
    line = assert_one_line_error(run("explain", outdir, key))
    assert line.startswith("error: ") and key in line


def test_a_folder_that_is_not_a_run_is_one_line_exit_2(demo):
    folder, config = demo
    line = assert_one_line_error(run("explain", config.parent, "RNOSUCHRESIDENT"))
    assert "not a residentview output folder" in line

"""The benchmark harness: metrics computed by hand on a tiny example, and the whole harness run end to
end on a tiny synthetic dataset with all three systems. (Benchmarks are not timed tests.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from datasets import synthetic_records  # noqa: E402
from metrics import bcubed_scores, evaluate, pairwise_scores  # noqa: E402
from run import TABLE_COLUMNS, run_benchmarks  # noqa: E402

# Five records of two people; the system splits person A and merges A's third record into B:
#   truth:     A = r1 r2 r3      B = r4 r5
#   predicted: X = r1 r2         Y = r3 r4 r5
PERSON = pd.Series(["A", "A", "A", "B", "B"])
CLUSTER = pd.Series(["X", "X", "Y", "Y", "Y"])


def test_pairwise_scores_count_shared_pairs():
    # true positive pairs: (r1,r2), (r4,r5) = 2; predicted pairs 1 + 3 = 4; true pairs 3 + 1 = 4
    assert pairwise_scores(CLUSTER, PERSON) == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})


def test_bcubed_scores_average_over_records():
    # precision per record: 1, 1, 1/3, 2/3, 2/3; recall per record: 2/3, 2/3, 1/3, 1, 1
    expected = 11 / 15
    assert bcubed_scores(CLUSTER, PERSON) == pytest.approx({"precision": expected, "recall": expected, "f1": expected})


def test_perfect_clustering_scores_one_and_all_singletons_recall_nothing():
    assert pairwise_scores(PERSON, PERSON) == pytest.approx({"precision": 1, "recall": 1, "f1": 1})
    singletons = pd.Series(["1", "2", "3", "4", "5"])
    scores = pairwise_scores(singletons, PERSON)
    assert scores["recall"] == 0 and scores["f1"] == 0
    assert bcubed_scores(singletons, PERSON)["precision"] == 1


def test_a_record_the_system_dropped_counts_as_its_own_resident():
    truth = pd.DataFrame({"source": "s", "record_id": ["1", "2"], "person_id": ["A", "A"]})
    predicted = pd.DataFrame({"source": ["s"], "record_id": ["1"], "cluster": ["X"]})
    scores = evaluate(predicted, truth)
    assert scores["residents_found"] == 2 and scores["unassigned_records"] == 1
    assert scores["pairwise_recall"] == 0


def test_synthetic_dataset_names_give_record_counts():
    assert synthetic_records("synthetic-10k") == 10_000
    assert synthetic_records("synthetic-1m") == 1_000_000
    assert synthetic_records("synthetic-420") == 420
    assert synthetic_records("febrl3") is None
    assert synthetic_records("synthetic-20k-noisy") == 20_000
    assert synthetic_records("synthetic-20k-loud") is None


def test_the_noisy_datasets_are_another_draw_with_more_of_every_error(tmp_path):
    from datasets import noisy_rates, prepare

    from residentview.synthetic.noise import NoiseRates

    default, noisy = NoiseRates(), noisy_rates()
    assert noisy.typo == 2 * default.typo and noisy.moved > default.moved and noisy.twins > default.twins
    plain = pd.read_parquet(prepare("synthetic-420", tmp_path) / "truth.parquet")
    loud = pd.read_parquet(prepare("synthetic-420-noisy", tmp_path) / "truth.parquet")
    assert not plain.equals(loud)


def test_a_dataset_can_be_cut_to_some_of_its_sources(tmp_path):
    from datasets import prepare

    import residentview as rv

    folder = prepare("synthetic-420:council_tax+school_census", tmp_path)
    truth = pd.read_parquet(folder / "truth.parquet")
    assert set(truth["source"]) == {"council_tax", "school_census"}
    result = rv.link(folder / "config.yaml", progress=False)
    assert set(result.links["source"]) == {"council_tax", "school_census"}
    assert len(result.links) == len(truth)
    with pytest.raises(SystemExit, match="no source"):
        prepare("synthetic-420:council_tax+payroll", tmp_path)


def test_harness_runs_all_three_systems_and_writes_one_table(tmp_path):
    rows = run_benchmarks(["synthetic-420"], out=tmp_path / "results", data=tmp_path / "data", echo=lambda *_: None)
    assert [row["system"] for row in rows] == ["residentview", "splink", "recordlinkage"]
    for row in rows:
        assert row["status"] == "ok", row["status"]
        assert 0 <= row["pairwise_f1"] <= 1 and 0 <= row["bcubed_f1"] <= 1
        assert row["peak_memory_mb"] > 0 and row["wall_seconds"] > 0
        assert row["records"] == rows[0]["records"]
    table = (tmp_path / "results" / "latest.md").read_text()
    assert table.splitlines()[0] == "| " + " | ".join(TABLE_COLUMNS.values()) + " |"
    assert len(table.splitlines()) == 2 + 3


def test_ceiling_bounds_what_any_matcher_could_join(tmp_path):
    from ceiling import ceiling

    scores = ceiling("synthetic-420", data=tmp_path / "data")
    assert scores["ceiling"]["precision"] == 1.0
    # residentview joins records only through scored pairs, so (short of reaching one person's
    # records through another person's) it recalls no more than joining every true scored pair.
    assert scores["residentview"]["recall"] <= scores["ceiling"]["recall"] + 1e-9
    assert scores["counts"]["true_pairs"] > 0


def test_the_hostile_datasets_are_the_noisy_catalogue_plus_heavy_damage(tmp_path):
    from dataclasses import fields

    from datasets import HOSTILE_SEED, NOISY_SEED, hostile_rates, is_hostile, is_noisy, noisy_rates, prepare

    from residentview.config import load_config
    from residentview.sources import read_sources

    assert synthetic_records("synthetic-2k-hostile") == 2_000
    assert is_hostile("synthetic-2k-hostile") and not is_noisy("synthetic-2k-hostile")
    assert is_noisy("synthetic-2k-noisy") and not is_hostile("synthetic-2k-noisy")
    assert HOSTILE_SEED != NOISY_SEED
    noisy, hostile = noisy_rates(), hostile_rates()
    changed = {f.name for f in fields(hostile) if getattr(hostile, f.name) != getattr(noisy, f.name)}
    assert changed == {"heavy_typo", "name_truncated", "name_fragment", "house_number_error", "town_typo",
                       "postcode_blank", "postcode_cut", "dob_withheld"}
    assert all(getattr(noisy, name) == 0 for name in changed)

    folder = prepare("synthetic-2k-hostile", tmp_path)
    truth = pd.read_parquet(folder / "truth.parquet")
    frame, _ = read_sources(load_config(folder / "config.yaml"))
    merged = frame[["source", "record_id"]].merge(truth, on=["source", "record_id"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and len(truth) == len(frame)
    assert 1_500 < len(truth) < 2_500
    has_dob = frame.groupby("source")["date_of_birth"].apply(lambda s: s.notna().mean())
    assert has_dob["housing_benefit"] == 0 and has_dob["adult_social_care"] == 0 and has_dob["school_census"] > 0.9


def test_simple_dataset_is_one_source_of_six_fields_with_every_record_in_the_truth(tmp_path):
    from datasets import prepare
    from simple import simple_records

    import residentview as rv

    assert simple_records("simple-10k") == 10_000 and simple_records("simple-1m") == 1_000_000
    assert simple_records("simple-420") == 420 and simple_records("synthetic-10k") is None
    folder = prepare("simple-600", tmp_path)
    people = pd.read_csv(folder / "people.csv", dtype=str)
    assert list(people.columns) == ["id", "first_name", "surname", "dob", "house_number", "street", "postcode"]
    assert 450 <= len(people) <= 750
    assert people["dob"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    config = rv.load_config(folder / "config.yaml")
    assert list(config.sources) == ["people"]
    assert set(config.sources["people"].fields.mapped()) == {"first_name", "last_name", "date_of_birth", "address", "postcode"}
    truth = pd.read_parquet(folder / "truth.parquet")
    assert set(truth["source"]) == {"people"}
    assert sorted(truth["record_id"]) == sorted(people["id"]) and not truth["record_id"].duplicated().any()
    sizes = truth.groupby("person_id").size()
    assert sizes.between(1, 3).all() and (sizes > 1).any()  # duplicates within the one file


def test_simple_dataset_is_the_same_every_time(tmp_path):
    from datasets import prepare

    first, second = prepare("simple-300", tmp_path / "a"), prepare("simple-300", tmp_path / "b")
    assert (first / "people.csv").read_bytes() == (second / "people.csv").read_bytes()
    assert pd.read_parquet(first / "truth.parquet").equals(pd.read_parquet(second / "truth.parquet"))


def test_the_lean_splink_baseline_runs_when_asked_for(tmp_path):
    from run import OPTIONAL_SYSTEMS, SYSTEM_NAMES

    assert "splink-lean" in OPTIONAL_SYSTEMS and "splink-lean" not in SYSTEM_NAMES  # not in the default set
    rows = run_benchmarks(["simple-2k"], systems=["splink-lean"], out=tmp_path / "results",
                          data=tmp_path / "data", echo=lambda *_: None)
    assert rows[0]["status"] == "ok", rows[0]["status"]
    assert rows[0]["pairwise_f1"] > 0.8

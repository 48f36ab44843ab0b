"""publish (CONTRACT §8): counts of residents by source, age band, sex, postcode district and
household size, safe to publish — no count from 1 to N-1, and none that can be worked out from
the cells and totals that are published."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from residentview.cli import main
from residentview.errors import DataError
from residentview.publish import (
    COUNT_COLUMN, SUPPRESSED, TOTAL, Dimension, categorise, count_table, publish, publish_table,
)

RUN_DATE = "2026-12-03T06:37:13+00:00"


def write_run(folder, residents: pd.DataFrame, run: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    residents.to_parquet(folder / "residents.parquet")
    (folder / "run.json").write_text(json.dumps({"run_timestamp": RUN_DATE} if run is None else run))
    return folder


def residents(n: int, **columns) -> pd.DataFrame:
    """n residents; each column a value for all or a list of n values."""
    frame = pd.DataFrame({"resident_id": [f"R{i:05d}" for i in range(n)]})
    defaults = {"date_of_birth": pd.Timestamp("1980-06-01"), "sex": "F", "postcode": "LS6 8EB",
                "household_id": None, "sources": [["council_tax"]] * n, "is_person": True, "is_deceased": False}
    for column, value in {**defaults, **columns}.items():
        frame[column] = value if isinstance(value, list) else [value] * n
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
    return frame


def cell(frame: pd.DataFrame, **where) -> str:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        mask &= (frame[column] == value).to_numpy()
    assert mask.sum() == 1, where
    return frame.loc[mask, COUNT_COLUMN].item()


# One label per resident --------------------------------------------------------------------------

def test_age_band_is_the_age_in_completed_years_at_the_runs_date():
    people = residents(6, date_of_birth=["2001-12-03", "2001-12-04", "1941-12-03", "2027-01-01", None, "2024-01-01"])
    labels, (dimension,) = categorise(people, ["age_band"], pd.Timestamp("2026-12-03"))
    assert list(labels["age_band"]) == ["25-29", "20-24", "85+", "unknown", "unknown", "0-4"]
    assert dimension.categories[:2] == ("0-4", "5-9") and dimension.categories[-2:] == ("85+", "unknown")


def test_sex_postcode_district_and_unknowns():
    people = residents(4, sex=["F", "M", None, "X"], postcode=["SW1A 1AA", "ls6 8eb", None, "NOT A POSTCODE"])
    labels, dimensions = categorise(people, ["sex", "postcode_district"])
    assert list(labels["sex"]) == ["female", "male", "unknown", "unknown"]
    assert list(labels["postcode_district"]) == ["SW1A", "LS6", "unknown", "unknown"]
    assert dimensions[1].categories == ("LS6", "SW1A", "unknown")


def test_household_size_counts_the_residents_of_the_household_top_coded():
    people = residents(10, household_id=["H1"] * 7 + ["H2", "H2", None])
    labels, (dimension,) = categorise(people, ["household_size"])
    assert list(labels["household_size"]) == ["6+"] * 7 + ["2", "2", "unknown"]
    assert dimension.categories == ("1", "2", "3", "4", "5", "6+", "unknown")


def test_source_counts_a_resident_once_under_each_of_its_sources():
    people = residents(3, sources=[["council_tax", "electoral_register"], ["council_tax"], ["school_census"]])
    labels, dimensions = categorise(people, ["source"])
    table = count_table(labels, dimensions)
    assert dimensions[0].categories == ("council_tax", "electoral_register", "school_census")
    assert list(table.counts) == [2, 1, 1, 3]  # the total counts residents, not memberships


def test_sources_counts_residents_by_the_combination_of_services_that_know_them():
    people = residents(4, sources=[["electoral_register", "council_tax"], ["council_tax", "electoral_register"],
                                   ["council_tax"], ["school_census"]])
    labels, dimensions = categorise(people, ["sources"])
    table = count_table(labels, dimensions)
    assert dimensions[0].categories == ("council_tax", "school_census", "council_tax+electoral_register")
    assert list(table.counts) == [1, 1, 2, 4]


def test_organisations_and_the_deceased_are_not_counted(tmp_path):
    people = residents(30, is_person=[True] * 28 + [False, True], is_deceased=[False] * 29 + [True])
    publication = publish(write_run(tmp_path / "run", people), "sex", min_count=2)
    assert publication.n_residents == 28
    assert cell(publication.frame, sex=TOTAL) == "28"


# Suppression -------------------------------------------------------------------------------------

def one_column(counts: dict, min_count: int = 10, round_to=None) -> pd.DataFrame:
    labels = pd.DataFrame({"sex": [k for k, n in counts.items() for _ in range(n)]})
    return publish_table(labels, [Dimension("sex", tuple(counts))], min_count, round_to).frame


def test_a_small_cell_and_the_smallest_other_in_its_line_are_suppressed():
    frame = one_column({"female": 500, "male": 495, "unknown": 3})
    assert list(frame[COUNT_COLUMN]) == ["500", SUPPRESSED, SUPPRESSED, "998"]


def test_zeros_are_published():
    frame = one_column({"female": 500, "male": 495, "unknown": 0})
    assert list(frame[COUNT_COLUMN]) == ["500", "495", "0", "995"]


def test_a_small_total_is_suppressed_with_its_cells():
    frame = one_column({"female": 4, "male": 3, "unknown": 0})
    assert list(frame[COUNT_COLUMN]) == [SUPPRESSED, SUPPRESSED, "0", SUPPRESSED]


def test_rounding_rounds_cells_and_totals_each_from_its_own_count():
    frame = one_column({"female": 11, "male": 12, "unknown": 13}, round_to=5)
    assert list(frame[COUNT_COLUMN]) == ["10", "10", "15", "35"]  # 36 -> 35, not 10 + 10 + 15


def test_min_count_below_2_and_round_below_2_are_errors():
    with pytest.raises(DataError, match="--min-count 1"):
        one_column({"female": 20}, min_count=1)
    with pytest.raises(DataError, match="--round 1"):
        one_column({"female": 20}, round_to=1)


def attacker_intervals(published: pd.DataFrame, dimensions: list[Dimension]) -> dict[int, tuple[float, float]]:
    """For each suppressed row, the least and greatest value a reader can give it from the
    published table alone: residents as non-negative reals, one variable per combination of
    categories (for `source`, per non-empty set of sources), every published cell an equation."""
    spaces = []
    for d in dimensions:
        if d.multiple:
            spaces.append([frozenset(s) for r in range(1, len(d.categories) + 1)
                           for s in itertools.combinations(d.categories, r)])
        else:
            spaces.append(list(d.categories))
    atoms = list(itertools.product(*spaces))
    members = np.ones((len(published), len(atoms)), dtype=bool)
    for i, d in enumerate(dimensions):
        values = published[d.name].to_numpy()
        inside = [[v == TOTAL or (v in atom[i] if d.multiple else v == atom[i]) for atom in atoms] for v in values]
        members &= np.array(inside, dtype=bool).reshape(len(published), len(atoms))
    shown = (published[COUNT_COLUMN] != SUPPRESSED).to_numpy()
    a_eq = members[shown].astype(float)
    b_eq = published.loc[shown, COUNT_COLUMN].astype(float).to_numpy()
    intervals = {}
    for row in np.flatnonzero(~shown):
        objective = members[row].astype(float)
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert low.status == 0
        intervals[row] = (low.fun, np.inf if high.status == 3 else -high.fun)
    return intervals


COUNTS = st.sampled_from([0, 0, 0, 1, 2, 3, 5, 9, 10, 12, 20, 40, 150])


@st.composite
def random_tables(draw):
    """Residents labelled in one to three columns, one of which may be `source`."""
    names = draw(st.lists(st.sampled_from(["sex", "age_band", "postcode_district", "source"]),
                          min_size=1, max_size=3, unique=True))
    dimensions, spaces = [], []
    for name in names:
        categories = tuple(f"{name[0]}{i}" for i in range(draw(st.integers(2, 4 if name != "source" else 3))))
        dimensions.append(Dimension(name, categories))
        spaces.append(["+".join(s) for r in range(1, len(categories) + 1)
                       for s in itertools.combinations(categories, r)] if name == "source" else categories)
    atoms = list(itertools.product(*spaces))
    counts = draw(st.lists(COUNTS, min_size=len(atoms), max_size=len(atoms)))
    rows = [atom for atom, n in zip(atoms, counts) for _ in range(n)]
    labels = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    return labels, dimensions, draw(st.sampled_from([3, 10]))


@settings(max_examples=40, deadline=None)
@given(random_tables())
def test_no_suppressed_cell_can_be_worked_out_from_the_published_cells_and_totals(drawn):
    labels, dimensions, min_count = drawn
    published = publish_table(labels, dimensions, min_count).frame
    shown = published.loc[published[COUNT_COLUMN] != SUPPRESSED, COUNT_COLUMN].astype(int)
    assert not shown.between(1, min_count - 1).any()
    for row, (low, high) in attacker_intervals(published, dimensions).items():
        # Not determined, and not pinned to a small count: it may be as large as a published one.
        assert high - low > 1e-6, published.iloc[row].to_dict()
        assert high >= min_count - 1e-6, published.iloc[row].to_dict()


# The command line --------------------------------------------------------------------------------

def run(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, out) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert not out.exists()
    return lines[0]


@pytest.fixture
def council(tmp_path):
    """120 residents over two sources, three districts, two households and a range of ages."""
    n = 120
    rng = np.random.default_rng(7)
    sources = [["council_tax"], ["electoral_register"], ["council_tax", "electoral_register"]]
    return write_run(tmp_path / "output", residents(
        n,
        date_of_birth=[pd.Timestamp("1940-01-01") + pd.Timedelta(days=int(d)) for d in rng.integers(0, 30_000, n)],
        sex=list(rng.choice(["F", "M", None], n, p=[0.48, 0.48, 0.04])),
        postcode=list(rng.choice(["LS6 8EB", "LS6 8ND", "WF2 0XW", "WF3 2AH", None], n)),
        household_id=["H1"] * 3 + ["H2"] * 7 + [None] * (n - 10),
        sources=[sources[i] for i in rng.integers(0, 3, n)],
    ))


@pytest.mark.parametrize("by", ["source", "sources", "age_band", "sex", "postcode_district", "household_size",
                                "age_band,sex", "source,sex"])
def test_publish_writes_a_table_with_totals_for_every_column(council, tmp_path, by):
    out = tmp_path / "counts.csv"
    result = run("publish", council, "--by", by, "--out", out)
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    columns = by.split(",")
    assert list(frame.columns) == [*columns, COUNT_COLUMN]  # no names, dates of birth or ids
    grand_total = frame[(frame[columns] == TOTAL).all(axis=1)]
    assert grand_total[COUNT_COLUMN].tolist() == ["120"]
    counts = frame.loc[frame[COUNT_COLUMN] != SUPPRESSED, COUNT_COLUMN].astype(int)
    assert not counts.between(1, 9).any()
    assert not list(tmp_path.glob(".counts.csv.*"))  # the temporary file was moved into place


def test_publish_sources_labels_combinations(council, tmp_path):
    out = tmp_path / "counts.csv"
    assert run("publish", council, "--by", "sources", "--out", out, "--min-count", "2").exit_code == 0
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert "council_tax+electoral_register" in set(frame["sources"])


def test_publish_rounds_to_base_5(council, tmp_path):
    out = tmp_path / "counts.csv"
    assert run("publish", council, "--by", "age_band", "--round", "5", "--out", out).exit_code == 0
    counts = pd.read_csv(out, dtype=str)["residents"]
    assert (counts[counts != SUPPRESSED].astype(int) % 5 == 0).all()


def test_unknown_column_is_one_line_exit_2(council, tmp_path):
    out = tmp_path / "counts.csv"
    line = assert_one_line_error(run("publish", council, "--by", "age_band,ethnicity", "--out", out), out)
    assert "unknown column(s) 'ethnicity'" in line and "household_size" in line


def test_a_folder_with_no_run_is_one_line_exit_2(tmp_path):
    out = tmp_path / "counts.csv"
    line = assert_one_line_error(run("publish", tmp_path / "nothing", "--by", "sex", "--out", out), out)
    assert "no run here" in line


def test_a_missing_column_is_one_line_exit_2(tmp_path):
    folder = write_run(tmp_path / "run", residents(20).drop(columns=["postcode"]))
    out = tmp_path / "counts.csv"
    line = assert_one_line_error(run("publish", folder, "--by", "postcode_district", "--out", out), out)
    assert "missing column(s) postcode" in line


def test_age_band_without_a_run_date_is_one_line_exit_2(tmp_path):
    folder = write_run(tmp_path / "run", residents(20), run={})
    out = tmp_path / "counts.csv"
    line = assert_one_line_error(run("publish", folder, "--by", "age_band", "--out", out), out)
    assert "run_timestamp" in line


@pytest.mark.parametrize("option", [["--min-count", "1"], ["--round", "0"]])
def test_bad_settings_are_one_line_exit_2(council, tmp_path, option):
    out = tmp_path / "counts.csv"
    assert_one_line_error(run("publish", council, "--by", "sex", "--out", out, *option), out)


def test_publish_needs_by_and_out(council, tmp_path):
    assert run("publish", council, "--out", tmp_path / "c.csv").exit_code == 2
    assert run("publish", council, "--by", "sex").exit_code == 2
    assert run("publish", "--help").exit_code == 0


def test_every_publication_is_in_the_audit_log_without_a_value(council, tmp_path):
    import json

    out = tmp_path / "counts.csv"
    assert run("publish", council, "--by", "age_band,sex", "--out", out).exit_code == 0
    entry = json.loads((council / "audit.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (entry["event"], entry["by"], entry["min_count"], entry["file"]) == ("publish", "age_band,sex", 10, "counts.csv")
    assert entry["residents"] == 120 and len(entry["sha256"]) == 64
    assert run("audit", "verify", council).exit_code == 0


def test_ages_are_counted_at_the_date_of_the_extracts_when_the_run_knows_it(tmp_path):
    import json

    from residentview.publish import run_date

    (tmp_path / "run.json").write_text(json.dumps({"run_timestamp": "2026-12-03T10:00:00+00:00", "as_of": "2026-10-01"}))
    assert run_date(tmp_path) == pd.Timestamp("2026-10-01")
    (tmp_path / "run.json").write_text(json.dumps({"run_timestamp": "2026-12-03T10:00:00+00:00"}))
    assert run_date(tmp_path) == pd.Timestamp("2026-12-03 10:00:00")

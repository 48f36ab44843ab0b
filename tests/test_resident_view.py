"""Stage 5 — resident view: persistent ids, golden records, households, the DuckDB database."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from residentview.errors import DataError
from residentview.resident_view import build_resident_view, write_database
from residentview.resident_view.ids import RESIDENT_IDS, group_fingerprints, mint_ids

RUN_1 = pd.Timestamp("2025-01-01", tz="UTC")
RUN_2 = pd.Timestamp("2025-02-01", tz="UTC")
RUN_3 = pd.Timestamp("2025-03-01", tz="UTC")
ID_PATTERN = re.compile(r"^R[0-9A-HJKMNP-TV-Z]{10}$")


# Fixtures: records and clusters built by hand -------------------------------------------------

def make_records(rows: list[dict]) -> pd.DataFrame:
    """Records as the standardise stage hands them on: unique_id follows (source, record_id)."""
    records = pd.DataFrame(rows)
    for column in ("source", "record_id", "first_name", "last_name", "address", "postcode", "uprn"):
        if column not in records:
            records[column] = None
    records["record_date"] = pd.to_datetime(records.get("record_date"))
    records = records.sort_values(["source", "record_id"]).reset_index(drop=True)
    records.insert(0, "unique_id", range(len(records)))
    return records


def clusters_of(records: pd.DataFrame, resident_of: dict[tuple[str, str], str]) -> pd.DataFrame:
    """Clusters from a mapping (source, record_id) -> any label of the test's choosing."""
    labels = [resident_of[(s, r)] for s, r in zip(records["source"], records["record_id"])]
    key = records["unique_id"].groupby(labels).transform("min")
    return pd.DataFrame({"unique_id": records["unique_id"], "cluster_key": key, "match_probability": 0.99})


def records_for(keys) -> pd.DataFrame:
    return make_records([{"source": s, "record_id": r, "first_name": "ANN", "last_name": "LEE"} for s, r in keys])


def run(resident_of: dict, previous: Path | None = None, timestamp=RUN_1):
    """A run over records named by `resident_of`, clustered as it says."""
    records = records_for(resident_of)
    return build_resident_view(records, clusters_of(records, resident_of), previous, run_timestamp=timestamp)


def save(view, folder: Path) -> Path:
    """What `LinkResult.write` leaves behind, as far as the resident view reads it back."""
    folder.mkdir(parents=True, exist_ok=True)
    view.links.to_parquet(folder / "resident_links.parquet", index=False)
    view.residents.to_parquet(folder / "residents.parquet", index=False)
    view.households.to_parquet(folder / "households.parquet", index=False)
    view.id_changes.to_parquet(folder / "id_changes.parquet", index=False)
    return folder


def resident_of_record(view) -> dict[tuple[str, str], str]:
    return {(s, r): rid for s, r, rid in zip(view.links["source"], view.links["record_id"], view.links["resident_id"])}


def this_run(view, timestamp) -> pd.DataFrame:
    changes = view.id_changes
    return changes[(changes["run_timestamp"] == timestamp) & (changes["entity"] == "resident")]


# Resident ids ---------------------------------------------------------------------------------

def test_every_record_is_linked_once_to_an_opaque_resident_id():
    view = run({("ct", "A1"): "x", ("er", "E1"): "x", ("er", "E2"): "y"})
    assert sorted(zip(view.links["source"], view.links["record_id"])) == [("ct", "A1"), ("er", "E1"), ("er", "E2")]
    assert view.links["resident_id"].str.match(ID_PATTERN).all()
    assert view.links["resident_id"].nunique() == 2
    assert not view.links["resident_id"].str.contains("A1|E1|E2").any()
    assert list(view.links.columns[:4]) == ["source", "record_id", "resident_id", "match_probability"]


def test_resident_ids_do_not_depend_on_row_order_or_cluster_labels():
    resident_of = {("ct", str(i)): f"p{i // 3}" for i in range(12)}
    records = records_for(resident_of)
    clusters = clusters_of(records, resident_of)
    first = build_resident_view(records, clusters, run_timestamp=RUN_1)
    relabelled = clusters.assign(cluster_key=clusters["cluster_key"] * 7 + 100)
    second = build_resident_view(
        records.sample(frac=1, random_state=3), relabelled.sample(frac=1, random_state=4), run_timestamp=RUN_1
    )
    assert resident_of_record(first) == resident_of_record(second)
    pd.testing.assert_frame_equal(first.residents, second.residents)


def test_a_rerun_on_the_same_records_keeps_every_id_and_records_no_change(tmp_path):
    resident_of = {("ct", "1"): "a", ("ct", "2"): "a", ("er", "1"): "b"}
    first = run(resident_of)
    second = run(resident_of, save(first, tmp_path), RUN_2)
    assert resident_of_record(second) == resident_of_record(first)
    assert this_run(second, RUN_2).empty


def test_adding_and_removing_records_keeps_the_resident_id(tmp_path):
    first = run({("ct", "1"): "a", ("ct", "2"): "a", ("er", "1"): "a"})
    old_id = first.links["resident_id"].iloc[0]
    second = run({("ct", "2"): "a", ("er", "1"): "a", ("sc", "9"): "a"}, save(first, tmp_path), RUN_2)
    assert set(second.links["resident_id"]) == {old_id}
    assert this_run(second, RUN_2).empty


def test_a_merge_keeps_the_id_contributing_most_records_and_retires_the_other(tmp_path):
    first = run({("ct", "1"): "big", ("ct", "2"): "big", ("ct", "3"): "big", ("er", "1"): "small"})
    ids = resident_of_record(first)
    big, small = ids[("ct", "1")], ids[("er", "1")]
    second = run({("ct", "1"): "m", ("ct", "2"): "m", ("ct", "3"): "m", ("er", "1"): "m"}, save(first, tmp_path), RUN_2)
    assert set(second.links["resident_id"]) == {big}
    changes = this_run(second, RUN_2)
    assert changes[["change", "old_id", "new_id", "n_records"]].values.tolist() == [["merged", small, big, 1]]


def test_a_merge_of_equal_residents_keeps_the_oldest_id(tmp_path):
    # Hand-written previous run: the lexically later id was issued first, so it must survive.
    previous = tmp_path / "previous"
    previous.mkdir()
    pd.DataFrame({
        "source": ["ct", "ct"], "record_id": ["1", "2"], "resident_id": ["RZZZZZZZZZZ", "RAAAAAAAAAA"],
        "match_probability": 1.0,
    }).to_parquet(previous / "resident_links.parquet")
    pd.DataFrame({
        "resident_id": ["RZZZZZZZZZZ", "RAAAAAAAAAA"], "household_id": [None, None],
        "id_issued_at": [RUN_1, RUN_2],
    }).to_parquet(previous / "residents.parquet")
    merged = run({("ct", "1"): "m", ("ct", "2"): "m"}, previous, RUN_3)
    assert set(merged.links["resident_id"]) == {"RZZZZZZZZZZ"}
    assert this_run(merged, RUN_3)[["change", "old_id", "new_id"]].values.tolist() == [
        ["merged", "RAAAAAAAAAA", "RZZZZZZZZZZ"]
    ]


def test_a_split_keeps_the_id_on_the_largest_part_and_issues_a_new_one(tmp_path):
    keys = [("ct", str(i)) for i in range(5)]
    first = run({key: "one" for key in keys})
    old_id = first.links["resident_id"].iloc[0]
    split = {key: ("large" if i < 3 else "small") for i, key in enumerate(keys)}
    second = run(split, save(first, tmp_path), RUN_2)
    ids = resident_of_record(second)
    assert {ids[k] for k in keys[:3]} == {old_id}
    new_id = ids[keys[3]]
    assert new_id != old_id and ids[keys[4]] == new_id and ID_PATTERN.match(new_id)
    changes = this_run(second, RUN_2)
    assert changes[["change", "old_id", "new_id", "n_records"]].values.tolist() == [["split", old_id, new_id, 2]]


def test_a_resident_whose_records_all_go_is_retired_and_its_id_never_returns(tmp_path):
    first = run({("ct", "1"): "a", ("er", "1"): "b"})
    gone = resident_of_record(first)[("er", "1")]
    second = run({("ct", "1"): "a"}, save(first, tmp_path / "2"), RUN_2)
    assert this_run(second, RUN_2)[["change", "old_id", "n_records"]].values.tolist() == [["retired", gone, 1]]
    # The same record returning later gets a fresh id: the retired one stays retired.
    third = run({("ct", "1"): "a", ("er", "1"): "b"}, save(second, tmp_path / "3"), RUN_3)
    returned = resident_of_record(third)[("er", "1")]
    assert returned != gone
    assert this_run(third, RUN_3)[["change", "new_id"]].values.tolist() == [["new", returned]]


def test_id_changes_keep_the_history_of_every_run(tmp_path):
    first = run({("ct", "1"): "a"})
    second = run({("ct", "1"): "a", ("ct", "2"): "b"}, save(first, tmp_path), RUN_2)
    resident_rows = second.id_changes[second.id_changes["entity"] == "resident"]
    assert resident_rows[["run_timestamp", "change"]].values.tolist() == [[RUN_1, "new"], [RUN_2, "new"]]
    assert list(second.id_changes.columns) == ["run_timestamp", "entity", "change", "old_id", "new_id", "n_records"]


def test_minting_skips_ids_issued_before():
    fingerprints = group_fingerprints(pd.Series([0, 0, 1]), pd.Series(["ct\x1f1", "ct\x1f2", "er\x1f1"]), RESIDENT_IDS)
    fresh = mint_ids(fingerprints, RESIDENT_IDS, taken=())
    again = mint_ids(fingerprints, RESIDENT_IDS, taken={fresh[0]})
    assert again[0] != fresh[0] and again[1] == fresh[1]
    assert ID_PATTERN.match(again[0])


def test_an_unreadable_previous_run_is_a_one_line_data_error(tmp_path):
    (tmp_path / "resident_links.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read the previous run"):
        run({("ct", "1"): "a"}, tmp_path)


@st.composite
def two_runs(draw):
    """Run 1: records in residents. Run 2: some records removed, some added, some residents
    re-clustered (merged or split); every other resident keeps its surviving records together."""
    n_residents = draw(st.integers(1, 12))
    run_1 = {}
    for resident in range(n_residents):
        for record in range(draw(st.integers(1, 4))):
            run_1[("src" + str(record % 2), f"{resident}-{record}")] = resident
    touched = draw(st.sets(st.integers(0, n_residents - 1)))
    removed = draw(st.sets(st.sampled_from(sorted(run_1))))
    run_2 = {}
    for key, resident in run_1.items():
        if key in removed:
            continue
        # Touched residents' records regroup among themselves, apart from every untouched label.
        regrouped = 1000 + 10 * draw(st.sampled_from(sorted(touched))) + draw(st.integers(0, 2)) if touched else None
        run_2[key] = regrouped if resident in touched else resident
    for added in range(draw(st.integers(0, 6))):
        run_2[("new", str(added))] = draw(st.integers(0, n_residents + 3))
    untouched = {r for r in range(n_residents) if r not in touched}
    return run_1, run_2, untouched


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(two_runs())
def test_unchanged_residents_always_keep_their_ids(tmp_path_factory, runs):
    run_1, run_2, untouched = runs
    first = run(run_1)
    second = run(run_2, save(first, tmp_path_factory.mktemp("run")), RUN_2)
    before, after = resident_of_record(first), resident_of_record(second)
    # A resident untouched in run 2 keeps its id whenever any of its records survive.
    for key, resident in run_1.items():
        if resident in untouched and key in after:
            assert after[key] == before[key]
    # One id per resident and one resident per id; every record linked exactly once.
    pairs = pd.DataFrame({"label": [run_2[k] for k in after], "resident_id": list(after.values())})
    assert (pairs.groupby("label")["resident_id"].nunique() == 1).all()
    assert (pairs.groupby("resident_id")["label"].nunique() == 1).all()
    assert len(second.links) == len(run_2)


# Golden records -------------------------------------------------------------------------------

def golden_of(rows: list[dict], source_priority=()) -> pd.Series:
    records = make_records(rows)
    view = build_resident_view(
        records, clusters_of(records, {k: "one" for k in zip(records["source"], records["record_id"])}),
        source_priority=source_priority, run_timestamp=RUN_1,
    )
    assert len(view.residents) == 1
    return view.residents.iloc[0]


def test_the_most_recent_record_gives_the_golden_value():
    golden = golden_of([
        {"source": "ct", "record_id": "1", "last_name": "SMITH", "record_date": "2020-01-01"},
        {"source": "er", "record_id": "1", "last_name": "JONES", "record_date": "2024-06-01"},
        {"source": "hb", "record_id": "1", "last_name": "SMITH", "record_date": "2019-01-01"},
    ])
    assert golden["last_name"] == "JONES"


def test_a_valid_value_beats_a_more_recent_missing_one():
    golden = golden_of([
        {"source": "ct", "record_id": "1", "last_name": "SMITH", "record_date": "2020-01-01"},
        {"source": "er", "record_id": "1", "last_name": None, "record_date": "2024-06-01"},
    ])
    assert golden["last_name"] == "SMITH"


def test_source_priority_breaks_a_tie_in_recency():
    rows = [
        {"source": "ct", "record_id": "1", "first_name": "WILLIAM", "record_date": "2024-01-01"},
        {"source": "er", "record_id": "1", "first_name": "BILL", "record_date": "2024-01-01"},
    ]
    assert golden_of(rows, source_priority=["er", "ct"])["first_name"] == "BILL"
    assert golden_of(rows, source_priority=["ct"])["first_name"] == "WILLIAM"


def test_the_most_frequent_value_breaks_a_tie_in_recency_and_priority():
    golden = golden_of([
        {"source": "ct", "record_id": "1", "first_name": "ZOE"},
        {"source": "ct", "record_id": "2", "first_name": "ANNA"},
        {"source": "ct", "record_id": "3", "first_name": "ZOE"},
    ])
    assert golden["first_name"] == "ZOE"


def test_the_golden_address_comes_whole_from_one_record_with_the_uprn_for_that_address():
    golden = golden_of([
        {"source": "ct", "record_id": "1", "address": "1 HIGH STREET", "postcode": "AB1 2CD", "uprn": "100",
         "record_date": "2023-01-01"},
        {"source": "er", "record_id": "1", "address": "1 HIGH STREET", "postcode": "AB1 2CD", "record_date": "2024-01-01"},
        {"source": "hb", "record_id": "1", "address": "9 OLD ROAD", "postcode": None, "record_date": "2025-01-01"},
    ])
    assert (golden["address"], golden["postcode"], golden["uprn"]) == ("1 HIGH STREET", "AB1 2CD", "100")


def test_residents_keep_every_known_name_and_address_and_their_sources():
    golden = golden_of([
        {"source": "ct", "record_id": "1", "first_name": "MARY", "last_name": "JONES", "address": "1 HIGH STREET",
         "postcode": "AB1 2CD", "record_date": "2021-05-01"},
        {"source": "er", "record_id": "1", "first_name": "MARY", "last_name": "SMITH", "previous_last_name": "JONES",
         "address": "2 LOW ROAD", "postcode": "AB1 3EF", "record_date": "2024-02-01"},
        {"source": "er", "record_id": "2", "first_name": "MARY", "last_name": "SMITH"},
    ])
    assert golden["other_names"] == ["MARY JONES", "MARY SMITH"]
    assert golden["addresses"] == ["1 HIGH STREET, AB1 2CD", "2 LOW ROAD, AB1 3EF"]
    assert golden["sources"] == ["ct", "er"]
    assert golden["n_records"] == 3
    assert (golden["first_seen"], golden["last_seen"]) == (pd.Timestamp("2021-05-01"), pd.Timestamp("2024-02-01"))


# Households -----------------------------------------------------------------------------------

def household_rows():
    return [
        {"source": "ct", "record_id": "1", "first_name": "ANN", "address": "1 HIGH STREET", "postcode": "AB1 2CD", "uprn": "100"},
        {"source": "ct", "record_id": "2", "first_name": "BOB", "address": "1 HIGH STREET", "postcode": "AB1 2CD"},
        {"source": "ct", "record_id": "3", "first_name": "CAL", "address": "5 MILL LANE", "postcode": "AB1 9XY"},
        {"source": "ct", "record_id": "4", "first_name": "DEE", "address": "5 MILL LANE", "postcode": "AB1 9XY"},
        {"source": "ct", "record_id": "5", "first_name": "EVE", "address": None, "postcode": "AB1 9XY"},
        {"source": "ct", "record_id": "6", "first_name": None, "address": "5 MILL LANE", "postcode": "AB1 9XY",
         "is_person": False},
    ]


def household_view(rows, previous=None, timestamp=RUN_1):
    records = make_records(rows)
    records["is_person"] = records["is_person"].astype("boolean").fillna(True).astype(bool) if "is_person" in records else True
    resident_of = {k: k[1] for k in zip(records["source"], records["record_id"])}
    return build_resident_view(records, clusters_of(records, resident_of), previous, run_timestamp=timestamp)


def members_by_first_name(view) -> dict[str, list[str]]:
    name_of = view.residents.set_index("resident_id")["first_name"]
    return {h: sorted(name_of[r] for r in ids) for h, ids in zip(view.households["household_id"], view.households["resident_ids"])}


def test_residents_sharing_a_uprn_or_an_address_and_postcode_form_one_household():
    view = household_view(household_rows())
    households = view.households.set_index("household_id")
    assert sorted(members_by_first_name(view).values()) == [["ANN", "BOB"], ["CAL", "DEE"]]
    by_uprn = households[households["uprn"] == "100"].iloc[0]
    assert (by_uprn["address"], by_uprn["postcode"], by_uprn["size"]) == ("1 HIGH STREET", "AB1 2CD", 2)
    assert view.households["household_id"].str.match(r"^H[0-9A-HJKMNP-TV-Z]{10}$").all()


def test_residents_without_a_full_address_and_organisations_have_no_household():
    view = household_view(household_rows())
    no_household = view.residents[view.residents["household_id"].isna()]
    assert sorted(no_household["first_name"].fillna("(organisation)")) == ["(organisation)", "EVE"]
    linked = view.links.merge(view.residents[["resident_id", "household_id"]], on="resident_id")
    assert (linked["household_id_x"].fillna("-") == linked["household_id_y"].fillna("-")).all()


def test_household_ids_persist_when_someone_moves_in(tmp_path):
    first = household_view(household_rows())
    before = {tuple(v): h for h, v in members_by_first_name(first).items()}
    moved_in = household_rows() + [
        {"source": "er", "record_id": "7", "first_name": "FAY", "address": "5 MILL LANE", "postcode": "AB1 9XY"}
    ]
    second = household_view(moved_in, save(first, tmp_path), RUN_2)
    after = {tuple(v): h for h, v in members_by_first_name(second).items()}
    assert after[("ANN", "BOB")] == before[("ANN", "BOB")]
    assert after[("CAL", "DEE", "FAY")] == before[("CAL", "DEE")]
    assert second.id_changes[second.id_changes["run_timestamp"] == RUN_2]["entity"].eq("resident").all()


# The database ---------------------------------------------------------------------------------

def test_the_duckdb_database_holds_every_table_for_sql(tmp_path):
    view = household_view(household_rows())
    quality = pd.DataFrame({"source": ["ct"], "field": ["postcode"], "n_records": [6], "completeness": [0.83]})
    write_database(tmp_path, view, quality)
    with duckdb.connect(str(tmp_path / "resident_view.duckdb"), read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert tables == {"residents", "resident_links", "households", "id_changes", "addresses", "events",
                          "data_quality"}
        biggest = con.execute("SELECT len(resident_ids), size FROM households ORDER BY size DESC LIMIT 1").fetchone()
        assert biggest == (2, 2)
        n_links = con.execute("SELECT count(*) FROM resident_links JOIN residents USING (resident_id)").fetchone()
        assert n_links == (6,)
        assert con.execute("SELECT list_contains(sources, 'ct') FROM residents LIMIT 1").fetchone() == (True,)


def test_no_records_give_empty_tables_with_their_columns(tmp_path):
    view = build_resident_view(make_records([]), pd.DataFrame(columns=["unique_id", "cluster_key", "match_probability"]),
                               run_timestamp=RUN_1)
    assert list(view.links.columns) == ["source", "record_id", "resident_id", "match_probability", "household_id"]
    assert view.links.empty and view.residents.empty and view.households.empty and view.id_changes.empty
    assert {"resident_id", "last_name", "n_records", "sources", "household_id"} <= set(view.residents.columns)
    write_database(tmp_path, view, pd.DataFrame({"source": pd.Series(dtype=str)}))
    with duckdb.connect(str(tmp_path / "resident_view.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM residents").fetchone() == (0,)


def test_a_full_first_name_beats_a_more_recent_initial():
    golden = golden_of([
        {"source": "ct", "record_id": "1", "first_name": "M", "record_date": "2024-01-01"},
        {"source": "er", "record_id": "1", "first_name": "MARYAM"},
    ])
    assert golden["first_name"] == "MARYAM"


def test_someone_moving_out_splits_the_household_and_the_change_is_recorded(tmp_path):
    fay = {"source": "er", "record_id": "7", "first_name": "FAY", "address": "5 MILL LANE", "postcode": "AB1 9XY"}
    first = household_view(household_rows() + [fay])
    before = {tuple(v): h for h, v in members_by_first_name(first).items()}
    moved_out = household_rows() + [fay]
    moved_out[3] = {**moved_out[3], "address": "8 NEW ROAD", "postcode": "AB2 1AA"}  # DEE leaves CAL and FAY
    second = household_view(moved_out, save(first, tmp_path), RUN_2)
    after = {tuple(v): h for h, v in members_by_first_name(second).items()}
    assert after[("CAL", "FAY")] == before[("CAL", "DEE", "FAY")]
    assert after[("DEE",)] != before[("CAL", "DEE", "FAY")]
    changes = second.id_changes[(second.id_changes["run_timestamp"] == RUN_2)]
    assert changes[["entity", "change", "old_id", "new_id", "n_records"]].values.tolist() == [
        ["household", "split", before[("CAL", "DEE", "FAY")], after[("DEE",)], 1]
    ]


def test_a_resident_of_one_record_has_that_record_as_golden_record_with_the_same_summaries():
    golden = golden_of([
        {"source": "er", "record_id": "1", "first_name": "MARY", "last_name": "SMITH", "previous_last_name": "JONES",
         "address": None, "postcode": "AB1 3EF", "uprn": "200", "record_date": "2024-02-01"},
    ])
    assert (golden["first_name"], golden["postcode"], golden["uprn"], golden["address"]) == ("MARY", "AB1 3EF", "200", None)
    assert golden["other_names"] == ["MARY JONES", "MARY SMITH"]
    assert golden["addresses"] == ["AB1 3EF"]
    assert golden["sources"] == ["er"]
    assert golden["n_records"] == 1 and golden["first_seen"] == golden["last_seen"] == pd.Timestamp("2024-02-01")


def test_a_previous_runs_text_is_read_compactly_and_written_back_as_it_was(tmp_path):
    from residentview.resident_view.previous import as_python_strings, read_previous_run

    pd.DataFrame({"source": ["a", "b"], "record_id": ["1", "2"], "resident_id": ["R1", None]}).to_parquet(
        tmp_path / "resident_links.parquet", index=False)
    prior = read_previous_run(tmp_path)
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in prior.links.dtypes)  # not a Python string per id
    back = as_python_strings(prior.links)
    assert back.dtypes.tolist() == [object] * 3 and back["resident_id"].tolist() == ["R1", None]


# Service overlap --------------------------------------------------------------------------------

def test_service_overlap_counts_residents_by_the_services_that_know_them(tmp_path):
    from residentview.resident_view.overlap import pairwise_overlap, service_overlap, services_per_resident

    residents = pd.DataFrame({
        "resident_id": ["a", "b", "c", "d", "e"],
        "sources": [["ct", "er"], ["er", "ct"], ["er"], ["ct", "er", "hb"], ["ct"]],  # in any order
        "is_person": [True, True, True, True, False],  # an organisation is nobody's resident
    })
    overlap = service_overlap(residents)
    assert overlap.to_dict("records") == [
        {"sources": "ct+er", "n_sources": 2, "residents": 2},
        {"sources": "ct+er+hb", "n_sources": 3, "residents": 1},
        {"sources": "er", "n_sources": 1, "residents": 1},
    ]
    grid = pairwise_overlap(overlap)
    assert grid.loc["ct", "ct"] == 3 and grid.loc["ct", "er"] == 3 and grid.loc["er", "hb"] == 1
    assert grid.loc["er", "er"] == 4 and (grid == grid.T).all().all()
    assert services_per_resident(overlap).to_dict("records") == [
        {"n_sources": 1, "residents": 1}, {"n_sources": 2, "residents": 2}, {"n_sources": 3, "residents": 1}]
    # In the database for SQL.
    view = household_view(household_rows())
    write_database(tmp_path, view, pd.DataFrame({"source": ["ct"]}))
    from residentview.resident_view import write_view
    write_view(tmp_path, view, pd.DataFrame({"source": ["ct"]}))
    with duckdb.connect(str(tmp_path / "resident_view.duckdb"), read_only=True) as con:
        assert con.execute("SELECT sources, residents FROM service_overlap").fetchall() == [("ct", 5)]

"""Stage 5, continued — address history (addresses.parquet) and life events (events.parquet,
CONTRACT §7), between runs and within the data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from residentview.resident_view import build_resident_view, view_tables

RUN_1 = pd.Timestamp("2025-01-02", tz="UTC")
RUN_2 = pd.Timestamp("2025-06-02", tz="UTC")
RUN_3 = pd.Timestamp("2025-06-03", tz="UTC")


def record(source, record_id, person, first, last, address, postcode, dated, dob=None, deceased=False, uprn=None):
    return {"source": source, "record_id": record_id, "person": person, "first_name": first, "last_name": last,
            "address": address, "postcode": postcode, "uprn": uprn, "record_date": dated,
            "date_of_birth": dob, "is_deceased": deceased, "is_person": True}


FIRST = [
    record("ct", "1", "ann", "ANN", "LEE", "1 HIGH STREET", "AB1 2CD", "2020-01-01", "1960-05-05"),
    record("er", "1", "ann", "ANN", "LEE", "1 HIGH STREET", "AB1 2CD", "2021-01-01", "1960-05-05"),
    record("ct", "2", "bob", "BOB", "KAY", "5 MILL LANE", "AB1 9XY", "2022-01-01", "2007-03-01", uprn="200"),
    record("ct", "3", "cal", "CAL", "DOE", "9 OAK ROAD", "AB2 1AA", "2018-01-01", "1931-01-01"),
    record("er", "4", "dee", "DEE", "FOX", "2 ELM STREET", "AB2 3BB", "2019-01-01", "1990-02-02"),
    record("ct", "5", "eve", "EVE", "EVANS", "3 ASH ROW", "AB3 1CC", "2019-01-01", "1985-07-07"),
    record("er", "5", "eve", "EVE", "EVANS", "4 YEW WAY", "AB3 2DD", "2023-01-01", "1985-07-07"),
    record("asc", "6", "fay", "FAY", "ROSE", "8 BAY CLOSE", "AB4 4EE", "2024-12-31", "1925-01-01", deceased=True),
    record("ct", "7", "hal", "HAL", "BEST", "6 PINE ROAD", "AB5 5FF", "2017-01-01", "1970-01-01"),
]
SECOND = [
    record("ct", "1b", "ann", "ANN", "LEE", "7 NEW ROAD", "AB9 9ZZ", "2025-04-01", "1960-05-05"),
    record("er", "1", "ann", "ANN", "LEE", "1 HIGH STREET", "AB1 2CD", "2021-01-01", "1960-05-05"),
    record("ct", "2", "bob", "BOB", "KAY", "5 MILL LANE", "AB1 9XZ", "2022-01-01", "2007-03-01", uprn="200"),
    record("ct", "3", "cal", "CAL", "DOE", "9 OAK ROAD", "AB2 1AA", "2018-01-01", "1931-01-01", deceased=True),
    record("er", "4", "dee", "DEE", "GRANT", "2 ELM STREET", "AB2 3BB", "2025-05-01", "1990-02-02"),
    record("ct", "5", "eve", "EVE", "EVNAS", "3 ASH ROW", "AB3 1CC", "2019-01-01", "1985-07-07"),
    record("er", "5", "eve", "EVE", "EVANS", "4 YEW WAY", "AB3 2DD", "2023-01-01", "1985-07-07"),
    record("asc", "6", "fay", "FAY", "ROSE", "8 BAY CLOSE", "AB4 4EE", "2024-12-31", "1925-01-01", deceased=True),
    record("sc", "8", "gus", "GUS", "NEW", "7 NEW ROAD", "AB9 9ZZ", "2025-06-01", "2015-09-09"),
]


def hashed_records(rows: list[dict]) -> pd.DataFrame:
    """The rows with a row_hash of their values, as standardise keeps one."""
    records = pd.DataFrame(rows).sort_values(["source", "record_id"]).reset_index(drop=True)
    values = records.drop(columns="person").astype(str)
    return records.assign(row_hash=pd.util.hash_pandas_object(values, index=False).to_numpy(dtype="uint64"))


def view_of(rows: list[dict], previous: Path | None, timestamp, ages=(18,), hashed=False):
    records = hashed_records(rows) if hashed else pd.DataFrame(rows)
    records = records.sort_values(["source", "record_id"]).reset_index(drop=True)
    records.insert(0, "unique_id", range(len(records)))
    for column in ("record_date", "date_of_birth"):
        records[column] = pd.to_datetime(records[column])
    key = records["unique_id"].groupby(records["person"]).transform("min")
    clusters = pd.DataFrame({"unique_id": records["unique_id"], "cluster_key": key, "match_probability": 0.99})
    view = build_resident_view(records.drop(columns="person"), clusters, previous, run_timestamp=timestamp,
                               event_ages=ages)
    person = dict(zip(records["record_id"].astype(str) + records["source"], records["person"]))
    resident_person = {r: person[i + s] for s, i, r in zip(view.links["source"], view.links["record_id"],
                                                          view.links["resident_id"])}
    return view, resident_person


def save(view, folder: Path) -> Path:
    """What `LinkResult.write` leaves behind, as far as the resident view reads it back."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in view_tables(view, pd.DataFrame()).items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "run.json").write_text(json.dumps({"as_of": view.as_of.date().isoformat()}))
    return folder


def events_of(view, person: dict, timestamp) -> dict[str, set]:
    events = view.events[view.events["run_timestamp"] == timestamp]
    out: dict[str, set] = {}
    for event, resident in zip(events["event"], events["resident_id"]):
        out.setdefault(event, set()).add(person.get(resident, resident))
    return out


@pytest.fixture
def two_runs(tmp_path):
    first, person_1 = view_of(FIRST, None, RUN_1)
    second, person_2 = view_of(SECOND, save(first, tmp_path / "out"), RUN_2)
    return first, person_1, second, {**person_1, **person_2}, tmp_path / "out"


def test_a_first_run_records_what_the_data_itself_shows(two_runs):
    first, person, *_ = two_runs
    assert events_of(first, person, RUN_1) == {"died": {"fay"}, "moved": {"eve"}}
    moved = first.events[first.events["event"] == "moved"].iloc[0]
    assert moved["event_date"] == pd.Timestamp("2023-01-01")  # when the new address was first seen
    assert first.as_of == pd.Timestamp("2024-12-31")


def test_events_between_two_runs_are_the_lives_of_the_residents(two_runs):
    _, _, second, person, _ = two_runs
    assert events_of(second, person, RUN_2) == {
        "moved": {"ann"}, "died": {"cal"}, "turned_18": {"bob"}, "name_changed": {"dee"},
        "new_resident": {"gus"}, "left": {"hal"},
    }  # eve's retyped surname is no change of name; fay's death was recorded by the first run
    events = second.events[second.events["run_timestamp"] == RUN_2].set_index("event")
    assert events.at["turned_18", "event_date"] == pd.Timestamp("2025-03-01")
    assert events.at["moved", "event_date"] == pd.Timestamp("2025-04-01")
    moved = json.loads(events.at["moved", "details"])
    assert moved["from_address"] != moved["to_address"] and moved["sources"] == ["ct"]
    # (bob's postcode was put right, at the same UPRN: no move)
    assert json.loads(events.at["left", "details"]) == {"sources": ["ct"]}
    assert json.loads(events.at["name_changed", "details"]) == {"sources": ["er"]}
    # Appended: the first run's events are still there.
    assert set(second.events["run_timestamp"]) == {RUN_1, RUN_2}


def test_details_name_no_one(two_runs):
    _, _, second, _, _ = two_runs
    text = " ".join(second.events["details"])
    for value in ("ANN", "LEE", "GRANT", "HIGH STREET", "AB1", "1960", "2007"):
        assert value not in text


def test_a_rerun_on_the_same_extracts_adds_no_events(two_runs, tmp_path):
    _, _, second, person, folder = two_runs
    third, _ = view_of(SECOND, save(second, folder), RUN_3)
    assert events_of(third, person, RUN_3) == {}
    assert len(third.events) == len(second.events)


def test_other_ages_a_service_names_are_events_too(tmp_path):
    first, _ = view_of(FIRST, None, RUN_1, ages=(16, 18, 65))
    second, person = view_of(SECOND, save(first, tmp_path / "out"), RUN_2, ages=(16, 18, 65))
    turned = {e for e in second.events["event"] if e.startswith("turned_")}
    assert turned == {"turned_18", "turned_65"}  # dee was born 1960-05-05: 65 on 2025-05-05


def test_the_address_history_keeps_old_addresses_and_dates_them(two_runs):
    first, _, second, person, _ = two_runs
    ann = {r for r, p in person.items() if p == "ann"}
    history = second.addresses[second.addresses["resident_id"].isin(ann)].set_index("address")
    assert set(history.index) == {"7 NEW ROAD", "1 HIGH STREET"}
    assert history.at["7 NEW ROAD", "current"] and not history.at["1 HIGH STREET", "current"]
    assert history.at["1 HIGH STREET", "first_seen"] == pd.Timestamp("2020-01-01")  # kept from the first run
    assert history.at["1 HIGH STREET", "sources"] == ["er"]  # the register has not caught up
    assert history.at["7 NEW ROAD", "last_seen"] == second.as_of
    current = second.residents.set_index("resident_id").loc[list(ann), "current_address_id"]
    assert (current == history.at["7 NEW ROAD", "address_id"]).all()
    # A resident who left takes his history with him.
    hal = first.addresses[first.addresses["address"] == "6 PINE ROAD"]
    assert len(hal) == 1 and hal["current"].all()
    assert not (second.addresses["address"] == "6 PINE ROAD").any()  # hal left: his history goes with him


def test_an_address_no_record_holds_any_more_stays_in_the_history(two_runs):
    _, _, second, person, folder = two_runs
    caught_up = [dict(r, address="7 NEW ROAD", postcode="AB9 9ZZ", record_date="2025-06-01")
                 if (r["source"], r["record_id"]) == ("er", "1") else r for r in SECOND]
    third, person_3 = view_of(caught_up, save(second, folder), RUN_3)
    ann = {r for r, p in {**person, **person_3}.items() if p == "ann"}
    history = third.addresses[third.addresses["resident_id"].isin(ann)].set_index("address")
    old = history.loc["1 HIGH STREET"]
    assert (old["current"], old["n_records"], list(old["sources"])) == (False, 0, [])
    assert old["first_seen"] == pd.Timestamp("2020-01-01") and old["last_seen"] == second.as_of
    assert events_of(third, {**person, **person_3}, RUN_3) == {}  # ann's move was recorded already


def test_a_change_no_new_or_changed_record_shows_is_no_event(tmp_path):
    # ann's newest record (a new surname, a new address) leaves: her golden surname and address
    # fall back to the older record's, which nobody changed. Nothing happened to ann this year.
    rows = [
        record("ct", "1", "ann", "ANN", "GRANT", "7 NEW ROAD", "AB9 9ZZ", "2024-06-01", "1960-05-05"),
        record("er", "1", "ann", "ANN", "LEE", "1 HIGH STREET", "AB1 2CD", "2020-01-01", "1960-05-05"),
        record("ct", "2", "bob", "BOB", "KAY", "5 MILL LANE", "AB1 9XY", "2024-12-31", "1970-03-01"),
    ]
    first, person = view_of(rows, None, RUN_1, hashed=True)
    folder = save(first, tmp_path / "out")
    hashed_records(rows)[["source", "record_id", "row_hash"]].to_parquet(folder / "records.parquet", index=False)
    second, person_2 = view_of(rows[1:], folder, RUN_2, hashed=True)
    assert events_of(second, {**person, **person_2}, RUN_2) == {}
    # A change a record that did change shows is an event.
    married = [rows[0], dict(rows[1], last_name="BLAKE", address="9 OTHER ROAD", postcode="AB7 7YY",
                             record_date="2025-05-01"), rows[2]]
    third, person_3 = view_of(married, folder, RUN_2, hashed=True)
    assert events_of(third, {**person, **person_3}, RUN_2) == {"moved": {"ann"}, "name_changed": {"ann"}}


def test_the_demo_reports_a_years_events_measured_against_its_truth(tmp_path):
    from residentview.demo import run_demo

    result, folder, _ = run_demo(tmp_path / "demo", records=1500, progress=False)
    assert result.kind == "update"
    events = pd.read_parquet(folder / "events.parquet")
    assert events["run_timestamp"].nunique() == 2  # the earlier extracts' run, then the update's
    kinds = set(events.loc[events["run_timestamp"] == events["run_timestamp"].max(), "event"])
    assert {"moved", "new_resident", "left"} <= kinds
    page = (folder / "report.html").read_text(encoding="utf-8")
    section = page[page.index("<h2>Life events</h2>"):]
    section = section[:section.index("</section>")]
    assert "Measured against the truth" in section and "<td>moved</td>" in section
    assert "<h3>Measured against the truth</h3>" in page and "Pairwise" in page  # the matching, measured too

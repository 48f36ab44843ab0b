"""The same population at two dates: extracts a year apart, the life events between them, and
council systems that show those events as councils do (mostly, some of them late)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from residentview.synthetic import ENCODINGS, FILES, generate, generate_pair
from residentview.synthetic.extracts import SOURCE_CONFIG
from residentview.synthetic.later import ADDRESS, RESPONSES, columns
from residentview.synthetic.life_events import EVENTS
from residentview.synthetic.population import REFERENCE_DATE

EARLIER = REFERENCE_DATE - pd.DateOffset(months=12)  # the earlier extracts' date: the later are as of REFERENCE_DATE

PEOPLE = 3000


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return generate_pair(people=PEOPLE, out=tmp_path_factory.mktemp("pair"), seed=4, months=12)


@pytest.fixture(scope="module")
def events(pair):
    return pd.read_parquet(pair.events_path)


def read_extract(folder, system: str) -> pd.DataFrame:
    """One extract as the text its file holds, indexed by record id, with the true person_id beside it."""
    path = folder / FILES[system]
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path).astype(object).where(lambda f: f.notna(), "").astype(str)
    elif path.suffix == ".xlsx":
        frame = pd.read_excel(path, dtype=str, keep_default_na=False)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=ENCODINGS.get(system, "utf-8"))
    truth = pd.read_parquet(folder / "truth.parquet").query("source == @system")
    frame = frame.set_index(SOURCE_CONFIG[system]["id"])
    return frame.join(truth.set_index("record_id")["person_id"])


@pytest.fixture(scope="module")
def extracts(pair):
    return {system: (read_extract(pair.earlier.out, system), read_extract(pair.later.out, system)) for system in FILES}


def people_with(events: pd.DataFrame, event: str) -> set:
    return set(events.loc[events["event"] == event, "person_id"])


def kept_and_changed(before: pd.DataFrame, after: pd.DataFrame, who: set, cols: list[str]) -> tuple[int, int]:
    """Among `who`'s earlier records, how many are still there, and how many of those changed in `cols`."""
    mine = before[before["person_id"].isin(who)]
    kept = mine.index.intersection(after.index)
    changed = (before.loc[kept, cols] != after.loc[kept, cols]).any(axis=1)
    return len(kept), int(changed.sum())


# The files -----------------------------------------------------------------------------------

def test_earlier_is_what_generate_writes_a_year_before_and_the_pair_is_the_same_for_the_same_seed(tmp_path):
    a = generate_pair(people=300, out=tmp_path / "a", seed=9)
    b = generate_pair(people=300, out=tmp_path / "b", seed=9)
    alone = generate(people=300, out=tmp_path / "alone", seed=9)
    for system in ("council_tax", "electoral_register", "school_census"):
        name = FILES[system]
        assert (a.later.out / name).read_bytes() == (b.later.out / name).read_bytes()
    # The same records as generate's, as of a year earlier: the later extracts are as of the date
    # generate's are, so none of their dates lies in the future.
    earlier = pd.read_csv(a.earlier.out / FILES["council_tax"], dtype=str)
    alone_ct = pd.read_csv(alone.out / FILES["council_tax"], dtype=str)
    assert earlier["account_ref"].tolist() == alone_ct["account_ref"].tolist()
    assert pd.to_datetime(earlier["account_start"]).max() <= REFERENCE_DATE - pd.DateOffset(months=12)
    later = pd.read_csv(a.later.out / FILES["council_tax"], dtype=str)
    assert pd.to_datetime(later["account_start"]).max() <= REFERENCE_DATE
    pd.testing.assert_frame_equal(pd.read_parquet(a.earlier.truth_path), pd.read_parquet(alone.truth_path))
    pd.testing.assert_frame_equal(pd.read_parquet(a.later.truth_path), pd.read_parquet(b.later.truth_path))
    pd.testing.assert_frame_equal(pd.read_parquet(a.events_path), pd.read_parquet(b.events_path))
    c = generate_pair(people=300, out=tmp_path / "c", seed=10)
    assert not pd.read_parquet(a.events_path).equals(pd.read_parquet(c.events_path))


def test_both_dates_have_six_extracts_a_config_and_a_truth_that_matches_them(pair, extracts):
    for written in (pair.earlier, pair.later):
        assert {p.name for p in written.out.iterdir()} == set(FILES.values()) | {"council.yaml", "truth.parquet"}
        truth = pd.read_parquet(written.truth_path)
        assert list(truth.columns) == ["source", "record_id", "person_id"]
        assert not truth.duplicated(["source", "record_id"]).any()
        assert len(truth) == written.n_records
    for system, (_, after) in extracts.items():
        assert after["person_id"].notna().all(), system  # every record in the file is in the truth


def test_events_truth_has_one_row_per_event_dated_between_the_two_extracts(events):
    assert list(events.columns) == ["person_id", "event", "event_date", "details", "shown_by", "shown"]
    assert set(events["event"]) == set(EVENTS)
    assert not events.duplicated(["person_id", "event"]).any()
    assert events["event_date"].between(EARLIER, REFERENCE_DATE).all()
    moved = events[events["event"] == "moved"]["details"].map(json.loads)
    assert all(d["from_uprn"] != d["to_uprn"] for d in moved)
    assert not (people_with(events, "died") & people_with(events, "left"))


def test_a_record_id_never_passes_to_another_person(extracts):
    for system, (before, after) in extracts.items():
        both = before.index.intersection(after.index)
        assert (before.loc[both, "person_id"] == after.loc[both, "person_id"]).all(), system


# Records nothing happened to ---------------------------------------------------------------

def test_people_nothing_happened_to_keep_their_record_ids_and_almost_every_value(extracts, events):
    eventful = set(events["person_id"])
    same = []
    for system, (before, after) in extracts.items():
        quiet = before[~before["person_id"].isin(eventful)]
        kept = quiet.index.intersection(after.index)
        # the rest aged out: most pupils leave school at 17, the rest at 19
        assert len(kept) / len(quiet) > (0.9 if system == "school_census" else 0.98), system
        same.append((quiet.loc[kept] == after.loc[kept, quiet.columns]).all(axis=1))
    assert 0.95 < pd.concat(same).mean() < 1.0  # a few corrected or re-keyed


# Every event shows, as each system would show it -----------------------------------------

def test_movers_get_a_new_council_tax_account_at_the_new_home_and_the_old_one_closes(extracts, events):
    before, after = extracts["council_tax"]
    moves = events[events["event"] == "moved"].assign(to=lambda e: e["details"].map(lambda d: json.loads(d)["to_uprn"]))
    held = before[before["person_id"].isin(moves["person_id"])]
    closed = ~held.index.isin(after.index)
    assert abs(closed.mean() - RESPONSES["council_tax"].moved) < 0.1
    new = after[after["person_id"].isin(held["person_id"]) & ~after.index.isin(before.index)]
    at_new_home = new["uprn"].isin(moves["to"]) | (new["uprn"] == "")
    assert len(new) >= 0.8 * held["person_id"].nunique() * RESPONSES["council_tax"].moved and at_new_home.mean() > 0.95
    assert (pd.to_datetime(new["account_start"]) > EARLIER).all()


@pytest.mark.parametrize("system", ["electoral_register", "housing_benefit", "school_census"])
def test_movers_records_show_the_new_address_in_most_systems_and_the_old_one_in_a_few(extracts, events, system):
    before, after = extracts[system]
    kept, changed = kept_and_changed(before, after, people_with(events, "moved"), columns(system, ADDRESS))
    assert kept >= 5
    assert abs(changed / kept - RESPONSES[system].moved) < 0.25


def test_the_dead_are_removed_from_the_register_and_marked_or_removed_in_care_and_council_tax(extracts, events):
    died = people_with(events, "died")
    before, after = extracts["electoral_register"]
    on_register = before[before["person_id"].isin(died)]
    assert on_register.index.isin(after.index).mean() < 0.3
    for system, name in (("council_tax", "liable_party"), ("adult_social_care", "last_name")):
        before, after = extracts[system]
        theirs = before[before["person_id"].isin(died)]
        still = after.loc[theirs.index.intersection(after.index)]
        assert len(theirs) >= 5 and len(still) < len(theirs), system
        marked = still[name].str.contains(r"Deceased|Exors", case=False)
        assert marked.mean() > 0.7, system  # the rest not yet heard of


def test_the_truth_says_which_events_the_later_extracts_show(extracts, events):
    """`shown_by` names exactly the systems whose later records show the event, checked against
    the extracts themselves: a marked death, the new surname, the new address, no record left."""
    def shown_by(event: str) -> pd.Series:
        rows = events[events["event"] == event]
        return rows.set_index("person_id")["shown_by"].map(lambda s: set(filter(None, s.split(","))))

    died = shown_by("died")
    for system, name in (("council_tax", "liable_party"), ("adult_social_care", "last_name")):
        after = extracts[system][1]
        marked = set(after.loc[after["person_id"].isin(died.index)
                               & after[name].str.contains(r"Deceased|Exors", case=False), "person_id"])
        assert marked == {p for p, s in died.items() if system in s}, system
    assert not any("electoral_register" in s for s in died)  # the register removes the dead unmarked

    renamed = events[events["event"] == "name_changed"].set_index("person_id")
    new_surname = renamed["details"].map(lambda d: json.loads(d)["to"].upper())
    after = extracts["housing_benefit"][1]
    theirs = after[after["person_id"].isin(new_surname.index)]
    showing = {p for p, v in zip(theirs["person_id"], theirs["surname"]) if new_surname[p] in str(v).upper()}
    claimed = {p for p, s in shown_by("name_changed").items() if "housing_benefit" in s}
    assert claimed <= showing and len(showing - claimed) <= 0.1 * max(len(showing), 1)  # a noisy retype may coincide

    moved = events[events["event"] == "moved"].set_index("person_id")
    to_uprn = moved["details"].map(lambda d: json.loads(d)["to_uprn"])
    before, after = extracts["council_tax"]
    movers = after[after["person_id"].isin(to_uprn.index)]
    at_new_home = set(movers.loc[movers["uprn"] == movers["person_id"].map(to_uprn), "person_id"])
    opened = set(movers.loc[~movers.index.isin(before.index), "person_id"])  # some with the UPRN left blank
    claimed = {p for p, s in shown_by("moved").items() if "council_tax" in s}
    assert at_new_home <= claimed <= opened and len(at_new_home) > 0.7 * len(claimed)

    held = set().union(*(set(after["person_id"]) for _, after in extracts.values()))
    left = events[events["event"] == "left"]
    assert (left["shown"] == ~left["person_id"].isin(held)).all()
    shares = events.groupby("event")["shown"].mean()
    assert 0.4 < shares["died"] < 0.9 and 0.5 < shares["moved"] < 1 and shares["new_resident"] > 0.5


def test_married_women_take_the_new_surname_in_some_systems_not_others(extracts, events):
    renamed = events[events["event"] == "name_changed"]
    new_surname = renamed.set_index("person_id")["details"].map(lambda d: json.loads(d)["to"].upper())
    shown = []
    for system in ("electoral_register", "housing_benefit", "adult_social_care", "council_tax"):
        before, after = extracts[system]
        column = columns(system, ("last_name", "full_name"))[0]
        theirs = after[after["person_id"].isin(new_surname.index) & after.index.isin(before.index)]
        shown += [new_surname[p] in str(name).upper() for p, name in zip(theirs["person_id"], theirs[column])]
    assert len(shown) >= 10 and 0.4 < np.mean(shown) < 0.95


def test_leavers_disappear_from_most_systems(extracts, events):
    left = people_with(events, "left")
    gone = [~before[before["person_id"].isin(left)].index.isin(after.index) for before, after in extracts.values()]
    assert np.concatenate(gone).mean() > 0.7


def test_new_residents_appear_under_new_record_ids(extracts, events):
    new = people_with(events, "new_resident")
    arrived_on_register = 0
    for system, (before, after) in extracts.items():
        theirs = after[after["person_id"].isin(new)]
        assert not theirs.index.isin(before.index).any(), system
        assert not before["person_id"].isin(new).any(), system
        arrived_on_register += len(theirs) if system == "electoral_register" else 0
    assert arrived_on_register > 0.5 * len(new) * 0.5  # most arrivals are adults, and most adults register


def test_turning_18_ends_the_attainer_date_of_birth_on_the_register(extracts, events):
    before, after = extracts["electoral_register"]
    turned = people_with(events, "turned_18")
    attainers = before[before["person_id"].isin(turned) & (before["attainer_dob"] != "")]
    still = after.loc[attainers.index.intersection(after.index)]
    assert len(still) >= 5 and (still["attainer_dob"] == "").mean() > 0.9
    unregistered = turned - set(before["person_id"])
    joined = unregistered & set(after["person_id"])
    assert len(joined) >= 0.5 * len(unregistered)


# Rates ------------------------------------------------------------------------------------

def test_event_rates_are_those_of_an_english_borough(events):
    share = events["event"].value_counts() / PEOPLE
    assert 0.03 < share["moved"] < 0.09        # within-borough moves (~10% change address in all)
    assert 0.02 < share["left"] < 0.08
    assert 0.003 < share["died"] < 0.025       # ~1% a year, concentrated in the old
    assert 0.001 < share["name_changed"] < 0.01
    assert 0.004 < share["turned_18"] < 0.03
    born = events["details"].str.contains('"born"').sum() / PEOPLE
    assert 0.005 < born < 0.02 and 0.02 < share["new_resident"] - born < 0.08


def test_a_shorter_gap_has_fewer_events(tmp_path):
    half = pd.read_parquet(generate_pair(people=1000, out=tmp_path / "six", seed=2, months=6).events_path)
    full = pd.read_parquet(generate_pair(people=1000, out=tmp_path / "twelve", seed=2, months=12).events_path)
    assert len(half) < 0.75 * len(full)
    assert half["event_date"].min() >= REFERENCE_DATE - pd.DateOffset(months=6)

"""encode / link-encoded (CONTRACT §8): encodings that hold no clear value, resist recovery by
frequency, depend on the shared key, and still link two boroughs' records."""

from __future__ import annotations

import json

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from residentview.cli import main
from residentview.config import load_config
from residentview.errors import DataError
from residentview.pprl import encode_records, link_encoded, read_encoded, write_encoded
from residentview.pprl.encoding import bloom_filters, filters
from residentview.pprl.linking import dice
from residentview.sources import read_sources
from residentview.standardise import standardise
from residentview.synthetic import generate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from metrics import pairwise_scores  # noqa: E402

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"
BOROUGH_A = {"council_tax", "school_census", "adult_social_care"}


@pytest.fixture(scope="module")
def council(tmp_path_factory):
    """A synthetic council of 1,500 people: its folder, standardised records and truth."""
    folder = tmp_path_factory.mktemp("pprl") / "council"
    written = generate(people=1500, out=folder, seed=7)
    config = load_config(written.config_path)
    raw, _ = read_sources(config)
    records = standardise(raw, config).records
    truth = pd.read_parquet(folder / "truth.parquet")
    return folder, records, truth


def _boroughs(records: pd.DataFrame, key: bytes = KEY):
    in_a = records["source"].isin(BOROUGH_A)
    return (encode_records(records[in_a], key, "borough_a"), encode_records(records[~in_a], key, "borough_b"))


def _key_file(folder: Path, key: bytes = KEY, mode: int = 0o600) -> Path:
    path = folder / f"shared-{mode:o}.key"
    path.write_bytes(key + b"\n")
    os.chmod(path, mode)
    return path


def _borough_config(folder: Path, name: str, sources: set[str]) -> Path:
    whole = yaml.safe_load((folder / "council.yaml").read_text())
    config = {"name": name, "sources": {s: spec for s, spec in whole["sources"].items() if s in sources}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _recovered_by_frequency(patterns: pd.Series, names: pd.Series) -> float:
    """The attack: rank the encodings by how often each exact pattern occurs, rank the names of a
    reference population (here the very names encoded: the attacker's best case) the same way,
    and pair them off rank by rank. The share of records whose name is then guessed right."""
    pattern_rank = patterns.map(patterns.value_counts().rank(method="first", ascending=False))
    name_order = names.value_counts().index
    guess = pattern_rank.map(lambda r: name_order[int(r) - 1] if r <= len(name_order) else None)
    return float((guess == names).mean())


def test_frequency_alone_recovers_names_from_a_field_filter_but_not_from_the_encodings(council):
    _, records, _ = council
    people = records[records["first_name_key"].notna()].reset_index(drop=True)
    names = people["first_name_key"]
    # The control: a filter of the first name alone, keyed and diffused like the real ones. Equal
    # names give equal filters, so ranking them by frequency gives the names away.
    alone = people[["source", "record_id", "first_name_key"]]
    field_filter = pd.Series([row.tobytes() for row in bloom_filters(alone, KEY, "record")])
    assert _recovered_by_frequency(field_filter, names) > 0.5
    # The encodings hold every field in one filter: an exact pattern is one person's, not a name's.
    encoded = encode_records(people, KEY, "borough_a").frame["bloom_record"]
    assert _recovered_by_frequency(encoded, names) < 0.05
    # …nor do the most frequent names come out on top: of the ten commonest, at most one is guessed.
    top = names.value_counts().index[:10]
    pattern_rank = encoded.map(encoded.value_counts().rank(method="first", ascending=False))
    guessed = {names[pattern_rank == rank].mode().iat[0] == top[rank - 1] for rank in range(1, 11)
               if (pattern_rank == rank).any()} - {False}
    assert len(guessed) <= 1


def _recovered_by_grouping(words: np.ndarray, names: pd.Series, cut: float) -> float:
    """The attack that noise does not stop: join filters whose Dice reaches `cut` into groups
    (one name's records, if the filters are of a name), rank the groups by size and the names by
    frequency, ties broken at random (the attacker knows neither order), and pair them off."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    left, right = np.triu_indices(len(words), 1)
    close = dice(words, left, right) >= cut
    graph = coo_matrix((np.ones(close.sum()), (left[close], right[close])), shape=(len(words),) * 2)
    _, group = connected_components(graph, directed=False)
    rng = np.random.default_rng(0)
    sizes = pd.Series(group).value_counts()
    sizes = sizes.iloc[rng.permutation(len(sizes))].sort_values(ascending=False, kind="stable")
    rank = pd.Series(group).map(pd.Series(np.arange(len(sizes)), index=sizes.index))
    common = names.value_counts()
    common = common.iloc[rng.permutation(len(common))].sort_values(ascending=False, kind="stable").index
    guess = rank.map(lambda r: common[r] if r < len(common) else None)
    return float((guess.to_numpy() == names.to_numpy()).mean())


def test_grouping_alike_name_parts_recovers_first_names_only_from_a_first_name_part(council, monkeypatch):
    from residentview.pprl import encoding

    _, records, _ = council
    people = records[records["first_name_key"].notna() & records["last_name_key"].notna()]
    people = people.sample(1000, random_state=1).reset_index(drop=True)
    names = people["first_name_key"]
    # No part is ever equal to another (BLIP noise): counting exact patterns finds nothing.
    part = encode_records(people, KEY, "borough_a").frame["part_name"]
    assert part.nunique() == len(part)
    assert _recovered_by_frequency(part, names) < 0.05
    # The control: a part of the first name alone, balanced and noisy as the real one, gives
    # many first names away to grouping by similarity…
    monkeypatch.setattr(encoding, "PARTS", {"name": ("first_name",)})
    alone, _ = filters(encode_records(people, KEY, "borough_a"), "name", "part", "part_bits")
    assert max(_recovered_by_grouping(alone, names, cut) for cut in (0.9, 0.92, 0.94)) > 0.15
    # …the part of the whole name does not: one group per person, not per first name.
    monkeypatch.undo()
    whole, _ = filters(encode_records(people, KEY, "borough_a"), "name", "part", "part_bits")
    assert max(_recovered_by_grouping(whole, names, cut) for cut in (0.86, 0.9, 0.92, 0.94)) < 0.05


def test_the_other_names_do_not_give_names_away_by_frequency_or_grouping(council):
    # the swapped name and the name known by (middle name and surname) are whole names too,
    # balanced and noisy: neither their exact patterns nor groups of alike filters give away
    # the first names, middle names or surnames they hold
    _, records, _ = council
    people = records[records["first_name_key"].notna() & records["last_name_key"].notna()]
    people = people.sample(1000, random_state=1).reset_index(drop=True)
    encoded = encode_records(people, KEY, "borough_a")
    middle = people["middle_names_key"].str.split(" ").str[0]
    for variant, truth in (("swapped", [people["first_name_key"], people["last_name_key"]]),
                           ("known_as", [middle, people["last_name_key"]])):
        column = encoded.frame[f"part_name_{variant}"]
        held = column.notna().to_numpy()
        assert held.sum() >= 100 and column[held].nunique() == held.sum()
        words, _ = filters(encoded, f"name_{variant}", "part", "part_bits")
        for names in truth:
            names = names[held].reset_index(drop=True)
            assert _recovered_by_frequency(column[held].reset_index(drop=True), names) < 0.05
            assert max(_recovered_by_grouping(words[held], names, cut) for cut in (0.86, 0.9, 0.94)) < 0.05
    # a record's name and known-by filters share its surname's bits: ANDed, they still do not
    # give surnames away (measured: a filter of the surname alone gives 8% at a cut of 0.9)
    name, _ = filters(encoded, "name", "part", "part_bits")
    known, _ = filters(encoded, "name_known_as", "part", "part_bits")
    held = encoded.frame["part_name_known_as"].notna().to_numpy()
    surnames = people["last_name_key"][held].reset_index(drop=True)
    assert max(_recovered_by_grouping(name[held] & known[held], surnames, cut) for cut in (0.8, 0.86, 0.9, 0.94)) < 0.05


def test_initial_masks_and_tokens_do_not_give_names_away_by_frequency(council):
    _, records, _ = council
    people = records[records["first_name_key"].notna()].reset_index(drop=True)
    frame = encode_records(people, KEY, "borough_a").frame
    # a bucket of initials is shared by many names: the commonest mask is not the commonest name's
    assert _recovered_by_frequency(frame["initials"], people["first_name_key"]) < 0.05
    # the address token's groups are households, not names
    assert _recovered_by_frequency(frame["token_address"].astype(str), people["last_name_key"]) < 0.05
    # the sex token (recorded, by title, or by a first name the organisation learned) has two
    # values and the missing one: it says a record's sex, never its name; ranking it finds no
    # more names than calling every record by the three commonest names would
    assert frame["token_sex"].nunique() == 2
    commonest = people["first_name_key"].value_counts().head(3).sum() / len(people)
    recovered = _recovered_by_frequency(frame["token_sex"].astype(str), people["first_name_key"])
    assert recovered <= commonest and recovered < 0.1


def test_no_clear_value_from_the_input_is_in_the_encoded_file(council, tmp_path):
    _, records, _ = council
    path = write_encoded(encode_records(records, KEY, "borough_a"), tmp_path / "a.parquet")
    table = pq.read_table(path)
    assert set(table.column_names) == {"source", "record_id", "bloom_record", "part_name", "part_name_swapped",
                                       "part_name_known_as", "initials", "first_initial_only", "age_group"} | {
        c for c in table.column_names if c.startswith(("block_", "token_"))}
    assert set(table.column("age_group").drop_null().to_pylist()) <= {"child", "adult"}
    clear = set()
    for column in ("first_name", "last_name", "first_name_key", "last_name_key", "postcode", "address", "uprn",
                   "nhs_number", "ni_number", "email", "phone", "id_upn"):
        clear |= {v for v in records[column].dropna().astype(str) if len(v) >= 5}
    dob = pd.to_datetime(records["date_of_birth"]).dropna()
    clear |= set(dob.dt.strftime("%Y-%m-%d")) | set(dob.dt.strftime("%d/%m/%Y")) | set(dob.dt.strftime("%Y%m%d"))
    raw = path.read_bytes()
    readable = " ".join([
        " ".join(table.column("source").to_pylist()), " ".join(table.column("record_id").to_pylist()),
        str(table.schema.metadata),
    ])
    found = [v for v in clear if v.encode("utf-8") in raw or v in readable]
    assert found == []


def test_the_same_key_gives_the_same_encodings_and_another_key_others(council):
    _, records, _ = council
    first, again = encode_records(records, KEY, "a"), encode_records(records, KEY, "a")
    other = encode_records(records, OTHER_KEY, "a")
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert first.metadata["key_fingerprint"] != other.metadata["key_fingerprint"]
    rows = np.arange(len(records))
    same, _ = filters(first, "record")
    changed, _ = filters(other, "record")
    both = np.concatenate([same, changed])
    across = dice(both, rows, rows + len(records))  # a record against itself under the other key
    assert np.median(across) < 0.6  # as far apart as two strangers: nothing carries over
    block = [c for c in first.frame.columns if c.startswith("block_")]
    assert not (first.frame[block].stack() == other.frame[block].stack()).any()


def test_two_boroughs_link_with_precision_and_recall(council):
    _, records, truth = council
    a, b = _boroughs(records)
    result = link_encoded(a, b)
    links = result.links
    assert len(links) == len(records) and not links.duplicated(["source", "record_id"]).any()
    assert list(links.columns[:5]) == ["organisation", "source", "record_id", "resident_id", "match_probability"]
    assert links["match_probability"].between(0, 1).all()
    merged = truth.astype(str).merge(links, on=["source", "record_id"])
    scores = pairwise_scores(merged["resident_id"], merged["person_id"])
    # measured 0.96 / 0.70 at 10k records (BENCHMARKS.md); this small council is a little easier
    assert scores["precision"] >= 0.93
    assert scores["f1"] >= 0.75
    assert result.summary["residents_in_both"] > 100


def test_files_under_different_keys_are_refused(council):
    _, records, _ = council
    in_a = records["source"].isin(BOROUGH_A)
    a = encode_records(records[in_a], KEY, "borough_a")
    b = encode_records(records[~in_a], OTHER_KEY, "borough_b")
    with pytest.raises(DataError, match="different keys"):
        link_encoded(a, b)


def test_files_with_other_parameters_are_refused(council):
    _, records, _ = council
    a, b = _boroughs(records.head(200))
    b.metadata["bits"] = 2048
    with pytest.raises(DataError, match=r"different parameters \(bits\)"):
        link_encoded(a, b)


def test_a_file_not_written_by_encode_is_refused(tmp_path):
    pd.DataFrame({"source": ["x"], "record_id": ["1"]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(DataError, match="not an encoded file"):
        read_encoded(tmp_path / "plain.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_encoded(tmp_path / "junk.parquet")


def test_an_empty_encoded_file_is_refused(council, tmp_path):
    _, records, _ = council
    encoded = encode_records(records.head(5), KEY, "a")
    encoded.frame = encoded.frame.iloc[:0]
    write_encoded(encoded, tmp_path / "empty.parquet")
    with pytest.raises(DataError, match="no records"):
        read_encoded(tmp_path / "empty.parquet")


def test_encode_and_link_encoded_on_the_command_line(council, tmp_path):
    folder, records, _ = council
    key = _key_file(tmp_path)
    outputs = []
    for name, sources in (("borough_a", BOROUGH_A), ("borough_b", set(records["source"]) - BOROUGH_A)):
        out = tmp_path / f"{name}.parquet"
        result = _invoke("encode", _borough_config(folder, name, sources), "--key-file", key, "--out", out)
        assert result.exit_code == 0, result.output
        assert KEY.decode() not in result.output
        outputs.append(out)
    result = _invoke("link-encoded", *outputs, "--out", tmp_path / "linked")
    assert result.exit_code == 0, result.output
    assert "in both files" in result.output
    links = pd.read_parquet(tmp_path / "linked" / "resident_links.parquet")
    assert len(links) == len(records)
    assert (tmp_path / "linked" / "pprl_summary.json").is_file()
    assert KEY.decode() not in (tmp_path / "linked" / "pprl_summary.json").read_text()
    # The audit log says who linked which encodings, under which key's fingerprint; no record ids.
    log = (tmp_path / "linked" / "audit.jsonl").read_text()
    entry = json.loads(log.splitlines()[-1])
    assert entry["event"] == "link-encoded" and entry["residents"] == links["resident_id"].nunique()
    assert KEY.decode() not in log and not any(str(r) in log for r in links["record_id"].head(50))
    assert _invoke("audit", "verify", tmp_path / "linked").exit_code == 0


def test_link_encoded_refuses_mismatched_keys_in_one_line(council, tmp_path):
    _, records, _ = council
    in_a = records["source"].isin(BOROUGH_A)
    write_encoded(encode_records(records[in_a], KEY, "borough_a"), tmp_path / "a.parquet")
    write_encoded(encode_records(records[~in_a], OTHER_KEY, "borough_b"), tmp_path / "b.parquet")
    result = _invoke("link-encoded", tmp_path / "a.parquet", tmp_path / "b.parquet", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "different keys" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("problem", ["readable by others", "too short", "in the config"])
def test_encode_refuses_an_unsafe_key_file(council, tmp_path, problem):
    folder, _, _ = council
    config = _borough_config(folder, "borough_a", BOROUGH_A)
    if problem == "readable by others":
        key = _key_file(tmp_path, mode=0o644)
    elif problem == "too short":
        key = _key_file(tmp_path, key=b"short")
    else:
        key = _key_file(tmp_path)
        config = folder / "borough_a_with_key.yaml"  # beside the extracts its paths name
        config.write_text(config.with_name("borough_a.yaml").read_text() + f"# {KEY.decode()}\n")
    out = tmp_path / "a.parquet"
    result = _invoke("encode", config, "--key-file", key, "--out", out)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def _people(*rows: dict) -> pd.DataFrame:
    """Standardised records, as `standardise` gives them, from a few fields each."""
    columns = ["source", "record_id", "title", "first_name_key", "middle_names_key", "last_name_key", "date_of_birth",
               "sex", "postcode",
               "house_number", "flat_number", "building_name", "uprn", "nhs_number", "record_date"]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns).astype(object)
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
    frame["record_date"] = pd.to_datetime(frame["record_date"])
    frame["first_name_phonetic"], frame["last_name_phonetic"] = frame["first_name_key"], frame["last_name_key"]
    frame["is_person"] = True
    return frame


def _residents(left: list[dict], right: list[dict]) -> dict[str, str]:
    """record_id -> resident_id, linking borough A's records `left` with borough B's `right`."""
    a = encode_records(_people(*left), KEY, "borough_a")
    b = encode_records(_people(*right), KEY, "borough_b")
    links = link_encoded(a, b).links
    return dict(zip(links["record_id"], links["resident_id"]))


HOME = {"postcode": "WF1 2AB", "house_number": "12", "uprn": "10001"}
CHILD = {"source": "school_census", "record_id": "p1", "first_name_key": "JOHN", "last_name_key": "SMITH",
         "date_of_birth": "2015-03-01", "sex": "M", "postcode": "WF1 2AB", "house_number": "12",
         "record_date": "2026-09-01"}


def test_a_child_and_an_adult_of_one_name_at_one_address_are_two_residents():
    payer = {"source": "council_tax", "record_id": "c1", "first_name_key": "JOHN", "last_name_key": "SMITH", **HOME}
    # nothing says the payer is an adult: one name, one home, so the records link…
    assert len(set(_residents([CHILD], [payer]).values())) == 1
    # …but a council-tax payer titled MR is an adult, and the pupil a child of 11: two people.
    assert len(set(_residents([CHILD], [{**payer, "title": "MR"}]).values())) == 2


def test_dates_of_birth_no_typo_explains_keep_namesakes_apart_and_a_typo_does_not():
    father = {"source": "adult_social_care", "record_id": "a1", "first_name_key": "JOHN", "last_name_key": "SMITH",
              "date_of_birth": "1950-03-04", **HOME}
    son = {**father, "source": "housing_benefit", "record_id": "h1", "date_of_birth": "1980-07-09"}
    swapped = {**son, "date_of_birth": "1950-04-03"}  # day and month swapped
    assert len(set(_residents([father], [son]).values())) == 2
    assert len(set(_residents([father], [swapped]).values())) == 1


def test_a_shared_nhs_number_links_records_whose_encodings_alone_would_not():
    before = {"source": "adult_social_care", "record_id": "a1", "first_name_key": "KATHERINE",
              "last_name_key": "OBRIEN", "date_of_birth": "1961-05-17", "postcode": "LS6 2LE", "house_number": "4"}
    after = {**before, "source": "children_services", "record_id": "k1", "last_name_key": "OBRYAN",
             "postcode": "WF7 4QH", "house_number": "31"}
    assert len(set(_residents([before], [after]).values())) == 2  # moved, and the surname mistyped
    numbered = [{**before, "nhs_number": "9434765919"}], [{**after, "nhs_number": "9434765919"}]
    assert len(set(_residents(*numbered).values())) == 1
    # two NHS numbers: two people, however alike
    other = [{**before, "nhs_number": "9434765919"}], [{**before, "source": "children_services", "record_id": "k1",
                                                        "nhs_number": "4010232137"}]
    assert len(set(_residents(*other).values())) == 2


def test_an_initial_that_fits_two_people_at_one_address_links_to_neither():
    initial = {"source": "council_tax", "record_id": "c1", "first_name_key": "J", "last_name_key": "SMITH", **HOME}
    john = {"source": "electoral_register", "record_id": "e1", "first_name_key": "JOHN", "last_name_key": "SMITH",
            **HOME}
    judith = {**john, "record_id": "e2", "first_name_key": "JUDITH"}
    alone = _residents([initial], [john])
    assert alone["c1"] == alone["e1"]
    both = _residents([initial], [john, judith])
    assert len({both["c1"], both["e1"], both["e2"]}) == 3


def test_equal_values_give_equal_tokens_under_a_key_of_their_own():
    from residentview.pprl.encoding import exact_tokens

    records = _people({"source": "s", "record_id": "1", "nhs_number": "9434765919"},
                      {"source": "s", "record_id": "2", "nhs_number": "9434765919"},
                      {"source": "s", "record_id": "3"})
    records["phone"] = ["9434765919", None, None]
    tokens = exact_tokens(records, KEY)
    nhs = tokens["token_nhs_number"]
    assert nhs[0] == nhs[1] and pd.isna(nhs[2])
    assert tokens["token_phone"][0] != nhs[0]  # the same digits as a phone number: another token
    assert "9434765919" not in tokens.astype(str).to_string()


def test_link_encoded_refuses_a_file_of_another_encode_version_in_one_line(council, tmp_path):
    _, records, _ = council
    a, b = _boroughs(records.head(300))
    write_encoded(a, tmp_path / "a.parquet")
    b.metadata["method"] = "residentview-clk-3"
    write_encoded(b, tmp_path / "b.parquet")
    result = _invoke("link-encoded", tmp_path / "a.parquet", tmp_path / "b.parquet", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "residentview-clk-3" in result.output and "encode both sides again" in result.output
    assert not (tmp_path / "out").exists()


def test_namesakes_at_two_known_places_do_not_link_on_their_names_alone():
    # no postcodes: the record filters hold little but the names, alike for any namesakes
    here = {"source": "council_tax", "record_id": "c1", "first_name_key": "SUSAN", "last_name_key": "HUGHES",
            "house_number": "4", "uprn": "10001"}
    there = {**here, "source": "electoral_register", "record_id": "e1", "house_number": "18", "uprn": "20002"}
    assert len(set(_residents([here], [there]).values())) == 2
    assert len(set(_residents([here], [{**there, "uprn": "10001"}]).values())) == 1
    # where one place is unknown nothing says they live apart
    assert len(set(_residents([here], [{**there, "uprn": None}]).values())) == 1


def test_a_nickname_at_one_address_links_and_a_household_member_does_not():
    sally = {"source": "council_tax", "record_id": "c1", "first_name_key": "SALLY", "last_name_key": "BELL", **HOME}
    sarah = {**sally, "source": "electoral_register", "record_id": "e1", "first_name_key": "SARAH"}
    susan = {**sarah, "record_id": "e2", "first_name_key": "SUSAN"}
    assert len(set(_residents([sally], [sarah]).values())) == 1  # SALLY is a short form of SARAH
    assert len(set(_residents([sally], [susan]).values())) == 2


def test_swapped_names_and_a_name_known_by_link_at_one_address():
    james = {"source": "adult_social_care", "record_id": "a1", "first_name_key": "JAMES", "last_name_key": "WALL",
             "date_of_birth": "1978-07-10", **HOME}
    swapped = {"source": "electoral_register", "record_id": "e1", "first_name_key": "WALL", "last_name_key": "JAMES",
               **HOME}
    assert len(set(_residents([james], [swapped]).values())) == 1
    # MARK GORDON PAYNE on the register is known as GORDON on the council tax
    register = {"source": "electoral_register", "record_id": "e1", "first_name_key": "MARK",
                "middle_names_key": "GORDON", "last_name_key": "PAYNE", **HOME}
    gordon = {"source": "council_tax", "record_id": "c1", "first_name_key": "GORDON", "last_name_key": "PAYNE", **HOME}
    assert len(set(_residents([gordon], [register]).values())) == 1
    # without the middle name GORDON and MARK are two people of one household
    assert len(set(_residents([gordon], [{**register, "middle_names_key": None}]).values())) == 2


def test_a_rare_name_links_where_one_place_is_unknown_and_a_common_one_needs_more():
    # no postcode or UPRN on the care record: the house number and the name are all the place
    care = {"source": "adult_social_care", "record_id": "a1", "first_name_key": "ZAINAB", "last_name_key": "BIBI",
            "date_of_birth": "1949-07-01", "house_number": "19"}
    register = {"source": "electoral_register", "record_id": "e1", "first_name_key": "ZAINAB", "last_name_key": "BIBI",
                "postcode": "LS4 0TN", "house_number": "19", "uprn": "10003"}
    assert len(set(_residents([care], [register]).values())) == 1
    # five more ZAINAB BIBIs elsewhere: the name is common here, and the filters alone decide
    others = [{**register, "record_id": f"e{i}", "postcode": f"WF{i} 1AA", "house_number": str(i), "uprn": f"2000{i}"}
              for i in range(2, 7)]
    linked = _residents([care], [register, *others])
    assert linked["a1"] != linked["e1"]


def test_each_side_learns_first_names_sexes_from_its_own_records():
    from residentview.pprl.encoding import name_sexes

    said = _people({"source": "housing_benefit", "record_id": "h1", "title": "MS", "first_name_key": "RACHEL",
                    "last_name_key": "JONES"},
                   {"source": "housing_benefit", "record_id": "h2", "title": "MRS", "first_name_key": "ANNE",
                    "middle_names_key": "RACHEL", "last_name_key": "BROWN"},
                   {"source": "housing_benefit", "record_id": "h3", "title": "MR", "first_name_key": "SAM",
                    "last_name_key": "HILL"},
                   {"source": "children_services", "record_id": "k1", "sex": "F", "first_name_key": "SAM",
                    "last_name_key": "COLE"})
    sexes = name_sexes(said)
    # RACHEL as a first name and as a middle name, both of women; SAM of a man and a girl: unknown
    assert sexes.get("RACHEL") == "F" and "SAM" not in sexes and "ANNE" not in sexes  # ANNE: one record


def test_a_title_keeps_an_initial_from_a_first_name_of_the_other_sex():
    initial = {"source": "council_tax", "record_id": "c1", "title": "MR", "first_name_key": "S",
               "last_name_key": "NOLAN", **HOME}
    steve = {"source": "electoral_register", "record_id": "e1", "first_name_key": "STEVE", "last_name_key": "NOLAN",
             **HOME}
    rachel = {**steve, "record_id": "e2", "first_name_key": "RACHEL"}  # RACHEL may be written S (SHELLY)
    # the register states no sex: S fits STEVE and RACHEL alike, so it links to neither
    unknown = _residents([initial], [steve, rachel])
    assert len({unknown["c1"], unknown["e1"], unknown["e2"]}) == 3
    # the same borough's housing benefit says RACHEL is a woman's name: MR S is STEVE
    women = [{"source": "housing_benefit", "record_id": f"h{i}", "title": "MS", "first_name_key": "RACHEL",
              "last_name_key": surname, "postcode": "LS6 1AA", "house_number": str(i)}
             for i, surname in enumerate(("JONES", "BROWN"))]
    known = _residents([initial], [steve, rachel, *women])
    assert known["c1"] == known["e1"] != known["e2"]

"""The synthetic council extracts: six systems in their own formats, valid identifiers, known truth,
and a noise catalogue whose every error does what it says."""

from __future__ import annotations

import re

import jellyfish
import numpy as np
import pandas as pd
import pytest

from residentview.config import load_config
from residentview.sources import read_sources
from residentview.synthetic import FILES, NoiseRates, generate
from residentview.synthetic import noise
from residentview.synthetic.identifiers import nhs_check_digit_ok, ni_numbers, nhs_numbers, upn_numbers

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][ABD-HJLNP-UW-Z]{2}$")


@pytest.fixture(scope="module")
def extracts(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return generate(people=1500, out=out, seed=3)


@pytest.fixture(scope="module")
def raw(extracts):
    frame, _ = read_sources(load_config(extracts.config_path))
    return frame


# The extracts and their config ------------------------------------------------------------

def test_six_systems_are_written_in_their_own_file_types(extracts):
    written = sorted(p.name for p in extracts.out.iterdir())
    assert set(FILES.values()) <= set(written)
    assert {p.suffix for p in extracts.out.iterdir()} >= {".csv", ".parquet", ".xlsx"}


def test_generated_config_reads_every_source(extracts, raw):
    config = load_config(extracts.config_path)
    assert set(config.sources) == set(FILES)
    assert len(raw) == extracts.n_records
    assert raw["source"].value_counts().min() > 0


def test_generated_config_uses_list_addresses_date_formats_full_name_and_upn(extracts):
    config = load_config(extracts.config_path)
    assert config.sources["council_tax"].fields.full_name is not None
    assert len(config.sources["electoral_register"].fields.address.columns) > 1
    assert config.sources["adult_social_care"].date_format("date_of_birth") == "%d-%b-%Y"
    assert config.sources["school_census"].fields.identifiers == {"upn": "upn"}
    assert config.sources["electoral_register"].encoding == "cp1252"


def test_electoral_register_is_cp1252_not_utf8(extracts):
    data = (extracts.out / "electoral_register.csv").read_bytes()
    data.decode("cp1252")
    if any(b >= 0x80 for b in data):
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")


def test_truth_has_one_row_per_record_with_unique_ids(extracts, raw):
    truth = pd.read_parquet(extracts.truth_path)
    assert list(truth.columns) == ["source", "record_id", "person_id"]
    assert not truth.duplicated(["source", "record_id"]).any()
    merged = raw[["source", "record_id"]].merge(truth, on=["source", "record_id"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_same_seed_writes_the_same_extracts(tmp_path):
    a = generate(people=200, out=tmp_path / "a", seed=9)
    b = generate(people=200, out=tmp_path / "b", seed=9)
    pd.testing.assert_frame_equal(pd.read_parquet(a.truth_path), pd.read_parquet(b.truth_path))
    assert (a.out / "council_tax.csv").read_bytes() == (b.out / "council_tax.csv").read_bytes()


def test_people_appear_in_several_systems_and_sometimes_twice_in_one(extracts):
    truth = pd.read_parquet(extracts.truth_path)
    systems_per_person = truth.groupby("person_id")["source"].nunique()
    assert (systems_per_person >= 2).mean() > 0.3
    assert truth.duplicated(["source", "person_id"]).any()


def test_children_are_only_in_childrens_systems_and_register_dobs_are_rare(raw, extracts):
    school = raw[raw["source"] == "school_census"]
    born = pd.to_datetime(school["date_of_birth"], errors="coerce")
    assert (born.dropna().dt.year >= 2006).mean() > 0.95
    register = raw[raw["source"] == "electoral_register"]
    assert register["date_of_birth"].notna().mean() < 0.15


def test_communal_addresses_hold_many_unrelated_people(raw):
    register = raw[raw["source"] == "electoral_register"]
    per_postcode_address = register.groupby(["address"])["last_name"].nunique()
    assert per_postcode_address.max() >= 8


def test_postcodes_are_valid_uk_formats(raw):
    postcodes = raw["postcode"].dropna()
    assert postcodes.str.match(POSTCODE).mean() > 0.97  # the rest carry deliberate typos


def test_council_tax_names_are_free_text_in_several_styles(raw):
    names = raw.loc[raw["source"] == "council_tax", "full_name"].dropna()
    assert names.str.contains(",").any()                      # SMITH, John A
    assert names.str.match(r"^(Mr|Mrs|Ms|Miss|Dr) ").any()    # Mr J Smith


# Identifiers -----------------------------------------------------------------------------

def test_nhs_numbers_pass_modulus_11_and_are_distinct():
    numbers = nhs_numbers(5000, np.random.default_rng(1))
    assert nhs_check_digit_ok(numbers).all()
    assert len(set(numbers)) == 5000


def test_nhs_check_rejects_a_changed_digit():
    assert nhs_check_digit_ok(["9434765919"]).tolist() == [True]
    assert nhs_check_digit_ok(["9434765918"]).tolist() == [False]


def test_ni_numbers_use_allowed_prefixes_and_suffixes():
    numbers = ni_numbers(5000, np.random.default_rng(2))
    pattern = re.compile(r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$")
    assert all(pattern.match(n) for n in numbers)


def test_upns_carry_the_dfe_check_letter():
    letters = "ABCDEFGHJKLMNPQRTUVWXYZ"
    for upn in upn_numbers(200, np.random.default_rng(3), la_code=383):
        digits = [int(c) for c in upn[1:]]
        assert upn[0] == letters[sum(d * w for d, w in zip(digits, range(2, 14))) % 23]


# The noise catalogue -----------------------------------------------------------------------

def test_typo_is_one_edit_away_and_unmasked_values_are_untouched():
    rng = np.random.default_rng(4)
    names = np.array(["WILLIAM", "MARGARET", "Siân", "JONES"] * 50, dtype=object)
    mask = np.arange(len(names)) % 2 == 0
    damaged = noise.typos(names, mask, rng)
    assert (damaged[~mask] == names[~mask]).all()
    distances = [jellyfish.damerau_levenshtein_distance(a, b) for a, b in zip(names[mask], damaged[mask])]
    assert set(distances) <= {0, 1} and distances.count(1) > 0.8 * len(distances)


def test_nicknames_replace_formal_names_only_where_one_is_known():
    rng = np.random.default_rng(5)
    names = np.array(["William", "Margaret", "Xanthe"], dtype=object)
    out = noise.nicknames(names, np.ones(3, bool), rng)
    assert out[0] in {"Bill", "Will", "Billy", "Liam"}
    assert out[1] in {"Peggy", "Maggie", "Meg", "Margo"}
    assert out[2] == "Xanthe"


def test_accents_are_stripped_only_where_masked():
    names = np.array(["Siân", "Zoë", None], dtype=object)
    assert noise.strip_accents(names, np.array([True, False, True])).tolist() == ["Sian", "Zoë", None]


def test_dob_errors_swap_day_and_month_or_use_placeholders():
    dob = np.array(["1980-03-05"] * 4, dtype="datetime64[D]")
    swapped = noise.dob_errors(dob, NoiseRates(dob_swap=1.0, dob_digit=0, dob_placeholder=0, dob_first_january=0), np.random.default_rng(6))
    assert (swapped == np.datetime64("1980-05-03")).all()
    placeholder = noise.dob_errors(dob, NoiseRates(dob_swap=0, dob_digit=0, dob_placeholder=1.0, dob_first_january=0), np.random.default_rng(6))
    assert (placeholder == np.datetime64("1900-01-01")).all()
    january = noise.dob_errors(dob, NoiseRates(dob_swap=0, dob_digit=0, dob_placeholder=0, dob_first_january=1.0), np.random.default_rng(6))
    assert (january == np.datetime64("1980-01-01")).all()


def test_one_digit_wrong_changes_exactly_one_digit():
    values = np.array(["9434765919"] * 20, dtype=object)
    out = noise.one_digit_wrong(values, np.ones(20, bool), np.random.default_rng(7))
    assert all(sum(a != b for a, b in zip(x, "9434765919")) == 1 for x in out)


def test_noise_can_be_switched_off(tmp_path):
    quiet = NoiseRates(**{name: 0.0 for name in NoiseRates.__dataclass_fields__})
    written = generate(people=300, out=tmp_path, seed=2, noise=quiet)
    frame, _ = read_sources(load_config(written.config_path))
    school = frame[frame["source"] == "school_census"]
    truth = pd.read_parquet(written.truth_path)
    assert not truth.duplicated(["source", "person_id"]).any()
    assert school["postcode"].str.match(POSTCODE).all()


def test_flats_in_one_building_share_a_street_number_and_differ_by_flat():
    from residentview.synthetic.population import make_addresses

    addresses = make_addresses(2000, np.random.default_rng(8))
    flats = addresses.dropna(subset=["flat"])
    per_building = flats.groupby(["street", "town", "number"])["flat"].nunique()
    assert (per_building >= 2).any()
    assert not addresses.duplicated(["flat", "building", "number", "street", "town"]).any()


def test_household_members_point_at_their_own_head_and_communal_residents_at_themselves():
    from residentview.synthetic.population import make_population

    people = make_population(3000, np.random.default_rng(10), NoiseRates()).people
    heads = people.iloc[people["head_index"].to_numpy()]
    family = people["role"] != "resident"
    assert (heads["household"].to_numpy()[family] == people["household"].to_numpy()[family]).all()
    assert (heads["role"].to_numpy()[family] == "head").all()
    residents = np.flatnonzero(~family)
    assert (people["head_index"].to_numpy()[residents] == residents).all()

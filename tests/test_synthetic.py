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


@pytest.mark.parametrize("n", [300_000, 1_650_000])
def test_a_postcode_holds_about_fifteen_addresses_however_large_the_region(n):
    from residentview.synthetic.population import make_addresses

    postcodes = make_addresses(n, np.random.default_rng(3))["postcode"]
    assert 13 <= n / postcodes.nunique() <= 18
    districts = postcodes.str.split(" ").str[0].nunique()
    # A borough's fourteen districts up to a million records (their draws unchanged), more beyond
    assert districts == 14 if n < 350_000 else districts > 14


def test_household_members_point_at_their_own_head_and_communal_residents_at_themselves():
    from residentview.synthetic.population import make_population

    people = make_population(3000, np.random.default_rng(10), NoiseRates()).people
    heads = people.iloc[people["head_index"].to_numpy()]
    family = people["role"] != "resident"
    assert (heads["household"].to_numpy()[family] == people["household"].to_numpy()[family]).all()
    assert (heads["role"].to_numpy()[family] == "head").all()
    residents = np.flatnonzero(~family)
    assert (people["head_index"].to_numpy()[residents] == residents).all()


# Hostile damage (off by default) ----------------------------------------------------------

HOSTILE_FIELDS = ("heavy_typo", "name_truncated", "name_fragment", "house_number_error", "town_typo",
                  "postcode_blank", "postcode_cut", "dob_withheld")


def _frames_digest(folder) -> str:
    """One hash of everything `generate` wrote (xlsx read back: its zip carries a timestamp)."""
    import hashlib

    digest = hashlib.sha256()
    for system in sorted(FILES):
        path = folder / FILES[system]
        if path.suffix == ".parquet":
            digest.update(pd.read_parquet(path).to_csv(index=False).encode())
        elif path.suffix == ".xlsx":
            digest.update(pd.read_excel(path, dtype=str).to_csv(index=False).encode())
        else:
            digest.update(path.read_bytes())
    digest.update(pd.read_parquet(folder / "truth.parquet").to_csv(index=False).encode())
    return digest.hexdigest()


def test_default_and_scaled_rates_write_exactly_the_data_they_wrote_before_the_hostile_fields(tmp_path):
    # Hashes taken before the hostile fields existed: at 0 they must draw no random numbers.
    assert all(getattr(NoiseRates(), name) == 0 for name in HOSTILE_FIELDS)
    default = generate(people=300, out=tmp_path / "default", seed=11)
    assert _frames_digest(default.out) == "629fed613630317284a34ba44f915d3e66389f3e51a1830a3c46d73eb6d032e2"
    scaled = generate(people=300, out=tmp_path / "scaled", seed=12, noise=NoiseRates().scaled(2.0))
    assert _frames_digest(scaled.out) == "6f51cc7563ab5f1994ffc83c50c0da35c09f934a0582a84a7ebd99b281e801da"


def _one_error(system: str = "children_services", people: int = 4000, **rates):
    """A population and one system's copy of it with every error off except `rates`."""
    from residentview.synthetic.extracts import Extract
    from residentview.synthetic.population import make_population

    quiet = NoiseRates(**{name: 0.0 for name in NoiseRates.__dataclass_fields__})
    noisy = NoiseRates(**{**{name: 0.0 for name in NoiseRates.__dataclass_fields__}, **rates})
    rng = np.random.default_rng(21)
    population = make_population(people, rng, quiet)
    chosen = np.arange(people)
    return population, Extract(population, chosen, system, noisy, rng)


def test_heavy_typos_make_two_or_three_slips_at_their_rate():
    population, ex = _one_error(heavy_typo=0.3)
    true_last = population.people["last_name"].to_numpy()
    changed = ex.last != true_last
    assert abs(changed.mean() - 0.3) < 0.03
    distances = np.array([jellyfish.damerau_levenshtein_distance(a, b) for a, b in zip(true_last[changed], ex.last[changed])])
    assert distances.max() <= 3 and np.isin(distances, [2, 3]).mean() > 0.8
    assert (ex.first != population.people["first_name"].to_numpy()).mean() > 0.25


def test_heavy_typos_leave_unmasked_values_alone():
    names = np.array(["WILLIAMS", "MATTHEWS"] * 100, dtype=object)
    mask = np.arange(200) % 3 == 0
    out = noise.heavy_typos(names, mask, np.random.default_rng(22))
    assert (out[~mask] == names[~mask]).all()
    assert all(a[0] == b[0] for a, b in zip(names[mask], out[mask]))
    # Two slips can look like one (swapping LL, or dropping H and doubling T reads as H -> T).
    distances = [jellyfish.damerau_levenshtein_distance(a, b) for a, b in zip(names[mask], out[mask])]
    assert set(distances) <= {1, 2, 3} and sum(d >= 2 for d in distances) > 0.8 * len(distances)


def test_truncated_names_are_prefixes_of_two_to_four_letters():
    population, ex = _one_error(name_truncated=0.2)
    true_first = population.people["first_name"].to_numpy()
    changed = ex.first != true_first
    assert abs(changed.mean() - 0.2) < 0.03
    for short, full in zip(ex.first[changed], true_first[changed]):
        assert 2 <= len(short) <= 4 and len(short) < len(full) and full.startswith(short)


def test_name_fragments_are_three_or_four_letters_with_one_replaced():
    population, ex = _one_error(name_fragment=0.2)
    true_last = population.people["last_name"].to_numpy()
    changed = ex.last != true_last
    long_enough = pd.Series(true_last).str.len().to_numpy() >= 5
    assert abs(changed.mean() - 0.2 * long_enough.mean()) < 0.03
    for fragment, full in zip(ex.last[changed], true_last[changed]):
        assert len(fragment) in (3, 4) and fragment[0] == full[0]
        assert sum(a != b for a, b in zip(fragment, full)) == 1


def test_house_numbers_get_a_digit_changed_doubled_or_read_as_a_letter():
    population, ex = _one_error(house_number_error=0.2)
    a = population.addresses.iloc[population.people["address_id"].to_numpy()]
    true_number = a["number"].to_numpy()
    number = pd.Series(ex.street_line).str.split(" ", n=1).str[0].to_numpy()
    assert (pd.Series(ex.street_line).str.split(" ", n=1).str[1].to_numpy() == a["street"].to_numpy()).all()
    changed = number != true_number
    assert abs(changed.mean() - 0.2) < 0.03
    kinds = set()
    for bad, good in zip(number[changed], true_number[changed]):
        if len(bad) == len(good) + 1:
            kinds.add("doubled")
            assert any(bad[:i] + bad[i + 1:] == good and bad[i] == bad[i - 1] for i in range(1, len(bad)))
        else:
            assert len(bad) == len(good) and sum(x != y for x, y in zip(bad, good)) == 1
            kinds.add("letter" if any(c.isalpha() for c in bad) else "digit")
    assert kinds == {"doubled", "letter", "digit"}
    assert noise.house_number_errors(np.array(["12"], dtype=object), np.ones(1, bool), np.random.default_rng(0))[0] in (
        {"I2", "1Z", "112", "122"} | {f"{d}2" for d in "023456789"} | {f"1{d}" for d in "013456789"})


def test_towns_are_misspelt_by_one_or_two_slips():
    population, ex = _one_error(town_typo=0.2)
    true_town = population.addresses["town"].to_numpy()[population.people["address_id"].to_numpy()]
    changed = ex.town != true_town
    assert 0.15 < changed.mean() < 0.22  # a slip can be a no-op (a swapped double letter)
    distances = [jellyfish.damerau_levenshtein_distance(a, b) for a, b in zip(true_town[changed], ex.town[changed])]
    assert set(distances) <= {1, 2} and distances.count(2) > 0


def test_postcodes_are_blanked_or_cut_one_character_short():
    population, ex = _one_error(postcode_cut=0.2)
    true_postcode = population.addresses["postcode"].to_numpy()[population.people["address_id"].to_numpy()]
    changed = ex.postcode != true_postcode
    assert abs(changed.mean() - 0.2) < 0.03
    assert all(cut == full[:-1] for cut, full in zip(ex.postcode[changed], true_postcode[changed]))
    assert noise.cut_last_character(np.array(["LS62AB", None], dtype=object), np.ones(2, bool)).tolist() == ["LS62A", None]
    _, blanked = _one_error(postcode_blank=0.3)
    assert abs(pd.isna(blanked.postcode).mean() - 0.3) < 0.03


def test_dob_is_withheld_only_by_the_two_chosen_systems():
    from residentview.synthetic.extracts import DOB_WITHHELD_SYSTEMS

    assert DOB_WITHHELD_SYSTEMS == ("housing_benefit", "adult_social_care")
    _, benefit = _one_error("housing_benefit", dob_withheld=0.5)
    assert abs(np.isnat(benefit.dob).mean() - 0.5) < 0.03  # a per-system rate: not scaled by system care
    _, children = _one_error("children_services", dob_withheld=1.0)
    assert not np.isnat(children.dob).any()


def test_hostile_extracts_have_no_dob_in_housing_benefit_or_adult_social_care(tmp_path):
    from dataclasses import replace

    hostile = replace(NoiseRates(), heavy_typo=0.14, name_truncated=0.03, name_fragment=0.01, house_number_error=0.05,
                      town_typo=0.05, postcode_blank=0.1, postcode_cut=0.03, dob_withheld=1.0)
    written = generate(people=1500, out=tmp_path, seed=5, noise=hostile)
    frame, _ = read_sources(load_config(written.config_path))
    has_dob = frame.groupby("source")["date_of_birth"].apply(lambda s: s.notna().mean())
    assert has_dob["housing_benefit"] == 0 and has_dob["adult_social_care"] == 0
    assert has_dob["children_services"] > 0.7 and has_dob["school_census"] > 0.9  # only `missing` blanks these
    assert len(frame) == written.n_records == len(pd.read_parquet(written.truth_path))


@pytest.mark.parametrize("n", [1, 29, 31, 10_000, 700_001, 1_000_000])
def test_addresses_come_to_exactly_n_however_the_streets_round(n):
    """Rounding ~n/30 street lengths can leave more houses than the last street holds (it did
    at 700,001 and a million): the excess comes off the longest streets, none below one house."""
    from residentview.synthetic.population import make_addresses

    addresses = make_addresses(n, np.random.default_rng(n))
    assert len(addresses) == n

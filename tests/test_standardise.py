"""Stage 2 — standardise: canonical forms of CONTRACT §1, matching keys and the quality profile."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from residentview.config import load_config
from residentview.errors import ConfigError
from residentview.standardise import in_record_order, record_order, standardise
from residentview.standardise.addresses import clean_address, standardise_address
from residentview.standardise.dates import clean_date, parse_date
from residentview.standardise.identifiers import (
    clean_email, clean_identifier, clean_nhs_number, clean_nino, clean_uprn, normalise_phone,
    parse_nhs_number, parse_nino,
)
from residentview.standardise.names import (
    MAX_ALIASES, clean_surname, clean_title, first_name_aliases, name_key, phonetic_key, split_forenames,
    split_full_name,
)
from residentview.standardise.postcodes import normalise_postcode, parse_postcode
from residentview.standardise.profile import QUALITY_COLUMNS
from residentview.standardise.sex import normalise_sex
from residentview.standardise.text import masked_pattern


def one(clean, value):
    """A cleaner's result for a single value."""
    return clean(pd.Series([value], dtype=object)).iloc[0]


# Postcodes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("written, expected", [
    ("SW1A 1AA", "SW1A 1AA"),
    ("sw1a1aa", "SW1A 1AA"),             # lower case, no space
    ("  sw1a   1aa ", "SW1A 1AA"),        # extra spaces
    ("M1 1AE", "M1 1AE"),                 # A9 9AA
    ("B33 8TH", "B33 8TH"),               # A99 9AA
    ("CR2 6XH", "CR2 6XH"),               # AA9 9AA
    ("DN55 1PT", "DN55 1PT"),             # AA99 9AA
    ("W1A 0AX", "W1A 0AX"),               # A9A 9AA
    ("EC1A 1BB", "EC1A 1BB"),             # AA9A 9AA
    ("gir0aa", "GIR 0AA"),
    ("0X1 1AA", "OX1 1AA"),               # zero typed for O in the first (letter) position
    ("SW1A IAA", "SW1A 1AA"),             # I typed for 1 in the first inward (digit) position
    ("M1 1AE.", "M1 1AE"),
])
def test_postcode_is_normalised(written, expected):
    assert one(normalise_postcode, written) == expected


@pytest.mark.parametrize("written, reason", [
    ("QA1 1AA", "bad_format"),   # Q never first
    ("AI1 1AA", "bad_format"),   # I never second
    ("W1I 1AA", "bad_format"),   # I not allowed in A9A
    ("AA1C 1AA", "bad_format"),  # C not allowed in AA9A
    ("SW1A 1AC", "bad_format"),  # C never in the inward letters
    ("SW1A", "bad_format"),
    ("12345", "bad_format"),
    ("ZZ99 3VZ", "placeholder"),  # NHS 'no fixed abode' pseudo-postcode
    ("NFA", "placeholder"),
])
def test_invalid_postcode_is_null_with_a_reason(written, reason):
    parsed = parse_postcode(pd.Series([written]))
    assert parsed["value"].iloc[0] is None
    assert parsed["reason"].iloc[0] == reason


def test_postcode_gives_sector_district_and_area():
    parts = parse_postcode(pd.Series(["sw1a1aa"])).iloc[0]
    assert (parts["postcode_sector"], parts["postcode_district"], parts["postcode_area"]) == ("SW1A 1", "SW1A", "SW")


# Names -------------------------------------------------------------------------------------
@pytest.mark.parametrize("written, title, first, middle, last", [
    ("Mr John SMITH", "MR", "JOHN", None, "SMITH"),
    ("SMITH, John", None, "JOHN", None, "SMITH"),
    ("smith, mr john paul", "MR", "JOHN", "PAUL", "SMITH"),
    ("SMITH John", None, "JOHN", None, "SMITH"),            # surname in capitals first
    ("SMITH, John (Mr)", "MR", "JOHN", None, "SMITH"),
    ("Dr. J.R. Ewing Jnr", "DR", "J", "R", "EWING"),
    ("Mrs  Mary-Jane   O'Brien", "MRS", "MARY-JANE", None, "O'BRIEN"),
    ("Seán O' Brien", None, "SEÁN", None, "O'BRIEN"),        # accents kept for display
    ("Ludwig van Beethoven", None, "LUDWIG", None, "VAN BEETHOVEN"),
    ("Maria De La Cruz", None, "MARIA", None, "DE LA CRUZ"),
    ("Al Smith", None, "AL", None, "SMITH"),                 # AL is a forename here, not a particle
    ("Mr Smith", "MR", None, None, "SMITH"),
    ("Baby Smith", None, None, None, "SMITH"),                # BABY is a placeholder forename
    ("Exors of the late Mary Jones", None, "MARY", None, "JONES"),
    ("John Smith (Deceased)", None, "JOHN", None, "SMITH"),
])
def test_full_name_is_split(written, title, first, middle, last):
    parts = split_full_name(pd.Series([written])).iloc[0]
    assert (parts["title"], parts["first_name"], parts["middle_names"], parts["last_name"]) == (title, first, middle, last)


@pytest.mark.parametrize("written", ["Exors of John Smith", "John Smith (Deceased)", "The Late John Smith", "SMITH, John dec'd"])
def test_deceased_markers_are_flagged(written):
    assert bool(split_full_name(pd.Series([written]))["is_deceased"].iloc[0])


@pytest.mark.parametrize("written", ["The Occupier", "OCCUPIER", "Acme Properties Ltd", "Riverside Housing Association", "Smith & Sons"])
def test_occupiers_and_organisations_are_not_people(written):
    parts = split_full_name(pd.Series([written])).iloc[0]
    assert not parts["is_person"]
    assert parts["reason"] == "not_a_person"
    assert parts["first_name"] is None and parts["last_name"] is None


def test_surnames_that_look_like_institutions_are_still_people():
    assert split_full_name(pd.Series(["Charlotte Church"]))["is_person"].iloc[0]


def test_an_occupier_word_in_a_surname_column_is_a_surname_beside_a_forename():
    # FEBRL holds JESSE TENANT; "OCCUPIER" with no forename is still nobody in particular.
    raw = pd.DataFrame({
        "source": ["s", "s", "s"], "record_id": ["1", "2", "3"],
        "first_name": ["Jesse", None, "Owner"], "last_name": ["Tenant", "Occupier", None],
    }).astype(object)
    records = standardise(raw, CONFIG).records.set_index("record_id")
    assert records.loc["1", "is_person"] and records.loc["1", "last_name"] == "TENANT"
    assert not records.loc["2", "is_person"] and records.loc["2", "last_name"] is None
    assert not records.loc["3", "is_person"] and records.loc["3", "first_name"] is None


@pytest.mark.parametrize("written", ["UNKNOWN", "Not Known", "N/A", "TBC", "baby"])
def test_placeholder_names_become_null(written):
    parts = split_forenames(pd.Series([written])).iloc[0]
    assert parts["first_name"] is None and parts["reason"] == "placeholder"


def test_first_name_column_with_several_forenames_gives_middle_names():
    parts = split_forenames(pd.Series(["Mary Jane Ann"])).iloc[0]
    assert (parts["first_name"], parts["middle_names"]) == ("MARY", "JANE ANN")


def test_surname_keeps_hyphen_and_apostrophe_but_drops_other_punctuation():
    assert one(lambda s: clean_surname(s)["last_name"], " o'brien-smith. ") == "O'BRIEN-SMITH"


@pytest.mark.parametrize("clean, batch", [
    (split_full_name, ["Mr John Smith Jnr", "SMITH, Jane (Mrs)", "Ann Lee OBE", "Bob Jones", None, "Dr Li"]),
    (standardise_address, ["Flat 2, 3 Mill Ln", "12 High St, Leeds LS1 4AP", "Rose Cottage", None, "FLAT B"]),
])
def test_a_batch_gives_each_value_what_it_gets_alone(clean, batch):
    # The costly patterns run only on the values a quick test picks out; the rest must line up.
    together = clean(pd.Series(batch, dtype=object))
    alone = pd.concat([clean(pd.Series([value], dtype=object)) for value in batch], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)


def test_generational_suffix_is_kept_apart():
    parts = clean_surname(pd.Series(["Smith Snr"])).iloc[0]
    assert (parts["last_name"], parts["name_suffix"]) == ("SMITH", "SR")


@pytest.mark.parametrize("written, expected", [("Mr.", "MR"), ("Revd", "REV"), ("doctor", "DR"), ("Baroness", "BARONESS")])
def test_title_is_canonical(written, expected):
    assert clean_title(pd.Series([written]))["title"].iloc[0] == expected


@pytest.mark.parametrize("name, key", [("JOSÉ", "JOSE"), ("O'BRIEN", "OBRIEN"), ("MARY-JANE", "MARYJANE"), ("ØSTERGÅRD", "OSTERGARD")])
def test_name_key_is_folded_to_a_to_z(name, key):
    assert one(name_key, name) == key


def test_nickname_aliases_include_the_name_and_its_canonical_forms():
    aliases = one(first_name_aliases, "BILL")
    assert aliases[0] == "BILL" and "WILLIAM" in aliases and len(aliases) <= 8


@pytest.mark.parametrize("short, full", [
    ("NIKKI", "NICOLA"), ("LAURIE", "LAWRENCE"), ("KASIA", "KATARZYNA"), ("GEM", "GEMMA"), ("GAZ", "GARY"),
    ("IZZY", "ISOBEL"), ("MUHAMMAD", "MOHAMMAD"), ("MO", "MUHAMMAD"), ("SAMMIE", "SAMANTHA"), ("STEVIE", "STEPHEN"),
])
def test_uk_short_forms_and_spellings_share_an_alias(short, full):
    # Forms the American nickname list lacks; both sides must meet on some alias.
    assert set(one(first_name_aliases, short)) & set(one(first_name_aliases, full))


def test_uk_short_forms_keep_the_package_aliases_and_the_bound():
    aliases = one(first_name_aliases, "NICKY")
    assert aliases[0] == "NICKY" and "NICOLA" in aliases and "NICHOLAS" in aliases and len(aliases) <= MAX_ALIASES
    assert one(first_name_aliases, "NICOLA") == ["NICOLA"]  # a full name is not made short for anything


def test_a_short_form_of_many_names_keeps_the_ones_the_records_hold_most():
    # The package gives CHRIS 18 names; cut at the first 8 alphabetically, CHRISTOPHER was lost.
    keys = pd.Series(["CHRIS", "CHRISTOPHER", "CHRISTOPHER", "KRISTY", None, "DAVY"])
    aliases = first_name_aliases(keys)
    assert aliases[0][:3] == ["CHRIS", "CHRISTOPHER", "KRISTY"] and len(aliases[0]) == MAX_ALIASES
    assert aliases[1] == ["CHRISTOPHER"] and aliases[4] is None
    assert aliases[5] == ["DAVY", "DAVID"]  # a British short form the package lacks


def test_phonetic_key_groups_spelling_variants():
    assert one(phonetic_key, "SMITH") == one(phonetic_key, "SMYTH")


# Dates -------------------------------------------------------------------------------------
@pytest.mark.parametrize("written, expected", [
    ("1980-02-03", "1980-02-03"),
    ("03/04/1980", "1980-04-03"),          # UK day first
    ("3/4/1980", "1980-04-03"),
    ("03.04.1980", "1980-04-03"),
    ("3 Apr 1980", "1980-04-03"),
    ("03-APR-1980", "1980-04-03"),
    ("1980-04-03 00:00:00", "1980-04-03"),
    ("03/04/80", "1980-04-03"),             # two-digit year not in the future
])
def test_date_of_birth_forms_are_read(written, expected):
    assert one(clean_date, written) == pd.Timestamp(expected)


@pytest.mark.parametrize("written, reason", [
    ("31/02/1980", "impossible"),
    ("1850-05-05", "impossible"),
    ("2999-01-01", "future"),
    ("9999-12-31", "placeholder"),
    ("01/01/1900", "placeholder"),
    ("1900-01-01", "placeholder"),
    ("01/01/1800", "placeholder"),
    ("2090-06-01", "future"),
    ("soon", "bad_format"),
])
def test_bad_dates_become_null_with_a_reason(written, reason):
    parsed = parse_date(pd.Series([written]))
    assert pd.isna(parsed["value"].iloc[0])
    assert parsed["reason"].iloc[0] == reason


def test_configured_date_format_is_used():
    # Month first, as one US-built system writes it.
    assert one(lambda s: clean_date(s, "%m/%d/%Y"), "04/03/1980") == pd.Timestamp("1980-04-03")


def test_unknown_date_format_directive_is_a_config_error_naming_the_source():
    config = load_config({"name": "x", "sources": {"register": {
        "path": "a.csv", "id": "r", "fields": {"last_name": "s", "date_of_birth": {"column": "d", "format": "%Q"}}}}})
    raw = pd.DataFrame({"source": ["register"], "record_id": ["1"], "last_name": ["Smith"], "date_of_birth": ["1"]})
    with pytest.raises(ConfigError, match="source register: date format '%Q' is not a strptime format"):
        standardise(raw.astype(object), config)


# Identifiers -------------------------------------------------------------------------------
@pytest.mark.parametrize("written, expected", [
    ("jh 12 34 56 c", "JH123456C"),
    ("JH-12-34-56-D", "JH123456D"),
])
def test_nino_is_normalised(written, expected):
    assert one(clean_nino, written) == expected


@pytest.mark.parametrize("written, reason", [
    ("JH123456E", "bad_suffix"),
    ("JH123456", "no_suffix"),          # the suffix is required (see identifiers.py)
    ("DA123456A", "bad_prefix"),        # D never first
    ("AO123456A", "bad_prefix"),        # O never second
    ("GB123456A", "bad_prefix"),        # never-issued pair
    ("TN123456A", "temporary"),
    ("AB123456C", "placeholder"),       # HMRC's printed example
    ("J1234567C", "bad_format"),
])
def test_invalid_nino_is_null_with_a_reason(written, reason):
    parsed = parse_nino(pd.Series([written]))
    assert parsed["value"].iloc[0] is None and parsed["reason"].iloc[0] == reason


@pytest.mark.parametrize("written, expected, reason", [
    ("943 476 5919", "9434765919", None),
    ("943-476-5919", "9434765919", None),
    ("9434765918", None, "check_digit"),
    ("1111111111", None, "placeholder"),
    ("94347659", None, "bad_format"),
])
def test_nhs_number_is_checked_with_modulus_11(written, expected, reason):
    parsed = parse_nhs_number(pd.Series([written])).iloc[0]
    assert (parsed["value"], parsed["reason"]) == (expected, reason)


@pytest.mark.parametrize("written, expected", [
    ("000100023336956", "100023336956"), ("100023336956", "100023336956"), ("abc", None),
    ("0", None), ("1234567890123", None), ("100 023 336 956", "100023336956"),
    ("100023336956.0", "100023336956"),  # a spreadsheet that held it as a number
])
def test_uprn_is_digits_without_leading_zeros(written, expected):
    assert one(clean_uprn, written) == expected


@pytest.mark.parametrize("written, expected", [
    ("07700 900123", "+447700900123"),
    ("+44 (0)7700 900123", "+447700900123"),
    ("0044 7700 900123", "+447700900123"),
    ("(0113) 496 0000", "+441134960000"),
    ("+33 1 23 45 67 89", "+33123456789"),
    ("123", None),
    ("07777777777", None),
])
def test_phone_is_e164(written, expected):
    assert one(normalise_phone, written) == expected


@pytest.mark.parametrize("written, expected", [
    ("  Jo.Bloggs@Mail.CO.UK ", "jo.bloggs@mail.co.uk"),
    ("jo@", None), ("@mail.com", None), ("jo@localhost", None), ("none@none.com", None),
])
def test_email_is_lower_case_and_checked(written, expected):
    assert one(clean_email, written) == expected


def test_named_identifier_is_trimmed_and_upper_case():
    assert one(clean_identifier, "  a123 456 ") == "A123 456"


@pytest.mark.parametrize("written, expected", [("Female", "F"), ("m", "M"), ("1", "M"), ("2", "F"), ("U", None), ("Other", None)])
def test_sex_is_m_or_f(written, expected):
    assert one(normalise_sex, written) == expected


# Addresses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("written, expected", [
    ("12 High St", "12 HIGH STREET"),
    ("12 St Johns Rd", "12 ST JOHNS ROAD"),           # ST before a saint's name stays
    ("4 Saint Marys Cres", "4 ST MARYS CRESCENT"),
    ("9 Elm Gdns, Leeds", "9 ELM GARDENS, LEEDS"),
    ("Apt 3, 1 Oak Ave", "FLAT 3, 1 OAK AVENUE"),
    ("Unit 2 Mill Ct", "FLAT 2 MILL COURT"),
    ("12 High St, Leeds LS1 4AP", "12 HIGH STREET, LEEDS"),   # postcode lifted out
    ("12 High St, Leeds, LS1 4AP,", "12 HIGH STREET, LEEDS"),  # ... even before a stray comma
])
def test_address_is_upper_case_with_abbreviations_expanded(written, expected):
    assert one(clean_address, written) == expected


def test_address_parts_are_extracted():
    parts = standardise_address(pd.Series(["Flat 2, Rose Ct., 12a St Johns Rd, Leeds LS1 4AP"])).iloc[0]
    assert (parts["flat_number"], parts["house_number"], parts["building_name"], parts["postcode_found"]) == (
        "2", "12A", "ROSE COURT", "LS1 4AP"
    )
    assert parts["address_tokens"] == ["FLAT", "2", "ROSE", "COURT", "12A", "ST", "JOHNS", "ROAD", "LEEDS"]


@pytest.mark.parametrize("written, building", [
    ("Marlow House 12-14 Church Lane", "MARLOW HOUSE"),
    ("Hillside, 23 Blake Mews", "HILLSIDE"),
    ("The Old Rectory, Church Lane", "THE OLD RECTORY"),
    ("12 Court Road", None),
])
def test_building_name_is_found(written, building):
    assert standardise_address(pd.Series([written]))["building_name"].iloc[0] == building


# Properties ----------------------------------------------------------------------------------
any_text = st.text(max_size=40)
shaped_text = st.text(alphabet="abcdeghjklmnoprstuwxyzABIOSWZ0123456789 -/.,'()&@+ÉéØ", max_size=30)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CANONICAL = {
    normalise_postcode: r"(?:[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2})",
    clean_nino: r"[A-Z]{2}[0-9]{6}[A-D]",
    clean_nhs_number: r"[0-9]{10}",
    clean_uprn: r"[1-9][0-9]{0,11}",
    normalise_phone: r"\+[1-9][0-9]{5,16}",
    clean_email: r"[^@\sA-Z]+@[^@\sA-Z]+\.[^@\sA-Z]+",
    clean_address: r"\S(?:.*\S)?",
    clean_identifier: r"\S(?:.*\S)?",
    normalise_sex: r"[MF]",
}


@pytest.mark.parametrize("clean", list(CANONICAL), ids=lambda f: f.__name__)
@PROPERTY_SETTINGS
@given(values=st.lists(st.one_of(any_text, shaped_text, st.none()), max_size=8))
def test_cleaners_never_raise_and_give_null_or_canonical_form_and_are_idempotent(clean, values):
    once = clean(pd.Series(values, dtype=object))
    assert len(once) == len(values)
    for value in once:
        assert value is None or re.fullmatch(CANONICAL[clean], value), value
    assert clean(once).tolist() == once.tolist()


NAME_PART = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*(?: [^\W\d_]+(?:['\-][^\W\d_]+)*)*")


@PROPERTY_SETTINGS
@given(values=st.lists(st.one_of(any_text, shaped_text, st.none()), max_size=8))
def test_name_parts_are_null_or_upper_case_words(values):
    parts = split_full_name(pd.Series(values, dtype=object))
    for column in ("first_name", "middle_names", "last_name"):
        for value in parts[column]:
            assert value is None or (NAME_PART.fullmatch(value) and value == value.upper()), value


@PROPERTY_SETTINGS
@given(values=st.lists(st.one_of(shaped_text, st.none()), max_size=8))
def test_surname_cleaning_is_idempotent(values):
    once = clean_surname(pd.Series(values, dtype=object))["last_name"]
    assert clean_surname(once)["last_name"].tolist() == once.tolist()


@PROPERTY_SETTINGS
@given(values=st.lists(st.one_of(shaped_text, st.none()), max_size=8))
@example(values=["ltd0"])  # found by a random draw: LTD was read as a forename once the digit went
def test_forename_splitting_is_idempotent(values):
    once = split_forenames(pd.Series(values, dtype=object))
    rejoined = once["first_name"].str.cat(once["middle_names"], sep=" ", na_rep="").str.strip()
    twice = split_forenames(rejoined.where(once["first_name"].notna(), None))
    assert twice[["first_name", "middle_names"]].values.tolist() == once[["first_name", "middle_names"]].values.tolist()


@PROPERTY_SETTINGS
@given(values=st.lists(st.one_of(any_text, st.dates().map(lambda d: d.strftime("%d/%m/%Y")), st.none()), max_size=8))
def test_dates_never_raise_and_are_null_or_plausible(values):
    parsed = clean_date(pd.Series(values, dtype=object)).dropna()
    assert ((parsed >= pd.Timestamp("1880-01-01")) & (parsed <= pd.Timestamp.today())).all()


def test_masked_pattern_hides_letters_and_digits():
    assert one(masked_pattern, "Ab1 2/Cd") == "AA9 9/AA"


# The stage ---------------------------------------------------------------------------------
CONFIG = load_config({
    "name": "borough",
    "sources": {
        "council_tax": {"path": "ct.csv", "id": "ref", "fields": {
            "full_name": "name", "address": "addr", "postcode": "pc", "phone": "tel", "date_of_birth": "dob"}},
        "electoral": {"path": "er.csv", "id": "ref", "fields": {
            "full_name": "name", "first_name": "fn", "last_name": "ln",
            "date_of_birth": {"column": "dob", "format": "%d/%m/%Y"},
            "identifiers": {"upn": "upn"}}},
    },
})


def raw_frame():
    return pd.DataFrame({
        "source": ["electoral", "council_tax", "electoral", "council_tax", "council_tax"],
        "record_id": ["E2", "C1", "E1", "C3", "C2"],
        "full_name": ["Mr John Smith", "SMITH, Mrs Mary", None, "The Occupier", "Baby Jones"],
        "first_name": ["Jonathan", None, "Bill", None, None],
        "last_name": [None, None, "Müller (deceased)", None, None],
        "date_of_birth": ["01/01/1980", "1975-03-12", "31/02/1970", None, "garbage"],
        "address": [None, "12 High St, Leeds LS1 4AP", None, "Flat 2, Rose Ct, 3 Mill Ln", None],
        "postcode": [None, None, None, "ls2 7ab", "NFA"],
        "phone": [None, "07700 900123", None, "123", None],
        "id_upn": [" a123 ", None, "n/a", None, None],
    }).astype(object)


@pytest.fixture(scope="module")
def standardised():
    return standardise(raw_frame(), CONFIG)


def test_unique_ids_follow_source_and_record_id_whatever_the_input_order(standardised):
    shuffled = standardise(raw_frame().sample(frac=1, random_state=3), CONFIG).records
    assert standardised.records["unique_id"].tolist() == [0, 1, 2, 3, 4]
    assert standardised.records[["source", "record_id"]].values.tolist() == [
        ["council_tax", "C1"], ["council_tax", "C2"], ["council_tax", "C3"], ["electoral", "E1"], ["electoral", "E2"]]
    pd.testing.assert_frame_equal(shuffled, standardised.records)


def test_records_have_the_schema_columns_and_types(standardised):
    records = standardised.records
    for column in (
        "title", "first_name", "middle_names", "last_name", "previous_last_name", "date_of_birth", "sex",
        "address", "postcode", "uprn", "nhs_number", "ni_number", "phone", "email", "record_date", "id_upn",
        "first_name_key", "middle_names_key", "last_name_key", "previous_last_name_key", "first_name_aliases",
        "first_name_phonetic", "last_name_phonetic", "postcode_sector", "postcode_district", "postcode_area",
        "house_number", "flat_number", "building_name", "is_person", "is_deceased",
        "dob_estimated", "dob_invalid_reason",
    ):
        assert column in records, column
    assert records["unique_id"].dtype == "int64"
    assert records["date_of_birth"].dtype == "datetime64[ns]"
    assert records["is_person"].dtype == bool
    assert not any(isinstance(v, float) for v in records["first_name"])  # None, never NaN


def test_explicit_name_parts_win_over_the_parsed_full_name(standardised):
    row = standardised.records.set_index("record_id").loc["E2"]
    assert (row["title"], row["first_name"], row["last_name"]) == ("MR", "JONATHAN", "SMITH")


def test_record_level_flags(standardised):
    rows = standardised.records.set_index("record_id")
    assert not rows.loc["C3", "is_person"] and rows.loc["C3", "last_name"] is None
    assert rows.loc["E1", "is_deceased"] and rows.loc["E1", "last_name_key"] == "MULLER"
    assert rows.loc["E2", "dob_estimated"]
    assert rows.loc["E1", "dob_invalid_reason"] == "impossible"
    assert rows.loc["C2", "first_name"] is None and rows.loc["C2", "last_name"] == "JONES"


def test_postcode_at_the_end_of_the_address_moves_to_an_empty_postcode_field(standardised):
    rows = standardised.records.set_index("record_id")
    assert (rows.loc["C1", "postcode"], rows.loc["C1", "address"]) == ("LS1 4AP", "12 HIGH STREET, LEEDS")
    assert rows.loc["C3", "postcode"] == "LS2 7AB"


def test_quality_has_one_row_per_source_and_mapped_field(standardised):
    quality = standardised.quality
    assert list(quality.columns) == QUALITY_COLUMNS
    assert not quality.duplicated(["source", "field"]).any()
    by_source = quality.groupby("source")["field"].apply(set).to_dict()
    assert by_source["council_tax"] == {"full_name", "date_of_birth", "address", "postcode", "phone"}
    assert by_source["electoral"] == {"full_name", "first_name", "last_name", "date_of_birth", "id_upn"}


def test_quality_counts_add_up(standardised):
    quality = standardised.quality
    assert (quality["n_present"] == quality["n_valid"] + quality["n_invalid"] + quality["n_placeholder"]).all()
    dob = quality.set_index(["source", "field"]).loc[("council_tax", "date_of_birth")]
    assert (dob["n_records"], dob["n_present"], dob["n_valid"], dob["n_invalid"]) == (3, 2, 1, 1)
    assert json.loads(dob["invalid_reasons"]) == {"bad_format": 1}
    postcode = quality.set_index(["source", "field"]).loc[("council_tax", "postcode")]
    assert (postcode["n_present"], postcode["n_placeholder"], postcode["completeness"]) == (2, 1, 2 / 3)


def test_quality_patterns_never_hold_personal_data(standardised):
    quality = standardised.quality.set_index(["source", "field"])
    assert json.loads(quality.loc[("council_tax", "phone"), "top_invalid_patterns"]) == {"999": 1}
    assert json.loads(quality.loc[("council_tax", "full_name"), "top_invalid_patterns"]) == {"AAA AAAAAAAA": 1}
    shown = [p for text in quality["top_invalid_patterns"] for p in json.loads(text)]
    assert shown and all(re.fullmatch(r"[A9\W]*", p) for p in shown)


def test_unmapped_source_fields_are_absent_columns():
    raw = pd.DataFrame({"source": ["a"], "record_id": ["1"], "last_name": ["Smith"]}).astype(object)
    config = load_config({"name": "x", "sources": {"a": {"path": "a.csv", "id": "r", "fields": {"last_name": "s"}}}})
    records = standardise(raw, config).records
    assert records.loc[0, "last_name"] == "SMITH" and records.loc[0, "postcode"] is None
    assert pd.isna(records.loc[0, "date_of_birth"])


def test_a_frame_with_no_records_gives_empty_frames():
    raw = pd.DataFrame({c: pd.Series(dtype=object) for c in ("source", "record_id", "last_name", "postcode")})
    config = load_config({"name": "x", "sources": {"a": {"path": "a.csv", "id": "r", "fields": {"last_name": "s"}}}})
    result = standardise(raw, config)
    assert len(result.records) == 0 and "last_name_key" in result.records
    assert list(result.quality.columns) == QUALITY_COLUMNS


def test_a_placeholder_date_written_with_a_month_name_is_still_a_placeholder():
    from residentview.standardise.dates import parse_date

    out = parse_date(pd.Series(["01-Jan-1900", "15-Mar-1960"]), "%d-%b-%Y")
    assert out["reason"].tolist() == ["placeholder", None]
    assert out["value"].isna().tolist() == [True, False]


# The second process --------------------------------------------------------------------------
def test_the_worker_process_gives_exactly_what_one_process_gives(standardised, monkeypatch):
    import residentview.standardise as stage
    from residentview.standardise import worker

    started = []
    real_popen = worker.subprocess.Popen
    monkeypatch.setattr(worker.subprocess, "Popen", lambda *a, **k: started.append(a) or real_popen(*a, **k))
    monkeypatch.setattr(stage, "WORKER_MIN_RECORDS", 0)
    both_cores = standardise(raw_frame(), CONFIG)
    assert len(started) == 1
    pd.testing.assert_frame_equal(both_cores.records, standardised.records)
    pd.testing.assert_frame_equal(both_cores.quality, standardised.quality)


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/false"])
def test_a_worker_that_cannot_start_or_fails_loses_nothing(executable, monkeypatch, caplog):
    from residentview.standardise import worker

    monkeypatch.setattr(worker.sys, "executable", executable)
    postcodes = pd.Series(["ls1 4ap", "NFA", None], dtype=object)
    beside = worker.Beside({"postcode": (parse_postcode, postcodes)}, use_worker=True)
    found = beside.results()["postcode"]
    pd.testing.assert_frame_equal(found, parse_postcode(postcodes))
    assert found["value"].tolist() == ["LS1 4AP", None, None]
    assert "one core" in caplog.text
    assert "LS1" not in caplog.text and "ls1" not in caplog.text


def test_a_forename_may_be_written_with_the_initial_of_its_short_forms():
    from residentview.standardise.names import alias_initials

    assert "B" in alias_initials("REBECCA")  # BECKY
    assert "E" in alias_initials("BETH")  # ELIZABETH
    assert "P" in alias_initials("MARGARET")  # PEGGY
    assert "J" in alias_initials("GILLIAN") and "T" in alias_initials("TERENCE")  # JILL, TEL (UK list)
    assert alias_initials("CLAIRE") == "C"
    assert alias_initials("J") == "J"


_KEY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)


@given(st.lists(st.tuples(st.sampled_from(["council_tax", "électoral", "Ω"]), _KEY_TEXT), max_size=40))
def test_record_order_sorts_as_python_sorts_source_then_record_id(keys):
    frame = pd.DataFrame(keys, columns=["source", "record_id"], dtype=object)
    order = record_order(frame)
    assert [keys[i] for i in order] == sorted(keys)


def test_record_order_sorts_text_arrow_cannot_hold():
    frame = pd.DataFrame({"source": ["b", "a", "a"], "record_id": ["x", "\ud800", "1"]})
    assert list(record_order(frame)) == [2, 1, 0]


def test_in_record_order_numbers_rows_from_zero_whether_or_not_it_moves_them():
    ordered = pd.DataFrame({"source": ["a", "a", "b"], "record_id": ["1", "2", "1"]}, index=[5, 6, 7])
    assert list(in_record_order(ordered).index) == [0, 1, 2]
    shuffled = ordered.iloc[[2, 0, 1]]
    assert in_record_order(shuffled).equals(in_record_order(ordered))

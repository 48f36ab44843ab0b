"""`residentview init`: a config drafted from a folder of extracts, measured against the config a
person wrote for the synthetic borough, with its headers kept and with them renamed col1…colN
so that only the values can tell."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from residentview import DataError, load_config
from residentview.cli import main
from residentview.init import draft_config, init_config, safe_name
from residentview.init.columns import choose_id, guess_fields, name_hint
from residentview.init.tables import csv_layout, header_index
from residentview.sources import read_sources


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# Measured on the synthetic borough ------------------------------------------------------------

@pytest.fixture(scope="module")
def borough(tmp_path_factory):
    from residentview.synthetic import generate

    folder = tmp_path_factory.mktemp("borough")
    generate(people=600, out=folder, seed=5)
    return folder


def _mapping(config: dict) -> dict:
    """path -> (id column, {field: (set of columns, date format)}) of a config as YAML data."""
    out = {}
    for source in config["sources"].values():
        fields = {}
        for name, spec in source["fields"].items():
            if name == "identifiers":
                fields.update({f"identifiers.{k}": (frozenset([c]), None) for k, c in spec.items()})
                continue
            column, fmt = (spec["column"], spec.get("format")) if isinstance(spec, dict) else (spec, None)
            fields[name] = (frozenset([column] if isinstance(column, str) else column), fmt)
        out[source["path"]] = (source["id"], fields)
    return out


def _recovered(human: dict, guessed: dict) -> tuple[float, int, list]:
    """Share of the human's (source, field) mappings the guess has exactly (same columns, and
    the same date format where the human gave one), and how many id columns it got right."""
    hits, total, ids, misses = 0, 0, 0, []
    for path, (id_column, fields) in human.items():
        guessed_id, guessed_fields = guessed.get(path, (None, {}))
        ids += guessed_id == id_column
        for name, (columns, fmt) in fields.items():
            total += 1
            got = guessed_fields.get(name)
            if got is not None and got[0] == columns and (fmt is None or got[1] == fmt):
                hits += 1
            else:
                misses.append((path, name))
    return hits / total, ids, misses


def _renamed_copy(folder, target) -> dict:
    """The borough with every column renamed col1…colN (in files and in the human config)."""
    config = yaml.safe_load((folder / "council.yaml").read_text(encoding="utf-8"))
    target.mkdir()
    for source in config["sources"].values():
        path = folder / source["path"]
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=source.pop("encoding", "utf-8-sig"))
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_excel(path, sheet_name=source["sheet"], dtype=object)
        renamed = {column: f"col{i + 1}" for i, column in enumerate(frame.columns)}
        frame = frame.rename(columns=renamed)
        if path.suffix == ".csv":
            frame.to_csv(target / path.name, index=False)
        elif path.suffix == ".parquet":
            frame.to_parquet(target / path.name, index=False)
        else:
            frame.to_excel(target / path.name, sheet_name=source["sheet"], index=False)
        source["id"] = renamed[source["id"]]
        for name, spec in list(source["fields"].items()):
            if name == "identifiers":
                source["fields"][name] = {k: renamed[c] for k, c in spec.items()}
            elif isinstance(spec, dict):
                column = spec["column"]
                spec["column"] = [renamed[c] for c in column] if isinstance(column, list) else renamed[column]
            else:
                source["fields"][name] = [renamed[c] for c in spec] if isinstance(spec, list) else renamed[spec]
    return config


def _guessed(folder) -> dict:
    return _mapping(yaml.safe_load(draft_config(folder).text))


def test_named_headers_recover_the_human_mapping_and_every_id(borough):
    human = _mapping(yaml.safe_load((borough / "council.yaml").read_text(encoding="utf-8")))
    share, ids, misses = _recovered(human, _guessed(borough))
    assert share >= 0.95, misses  # measured: 100%
    assert ids == len(human) == 6


def test_renamed_headers_recover_the_mapping_from_values_alone(borough, tmp_path):
    human = _mapping(_renamed_copy(borough, tmp_path / "renamed"))
    share, ids, misses = _recovered(human, _guessed(tmp_path / "renamed"))
    # measured: 97.9%; the miss is council tax's account start read as a date of birth, which a
    # lone column of recent past dates cannot tell apart from children's dates of birth
    assert share >= 0.9, misses
    assert ids == len(human)


def test_the_config_written_validates_and_reads_every_record(borough, tmp_path):
    out = tmp_path / "drafted.yaml"
    result = run("init", borough, "--out", out)
    assert result.exit_code == 0, result.output
    assert "6 sources to check" in result.stdout
    config = load_config(out)
    assert set(config.sources) == {"council_tax", "housing_benefit", "electoral_register", "adult_social_care",
                                   "children_services", "school_census"}
    assert config.sources["children_services"].sheet == "Children"
    raw, _ = read_sources(config)
    truth = pd.read_parquet(borough / "truth.parquet")
    assert len(raw) == len(truth)
    assert run("validate", out).exit_code == 0


def test_each_guess_carries_its_evidence_and_no_value(borough):
    text = draft_config(borough).text
    assert "% of values are valid UK postcodes" in text
    assert "% of values are NHS numbers with a valid check digit" in text
    assert "% of values are dates like 31/12/1980 (%d/%m/%Y)" in text
    assert "unique and filled in all" in text
    assert "# not mapped: band" in text  # council tax's band: no field, listed for the editor
    assert "truth.parquet is left out" in text  # no name column: not a source
    surnames = pd.read_csv(borough / "adult_social_care.csv", dtype=str)["last_name"].dropna()
    assert not any(f" {name} " in text or f" {name}\n" in text for name in surnames.unique()[:50])


# Layouts: delimiters, title rows, sheets --------------------------------------------------------

PEOPLE = pd.DataFrame({
    "Person Ref": [f"P{i:04d}" for i in range(40)],
    "Forename": ["John", "Mary", "Ahmed", "Sarah", "Peter", "Emma", "David", "Susan"] * 5,
    "Surname": [f"Name{chr(65 + i % 26)}son" for i in range(40)],
    "Post Code": ["LS1 1AA", "LS6 2BB", "WF1 4AU", "LS2 6TE"] * 10,
})


def test_a_title_row_and_semicolons_are_found_and_written(tmp_path):
    body = PEOPLE.to_csv(index=False, sep=";")
    (tmp_path / "tenancies.csv").write_text("Tenancy extract run on 1 May 2026\n\n" + body, encoding="utf-8")
    config_path, draft = init_config(tmp_path)
    text = config_path.read_text(encoding="utf-8")
    assert 'delimiter: ";"' in text and "header_row: 3" in text
    source = load_config(config_path).sources["tenancies"]
    assert (source.delimiter, source.header_row, source.id) == (";", 3, "Person Ref")
    raw, _ = read_sources(load_config(config_path))
    assert raw["postcode"].tolist() == PEOPLE["Post Code"].tolist()
    assert raw["first_name"].tolist() == PEOPLE["Forename"].tolist()


def test_a_workbook_sheet_below_a_title_is_read_from_its_header(tmp_path):
    with pd.ExcelWriter(tmp_path / "Housing Register.xlsx") as writer:
        pd.DataFrame([["Housing register, as at 1 May"]]).to_excel(writer, sheet_name="People", header=False,
                                                                  index=False)
        PEOPLE.to_excel(writer, sheet_name="People", startrow=2, index=False)
        pd.DataFrame({"note": ["nothing here"]}).to_excel(writer, sheet_name="Notes", index=False)
    config_path, _ = init_config(tmp_path)
    config = load_config(config_path)
    name = "housing_register_people"
    assert set(config.sources) == {name}
    assert (config.sources[name].sheet, config.sources[name].header_row) == ("People", 3)
    assert "Notes" in config_path.read_text(encoding="utf-8")  # said why it is left out
    raw, _ = read_sources(config)
    assert raw["record_id"].tolist() == PEOPLE["Person Ref"].tolist()


def test_csv_layout_prefers_the_delimiter_that_splits_rows_evenly():
    lines = ["Report, May 2026", "", "a\tb\tc", "1\t2, 3\t4", "5\t6\t7"]
    assert csv_layout(lines) == ("\t", 2)
    assert csv_layout(["a,b", "1,2"]) == (",", 0)


def test_header_index_skips_a_title_and_blank_rows():
    assert header_index([["Title", None, None], [None, None, None], ["a", "b", "c"], [1, 2, 3]]) == 2
    assert header_index([["a", "b"], [1, 2]]) == 0


# Columns and the id ------------------------------------------------------------------------------

def test_names_say_fields_and_previous_surname_is_not_the_surname():
    assert name_hint("previous_surname") == "previous_last_name"
    assert name_hint("Date of Birth") == "date_of_birth"
    assert name_hint("post_code") == "postcode"
    assert name_hint("legal_forename") == "first_name"
    assert name_hint("addr_line_3") == "address"
    assert name_hint("band") is None


def test_the_id_is_unique_and_filled_and_never_an_nhs_number():
    frame = pd.DataFrame({
        "nhs": ["9434765919", "4010232137", "9434765870"],  # unique too, but a fact about the person
        "case_no": ["C1", None, "C3"],  # blank once
        "ref": ["R1", "R2", "R3"],
        "forename": ["Ann", "Bob", "Cy"],
    })
    choice = choose_id(frame, guess_fields(frame))
    assert choice.column == "ref"
    assert "unique and filled in all 3 rows" in choice.evidence


def test_no_unique_column_leaves_the_source_out_with_the_reason(tmp_path):
    pd.DataFrame({"forename": ["Ann", "Ann"], "surname": ["Lee", "Lee"]}).to_csv(tmp_path / "dupes.csv", index=False)
    PEOPLE.to_csv(tmp_path / "good.csv", index=False)
    config_path, draft = init_config(tmp_path)
    text = config_path.read_text(encoding="utf-8")
    assert set(load_config(config_path).sources) == {"good"}
    assert "dupes.csv is left out: no column is unique and filled in every row" in text


def test_source_names_are_safe_identifiers():
    taken: set = set()
    assert safe_name("Council Tax (2024)", taken) == "council_tax_2024"
    assert safe_name("2024 extract", taken) == "source_2024_extract"
    assert safe_name("council-tax 2024", taken) == "council_tax_2024_2"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=3, max_size=3), min_size=1,
                max_size=25))
def test_the_guesser_never_raises_on_arbitrary_text(rows):
    frame = pd.DataFrame(rows, columns=["a", "b", "c"], dtype=object)
    guesses = guess_fields(frame)
    assert [g.column for g in guesses] == ["a", "b", "c"]
    choose_id(frame, guesses)


# The command -------------------------------------------------------------------------------------

def test_an_existing_config_is_kept_unless_forced(tmp_path):
    PEOPLE.to_csv(tmp_path / "people.csv", index=False)
    (tmp_path / "residentview.yaml").write_text("# mine\n", encoding="utf-8")
    result = run("init", tmp_path)
    assert result.exit_code == 2 and "already exists; use --force" in result.stderr
    assert (tmp_path / "residentview.yaml").read_text(encoding="utf-8") == "# mine\n"
    assert run("init", tmp_path, "--force").exit_code == 0
    assert "people:" in (tmp_path / "residentview.yaml").read_text(encoding="utf-8")


def test_a_folder_without_extracts_is_one_line_exit_2(tmp_path):
    result = run("init", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "no extracts found" in result.stderr
    with pytest.raises(DataError, match="folder not found"):
        draft_config(tmp_path / "missing")

"""Config (CONTRACT §1): every mistake is one line naming the file, the key, what was found and
what was expected; unknown keys are errors; paths are relative to the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from residentview import Config, ConfigError, load_config


def source(**overrides) -> dict:
    spec = {"path": "people.csv", "id": "ref", "fields": {"first_name": "forename"}}
    spec.update(overrides)
    return spec


def config(**overrides) -> dict:
    data = {"name": "borough", "sources": {"register": source()}}
    data.update(overrides)
    return data


def error_for(data) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(data)
    message = str(caught.value)
    assert "\n" not in message
    assert "pydantic" not in message.lower() and "validation error" not in message.lower()
    return message


def test_a_minimal_config_loads_with_defaults():
    cfg = load_config(config(), base_dir="/data")
    assert cfg.name == "borough"
    assert cfg.linkage.threshold == 0.95
    assert cfg.sources["register"].encoding == "auto"
    assert cfg.source_path("register") == Path("/data/people.csv")
    assert cfg.output_dir() == Path("/data/residentview-output")


def test_paths_are_relative_to_the_config_file(write_config, tmp_path):
    path = write_config(config(output="out/"))
    cfg = load_config(path)
    assert cfg.source_path("register") == tmp_path.resolve() / "people.csv"
    assert cfg.output_dir() == tmp_path.resolve() / "out"
    assert cfg.label == str(path)


def test_home_folder_in_a_path_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(config(sources={"register": source(path="~/extracts/people.csv")}), base_dir="/data")
    assert cfg.source_path("register") == tmp_path / "extracts" / "people.csv"


def test_errors_from_a_file_name_the_file(write_config):
    path = write_config(config(threshold=0.9))
    with pytest.raises(ConfigError, match=r"^.*config\.yaml: threshold: unknown key 'threshold'"):
        load_config(path)


def test_unknown_top_level_key_lists_the_valid_keys():
    message = error_for(config(nmae="x"))
    assert message.startswith("<config>: nmae: unknown key 'nmae'")
    assert "did you mean 'name'" in message
    assert "expected one of: name, sources, engine, memory_limit, linkage, resident_view, output" in message


def test_unknown_source_key_names_the_source():
    message = error_for(config(sources={"register": source(encodng="cp1252")}))
    assert "sources.register.encodng: unknown key 'encodng'" in message
    assert "did you mean 'encoding'" in message


def test_unknown_canonical_field_lists_the_valid_fields():
    message = error_for(config(sources={"register": source(fields={"frist_name": "f"})}))
    assert "sources.register.fields.frist_name: unknown field 'frist_name'" in message
    assert "did you mean 'first_name'" in message
    for valid in ("first_name", "date_of_birth", "nhs_number", "record_date", "identifiers"):
        assert valid in message


def test_unknown_key_in_a_field_mapping_is_an_error():
    message = error_for(config(sources={"register": source(fields={"first_name": {"column": "f", "fromat": "%d"}})}))
    assert "sources.register.fields.first_name.fromat: unknown key 'fromat'" in message


def test_unknown_linkage_key_is_an_error():
    assert "linkage.treshold: unknown key 'treshold'" in error_for(config(linkage={"treshold": 0.9}))


def test_internal_keys_cannot_be_set_from_a_config():
    assert "base_dir: unknown key 'base_dir'" in error_for(config(base_dir="/"))


@pytest.mark.parametrize("bad_name", ["1st-source", "my source", "council-tax", "_hidden", ""])
def test_source_names_outside_the_rule_are_refused(bad_name):
    message = error_for(config(sources={bad_name: source()}))
    assert f"source name {bad_name!r} is not allowed" in message
    assert "expected letters, digits and '_', starting with a letter" in message


def test_source_names_differing_only_in_case_are_refused():
    message = error_for(config(sources={"council_tax": source(), "Council_Tax": source()}))
    assert message == "<config>: sources: source names 'council_tax' and 'Council_Tax' differ only in case; expected distinct names"


@pytest.mark.parametrize("sql_word", ["all", "select", "from", "Order"])
def test_source_names_that_are_sql_words_are_allowed(sql_word):
    assert sql_word in load_config(config(sources={sql_word: source()})).sources


@pytest.mark.parametrize("bad_name", ["my borough", "borough/2024", "x" * 65])
def test_run_name_outside_the_rule_is_refused(bad_name):
    message = error_for(config(name=bad_name))
    assert message.startswith(f"<config>: name: found {bad_name!r}"[:40])
    assert "expected letters, digits, '_' and '-' only" in message


def test_numeric_run_name_and_column_names_are_read_as_text():
    cfg = load_config(config(name=2024, sources={"register": source(id=123, fields={"first_name": 2019})}))
    assert cfg.name == "2024"
    assert cfg.sources["register"].id == "123"
    assert cfg.sources["register"].fields.first_name.columns == ["2019"]


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"sources": {"register": source()}}, "<config>: name: missing required key 'name'"),
        ({"name": "borough"}, "<config>: sources: missing required key 'sources'"),
        (config(sources={}), "<config>: sources: no sources; expected at least one source"),
        (config(sources={"register": {"id": "ref", "fields": {"first_name": "f"}}}),
         "<config>: sources.register: a source needs either path (a file) or sql (a database); found neither"),
        (config(sources={"register": {"path": "p.csv", "fields": {"first_name": "f"}}}),
         "<config>: sources.register.id: missing required key 'id'"),
        (config(sources={"register": {"path": "p.csv", "id": "ref"}}),
         "<config>: sources.register.fields: missing required key 'fields'"),
    ],
)
def test_missing_required_keys_are_named(data, expected):
    assert error_for(data) == expected


@pytest.mark.parametrize(
    "data, expected",
    [
        (config(linkage={"threshold": "high"}), "<config>: linkage.threshold: found 'high', expected a number"),
        (config(linkage={"threshold": 1.5}), "<config>: linkage.threshold: found 1.5, expected a number less than 1"),
        (config(linkage={"threshold": 0}), "<config>: linkage.threshold: found 0, expected a number greater than 0"),
        (config(sources={"register": source(fields=["forename"])}),
         "<config>: sources.register.fields: found ['forename'], expected a mapping of canonical field -> column"),
        (config(sources=["register"]), "<config>: sources: found ['register'], expected a mapping of source name"),
        (config(sources={"register": None}), "<config>: sources.register: found None, expected a mapping with path, id and fields"),
        (config(sources={"register": source(fields={"first_name": True})}),
         "<config>: sources.register.fields.first_name: found True, expected a column name, a list of column names"),
        (config(sources={"register": source(fields={"first_name": "f", "identifiers": ["upn"]})}),
         "<config>: sources.register.fields.identifiers: found ['upn'], expected a mapping of identifier name -> column"),
        (config(sources={"register": source(id="  ")}), "<config>: sources.register.id: found '  ', expected the name"),
        (config(resident_view={"source_priority": "register"}),
         "<config>: resident_view.source_priority: found 'register', expected a list"),
    ],
)
def test_wrong_types_say_what_was_found_and_what_was_expected(data, expected):
    assert error_for(data).startswith(expected)


@pytest.mark.parametrize("path, found", [("people.txt", "'.txt'"), ("people", "'(none)'"), ("people.xls", "'.xls'")])
def test_unsupported_extension_is_a_config_error(path, found):
    message = error_for(config(sources={"register": source(path=path)}))
    assert f"sources.register.path: unsupported file type {found}" in message
    assert "expected one of .csv, .parquet, .xlsx" in message


def test_unknown_encoding_is_a_config_error():
    message = error_for(config(sources={"register": source(encoding="utf-99")}))
    assert message.startswith("<config>: sources.register.encoding: found 'utf-99', expected auto, utf-8, cp1252")


@pytest.mark.parametrize("encoding", ["auto", "utf-8", "cp1252", "latin-1", "UTF-8-SIG"])
def test_known_encodings_are_accepted(encoding):
    assert load_config(config(sources={"register": source(encoding=encoding)})).sources["register"].encoding == encoding


def test_encoding_on_a_parquet_source_is_an_error():
    message = error_for(config(sources={"register": source(path="p.parquet", encoding="cp1252")}))
    assert message == "<config>: sources.register: 'encoding' applies to .csv files only; this source is a .parquet file"


def test_sheet_on_a_csv_source_is_an_error():
    assert "'sheet' applies to .xlsx files only" in error_for(config(sources={"register": source(sheet="Sheet1")}))


def test_delimiter_is_one_character_and_tab_may_be_spelt_out():
    assert load_config(config(sources={"register": source(delimiter="tab")})).sources["register"].delimiter == "\t"
    assert load_config(config(sources={"register": source(delimiter=";")})).sources["register"].delimiter == ";"
    assert "expected one character such as ';'" in error_for(config(sources={"register": source(delimiter=";;")}))
    assert "expected one character" in error_for(config(sources={"register": source(delimiter="a")}))


def test_delimiter_on_a_workbook_and_header_row_on_parquet_are_errors():
    message = error_for(config(sources={"register": source(path="p.xlsx", delimiter=";")}))
    assert message.endswith("'delimiter' applies to .csv files only; this source is a .xlsx file")
    message = error_for(config(sources={"register": source(path="p.parquet", header_row=2)}))
    assert message.endswith("'header_row' applies to .csv and .xlsx files only; this source is a .parquet file")
    assert load_config(config(sources={"register": source(path="p.xlsx", header_row=3)})).sources["register"].header_row == 3


def test_header_row_counts_from_one():
    assert "header_row" in error_for(config(sources={"register": source(header_row=0)}))


def test_a_source_without_any_name_field_is_an_error():
    message = error_for(config(sources={"register": source(fields={"postcode": "pc", "date_of_birth": "dob"})}))
    assert message == (
        "<config>: sources.register.fields: no name field mapped; "
        "expected at least one of full_name, first_name, middle_names, last_name"
    )


def test_source_priority_naming_an_unknown_source_is_an_error():
    message = error_for(config(resident_view={"source_priority": ["register", "council_tx"]}))
    assert message == (
        "<config>: resident_view.source_priority: found unknown source(s) 'council_tx', expected some of: register"
    )


@pytest.mark.parametrize("bad", ["1upn", "upn number", "upn-2"])
def test_identifier_names_outside_the_rule_are_refused(bad):
    message = error_for(config(sources={"register": source(fields={"first_name": "f", "identifiers": {bad: "col"}})}))
    assert f"sources.register.fields.identifiers: identifier name {bad!r} is not allowed" in message


def test_identifier_names_differing_only_in_case_are_refused():
    message = error_for(config(sources={"register": source(fields={"first_name": "f", "identifiers": {"UPN": "a", "upn": "b"}})}))
    assert "identifier names 'UPN' and 'upn' differ only in case" in message


def test_field_forms_a_column_a_list_and_a_mapping_with_format():
    cfg = load_config(config(sources={"register": source(fields={
        "first_name": "First Name",
        "address": ["address_1", "address_2"],
        "date_of_birth": {"column": "dob", "format": "%d/%m/%Y"},
        "identifiers": {"upn": "pupil_number"},
    })}))
    spec = cfg.sources["register"]
    assert spec.fields.address.columns == ["address_1", "address_2"]
    assert spec.date_format("date_of_birth") == "%d/%m/%Y"
    assert spec.columns() == ["ref", "First Name", "dob", "address_1", "address_2", "pupil_number"]


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found$"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_that_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, expected a YAML config file$"):
        load_config(tmp_path)


def test_empty_yaml(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.yaml: config file is empty; expected keys name and sources$"):
        load_config(tmp_path / "empty.yaml")


def test_invalid_yaml_names_the_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: x\nsources:\n  a: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bad.yaml")
    assert "bad.yaml: not valid YAML at line" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_duplicate_keys_in_yaml_are_an_error_not_last_one_wins(tmp_path):
    (tmp_path / "dup.yaml").write_text(
        "name: x\n"
        "sources:\n"
        "  register:\n"
        "    path: a.csv\n"
        "    id: ref\n"
        "    fields:\n"
        "      first_name: forename\n"
        "      first_name: given_name\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "dup.yaml")
    assert str(caught.value).endswith("dup.yaml: line 8: duplicate key 'first_name'; expected each key once")


def test_yaml_that_is_not_a_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- name\n- sources\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="found list, expected a YAML mapping with keys name and sources"):
        load_config(tmp_path / "list.yaml")


def test_a_config_object_passes_through_unchanged():
    cfg = load_config(config())
    assert isinstance(cfg, Config)
    assert load_config(cfg) is cfg


def test_something_that_is_not_a_config_is_a_config_error():
    with pytest.raises(ConfigError, match="found int, expected a YAML file path, a dict or a Config"):
        load_config(42)


def test_memory_limit_is_a_size_with_its_unit():
    assert load_config(config()).memory_limit is None  # default: what the machine has available
    assert load_config(config(memory_limit="8GB")).memory_limit == "8GB"
    assert load_config(config(memory_limit=" 1.5 GiB ")).memory_limit == "1.5 GiB"


@pytest.mark.parametrize("bad", [8, "8 gigs", "0GB", "-2GB", "lots"])
def test_memory_limit_without_a_unit_or_amount_is_one_line(bad):
    message = error_for(config(memory_limit=bad))
    assert message == f"<config>: memory_limit: found {bad!r}, expected a size with its unit, such as 8GB or 512MB"


def test_spark_path_is_a_folder_spark_writes_and_never_carries_credentials():
    cfg = load_config(config(engine="spark", output={"folder": "out/", "spark_path": " hdfs:///council/view "}))
    assert cfg.spark_path == "hdfs:///council/view"
    assert load_config(config(output="out/")).spark_path is None
    azure = "abfss://view@council.dfs.core.windows.net/resident-view"  # container@account: no secret
    assert load_config(config(output={"spark_path": azure})).spark_path == azure
    message = error_for(config(output={"spark_path": "s3a://AKIAEXAMPLE:s3cr3t@bucket/view"}))
    assert message == ("<config>: output.spark_path: spark_path carries credentials; give them in Spark's "
                       "configuration, not the path")
    assert "s3cr3t" not in message
    assert "spark_path is blank" in error_for(config(output={"spark_path": "  "}))


def test_spark_path_without_engine_spark_stops_the_run_before_it_starts(linkable_pair):
    from residentview.engines.spark.outputs import check_spark_path
    from residentview.pipeline import link

    cfg = load_config(linkable_pair).model_copy(update={"output": load_config(
        config(output={"spark_path": "file:///tmp/view"})).output})
    with pytest.raises(ConfigError, match=r"output\.spark_path needs engine: spark \(or --engine spark\)"):
        link(cfg, previous=None, progress=False)
    check_spark_path(cfg.model_copy(update={"engine": "spark"}))  # the config alone: no session needed

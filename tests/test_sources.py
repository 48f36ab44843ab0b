"""Stage 1 — sources: every value read as text, the readers' encodings and formats, and one-line
errors for the file problems a council extract actually has."""

from __future__ import annotations

import codecs
import logging
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residentview import DataError, load_config
from residentview.sources import _text, read_source, read_sources, read_table


def one_source(tmp_path, path: str, fields=None, **options):
    spec = {"path": path, "id": "ref", "fields": fields or {"first_name": "forename"}, **options}
    return load_config({"name": "t", "sources": {"register": spec}}, base_dir=tmp_path)


def read_one(tmp_path, path: str, fields=None, **options) -> pd.DataFrame:
    raw, _ = read_source(one_source(tmp_path, path, fields, **options), "register")
    return raw


def data_error(tmp_path, path: str, fields=None, **options) -> str:
    with pytest.raises(DataError) as caught:
        read_sources(one_source(tmp_path, path, fields, **options))
    message = str(caught.value)
    assert "\n" not in message
    return message


# CSV ----------------------------------------------------------------------------------------

def test_csv_keeps_leading_zeros_in_ids_and_postcodes(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,pc\n00042,Ann,01234\n7,Bob,\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv", {"first_name": "forename", "postcode": "pc"})
    assert raw["record_id"].tolist() == ["00042", "7"]
    assert raw["postcode"].tolist() == ["01234", None]


def test_raw_frame_has_source_record_id_and_canonical_columns(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,upn\n1,Ann,A123\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv", {"first_name": "forename", "identifiers": {"UPN": "upn"}})
    assert raw.columns.tolist() == ["source", "record_id", "first_name", "id_upn"]
    assert raw.iloc[0].tolist() == ["register", "1", "Ann", "A123"]


def test_csv_in_cp1252_with_pound_sign_and_accents_is_detected(tmp_path):
    (tmp_path / "p.csv").write_bytes("ref,forename,note\n1,Zoë,£5 owed\n2,José,café\n".encode("cp1252"))
    raw, summaries = read_sources(one_source(tmp_path, "p.csv", {"first_name": "forename", "address": "note"}))
    assert raw["first_name"].tolist() == ["Zoë", "José"]
    assert raw["address"].tolist() == ["£5 owed", "café"]
    assert summaries[0].encoding == "cp1252"


def test_csv_with_utf8_bom_does_not_corrupt_the_first_column_name(tmp_path):
    (tmp_path / "p.csv").write_bytes("ref,forename\n1,Siân\n".encode("utf-8-sig"))
    raw, summaries = read_sources(one_source(tmp_path, "p.csv"))
    assert raw["record_id"].tolist() == ["1"]
    assert raw["first_name"].tolist() == ["Siân"]
    assert summaries[0].encoding == "utf-8"


@pytest.mark.parametrize("written", ["utf-8-sig", "utf-16"])
@pytest.mark.parametrize("declared", ["utf-8", "UTF8", "utf-16", "utf-16-le", "cp1252", "latin-1"])
def test_a_byte_order_mark_says_how_the_file_is_read(tmp_path, caplog, written, declared):
    """Excel's "CSV UTF-8" (a UTF-8 mark) read with `encoding: utf-8`, and its "Unicode text"
    (a UTF-16 mark): the first column's name is its own, whatever `encoding:` says, and an
    encoding the mark contradicts is overruled with a warning that says so."""
    (tmp_path / "p.csv").write_bytes("ref,forename\n1,Siân\n".encode(written))
    with caplog.at_level(logging.WARNING, logger="residentview.sources"):
        raw, summaries = read_sources(one_source(tmp_path, "p.csv", encoding=declared))
    assert raw["record_id"].tolist() == ["1"] and raw["first_name"].tolist() == ["Siân"]
    assert summaries[0].encoding == {"utf-8-sig": "utf-8"}.get(written, written)
    family = written.replace("-sig", "")
    contradicted = not declared.lower().replace("utf8", "utf-8").startswith(family)
    warned = [r.getMessage() for r in caplog.records if "byte-order mark" in r.getMessage()]
    assert warned == ([f"p.csv: the file starts with a {family.upper()} byte-order mark: read as {family.upper()}, "
                       f"not as {declared} ('encoding:')"] if contradicted else [])


def test_a_file_its_byte_order_mark_cannot_decode_is_one_line_and_no_warning(tmp_path, caplog):
    (tmp_path / "p.csv").write_bytes(codecs.BOM_UTF16_LE + "ref,forename\n1,".encode("utf-16-le") + b"\x00\xdc")
    with caplog.at_level(logging.WARNING, logger="residentview.sources"):
        message = data_error(tmp_path, "p.csv", encoding="utf-8")
    assert re.search(r"cannot decode the file as UTF-16, which its byte-order mark names \(byte \d+\); "
                     r"the file may be damaged: export it again$", message), message
    assert not caplog.records


def test_plain_utf8_csv(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n1,Łukasz\n", encoding="utf-8")
    assert read_one(tmp_path, "p.csv")["first_name"].tolist() == ["Łukasz"]


def test_utf16_csv_from_excel_unicode_export_is_detected(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n1,Chloé\n", encoding="utf-16")
    assert read_one(tmp_path, "p.csv")["first_name"].tolist() == ["Chloé"]


def test_csv_quoted_commas_and_crlf_line_endings(tmp_path):
    (tmp_path / "p.csv").write_bytes(b'ref,forename,addr\r\n1,Ann,"1 High St, Leeds"\r\n2,"Smith, Bob",x\r\n')
    raw = read_one(tmp_path, "p.csv", {"full_name": "forename", "address": "addr"})
    assert raw["address"].tolist() == ["1 High St, Leeds", "x"]
    assert raw["full_name"].tolist() == ["Ann", "Smith, Bob"]


def test_values_are_trimmed_and_blank_becomes_missing_but_na_text_is_kept(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n 1 ,  Ann \n2,   \n3,NA\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv")
    assert raw["record_id"].tolist() == ["1", "2", "3"]
    assert raw["first_name"].tolist() == ["Ann", None, "NA"]


def test_several_columns_are_joined_with_comma_skipping_blanks(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,a1,a2,town\n1,Ann,1 High St,,Leeds\n2,Bob,,,\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv", {"first_name": "forename", "address": ["a1", "a2", "town"]})
    assert raw["address"].tolist() == ["1 High St, Leeds", None]


def test_odd_but_legal_column_names_are_read(tmp_path):
    (tmp_path / "p.csv").write_text("Ref No,First Name,select,Nom.de famille,Année\n1,Ann,Lee,Lee,1990\n", encoding="utf-8")
    cfg = load_config({"name": "t", "sources": {"all": {"path": "p.csv", "id": "Ref No", "fields": {
        "first_name": "First Name", "last_name": "select", "previous_last_name": "Nom.de famille",
        "date_of_birth": "Année"}}}}, base_dir=tmp_path)
    raw, _ = read_sources(cfg)
    assert raw.iloc[0].tolist() == ["all", "1", "Ann", "Lee", "Lee", "1990"]


def test_wrong_explicit_encoding_suggests_setting_encoding(tmp_path):
    (tmp_path / "p.csv").write_bytes("ref,forename\n1,Zoë £\n".encode("cp1252"))
    message = data_error(tmp_path, "p.csv", encoding="utf-8")
    assert "p.csv: cannot decode the file as utf-8" in message
    assert "check 'encoding:'" in message and "cp1252" in message


def test_undecodable_file_in_auto_mode_suggests_setting_encoding(tmp_path):
    # 0x81 is undefined in cp1252 and invalid as a UTF-8 start byte
    (tmp_path / "p.csv").write_bytes(b"ref,forename\n1,Ann\x81\n")
    message = data_error(tmp_path, "p.csv")
    assert "cannot decode the file as UTF-8 or cp1252" in message
    assert "set 'encoding:' for this source" in message


def test_explicit_latin1_encoding_reads_any_bytes(tmp_path):
    (tmp_path / "p.csv").write_bytes(b"ref,forename\n1,Ann\x81\n")
    assert read_one(tmp_path, "p.csv", encoding="latin-1")["first_name"].tolist() == ["Ann\x81"]


def test_only_the_configured_columns_are_read(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,notes\n1,Ann,long text\n", encoding="utf-8")
    frame, _ = read_table(tmp_path / "p.csv", columns=["ref", "forename"])
    assert sorted(frame.columns) == ["forename", "ref"]


# Parquet and Excel ----------------------------------------------------------------------------

def test_parquet_with_integer_ids_and_a_list_valued_column(tmp_path):
    table = pa.table({
        "ref": pa.array([7, 42, 1001], pa.int64()),
        "forename": ["Ann", "Bob", None],
        "address_lines": pa.array([["1 High St", "", "Leeds"], [], None], pa.list_(pa.string())),
        "uprn": pa.array([100023336956, None, 12], pa.float64()),
    })
    pq.write_table(table, tmp_path / "p.parquet")
    raw = read_one(tmp_path, "p.parquet", {"first_name": "forename", "address": "address_lines", "uprn": "uprn"})
    assert raw["record_id"].tolist() == ["7", "42", "1001"]
    assert raw["first_name"].tolist() == ["Ann", "Bob", None]
    assert raw["address"].tolist() == ["1 High St, Leeds", None, None]
    assert raw["uprn"].tolist() == ["100023336956", None, "12"]


def test_parquet_dates_are_read_as_iso_text(tmp_path):
    pd.DataFrame({"ref": ["a"], "forename": ["Ann"], "dob": pd.to_datetime(["1990-02-03"])}).to_parquet(tmp_path / "p.parquet")
    raw = read_one(tmp_path, "p.parquet", {"first_name": "forename", "date_of_birth": "dob"})
    assert raw["date_of_birth"].tolist() == ["1990-02-03"]


def write_workbook(path, sheets: dict[str, list[list]]):
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


def test_xlsx_reads_the_named_sheet_keeping_text_ids(tmp_path):
    import datetime as dt

    write_workbook(tmp_path / "p.xlsx", {
        "Notes": [["nothing here"]],
        "People": [["ref", "forename", "dob", "nhs"], ["00042", "Ann", dt.datetime(1990, 2, 3), 9434765919],
                   [17, "NA", None, "943 476 5919"], [18, "Bo", dt.date(2001, 12, 31), None]],
    })
    raw = read_one(tmp_path, "p.xlsx", {"first_name": "forename", "date_of_birth": "dob", "nhs_number": "nhs"},
                   sheet="People")
    assert raw["record_id"].tolist() == ["00042", "17", "18"]
    assert raw["first_name"].tolist() == ["Ann", "NA", "Bo"]
    assert raw["date_of_birth"].tolist() == ["1990-02-03", None, "2001-12-31"]
    assert raw["nhs_number"].tolist() == ["9434765919", "943 476 5919", None]  # a number cell, not 9.43e9


def test_xlsx_reads_the_first_sheet_by_default(tmp_path):
    write_workbook(tmp_path / "p.xlsx", {"Sheet1": [["ref", "forename"], [1, "Ann"]]})
    assert read_one(tmp_path, "p.xlsx")["first_name"].tolist() == ["Ann"]


def test_xlsx_missing_sheet_lists_the_sheets(tmp_path):
    write_workbook(tmp_path / "p.xlsx", {"Sheet1": [["ref", "forename"], [1, "Ann"]]})
    message = data_error(tmp_path, "p.xlsx", sheet="People")
    assert message.endswith("source register: sheet 'People' not found; the workbook has: 'Sheet1'")


def test_xlsx_header_row_skips_a_title_above_the_header(tmp_path):
    write_workbook(tmp_path / "p.xlsx", {"People": [["Register as at 1 May"], [], ["ref", "forename"], [1, "Ann"],
                                                    [2, "Bo"]]})
    raw = read_one(tmp_path, "p.xlsx", header_row=3)
    assert raw["record_id"].tolist() == ["1", "2"]
    assert raw["first_name"].tolist() == ["Ann", "Bo"]


# Delimiters and title rows (CSV) -------------------------------------------------------------

def test_csv_header_row_skips_title_lines(tmp_path):
    (tmp_path / "p.csv").write_text("Extract of 1 May 2026, all wards\n\nref,forename\n001,Ann\n002,Bo\n",
                                    encoding="utf-8")
    raw = read_one(tmp_path, "p.csv", header_row=3)
    assert raw["record_id"].tolist() == ["001", "002"]
    assert raw["first_name"].tolist() == ["Ann", "Bo"]


def test_csv_header_row_past_the_end_is_one_line(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n001,Ann\n", encoding="utf-8")
    assert "line 9 is blank or past the end" in data_error(tmp_path, "p.csv", header_row=9)


def test_csv_explicit_delimiter_keeps_commas_inside_values(tmp_path):
    (tmp_path / "p.csv").write_text("ref|forename|address\n1|Ann|1 High St, Leeds\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv", {"first_name": "forename", "address": "address"}, delimiter="|")
    assert raw["address"].tolist() == ["1 High St, Leeds"]


@pytest.mark.parametrize("sep", ["\t", ";", "|"])
def test_csv_without_commas_in_its_header_reads_with_its_own_delimiter(tmp_path, sep):
    (tmp_path / "p.csv").write_text(f"ref{sep}forename\n001{sep}Smith, Ann\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv")
    assert raw["first_name"].tolist() == ["Smith, Ann"]


def test_csv_with_commas_in_its_header_stays_comma_separated(tmp_path):
    # what read before reads the same: a semicolon inside a value never makes it the delimiter
    (tmp_path / "p.csv").write_text("ref,forename\n001,Ann;Bo\n", encoding="utf-8")
    assert read_one(tmp_path, "p.csv")["first_name"].tolist() == ["Ann;Bo"]


def test_delimiter_and_header_row_do_not_change_record_hashes(tmp_path):
    from residentview.sources import row_hashes

    (tmp_path / "p.csv").write_text("ref,forename\n1,Ann\n", encoding="utf-8")
    (tmp_path / "q.csv").write_text("Title\nref;forename\n1;Ann\n", encoding="utf-8")
    plain = one_source(tmp_path, "p.csv")
    laid_out = one_source(tmp_path, "q.csv", delimiter=";", header_row=2)
    raw_plain, _ = read_source(plain, "register")
    raw_laid_out, _ = read_source(laid_out, "register")
    assert (row_hashes(raw_plain, plain) == row_hashes(raw_laid_out, laid_out)).all()


@pytest.mark.parametrize("name", ["p.parquet", "p.xlsx"])
def test_unreadable_binary_files(tmp_path, name):
    (tmp_path / name).write_text("this is not what the extension says", encoding="utf-8")
    message = data_error(tmp_path, name)
    assert f"{name}: not a readable" in message


# Errors -------------------------------------------------------------------------------------

def test_missing_column_names_the_source_the_column_and_the_columns_present(tmp_path):
    (tmp_path / "p.csv").write_text("ref,First Name,surname\n1,Ann,Lee\n", encoding="utf-8")
    message = data_error(tmp_path, "p.csv", {"first_name": "forename"})
    assert "p.csv: source register: column(s) 'forename' not found" in message
    assert "the file has: 'ref', 'First Name', 'surname'" in message


def test_missing_id_column_is_reported(tmp_path):
    (tmp_path / "p.csv").write_text("id,forename\n1,Ann\n", encoding="utf-8")
    assert "column(s) 'ref' not found" in data_error(tmp_path, "p.csv")


def test_duplicate_ids_are_listed_up_to_five(tmp_path):
    rows = "".join(f"{i},Ann\n{i},Bob\n" for i in range(1, 8))
    (tmp_path / "p.csv").write_text("ref,forename\n" + rows, encoding="utf-8")
    message = data_error(tmp_path, "p.csv")
    assert message.endswith("source register: 7 duplicate id(s), e.g. 1, 2, 3, 4, 5; expected each id once")


def test_ids_differing_only_by_surrounding_spaces_are_duplicates(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n001,Ann\n001 ,Bob\n", encoding="utf-8")
    assert "1 duplicate id(s), e.g. 001" in data_error(tmp_path, "p.csv")


def test_blank_ids_are_reported_with_their_rows(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n1,Ann\n,Bob\n  ,Cy\n", encoding="utf-8")
    assert data_error(tmp_path, "p.csv").endswith("source register: 2 record(s) with a blank id (data row(s) 2, 3)")


def test_empty_file(tmp_path):
    (tmp_path / "p.csv").write_bytes(b"")
    assert data_error(tmp_path, "p.csv").endswith("p.csv: source register: file is empty")


def test_file_with_only_blank_lines_is_empty(tmp_path):
    (tmp_path / "p.csv").write_text("\n\n", encoding="utf-8")
    assert "file is empty (no header row)" in data_error(tmp_path, "p.csv")


def test_header_only_file_is_a_warning(tmp_path, caplog):
    (tmp_path / "empty.csv").write_text("ref,forename\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text("ref,forename\n1,Ann\n", encoding="utf-8")
    cfg = load_config({"name": "t", "sources": {
        "empty": {"path": "empty.csv", "id": "ref", "fields": {"first_name": "forename"}},
        "full": {"path": "p.csv", "id": "ref", "fields": {"first_name": "forename"}},
    }}, base_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        raw, summaries = read_sources(cfg)
    assert len(raw) == 1
    assert summaries[0].n_records == 0
    assert summaries[0].warnings == [f"{tmp_path / 'empty.csv'}: source empty: has a header but no records"]
    assert "has a header but no records" in caplog.text


def test_no_records_in_any_source_is_an_error(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n", encoding="utf-8")
    assert "no records in any source" in data_error(tmp_path, "p.csv")


def test_file_not_found(tmp_path):
    assert data_error(tmp_path, "missing.csv").endswith("missing.csv: source register: file not found")


def test_path_that_is_a_folder(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    assert "folder.csv: source register: is a folder" in data_error(tmp_path, "folder.csv")


def test_row_with_an_unquoted_comma_is_an_error_not_a_shift(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n1,Ann\n2,Smith,Bob\n", encoding="utf-8")
    message = data_error(tmp_path, "p.csv")
    assert message.endswith(
        "source register: data row 2 has more fields than the header's 2 (an unquoted comma?); "
        "1 row(s) affected; expected one field per column"
    )


def test_every_row_with_an_extra_field_is_still_an_error(tmp_path):
    # pandas alone would read the first column as an index and shift every value left
    (tmp_path / "p.csv").write_text("ref,forename\n1,Ann,x\n2,Bob,y\n", encoding="utf-8")
    assert "data row 1 has more fields than the header's 2" in data_error(tmp_path, "p.csv")


def test_row_with_far_too_many_fields_names_its_line(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename\n1,Ann\n2," + ",".join("x" * 20) + "\n", encoding="utf-8")
    assert "line 3 has far more fields than the header's 2" in data_error(tmp_path, "p.csv")


def test_trailing_comma_on_every_line_is_read_normally(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,\n1,Ann,\n2,Bob,\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv")
    assert raw["record_id"].tolist() == ["1", "2"]
    assert raw["first_name"].tolist() == ["Ann", "Bob"]


def test_short_rows_leave_the_missing_fields_blank(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,surname\n1,Ann\n", encoding="utf-8")
    raw = read_one(tmp_path, "p.csv", {"first_name": "forename", "last_name": "surname"})
    assert raw.iloc[0].tolist() == ["register", "1", "Ann", None]


def test_duplicate_configured_column_in_the_header_is_an_error(tmp_path):
    (tmp_path / "p.csv").write_text("ref,forename,forename\n1,Ann,Bob\n", encoding="utf-8")
    assert "column 'forename' appears 2 times in the header" in data_error(tmp_path, "p.csv")


def test_unsupported_extension_when_read_directly(tmp_path):
    (tmp_path / "p.txt").write_text("ref\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"p\.txt: unsupported file type '\.txt'"):
        read_table(tmp_path / "p.txt")


# Properties ---------------------------------------------------------------------------------

cell_values = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))),  # decoded files hold no lone surrogates
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(cell_values, min_size=1, max_size=20))
def test_any_column_becomes_trimmed_text_or_missing_and_reading_twice_changes_nothing(values):
    text = _text(pd.Series(values, dtype=object))
    assert len(text) == len(values)
    for value in text.dropna():
        assert isinstance(value, str) and value == value.strip() and value != ""
    assert _text(text.astype(object)).equals(text)


# Record hashes: what `update` compares to find changed records -------------------------------

def _hashed(write_config, tmp_path, rows: dict, **spec) -> dict:
    from residentview.sources import row_hashes

    path = spec.pop("path", "a.csv")
    pd.DataFrame(rows).to_csv(tmp_path / path, index=False)
    fields = {"first_name": "first", "date_of_birth": {"column": "born", "format": "%d/%m/%Y"}}
    fields.update(spec.pop("fields", {}))
    config = load_config(write_config({"name": "h", "sources": {"a": {"path": path, "id": "ref",
                                                                        "fields": fields, **spec}}}))
    raw, _ = read_sources(config)
    return dict(zip(raw["record_id"], row_hashes(raw, config).tolist()))


def test_a_record_hash_changes_with_its_values_and_its_sources_settings_only(write_config, tmp_path):
    rows = {"ref": ["1", "2", "3"], "first": ["Ann", "Bob", None], "born": ["01/02/1990", "03/04/1985", "05/06/1970"],
            "other": ["x", "y", "z"]}
    base = _hashed(write_config, tmp_path, rows)
    assert len(set(base.values())) == 3
    # Row order, an unmapped column, and the file's name do not count.
    shuffled = {k: list(reversed(v)) for k, v in rows.items()} | {"other": ["p", "q", "r"]}
    assert _hashed(write_config, tmp_path, shuffled) == base
    assert _hashed(write_config, tmp_path, rows, path="tonight.csv") == base
    # One value changed, a blank filled in: those records only.
    edited = rows | {"first": ["Ann", "Rob", "Cy"]}
    changed = _hashed(write_config, tmp_path, edited)
    assert changed["1"] == base["1"] and changed["2"] != base["2"] and changed["3"] != base["3"]
    # A setting that changes how values read (the date format): every record of the source.
    other_format = _hashed(write_config, tmp_path, rows, fields={"date_of_birth": {"column": "born", "format": "%m/%d/%Y"}})
    assert all(other_format[k] != base[k] for k in base)
    # A blank is not an empty text: None and "" differ from any value.
    assert _hashed(write_config, tmp_path, rows | {"first": ["Ann", "Bob", "None"]})["3"] != base["3"]


def test_read_as_arrow_text_gives_the_same_values_and_hashes(tmp_path):
    """An update reads the sources as Arrow text and converts only the changed records: the
    values, the fields one source lacks and the record hashes must be those of the plain read."""
    from residentview.sources import TEXT, as_python_values, row_hashes

    (tmp_path / "a.csv").write_text("ref,forename,dob,seen\n1,Ann,1990-02-03,2026-01-01\n2, ,,2001-01-01\n3,Bo,,\n",
                                    encoding="utf-8")
    pd.DataFrame({"ref": [7, 8], "surname": ["Cole", None]}).to_parquet(tmp_path / "b.parquet")
    config = load_config({"name": "t", "sources": {
        "register": {"path": "a.csv", "id": "ref", "retention": {"years": 10},
                     "fields": {"first_name": "forename", "date_of_birth": "dob", "record_date": "seen"}},
        "tax": {"path": "b.parquet", "id": "ref", "fields": {"last_name": "surname"}},
    }}, base_dir=tmp_path)
    today = pd.Timestamp("2026-06-01", tz="UTC")
    plain, plain_summaries = read_sources(config, today=today)
    text, text_summaries = read_sources(config, today=today, as_text=True)
    assert (text.dtypes == TEXT).all()
    assert as_python_values(text).equals(plain)
    assert plain["record_id"].tolist() == ["1", "3", "7", "8"]  # record 2 is past retention
    assert plain["last_name"].tolist() == [None, None, "Cole", None]
    assert [s.past_retention for s in text_summaries] == [s.past_retention for s in plain_summaries] == [["2"], []]
    assert (row_hashes(text, config) == row_hashes(plain, config)).all()

"""The report's "Data protection" section: what personal data each output file holds, and what
retention removed — the facts a Data Protection Impact Assessment is written from (issue 20).

Columns are classified by name through one table (`KNOWN`), applied to the columns the run's
files actually have, so the section follows the outputs as they change: a column the table does
not know is listed as "unclassified — check", never silently passed over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd

from residentview.report.html_page import Page, esc, note, table

DIRECT = "direct identifiers"
QUASI = "quasi-identifiers"
SPECIAL = "special category and sensitive"
PSEUDONYMOUS = "pseudonymous ids"
NOT_PERSONAL = "no personal data"
UNCLASSIFIED = "unclassified — check"
CATEGORIES = (DIRECT, QUASI, SPECIAL, PSEUDONYMOUS, NOT_PERSONAL, UNCLASSIFIED)

# Column name (after any _l / _r suffix of a pair's two records is taken off) -> category.
# Derived forms of a name or an address (keys, phonetic codes, tokens) identify as the name does.
KNOWN = {
    DIRECT: ("title full_name first_name middle_names last_name previous_last_name other_names name_suffix "
             "address addresses address_key address_tokens street_word building_name house_number flat_number "
             "uprn nhs_number ni_number phone email record_id first_name_key middle_names_key last_name_key "
             "previous_last_name_key first_name_aliases first_name_alias_initials first_name_phonetic "
             "last_name_phonetic last_name_parts postcode_as_written reviewer note"),
    QUASI: ("date_of_birth dob dob_estimated dob_invalid_reason sex surname_sex postcode postcode_sector "
            "postcode_district postcode_area age_band household_size size record_date first_seen last_seen "
            "event_date"),
    SPECIAL: "is_deceased sources source event details",
    PSEUDONYMOUS: ("resident_id household_id address_id current_address_id resident_ids old_id new_id unique_id "
                   "review_id decision_id row_hash"),
    NOT_PERSONAL: ("match_weight match_probability full_name_frequency_adjustment n_records is_person current "
                   "id_issued_at run_timestamp entity change decision decided_at origin model_version reason "
                   "field n_present completeness n_valid n_invalid n_placeholder n_distinct invalid_reasons "
                   "top_invalid_patterns full_name_count match_key"),
}
_CATEGORY_OF = {name: category for category, names in KNOWN.items() for name in names.split()}
# Splink's per-comparison columns: levels, weights and term frequencies — scores, not values.
_SCORES = re.compile(r"^(gamma|mw|mw_tf_adj|bf|tf)_")
# A service whose records say something about health, care or a child's protection.
_SENSITIVE_SERVICE = re.compile(r"care|health|social|child|safeguard|disab|mental|nhs|hospital|gp_|adult_",
                                re.IGNORECASE)

# What the files of the folder are, in the order of README's table; files that are not tables
# are described in words.
TABLES = ("resident_links", "residents", "households", "id_changes", "addresses", "events", "data_quality",
          "records", "pairs", "review_pairs", "decisions")
OTHER_FILES = {
    "review_queue.csv": "both records of each pair to check, as `records.parquet` holds them (names, dates of "
                        "birth, addresses, identifiers)",
    "report.html": "this report: examples of records and pairs, with their values",
    "resident_view.duckdb": "the tables above, in one database",
    "audit.jsonl": "who ran what and when: OS user names, reviewers' names, record ids of decided pairs; "
                   "counts and digests, no values",
    "run.json": "counts, settings and timings; no personal data",
    "model.json": "the trained model: probabilities per comparison level; no personal data",
    "runs/": "each run's run.json and report.html (the reports hold personal data as this one does)",
}


def classify(column: str) -> str:
    """The category of a column, by its name (a pair's `_l` / `_r` suffix taken off)."""
    if _SCORES.match(column):
        return NOT_PERSONAL
    for name in (column, re.sub(r"_(l|r)$", "", column)):
        if name in _CATEGORY_OF:
            return _CATEGORY_OF[name]
        if name.startswith("id_"):  # a source's named reference (identifiers: upn: …)
            return DIRECT
    return UNCLASSIFIED


def file_columns(folder: Path, name: str, frame: Optional[pd.DataFrame],
                 written: Optional[list[str]] = None) -> Optional[list[str]]:
    """The columns of `name`.parquet: the frame the report holds (it may read only some columns
    of a file), then the file's other columns — `written`, when the run writing the file beside
    this report says which (reading its schema then would depend on whether it was written yet),
    else the file's schema, when it can be read."""
    import pyarrow.parquet as pq

    columns = list(frame.columns) if frame is not None else []
    if written is None:
        try:
            written = pq.read_schema(Path(folder) / f"{name}.parquet").names
        except Exception:  # absent or unreadable
            written = []
    columns += [c for c in written if c not in columns]
    return columns or None


def personal_data_table(columns_by_file: dict[str, list[str]], sensitive_services: list[str]) -> pd.DataFrame:
    """One row per file: its columns under each category."""
    rows = []
    for name, columns in columns_by_file.items():
        row = {"file": name}
        for category in CATEGORIES:
            found = [c for c in columns if classify(c) == category]
            row[category] = ", ".join(found) if found else ""
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["file", *CATEGORIES])
    if not (frame[UNCLASSIFIED] != "").any():
        frame = frame.drop(columns=UNCLASSIFIED)
    return frame


def retention_table(run: dict) -> pd.DataFrame:
    """Per source: its retention and how many records it left out of this run."""
    kept = run.get("retention") or {}
    rows = [{"source": source, "retention": (kept.get(source) or {}).get("retention") or "none set",
             "records used": n, "records past retention (left out)": (kept.get(source) or {}).get(
                 "records_past_retention", 0)}
            for source, n in (run.get("sources") or {}).items()]
    return pd.DataFrame(rows, columns=["source", "retention", "records used", "records past retention (left out)"])


def data_protection(page: Page, inputs) -> None:
    outputs = inputs.outputs
    in_memory = {"resident_links": outputs.links, "residents": outputs.residents, "households": outputs.households,
                 "id_changes": outputs.id_changes, "addresses": outputs.addresses, "events": outputs.events,
                 "data_quality": outputs.quality, "records": outputs.records, "pairs": outputs.pairs,
                 "decisions": outputs.decisions}
    columns = {f"{name}.parquet": found for name in TABLES
               if (found := file_columns(outputs.folder, name, in_memory.get(name),
                                         (outputs.written or {}).get(name))) is not None}
    sources = list((outputs.run.get("sources") or {}).keys()) or sorted(outputs.links["source"].astype(str).unique())
    sensitive = [s for s in sources if _SENSITIVE_SERVICE.search(s)]
    body = note("The personal data in each file of this output folder, by column, for a Data Protection Impact "
                "Assessment. Direct identifiers name a person on their own; quasi-identifiers single people out "
                "in combination; special category and sensitive: which services know a resident ("
                + (f"here {', '.join(sensitive)} reveal health or social care" if sensitive else
                   "no service's name here suggests health or social care; check") +
                "), deaths, and life events; pseudonymous ids are the run's own ids (address_id is an unkeyed "
                "hash of the address, which anyone with a list of addresses can reverse). Classified by column "
                "name from the files themselves.")
    body += table(personal_data_table(columns, sensitive))
    body += "<h3>Other files</h3><ul>" + "".join(
        f"<li><code>{esc(name)}</code>: {esc(text)}</li>" for name, text in OTHER_FILES.items()) + "</ul>"
    body += "<h3>Retention</h3>"
    retention = retention_table(outputs.run)
    if len(retention):
        body += table(retention, {"records used": lambda v: f"{int(v):,}",
                                  "records past retention (left out)": lambda v: f"{int(v):,}"})
    body += note("A source's `retention` (e.g. {years: 6}) leaves out its records whose record_date is older, "
                 "counted back from the run's date: they are not used, and leave every output, the address "
                 "history and earlier runs' reports; records without a record_date are kept. Reviewers' "
                 "decisions on them stay in decisions.parquet (record ids only), inactive. Each run's counts are "
                 "in the audit log." if "retention" in outputs.run else
                 "This run recorded no retention settings (a run before retention was introduced).")
    page.section("data-protection", "Data protection", body)

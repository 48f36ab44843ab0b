"""The frames that pass between stages, named once so every stage agrees.

raw (sources -> standardise)
    ``source``, ``record_id`` (str) and the canonical fields a source maps, as text as written
    (``id_<name>`` for named identifiers). Columns a source does not map are absent or None.

records (standardise -> link, cluster, resident view, report): one row per input record
    ``unique_id``      int64, 0..n-1, assigned after sorting by (source, record_id) so any input
                       row order gives the same ids
    ``source``, ``record_id``
    golden-value columns, canonical forms of CONTRACT §1 (None when absent or invalid):
        title, first_name, middle_names, last_name, previous_last_name (upper case, accents kept),
        date_of_birth (datetime64[ns]), sex ('M' / 'F'), address (upper, abbreviations expanded,
        postcode removed), postcode ('SW1A 1AA'), uprn, nhs_number, ni_number, phone (E.164),
        email, record_date (datetime64[ns]), id_<name> (trimmed, upper case)
    matching columns (derived; never shown as golden values):
        first_name_key, middle_names_key, last_name_key, previous_last_name_key
                           accent-folded A-Z; hyphens, apostrophes and spaces removed
                           (middle_names_key keeps one space between names)
        first_name_aliases list[str]: canonical forenames the first name may stand for
                           (BILL -> [BILL, WILLIAM]); always contains first_name_key
        first_name_phonetic, last_name_phonetic   phonetic codes for blocking
        postcode_sector ('SW1A 1'), postcode_district ('SW1A'), postcode_area ('SW')
        postcode_as_written ('L562ZU', '2500': a postcode in no UK format, compacted; matched
                           as written, never shown as a postcode)
        house_number, flat_number, building_name (the address's words, for fuzzy comparison, are
        split off it in the linkage database: a million Python lists cost seconds)
        is_person (bool: False for organisations / 'The Occupier'), is_deceased (bool),
        dob_estimated (bool: 1 January dates), dob_invalid_reason (str or None)
        row_hash           uint64: the raw record's mapped values and its source's settings,
                           hashed (`sources.row_hashes`); how `update` finds changed records

quality (standardise -> data_quality.parquet, report)
    one row per (source, field): source, field, n_records, n_present, completeness,
    n_valid, n_invalid, n_placeholder, n_distinct, invalid_reasons (JSON text: reason -> count),
    top_invalid_patterns (JSON text: masked pattern -> count; letters as A, digits as 9)

pairs (link -> cluster, report): Splink's predictions at or above 0.01, lean: ``unique_id_l``,
    ``unique_id_r``, ``match_weight``, ``match_probability``, per-comparison ``gamma_*`` levels and
    ``bf_tf_adj_*`` term-frequency adjustments (the compared values are in records).
review_pairs: the pairs within a few match-weight bits of the threshold with every column
    Splink computed (values ``*_l``/``*_r``, ``bf_*``, ``tf_*``), for Splink's comparison viewer.

clusters (cluster -> resident view): ``unique_id``, ``cluster_key`` (int64, the lowest member
    unique_id: a label for this run only), ``match_probability`` (confidence of membership; 1.0
    for a singleton).
"""

from residentview.fields import CANONICAL_FIELDS

NAME_KEY_COLUMNS = ("first_name_key", "middle_names_key", "last_name_key", "previous_last_name_key")

# The canonical fields whose survivors make a resident's golden record.
GOLDEN_FIELDS = tuple(f for f in CANONICAL_FIELDS if f not in ("full_name", "record_date", "identifiers"))

OUTPUT_FILES = (
    "resident_links.parquet",
    "residents.parquet",
    "households.parquet",
    "id_changes.parquet",
    "addresses.parquet",
    "events.parquet",
    "data_quality.parquet",
    "records.parquet",
    "pairs.parquet",
    "review_pairs.parquet",
    "model.json",
    "report.html",
    "review_queue.csv",
    "resident_view.duckdb",
    "run.json",
)

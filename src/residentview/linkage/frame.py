"""The linking frame: the standardised records reduced to the columns the comparisons read.

Records that are not people (organisations, "The Occupier") are left out of person matching; the
cluster stage gives each of them a resident of its own.
"""

from __future__ import annotations

import pandas as pd

from residentview.linkage.comparisons import fields_carried
from residentview.standardise.names import alias_initials
from residentview.standardise.text import map_distinct

# Columns taken from the standardised records as they are.
PASSTHROUGH = (
    "first_name_key",
    "first_name_aliases",
    "middle_names_key",
    "last_name_key",
    "previous_last_name_key",
    "first_name_phonetic",
    "last_name_phonetic",
    "postcode",
    "postcode_sector",
    "postcode_district",
    "house_number",
    "flat_number",
    "uprn",
    "nhs_number",
    "ni_number",
    "phone",
    "email",
)

# Columns the linkage database computes as it loads the frame, from columns the frame hands over
# as they are: SQL over a million rows takes a fraction of the time the same work takes in
# pandas. The frame's `address_key` holds the standardised address and `last_name_parts` the
# surname until the SQL replaces them. Name -> SQL, in the order they are computed.
_NORMALISED = "nullif(trim(regexp_replace(regexp_replace(upper({0}), '[^A-Z0-9 ]+', ' ', 'g'), '\\s+', ' ', 'g')), '')"
_PARTS = "trim(regexp_replace(upper(last_name_parts), '[^A-Z]+', ' ', 'g'))"
REPLACED = {
    "address_key": _NORMALISED.format("address_key"),
    # ' SMITH JONES SMITHJONES ' for SMITH-JONES: lets one part of a double-barrelled name match.
    "last_name_parts": (
        f"CASE WHEN contains({_PARTS}, ' ') THEN ' ' || {_PARTS} || ' ' || replace({_PARTS}, ' ', '') || ' ' END"
    ),
}
ADDED = {
    "address_tokens": (("address_key",), "list_sort(list_distinct(string_split(address_key, ' ')))"),
    # The street's name, or its first word: the first word of three letters or more after a
    # house number ("FLAT 6 23 PARKIN DRIVE" -> PARKIN, "565O HILL PARADE" -> HILL), else the
    # address's first such word; whatever the house number, the town or a county added say.
    "street_word": (
        ("address_key",),
        "coalesce(nullif(regexp_extract(address_key, '[0-9]+[^ ]* ([A-Z]{3,})', 1), ''), "
        "nullif(regexp_extract(address_key, '[A-Z]{3,}'), ''))",
    ),
    # How many records carry this exact full name: lets blocking compare rare full names across
    # the whole borough without comparing every JOHN SMITH with every other.
    "full_name_count": (
        ("first_name_key", "last_name_key"),
        "CASE WHEN first_name_key IS NOT NULL AND last_name_key IS NOT NULL "
        "THEN count(*) OVER (PARTITION BY first_name_key, last_name_key) END",
    ),
}


# Titles that say a person's sex, for records that do not: "MRS J SMITH" is not JOHN SMITH.
SEX_OF_TITLE = {
    "MR": "M", "MASTER": "M", "SIR": "M", "LORD": "M",
    "MRS": "F", "MS": "F", "MISS": "F", "DAME": "F", "LADY": "F",
}


# A first name says a sex when the records that state one (recorded, or by title) almost all
# agree: SARAH, SCOTT. Unisex names (SAM, ALEX, JO) and rare ones say nothing.
NAME_SEX_MIN_RECORDS = 5
NAME_SEX_MIN_SHARE = 0.95


def _stated_sex(persons: pd.DataFrame) -> pd.Series:
    """The recorded sex, else the one the title implies."""
    recorded = persons["sex"] if "sex" in persons else pd.Series(None, index=persons.index, dtype=object)
    if "title" not in persons:
        return recorded.astype(object).where(recorded.notna(), None)
    sex = recorded.where(recorded.notna(), persons["title"].map(SEX_OF_TITLE)).astype(object)
    return sex.where(sex.notna(), None)


def stated_sex_counts(persons: pd.DataFrame) -> pd.DataFrame:
    """How many records of each first name (of two letters or more) state each sex, recorded or
    by title: first_name_key x 'F'/'M', as `pd.crosstab` counts them. These counts add up across
    parts of the records, for an engine that counts them part by part."""
    if "first_name_key" not in persons:
        return pd.DataFrame()
    stated = _stated_sex(persons)
    named = persons["first_name_key"].str.len().gt(1) & stated.isin(["F", "M"])
    return pd.crosstab(persons.loc[named, "first_name_key"], stated[named])


def names_sex_from_counts(counts: pd.DataFrame) -> pd.Series:
    """`sex_of_names` from `stated_sex_counts` (of all the records)."""
    if counts.empty:
        return pd.Series(dtype=object)
    total = counts.sum(axis=1)
    top = counts.idxmax(axis=1)
    share = counts.max(axis=1) / total
    sure = (total >= NAME_SEX_MIN_RECORDS) & (share >= NAME_SEX_MIN_SHARE)
    return top[sure].astype(object)


def sex_of_names(persons: pd.DataFrame) -> pd.Series:
    """first_name_key -> 'F' or 'M', learned from the records themselves: names of at least
    NAME_SEX_MIN_RECORDS records stating a sex, NAME_SEX_MIN_SHARE of them one sex."""
    return names_sex_from_counts(stated_sex_counts(persons))


def implied_sex(persons: pd.DataFrame, names: pd.Series | None = None) -> pd.Series:
    """The recorded sex, else the one the title implies, else (given `names`, from
    `sex_of_names`) the one the first name implies."""
    sex = _stated_sex(persons)
    if names is None or not len(names) or "first_name_key" not in persons:
        return sex
    by_name = persons["first_name_key"].map(names)
    return sex.where(sex.notna(), by_name).astype(object).where(lambda s: s.notna(), None)


WINDOWED = ("full_name_count",)  # ADDED columns counted over the whole table, not row by row


def _added(columns: set[str], rowwise: bool = False) -> dict[str, str]:
    return {name: sql for name, (sources, sql) in ADDED.items()
            if set(sources) <= columns and not (rowwise and name in WINDOWED)}


def with_derived(columns: set[str]) -> set[str]:
    """The columns of the loaded table: the frame's and those ADDED from them."""
    return columns | set(_added(columns))


def load_sql(columns: set[str], table: str, rowwise: bool = False) -> str:
    """The SELECT that turns the frame (registered as `table`) into the linking table, in
    unique_id order whatever the window functions did (Splink's seeded sampling reads rows in
    table order, so a run-to-run order would change the model). `rowwise`: only what each row
    gives (no `WINDOWED` column), in no particular order, for an engine that loads the records
    part by part and counts the rest over the whole table itself."""
    replaced = [f"{sql} AS {name}" for name, sql in REPLACED.items() if name in columns]
    select = f"SELECT * REPLACE ({', '.join(replaced)}) FROM {table}" if replaced else f"SELECT * FROM {table}"
    added = [f"{sql} AS {name}" for name, sql in _added(columns, rowwise).items()]
    select = f"SELECT *, {', '.join(added)} FROM ({select})" if added else select
    return select if rowwise else f"{select} ORDER BY unique_id"


COMPARED_FIELDS = "compared_fields"  # frame.attrs key: `compared_fields` of the frame, found as it was built

# Columns some comparison reads alongside another: kept whenever their partner is kept.
COMPANIONS = {
    "first_name_key": ("first_name_aliases", "first_name_phonetic", "first_name_alias_initials"),
    "last_name_key": ("last_name_parts", "last_name_phonetic", "previous_last_name_key", "surname_sex"),
    "postcode": ("postcode_sector", "postcode_district", "house_number", "flat_number"),
    "address_key": ("house_number", "flat_number"),
}


READ = ("unique_id", "source", *PASSTHROUGH, "postcode_as_written", "sex", "title", "date_of_birth", "address",
        "last_name", "is_person")


def linking_inputs(columns) -> list[str]:
    """The columns of the standardised records the linking frame is made from."""
    return [c for c in columns if c in READ or c.startswith("id_")]


def persons_mask(records: pd.DataFrame):
    """Which records are people (a numpy bool array), or None when all of them are."""
    if "is_person" not in records:
        return None
    person = records["is_person"].fillna(True).astype(bool).to_numpy()
    return None if person.all() else person


def linking_columns(records: pd.DataFrame, names: pd.Series | None = None) -> dict[str, pd.Series]:
    """Every column the linking frame may carry, for the person records, none dropped yet for
    being empty (`kept_columns` decides that, over all the records). `names`: `sex_of_names` of
    all the records; by default learnt from these."""
    # Column by column, each filtered once, and one frame built at the end: filtering the whole
    # frame, then adding, dropping and selecting columns, copied a million records' columns
    # four times over.
    columns = [c for c in linking_inputs(records.columns) if c != "is_person"]
    person = persons_mask(records)  # None: nothing to leave out, no column filtered (1.4 s at a million)
    index = pd.RangeIndex(int(person.sum()) if person is not None else len(records))

    def column(name: str) -> pd.Series:
        values = records[name]
        values = values[person] if person is not None else values
        return values.set_axis(index, copy=False)

    persons = {name: column(name) for name in columns}
    out: dict[str, pd.Series] = {"unique_id": persons["unique_id"].astype("int64"), "source": persons["source"]}
    for col in PASSTHROUGH:
        if col in persons:
            out[col] = persons[col]
    if "first_name_key" in persons:
        # The initials a forename may be written with (BILL -> 'BW', REBECCA -> 'BR'): see
        # `alias_initials`.
        out["first_name_alias_initials"] = map_distinct(alias_initials, persons["first_name_key"])
    if "postcode_as_written" in persons:
        # A postcode in no UK format still agrees with the same text elsewhere (no valid
        # postcode has the compacted form, so the two never meet).
        written = persons["postcode_as_written"]
        out["postcode"] = out["postcode"].where(out["postcode"].notna(), written) if "postcode" in out else written
    if "sex" in persons or "title" in persons:
        sexed = pd.DataFrame({c: persons[c] for c in ("sex", "title", "first_name_key") if c in persons})
        # Stated sex only: a sex read off the first name would count the name twice. (Clustering
        # uses it: 'MR S HUGHES' is not SARAH HUGHES.)
        out["sex"] = implied_sex(sexed)
        if "first_name_key" in persons:
            # Where the first name also says it: read only by the surname comparison, whose
            # 'another surname, on a woman's record' level asks whether a surname may have
            # changed (RUTH BLAKE on the council tax, RUTH KENT on the register), not whether
            # the names agree.
            out["surname_sex"] = implied_sex(sexed, sex_of_names(sexed) if names is None else names)
    if "date_of_birth" in persons:
        out["dob"] = pd.Series(pd.to_datetime(persons["date_of_birth"], errors="coerce").to_numpy(), index=index)
    if "address" in persons:
        out["address_key"] = persons["address"]  # normalised and split into words: see REPLACED
    if "last_name" in persons:
        out["last_name_parts"] = persons["last_name"]  # see REPLACED
    for col in [c for c in persons if c.startswith("id_")]:
        out[col] = persons[col]
    return out


def kept_columns(present_columns: list[str], carried: set[str]) -> list[str]:
    """Of the columns holding any value (`present_columns`, in the frame's order), those the
    linking frame keeps: unique_id, source, the fields carried (`fields_carried`) and the
    columns some comparison reads beside a field carried."""
    keep = {"unique_id", "source"} | carried
    for anchor, extras in COMPANIONS.items():
        if anchor in carried:
            keep |= {e for e in extras if e in present_columns}
    if "last_name_key" in carried and "first_name_key" not in carried and "first_name_key" in present_columns:
        keep.add("first_name_key")  # the surname comparison's swapped-names level reads it
    if "first_name_key" in carried and "middle_names_key" in present_columns:
        keep.add("middle_names_key")
    return [c for c in present_columns if c in keep]


def linking_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Build the frame handed to Splink: only person records, only fields worth comparing."""
    out = linking_columns(records)
    # Each column's present values, found once: for dropping empty columns and for
    # `compared_fields`, which the link stage reads back from the frame's attrs.
    masks = {name: values.notna().to_numpy() for name, values in out.items() if name not in ("unique_id", "source")}
    out = {name: values for name, values in out.items() if name in ("unique_id", "source") or masks[name].any()}
    frame = pd.DataFrame(out, copy=False)
    present = fields_carried(frame["source"], {name: masks[name] for name in frame.columns if name in masks})
    frame = frame[kept_columns(list(frame.columns), present)]
    # set_axis, not reset_index, which would copy every column once more
    frame = frame.set_axis(pd.RangeIndex(len(frame)), axis=0, copy=False)
    frame.attrs[COMPARED_FIELDS] = sorted(present & set(frame.columns))
    return frame

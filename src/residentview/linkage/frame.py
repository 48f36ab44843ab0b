"""The linking frame: the standardised records reduced to the columns the comparisons read.

Records that are not people (organisations, "The Occupier") are left out of person matching; the
cluster stage gives each of them a resident of its own.
"""

from __future__ import annotations

import pandas as pd

from residentview.linkage.comparisons import compared_fields

# Columns taken from the standardised records as they are.
PASSTHROUGH = (
    "first_name_key",
    "first_name_aliases",
    "middle_names_key",
    "last_name_key",
    "previous_last_name_key",
    "first_name_phonetic",
    "last_name_phonetic",
    "sex",
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

# Columns the linkage database derives from the frame's columns as it loads them (SQL over a
# million rows takes a fraction of what building the same Python lists in pandas does).
DERIVED = {"address_tokens": ("address_key", "string_split(address_key, ' ')")}


def with_derived(columns: set[str]) -> set[str]:
    """The columns of the loaded table: the frame's and those DERIVED from them."""
    return columns | {name for name, (source, _) in DERIVED.items() if source in columns}


def _normalised_address(address: pd.Series) -> pd.Series:
    text = (
        address.astype("string")
        .str.upper()
        .str.replace(r"[^A-Z0-9 ]+", " ", regex=True)
        .str.replace(r"\s+", " ", regex=True)
        .str.strip()
    )
    return text.where(text.str.len() > 0).astype(object)


def _surname_parts(last_name: pd.Series) -> pd.Series:
    """' SMITH JONES SMITHJONES ' for SMITH-JONES: lets one part of a double-barrelled name match."""
    folded = last_name.astype("string").str.upper()
    parts = folded.str.replace(r"[^A-Z]+", " ", regex=True).str.strip()
    joined = parts.str.replace(" ", "", regex=False)
    out = " " + parts + " " + joined + " "
    return out.where(parts.str.contains(" ", regex=False) & parts.notna()).astype(object)


def linking_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Build the frame handed to Splink: only person records, only fields worth comparing."""
    persons = records
    if "is_person" in records:
        persons = records[records["is_person"].fillna(True).astype(bool)]
    frame = pd.DataFrame({"unique_id": persons["unique_id"].astype("int64"), "source": persons["source"]})
    for col in PASSTHROUGH:
        if col in persons:
            frame[col] = persons[col]
    if "first_name_aliases" in persons:
        initials = persons["first_name_aliases"].map(
            lambda names: "".join(sorted({n[0] for n in names if n})) if names is not None and len(names) else None
        )
        frame["first_name_alias_initials"] = initials.to_numpy()
    if "date_of_birth" in persons:
        frame["dob"] = pd.to_datetime(persons["date_of_birth"], errors="coerce").to_numpy()
    if "address" in persons:
        frame["address_key"] = _normalised_address(persons["address"])  # its words: see DERIVED
    if "first_name_key" in frame and "last_name_key" in frame:
        # How many records carry this exact full name: lets blocking compare rare full names
        # across the whole borough without comparing every JOHN SMITH with every other.
        both = frame["first_name_key"].notna() & frame["last_name_key"].notna()
        counts = frame[both].groupby(["first_name_key", "last_name_key"])["unique_id"].transform("size")
        frame["full_name_count"] = counts.reindex(frame.index)
    if "last_name" in persons:
        frame["last_name_parts"] = _surname_parts(persons["last_name"])
    for col in [c for c in persons.columns if c.startswith("id_")]:
        frame[col] = persons[col]

    frame = frame[[c for c in frame.columns if c in ("unique_id", "source") or frame[c].notna().any()]]
    present = compared_fields(frame)
    # Columns some comparison reads alongside another: keep them whenever their partner is kept.
    companions = {
        "first_name_key": ("first_name_aliases", "first_name_alias_initials", "first_name_phonetic", "full_name_count"),
        "last_name_key": ("last_name_parts", "last_name_phonetic", "previous_last_name_key"),
        "postcode": ("postcode_sector", "postcode_district", "house_number", "flat_number"),
        "address_key": ("house_number", "flat_number"),
    }
    keep = {"unique_id", "source"} | present
    for anchor, extras in companions.items():
        if anchor in present:
            keep |= {e for e in extras if e in frame}
    if "last_name_key" in present and "first_name_key" not in present and "first_name_key" in frame:
        keep.add("first_name_key")  # the surname comparison's swapped-names level reads it
    if "first_name_key" in present and "middle_names_key" in frame:
        keep.add("middle_names_key")
    frame = frame[[c for c in frame.columns if c in keep]].reset_index(drop=True)
    return frame

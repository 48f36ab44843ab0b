"""`encode`: standardised records -> Bloom-filter encodings, keyed tokens and blocking keys, no clear value.

What one record becomes (Schnell, Bachteler & Reiher 2009 and 2011; see the package docstring).
Steps 1–5 make the record filter, 6–8 the parts and tokens compared beside it:

1. **q-grams.** The standardised first name and surname (`first_name_key`, `last_name_key`) and
   the postcode (spaces removed) are cut into bigrams, padded at both ends (`_SMITH_` -> `_S`,
   `SM`, …, `H_`), so one wrong letter changes two bigrams, not the whole value. The date of
   birth gives its year, month and day as tokens and the day and month as an unordered pair (a
   day and month swapped still shares three of four); the house and flat number and sex are a
   token each.
2. **Keyed hashing.** Each token sets `k` bits of a 1,024-bit filter, chosen by HMAC-SHA256 under
   a key derived from the shared secret and the field (so SMITH as a surname and as a first name
   set different bits). Bit positions are read straight from the HMAC output ("random hashing")
   rather than by the double hashing of the 2009 paper, whose arithmetic progressions of bit
   positions Niedermeyer, Steinmetzer, Kroll & Schnell (2014, "Cryptanalysis of basic Bloom
   filters used for privacy preserving record linkage", J. Privacy and Confidentiality 6(2))
   used to decode filters. Without the secret nobody can compute which bits a name sets, so a
   dictionary of names cannot simply be encoded and compared.
3. **Field weights.** `k` differs by field (`FIELD_HASHES`): names and date of birth set the most
   bits, sex the fewest, so agreement on a name counts for more than agreement on sex.
4. **One filter per record** (a CLK): every field is hashed into the same filter, so no field's
   filter can be attacked on its own — exactly equal filters are rare (the same name, date of
   birth and postcode), which defeats the attack of Kuzu, Kantarcioglu, Durham & Malin (2011,
   "A constraint satisfaction cryptanalysis of Bloom filters in private record linkage", PETS)
   that aligns the most frequent filters of one field with the most frequent names.
5. **Diffusion** (Armknecht, Heng & Schnell 2023): each published bit is the XOR of
   `DIFFUSION_INPUTS` bits of the filter, chosen at random under the secret. A name's bigram no
   longer sets fixed bits: whether a published bit is 1 depends on the other fields too. This is
   the hardening against pattern mining — the attacks of Christen, Schnell, Vatsalan & Ranbaduge
   (2017, "Efficient cryptanalysis of Bloom filters for privacy-preserving record linkage",
   PAKDD) and Christen, Ranbaduge, Vatsalan & Schnell (2018, "Precise and fast cryptanalysis for
   Bloom filter based privacy-preserving record linkage", IEEE TKDE) that find bit positions
   always set together in the records holding a frequent bigram. Salting by year of birth
   (Niedermeyer et al. 2014) was not chosen: council tax and most of the electoral register
   give no date of birth, and a salt that is missing or mistyped makes a match unlinkable.
6. **A name part** (`PARTS`, `part_filters`): the first name's and the surname's bigrams, under
   keys of their own, in a second, smaller filter, so that the linkage can tell a person's
   records (one name) from a household's (one surname, another first name) where the record
   filter, which mixes in the address, cannot. Hardened as field-level filters must be:
   balanced (Schnell & Borgs 2016, "Randomized response and balanced Bloom filters for privacy
   preserving record linkage", ICDMW: the filter followed by its complement, permuted under the
   secret, so every filter has exactly half its bits set and every bit is set in about half the
   records) and with BLIP noise (Schnell & Borgs 2017 after Alaggan, Gambs & Kermarrec 2012:
   each bit flipped with probability `FLIP`, drawn from a keyed hash of the record's source and
   id, so two records of one name get different filters). First name and surname share one
   filter on purpose: a first-name filter alone, noisy or not, gives its names away to an
   attacker who groups near-identical filters and ranks the groups by size (measured: 27% of
   first names recovered at 10k records); the full name, nearly unique, does not (0.4%). The
   first name's alias set (`standardise.names._aliases_of`: the names the clear linkage
   compares, BOB -> BOB, BERT, BOBBY, ROBERT) adds a whole-name token each, ALIAS_HASHES bits,
   to the same filter, so that BOB and ROBERT share bits where their bigrams do not; it is no
   part of its own that an attacker could rank.
   **Other names** (NAME_VARIANTS): the same name filter, same keys and balancing, noise of its
   own, of the name swapped (surname as first name) and of the name known by (first middle name
   and surname), for `link-encoded` to compare with the other record's name. Each is again a
   whole name: measured like the name filter (`tests/test_pprl.py`), neither exact patterns nor
   groups of alike filters give away its first names, middle names or surnames.
7. **Keyed exact tokens** (`exact_tokens`): the first 8 bytes of HMAC-SHA256 under a key
   derived from the secret and the token's name, equal on both sides when the values are
   equal. The shared identifiers the clear linkage uses (NHS and NI numbers, email, phone,
   every `identifiers` reference), the place (UPRN; postcode with house and flat number and
   building), the date of birth as three pairs of its parts (two dates a typo apart still share
   one; a parent's and a child's share none) and sex (recorded, else by title — MR, MRS, MISS,
   MS —, else by first name, as the organisation learned names' sexes from its own records,
   first and middle names, before encoding: `name_sexes`). The sex token is how 'MR R NOLAN'
   is kept from RACHEL NOLAN when R fits both ROBERT and RACHEL (SHELLY).
8. **Coarse signals**: the first initials a forename may be written with, hashed into one of
   `INITIAL_BUCKETS` keyed buckets (a bit mask: two masks with no bit in common are first names
   no nickname reconciles); whether the first name is only an initial; the age group (`child`
   or `adult` when the extracts were taken, by date of birth, adult title or a source of
   adults). What `link-encoded` needs to keep a parent from a child of one name at one address.

What remains: an attacker holding the file and a population list can still try a graph
matching attack (Vidanage, Christen, Ranbaduge & Schnell 2020, "A graph matching attack on
privacy-preserving record linkage", CIKM), which uses only how similar records are to each other
— something no encoding that still links can hide. Exact tokens and blocking keys show how many
records share a value, never the value: the size of a UPRN token's group is a household's size,
a date-of-birth token's a birth cohort's; the equal tokens of two records say they share an NHS
number, an address or a sex. An initial mask says which bucket of about two letters a first
initial falls in; the age group says child or adult, which a record's source mostly says
already. A record's name and known-by filters share its surname's bits: an attacker may AND
them to get a filter mostly of the surname. Grouping such filters by similarity and ranking the
groups by size recovered under 1% of surnames in the tests (a filter of the surname alone, the
control: 8%), because the first and middle names' complements (balancing) and the noise stay in
it. Whoever runs `link-encoded` must therefore be trusted not to hold the clear data of
either side, the shared secret must never reach them, and the encoded files are still personal
data. `source` and `record_id` are kept as each organisation wrote them: the result is of no use
unless each side can find its own records in it.

The file (`write_encoded`, Parquet): `source`, `record_id`, `bloom_record` (BITS bits),
`part_name` (2 × PART_BITS bits), `part_name_swapped` and `part_name_known_as` (the same width,
missing without a middle name), `block_<rule>` and `token_<name>` (int64, missing when the
record lacks the value), `initials` (int64 bit mask), `first_initial_only` (bool), `age_group`
(`child`, `adult` or missing); its schema metadata (`residentview.pprl`, JSON) holds `method`
(the version: `read_encoded` refuses any other), every parameter, the key's fingerprint, the
organisation, the sources and the tokens present.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.keys import fingerprint

METHOD = "residentview-clk-4"  # changes whenever the same key would give other encodings
BITS = 1024
FILTER_BYTES = BITS // 8
Q = 2
PAD = "_"
# Bits set per token: the field weights. A name of six letters has seven bigrams (~84 bits set);
# the date of birth's four tokens ~60; a postcode's seven or eight bigrams ~75; the house (and
# flat) number 25 a token; sex 6. The house number weighs so much because namesakes in one
# postcode are common and the postcode alone cannot tell them apart (measured: BENCHMARKS.md).
FIELD_HASHES = {"first_name": 12, "last_name": 12, "date_of_birth": 15, "postcode": 10, "address_number": 25,
                "sex": 6}
DIFFUSION_INPUTS = 2  # filter bits XORed into each published bit (see the module docstring)
# The filter holds every field (a CLK, see the module docstring). Filters of combinations of
# fields (names with address, names with date of birth) compared only where both records hold
# them were measured too and linked worse: a child's school record then matched a parent of the
# same name on the council tax, which gives no date of birth (BENCHMARKS.md).
ENCODINGS = {"record": {"fields": ("first_name", "last_name", "date_of_birth", "postcode", "address_number", "sex"),
                        "required": ("last_name",)}}
# Blocking keys: records sharing any one are compared. Each is an HMAC of the values joined; a
# record lacking one of its values has no key for that rule.
BLOCKING_RULES = {
    "surname_initial": ("last_name_phonetic", "first_initial"),
    "forename_dob": ("first_name_phonetic", "dob"),
    "surname_dob": ("last_name_phonetic", "dob"),
    "postcode_initial": ("postcode_compact", "first_initial"),
    "forename_surname": ("first_name_phonetic", "last_name_phonetic"),
}
# Parts: hardened filters compared beside the record filter (`part_filters`, module docstring
# step 6): the name apart from the address and date the record filter mixes it with.
PARTS = {"name": ("first_name", "last_name", "first_name_alias")}
PART_BITS = 256  # before balancing doubles it
PART_HASHES = 10
ALIAS_HASHES = 10
# Other names a person may be recorded under, each a filter in the name part's space (same keys,
# same balancing, noise of its own) compared with the other record's name: first name and surname
# swapped (10k: F1 +0.004), the first middle name as the first name, for a person known by it
# (+0.002). The previous surname was measured too and added nothing (2 true pairs at 10k).
NAME_VARIANTS = ("swapped", "known_as")
FLIP = 0.03
# Keyed exact tokens (`exact_tokens`): equal on both sides when the values are equal, and
# nothing else. A person's own numbers (every `id_<name>` a config maps is added to these); the
# place (UPRN; postcode with house, flat number and building); and the date of birth in three
# pairs of its parts, so that two dates agreeing in two of year, month and day (or with day and
# month swapped) still share a token, as a typo leaves them.
PERSON_TOKENS = ("nhs_number", "ni_number", "email", "phone")
PLACE_TOKENS = ("uprn", "address")
DOB_TOKENS = ("dob_year_month", "dob_year_day", "dob_day_month")
# Sex as recorded, else as the title (MR, MRS, MISS, MS: `linkage.frame.SEX_OF_TITLE`) or the
# first name implies (`name_sexes`, learned by each organisation from its own records before
# encoding). `link-encoded` refuses two sexes under first names that are not one, so 'MR R
# NOLAN' cannot be RACHEL NOLAN, and lets two records of one sex at one place link on names
# a little less alike (`linking.NAMES_FIT_ONE_SEX`).
SEX_TOKENS = ("sex",)
# One organisation holds far fewer records stating a sex than the two together (the clear
# linkage learns from both, at 5 records): the borough holding the electoral register, whose
# records state no sex, learned 23 first names' sexes at 5; counting middle names and taking
# names said by 2 records of one sex, 199 (the other borough 140 -> 440).
NAME_SEX_MIN_RECORDS = 2
NAME_SEX_MIN_SHARE = 0.95
# Tokens that also serve as blocking keys: records sharing one are compared.
BLOCKING_TOKENS = (*PERSON_TOKENS, *PLACE_TOKENS)
# The first initials a forename may be written with (its own and its short or long forms':
# BOB -> B and R), each put in one of INITIAL_BUCKETS buckets chosen under the secret and written
# as a bit mask: two records whose masks share no bit have first names that no nickname, initial
# or short form reconciles. 8 buckets let too many household members' initials collide (10k:
# F1 0.878 against 0.880 with 16); 32 gained nothing more and would say more of the initial.
INITIAL_BUCKETS = 16
# A record is a child's when its date of birth makes it under ADULT_AGE when the extracts were
# taken (the file's latest record_date, else today), an adult's when over, or when its title is
# one only adults have; undated records of a source whose dated records hold almost no child are
# adults' (the rules of `cluster.adult_when`, on one organisation's own records). Two dated
# records are judged by their dates, not by these groups: two files' extracts are not taken on
# one day.
AGE_GROUPS = ("child", "adult")
METADATA_KEY = b"residentview.pprl"
_LABEL = "residentview pprl"


@dataclass
class EncodedRecords:
    """One organisation's encoded records: `frame` has the columns the module docstring lists
    (the file's); `metadata` says how they were made (method, parameters, key fingerprint, who,
    the tokens present)."""

    frame: pd.DataFrame
    metadata: dict


def _derived_key(key: bytes, purpose: str) -> bytes:
    """A key for one use of the shared secret: bits of each field, diffusion, blocking."""
    return hmac.new(key, f"{_LABEL}\x1f{purpose}".encode("utf-8"), hashlib.sha256).digest()


def parameters() -> dict:
    """Everything both sides must share for their encodings to be comparable, key aside."""
    return {"method": METHOD, "bits": BITS, "q": Q, "padding": PAD, "field_hashes": dict(FIELD_HASHES),
            "diffusion_inputs": DIFFUSION_INPUTS, "blocking_rules": {k: list(v) for k, v in BLOCKING_RULES.items()},
            "encodings": {k: {part: list(v) for part, v in spec.items()} for k, spec in ENCODINGS.items()},
            "parts": {k: list(v) for k, v in PARTS.items()}, "part_bits": 2 * PART_BITS, "part_hashes": PART_HASHES,
            "name_variants": list(NAME_VARIANTS), "alias_hashes": ALIAS_HASHES, "flip": FLIP,
            "blocking_tokens": list(BLOCKING_TOKENS), "initial_buckets": INITIAL_BUCKETS,
            "age_groups": list(AGE_GROUPS)}


def _qgrams(value: str) -> list[str]:
    padded = f"{PAD}{value}{PAD}"
    return sorted({padded[i:i + Q] for i in range(len(padded) - Q + 1)})


def _tokens(records: pd.DataFrame) -> pd.DataFrame:
    """(row, field, token): every token of every record, worked out once per distinct value."""
    people = _people(records)
    texts = {
        "first_name": records.get("first_name_key"),
        "last_name": records.get("last_name_key"),
        "postcode": records["postcode"].str.replace(" ", "", regex=False) if "postcode" in records else None,
    }
    parts = []
    for field, values in texts.items():
        if values is None:
            continue
        present = values.notna().to_numpy() & people
        rows, text = np.flatnonzero(present), values[present].astype(str)
        grams = pd.Series(text.unique()).pipe(lambda u: pd.Series([_qgrams(v) for v in u], index=u))
        exploded = pd.DataFrame({"row": rows, "token": grams.reindex(text.to_numpy()).to_numpy()}).explode("token")
        parts.append(exploded.dropna().assign(field=field))
    if "date_of_birth" in records:
        dob = pd.to_datetime(records["date_of_birth"], errors="coerce")
        present = dob.notna().to_numpy() & people
        rows, dob = np.flatnonzero(present), dob[present]
        year, month, day = dob.dt.year.astype(str), dob.dt.strftime("%m"), dob.dt.strftime("%d")
        pair = np.where(month.to_numpy() < day.to_numpy(), month + "/" + day, day + "/" + month)
        for token in ("Y" + year, "M" + month, "D" + day, "DM" + pd.Series(pair, index=dob.index)):
            parts.append(pd.DataFrame({"row": rows, "token": token.to_numpy(), "field": "date_of_birth"}))
    for column, mark in (("house_number", "H"), ("flat_number", "F")):
        if column in records:
            present = records[column].notna().to_numpy() & people
            parts.append(pd.DataFrame({"row": np.flatnonzero(present), "field": "address_number",
                                       "token": mark + records[column][present].astype(str).to_numpy()}))
    if "sex" in records:
        present = records["sex"].isin(["M", "F"]).to_numpy() & people
        parts.append(pd.DataFrame({"row": np.flatnonzero(present), "token": records["sex"][present].to_numpy(),
                                   "field": "sex"}))
    if "first_name_key" in records:
        parts.append(_alias_tokens(records["first_name_key"], people))
    if not parts:
        return pd.DataFrame({"row": np.array([], np.int64), "token": [], "field": []})
    return pd.concat(parts, ignore_index=True)


def _name_tokens(first: pd.Series, last: pd.Series, people: np.ndarray) -> pd.DataFrame:
    """(row, field, token) of a name given as first name and surname: the bigrams of each and
    the first name's alias tokens; rows lacking either are left out."""
    present = people & first.notna().to_numpy() & last.notna().to_numpy()
    parts = []
    for field, values in (("first_name", first), ("last_name", last)):
        rows, text = np.flatnonzero(present), values[present].astype(str)
        grams = {v: _qgrams(v) for v in text.unique()}
        parts.append(pd.DataFrame({"row": rows, "token": text.map(grams).to_numpy()}).explode("token")
                     .dropna().assign(field=field))
    parts.append(_alias_tokens(first.where(present), people))
    return pd.concat(parts, ignore_index=True)


def variant_tokens(records: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The name tokens of one NAME_VARIANTS name of each record that has it."""
    empty = pd.Series(pd.NA, index=records.index, dtype=object)
    first, last = records.get("first_name_key", empty), records.get("last_name_key", empty)
    if variant == "swapped":
        first, last = last, first
    elif variant == "known_as":
        first = records.get("middle_names_key", empty).str.split(" ").str[0]
    return _name_tokens(first.astype(object).where(first.notna() & (first.astype(str) != "")), last.astype(object),
                        _people(records))


def _alias_tokens(first_names: pd.Series, people: np.ndarray) -> pd.DataFrame:
    """(row, field 'first_name_alias', token): each whole name in the first name's alias set
    (`standardise.names._aliases_of`, the sets the clear linkage compares, without the records'
    counts, which differ between the two sides), so that BOB and ROBERT share the token ROBERT.
    An initial has none: it is judged by its initial bucket."""
    from residentview.standardise.names import _aliases_of

    present = first_names.notna().to_numpy() & people & (first_names.str.len() > 1).fillna(False).to_numpy(bool)
    rows, names = np.flatnonzero(present), first_names[present].astype(str)
    aliases = {name: _aliases_of(name) for name in names.unique()}
    exploded = pd.DataFrame({"row": rows, "token": names.map(aliases).to_numpy()}).explode("token")
    return exploded.dropna().assign(field="first_name_alias")


def _positions(key: bytes, encoding: str, field: str, tokens: np.ndarray, bits: int = BITS,
               k: int | None = None) -> np.ndarray:
    """The bits each distinct token of `field` sets: `k` (default FIELD_HASHES[field]) positions
    read from HMAC-SHA256 output (16 positions of 16 bits per digest; `bits` divides 2**16, so
    unbiased)."""
    field_key, k = _derived_key(key, f"bits\x1f{encoding}\x1f{field}"), k or FIELD_HASHES[field]
    blocks = -(-k // 16)
    out = np.empty((len(tokens), blocks * 16), dtype=np.int64)
    for i, token in enumerate(tokens):
        stream = b"".join(hmac.new(field_key, f"{token}\x1f{b}".encode("utf-8"), hashlib.sha256).digest()
                          for b in range(blocks))
        out[i] = np.frombuffer(stream, dtype=">u2")
    return out[:, :k] % bits


def _diffusion(key: bytes, encoding: str) -> np.ndarray:
    """For each published bit, the DIFFUSION_INPUTS filter bits XORed into it: a layout drawn
    under the secret (so unknown to an attacker), the same for both sides."""
    seed = int.from_bytes(_derived_key(key, f"diffusion\x1f{encoding}")[:16], "big")
    rng = np.random.default_rng(seed)
    order = rng.permutation(BITS)
    # distinct inputs for every published bit (a bit XORed with itself would always be 0), and
    # every filter bit feeding the same number of published bits
    shifts = np.concatenate([[0], rng.choice(np.arange(1, BITS), DIFFUSION_INPUTS - 1, replace=False)])
    return order[(np.arange(BITS)[:, None] + shifts[None, :]) % BITS]


def bloom_filters(records: pd.DataFrame, key: bytes, encoding: str, tokens: pd.DataFrame | None = None,
                  chunk: int = 20_000) -> np.ndarray:
    """The hardened filter of one combination of fields (ENCODINGS) for every record, packed:
    uint8 array (n, FILTER_BYTES). `tokens`: `_tokens(records)`, when already worked out."""
    tokens = _tokens(records) if tokens is None else tokens
    tokens = tokens[tokens["field"].isin(ENCODINGS[encoding]["fields"])]
    rows, bits = [], []
    for field, group in tokens.groupby("field", sort=True):
        distinct, which = np.unique(group["token"].to_numpy(str), return_inverse=True)
        positions = _positions(key, encoding, field, distinct)[which]
        rows.append(np.repeat(group["row"].to_numpy(np.int64), positions.shape[1]))
        bits.append(positions.ravel())
    rows = np.concatenate(rows) if rows else np.array([], np.int64)
    bits = np.concatenate(bits) if bits else np.array([], np.int64)
    order = np.argsort(rows, kind="stable")
    rows, bits = rows[order], bits[order]
    layout = _diffusion(key, encoding)
    packed = np.zeros((len(records), FILTER_BYTES), dtype=np.uint8)
    for start in range(0, len(records), chunk):  # 20k x 1,024 bits at a time, as bools: 20 MB (and the diffusion's copy)
        stop = min(start + chunk, len(records))
        lo, hi = np.searchsorted(rows, [start, stop])
        plain = np.zeros((stop - start, BITS), dtype=bool)
        plain[rows[lo:hi] - start, bits[lo:hi]] = True
        published = np.logical_xor.reduce(plain[:, layout], axis=2)
        packed[start:stop] = np.packbits(published, axis=1)
    return packed


def _record_seeds(records: pd.DataFrame, key: bytes) -> np.ndarray:
    """A 64-bit seed per record from a keyed hash of its source and id: the noise is the same
    each time a record is encoded under one key, and unrelated between records."""
    noise_key = _derived_key(key, "noise")
    ids = (records["source"].astype(str) + "\x1f" + records["record_id"].astype(str)).tolist()
    return np.array([int.from_bytes(hmac.new(noise_key, v.encode("utf-8"), hashlib.sha256).digest()[:8], "big")
                     for v in ids], dtype=np.uint64)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser (Steele, Lea & Flood 2014): a well-mixed uint64 per input."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def part_filters(records: pd.DataFrame, key: bytes, part: str, tokens: pd.DataFrame | None = None,
                 variant: str | None = None) -> np.ndarray:
    """The hardened filter of one field part (PARTS) for every record, packed: uint8 (n,
    PART_BITS / 4): the field's bigrams set PART_HASHES bits each of PART_BITS, the filter is
    followed by its complement and the two permuted under the secret (balancing), and each
    published bit is flipped with probability FLIP by noise drawn from the record's seed (BLIP).
    Rows of records without the field are zeros. `variant`: the filter, in the same space, of
    one of NAME_VARIANTS (noise drawn apart from the part's)."""
    tokens = variant_tokens(records, variant) if variant else _tokens(records) if tokens is None else tokens
    plain = np.zeros((len(records), PART_BITS), dtype=bool)
    for field in PARTS[part]:
        group = tokens[tokens["field"] == field]
        distinct, which = np.unique(group["token"].to_numpy(str), return_inverse=True)
        k = ALIAS_HASHES if field == "first_name_alias" else PART_HASHES
        positions = _positions(key, f"part\x1f{part}", field, distinct, bits=PART_BITS, k=k)[which]
        plain[np.repeat(group["row"].to_numpy(np.int64), k), positions.ravel()] = True
    held = plain.any(axis=1)
    seed = int.from_bytes(_derived_key(key, f"balance\x1f{part}")[:16], "big")
    balanced = np.concatenate([plain, ~plain], axis=1)[:, np.random.default_rng(seed).permutation(2 * PART_BITS)]
    with np.errstate(over="ignore"):
        stream = list(PARTS).index(part) + 1 if variant is None else len(PARTS) + 1 + NAME_VARIANTS.index(variant)
        counter = (np.uint64(stream) << np.uint64(32)) + np.arange(2 * PART_BITS, dtype=np.uint64)
        draws = _splitmix64(_record_seeds(records, key)[:, None] ^ _splitmix64(counter)[None, :])
    published = balanced ^ (draws < np.uint64(int(FLIP * 2.0 ** 64)))
    packed = np.packbits(published, axis=1)
    packed[~held] = 0
    return packed


def _blocking_values(records: pd.DataFrame) -> dict[str, pd.Series]:
    """The clear values the blocking rules join (hashed before they leave `blocking_keys`)."""
    empty = pd.Series(pd.NA, index=records.index, dtype=object)
    first = records.get("first_name_key", empty)
    dob = pd.to_datetime(records.get("date_of_birth", empty), errors="coerce")
    postcode = records.get("postcode", empty)
    return {
        "first_name_phonetic": records.get("first_name_phonetic", empty),
        "last_name_phonetic": records.get("last_name_phonetic", empty),
        "first_initial": first.str[:1],
        "dob": dob.dt.strftime("%Y-%m-%d").where(dob.notna()),
        "postcode_compact": postcode.str.replace(" ", "", regex=False),
    }


def _keyed(values: pd.Series, key: bytes) -> pd.Series:
    """The first 8 bytes of HMAC-SHA256 of each present value under `key`, as Int64 (missing
    where the value is): equal values give equal numbers, which cannot be read back."""
    present = (values.notna() & (values.astype(str) != "")).to_numpy()
    codes, distinct = pd.factorize(values.astype(str)[present])
    hashed = np.array([int.from_bytes(hmac.new(key, v.encode("utf-8"), hashlib.sha256).digest()[:8], "big", signed=True)
                       for v in distinct], dtype=np.int64)
    out = np.zeros(len(values), dtype=np.int64)
    out[present] = hashed[codes]  # built as int64 throughout: through float64 the low bits would be lost
    return pd.Series(pd.arrays.IntegerArray(out, ~present), index=values.index)


def blocking_keys(records: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """One int64 column per rule: a keyed hash (`_keyed`) of the rule's values joined, under a
    key derived from the secret, missing when a value is."""
    values = _blocking_values(records)
    block_key = _derived_key(key, "blocking")
    people = _people(records)
    out = {}
    for rule, parts in BLOCKING_RULES.items():
        joined = pd.Series(rule, index=records.index, dtype=object)
        present = pd.Series(people, index=records.index, copy=True)  # `&=` below must not write into `people`
        for part in parts:
            value = values[part].astype(object)
            present &= value.notna() & (value.astype(str) != "")
            joined = joined + "\x1f" + value.astype(str)
        out[f"block_{rule}"] = _keyed(joined.where(present), block_key)
    return pd.DataFrame(out, index=records.index)


def _people(records: pd.DataFrame) -> np.ndarray:
    return records["is_person"].to_numpy(bool) if "is_person" in records else np.ones(len(records), bool)


def token_names(records: pd.DataFrame) -> list[str]:
    """The exact tokens these records get: the fixed ones and one per `id_<name>` column."""
    references = sorted(c for c in records.columns if c.startswith("id_"))
    return [*PERSON_TOKENS, *references, *PLACE_TOKENS, *DOB_TOKENS, *SEX_TOKENS]


def _token_values(records: pd.DataFrame) -> dict[str, pd.Series]:
    """The clear values the exact tokens hash (never written as they are)."""
    empty = pd.Series(pd.NA, index=records.index, dtype=object)
    text = {c: records.get(c, empty).astype(object).where(records.get(c, empty).notna()) for c in
            ("nhs_number", "ni_number", "email", "phone", "uprn", "postcode", "house_number", "flat_number",
             "building_name", *(c for c in records.columns if c.startswith("id_")))}
    values = {name: text[name] for name in token_names(records) if name in text}
    where = text["house_number"].notna() | text["flat_number"].notna() | text["building_name"].notna()
    address = text["postcode"].str.replace(" ", "", regex=False)
    for part in ("house_number", "flat_number", "building_name"):
        address = address + "\x1f" + text[part].fillna("").astype(str)
    values["address"] = address.where(text["postcode"].notna() & where)
    dob = pd.to_datetime(records.get("date_of_birth", empty), errors="coerce")
    year, month, day = (dob.dt.strftime(part).fillna("") for part in ("%Y", "%m", "%d"))
    from residentview.linkage.frame import implied_sex

    named = records[[c for c in ("sex", "title", "first_name_key") if c in records]]
    values["sex"] = implied_sex(named, name_sexes(records)).astype(object)
    values["dob_year_month"] = (year + "-" + month).where(dob.notna())
    values["dob_year_day"] = (year + "-" + day).where(dob.notna())
    values["dob_day_month"] = pd.Series(np.where(month.to_numpy(object) < day.to_numpy(object), month + "/" + day,
                                                 day + "/" + month), index=records.index).where(dob.notna())
    return values


def name_sexes(records: pd.DataFrame) -> pd.Series:
    """first name -> 'F' or 'M', learned from one organisation's own records before encoding,
    as `linkage.frame.sex_of_names` learns it from both sides' records in the clear: a name
    said by at least NAME_SEX_MIN_RECORDS records stating a sex (recorded, or by title), at
    least NAME_SEX_MIN_SHARE of them one sex. A middle name counts as a name of its record's
    sex too. Only the sex token it fills is written, never the names it learned."""
    from residentview.linkage.frame import _stated_sex

    if "first_name_key" not in records:
        return pd.Series(dtype=object)
    stated = _stated_sex(records[[c for c in ("sex", "title") if c in records]])
    said = [pd.DataFrame({"name": records["first_name_key"], "sex": stated})]
    if "middle_names_key" in records:
        middle = pd.DataFrame({"name": records["middle_names_key"].str.split(" "), "sex": stated}).explode("name")
        said.append(middle)
    said = pd.concat(said, ignore_index=True)
    said = said[said["name"].str.len().gt(1).fillna(False).astype(bool) & said["sex"].isin(["F", "M"])]
    if said.empty:
        return pd.Series(dtype=object)
    counts = pd.crosstab(said["name"], said["sex"])
    total, share = counts.sum(axis=1), counts.max(axis=1) / counts.sum(axis=1)
    sure = (total >= NAME_SEX_MIN_RECORDS) & (share >= NAME_SEX_MIN_SHARE)
    return counts.idxmax(axis=1)[sure].astype(object)


def exact_tokens(records: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """One Int64 column `token_<name>` per `token_names`: a keyed hash of the whole value, under
    a key derived from the secret and the token's name (an NHS number and a phone number that
    happen to be equal give different tokens)."""
    people = pd.Series(_people(records), index=records.index)
    return pd.DataFrame({f"token_{name}": _keyed(value.where(people), _derived_key(key, f"token\x1f{name}"))
                         for name, value in _token_values(records).items()}, index=records.index)


def initial_masks(records: pd.DataFrame, key: bytes) -> pd.Series:
    """Int64: bit b set when some first initial the forename may be written with (its own and
    its short and long forms': BOB -> B and R) falls in bucket b (INITIAL_BUCKETS, letters
    assigned to buckets under the secret); missing without a first name."""
    from residentview.standardise.names import alias_initials

    names = records.get("first_name_key", pd.Series(pd.NA, index=records.index, dtype=object))
    names = names.where(pd.Series(_people(records), index=records.index) & names.notna())
    bucket_key = _derived_key(key, "initials")
    bucket = {letter: hmac.new(bucket_key, letter.encode("utf-8"), hashlib.sha256).digest()[0] % INITIAL_BUCKETS
              for letter in map(chr, range(32, 0x250))}
    masks = {name: sum({1 << bucket.get(letter, 0) for letter in (alias_initials(name) or name[:1])})
             for name in names.dropna().astype(str).unique()}
    return names.map(masks).astype("Int64")


def age_groups(records: pd.DataFrame) -> pd.Series:
    """'child' or 'adult' (see AGE_GROUPS), or missing when nothing says."""
    from residentview.cluster import (ADULT_AGE, ADULT_SOURCE_MAX_YOUNG_DATED, ADULT_SOURCE_MIN_DATED,
                                      ADULT_TITLES, _age_years)

    empty = pd.Series(pd.NaT, index=records.index, dtype="datetime64[ns]")
    dob = pd.to_datetime(records.get("date_of_birth", empty), errors="coerce")
    latest = pd.to_datetime(records.get("record_date", empty), errors="coerce").max()
    extracted = pd.Timestamp.today().normalize() if pd.isna(latest) else latest
    young = pd.Series(_age_years((extracted - dob).to_numpy()) < ADULT_AGE, index=records.index)
    group = pd.Series(np.where(young, "child", "adult"), index=records.index, dtype=object).where(dob.notna())
    source = records["source"].astype(str)
    dated = young[dob.notna()].groupby(source[dob.notna()]).agg(["size", "mean"])
    adults_only = (dated["size"] >= ADULT_SOURCE_MIN_DATED) & (dated["mean"] <= ADULT_SOURCE_MAX_YOUNG_DATED)
    adult_sources = dated.index[adults_only]
    titled = records["title"].isin(ADULT_TITLES) if "title" in records else pd.Series(False, index=records.index)
    group = group.where(dob.notna() | ~(source.isin(adult_sources) | titled), "adult")
    return group.where(pd.Series(_people(records), index=records.index))


def encode_records(records: pd.DataFrame, key: bytes, organisation: str) -> EncodedRecords:
    """Encode standardised records (the frame `standardise` returns) under `key`."""
    if not len(records):
        raise DataError(f"{organisation}: no records to encode")
    records = records.reset_index(drop=True)
    tokens = _tokens(records)
    frame = pd.DataFrame({"source": records["source"].astype(str).to_numpy(),
                          "record_id": records["record_id"].astype(str).to_numpy()})
    for encoding, spec in ENCODINGS.items():
        packed = bloom_filters(records, key, encoding, tokens)
        held = np.ones(len(records), bool)
        for field in spec["required"]:
            held &= np.isin(np.arange(len(records)), tokens.loc[tokens["field"] == field, "row"].to_numpy())
        frame[f"bloom_{encoding}"] = [row.tobytes() if ok else None for row, ok in zip(packed, held)]
    for part in PARTS:
        packed = part_filters(records, key, part, tokens)
        held = packed.any(axis=1)
        frame[f"part_{part}"] = [row.tobytes() if ok else None for row, ok in zip(packed, held)]
    for variant in NAME_VARIANTS:
        packed = part_filters(records, key, "name", variant=variant)
        held = packed.any(axis=1)
        frame[f"part_name_{variant}"] = [row.tobytes() if ok else None for row, ok in zip(packed, held)]
    frame = pd.concat([frame, blocking_keys(records, key), exact_tokens(records, key)], axis=1)
    frame["initials"] = initial_masks(records, key).to_numpy()
    first = records.get("first_name_key", pd.Series(pd.NA, index=records.index, dtype=object))
    frame["first_initial_only"] = (first.str.len() == 1).fillna(False).to_numpy(bool)
    frame["age_group"] = age_groups(records).to_numpy()
    metadata = {**parameters(), "tokens": token_names(records), "key_fingerprint": fingerprint(key),
                "organisation": organisation, "n_records": int(len(frame)),
                "sources": sorted(frame["source"].unique().tolist())}
    return EncodedRecords(frame, metadata)


def _table(encoded: EncodedRecords) -> pa.Table:
    frame = encoded.frame
    columns = {
        "source": pa.array(frame["source"], pa.string()),
        "record_id": pa.array(frame["record_id"], pa.string()),
    }
    for encoding in ENCODINGS:
        columns[f"bloom_{encoding}"] = pa.array(frame[f"bloom_{encoding}"], pa.binary(FILTER_BYTES))
    for name in [*(f"block_{rule}" for rule in BLOCKING_RULES), *(f"token_{t}" for t in encoded.metadata["tokens"])]:
        columns[name] = pa.array(frame[name], pa.int64(), from_pandas=True)
    for part in PARTS:
        columns[f"part_{part}"] = pa.array(frame[f"part_{part}"], pa.binary(2 * PART_BITS // 8))
    for variant in NAME_VARIANTS:
        columns[f"part_name_{variant}"] = pa.array(frame[f"part_name_{variant}"], pa.binary(2 * PART_BITS // 8))
    columns["initials"] = pa.array(frame["initials"], pa.int64(), from_pandas=True)
    columns["first_initial_only"] = pa.array(frame["first_initial_only"], pa.bool_())
    columns["age_group"] = pa.array(frame["age_group"], pa.string(), from_pandas=True)
    table = pa.table(columns)
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(encoded.metadata, sort_keys=True).encode("utf-8")})


def write_encoded(encoded: EncodedRecords, path: Path) -> Path:
    """Write the encoded file whole or not at all (staged beside it, then moved into place)."""
    from residentview.outputs import staged_output

    path = Path(path)
    with staged_output(path.parent) as staging:
        pq.write_table(_table(encoded), staging / path.name)
    return path


def read_encoded(path: Path) -> EncodedRecords:
    """An encoded file, checked: a DataError (one line, naming the file) when it is not one
    residentview wrote, when a column is missing or of another shape, or when it is empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: encoded file not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise DataError(f"{path}: not an encoded file (no residentview.pprl metadata); make it with `residentview encode`")
    try:
        metadata = json.loads(raw)
    except ValueError:
        raise DataError(f"{path}: its residentview.pprl metadata is not JSON") from None
    if not isinstance(metadata, dict):
        raise DataError(f"{path}: its residentview.pprl metadata is not a JSON object")
    if metadata.get("method") != METHOD:
        raise DataError(f"{path}: encoded by method {metadata.get('method')!r}; this version links {METHOD!r} files only "
                        "(encode both sides again with this version of `residentview encode`)")
    blooms = [f"bloom_{encoding}" for encoding in metadata.get("encodings", {})]
    expected = ["source", "record_id", *blooms, *(f"block_{rule}" for rule in metadata.get("blocking_rules", {})),
                *(f"token_{t}" for t in metadata.get("tokens", [])),
                *(f"part_{part}" for part in metadata.get("parts", {})),
                *(f"part_name_{variant}" for variant in metadata.get("name_variants", [])),
                "initials", "first_initial_only", "age_group"]
    missing = [c for c in expected if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: column(s) {', '.join(missing)} missing; expected {', '.join(expected)}")
    if table.num_rows == 0:
        raise DataError(f"{path}: no records")
    if not blooms:
        raise DataError(f"{path}: its metadata names no encodings")
    for column in blooms:
        kind = table.column(column).type
        if not (pa.types.is_fixed_size_binary(kind) and kind.byte_width * 8 == metadata.get("bits")):
            raise DataError(f"{path}: column {column} is {kind}; expected {metadata.get('bits')} bits a record")
    frame = table.to_pandas()
    if frame[["source", "record_id"]].isna().any().any():
        raise DataError(f"{path}: source and record_id must be present on every record")
    duplicated = frame.duplicated(["source", "record_id"])
    if duplicated.any():
        example = frame.loc[duplicated.idxmax()]
        raise DataError(f"{path}: {int(duplicated.sum())} duplicate (source, record_id), "
                        f"e.g. {example['source']}:{example['record_id']}; expected each record once")
    return EncodedRecords(frame, metadata)


def filters(encoded: EncodedRecords, encoding: str, prefix: str = "bloom", width_key: str = "bits") -> tuple[np.ndarray, np.ndarray]:
    """One encoding's filters (`part`, "part", "part_bits": a field part's) as an (n, bits/64)
    uint64 array, for popcounts (zeros where a record has none), and which records have one."""
    column = encoded.frame[f"{prefix}_{encoding}"]
    held = column.notna().to_numpy()
    width = encoded.metadata[width_key] // 8
    words = np.zeros((len(column), width), dtype=np.uint8)
    if held.any():
        words[held] = np.frombuffer(b"".join(column[held].tolist()), dtype=np.uint8).reshape(-1, width)
    return words.view(np.uint64), held

"""`residentview share`: a pseudonymised copy of the resident view for one recipient (CONTRACT §8).

Every id — resident, household, address and record — is replaced by HMAC-SHA256 under the
recipient's key (keys.py), with a different purpose per kind of id: the same key gives the same
pseudonyms share after share, so a partner can follow residents over time; another recipient's
key gives pseudonyms nobody can link to these.

What leaves is an explicit **allow-list** (`SHARED`): per file of the run, the columns written
and how each is made. A column not on the list never leaves — one added to the resident view
later is not shared until someone adds it here. Direct identifiers (names, addresses, phone,
email, NHS and NI numbers, reference numbers, UPRN, dates of birth) are on no list;
quasi-identifiers are generalised: the date of birth to an ONS five-year age band at the extracts'
date, the postcode to its district, the household to its size (top-coded at 6+), dates to the
month (a birthday's event to the year). Beside the files goes SHARING_NOTE.md: the recipient,
the date, what each file holds and what was left out, and the key's fingerprint — never the key.

Pseudonymised data is still personal data (ICO): the recipient needs a lawful basis and a
data-sharing agreement like any other; this command makes the minimum that is shared smaller,
it does not make it anonymous.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.keys import fingerprint, keyed_hash, read_key
from residentview.publish import HOUSEHOLD_SIZE_TOP, HOUSEHOLD_SIZES, SEXES, UNKNOWN, age_band, household_size, run_date

NOTE_FILE = "SHARING_NOTE.md"
RECORD_SEPARATOR = "\x1f"  # joins source and record_id before hashing: cannot occur in a source name


@dataclass
class _Context:
    """What the transforms need beyond the column itself."""

    key: bytes
    run_date: Optional[pd.Timestamp]
    cache: dict  # (purpose, value) -> pseudonym: one HMAC per distinct id across all files


# Transforms: (frame of the run's file, context) -> the shared column -------------------------------
def pseudonyms(key: bytes, values: pd.Series, purpose: str, cache: Optional[dict] = None) -> pd.Series:
    """Each value's keyed hash (64 hex digits) under `key` for `purpose`; missing stays missing.
    One HMAC per distinct value."""
    cache = {} if cache is None else cache
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    hashed = np.array([cache.setdefault((purpose, str(v)), keyed_hash(key, str(v), purpose)) for v in uniques] + [None],
                      dtype=object)
    return pd.Series(hashed[np.where(codes >= 0, codes, len(uniques))], index=values.index, dtype=object)


def _pseudonym(column: str, purpose: str) -> Callable:
    return lambda frame, ctx: pseudonyms(ctx.key, frame[column], purpose, ctx.cache)


def _record_pseudonym(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    keys = frame["source"].astype(str) + RECORD_SEPARATOR + frame["record_id"].astype(str)
    return pseudonyms(ctx.key, keys, "record", ctx.cache)


def _id_by_entity(column: str) -> Callable:
    """id_changes' old_id / new_id: a resident's or a household's, as its row's entity says."""
    def transform(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
        entity = frame["entity"].fillna("resident").astype(str)
        out = pd.Series(None, index=frame.index, dtype=object)
        for kind in pd.unique(entity):
            rows = entity == kind
            out[rows] = pseudonyms(ctx.key, frame.loc[rows, column], f"{kind}_id", ctx.cache)
        return out
    return transform


def _copy(column: str) -> Callable:
    return lambda frame, ctx: frame[column]


def _age_band(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    return age_band(frame["date_of_birth"], ctx.run_date)


def _sex(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    return frame["sex"].map(SEXES).fillna(UNKNOWN).astype(object)


def _postcode_district(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    from residentview.standardise.postcodes import parse_postcode

    values = frame["postcode"].astype(object)
    return parse_postcode(values.where(values.notna(), None))["postcode_district"].fillna(UNKNOWN).astype(object)


def _household_size_of_residents(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    return household_size(frame["household_id"])


def _household_size(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    return frame["size"].clip(upper=HOUSEHOLD_SIZE_TOP).map(HOUSEHOLD_SIZES).fillna(UNKNOWN).astype(object)


def _month(column: str) -> Callable:
    return lambda frame, ctx: _as_naive(frame[column]).dt.strftime("%Y-%m").astype(object)


def _day(column: str) -> Callable:
    return lambda frame, ctx: _as_naive(frame[column]).dt.strftime("%Y-%m-%d").astype(object)


def _event_date(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    """The month of the event; only the year of a birthday (`turned_<N>`), whose month would
    give the month of birth."""
    dates = _as_naive(frame["event_date"])
    birthday = frame["event"].astype(str).str.startswith("turned_").to_numpy()
    return pd.Series(np.where(birthday, dates.dt.strftime("%Y"), dates.dt.strftime("%Y-%m")),
                     index=frame.index, dtype=object).where(dates.notna(), None)


# An event's details (JSON): the keys shared, and the kind of id each holds (None: not an id).
DETAIL_KEYS = {
    "sources": None, "records": None,
    "from_address": "address_id", "to_address": "address_id",
    "from_household": "household_id", "to_household": "household_id",
    "merged_from": "resident_id", "split_to": "resident_id",
}


def _details(frame: pd.DataFrame, ctx: _Context) -> pd.Series:
    """The details' allowed keys, ids pseudonymised; any other key is left out. Events are few
    (one per resident and change), so a JSON parse per row."""
    def shared(text) -> Optional[str]:
        if not isinstance(text, str):
            return None
        try:
            details = json.loads(text)
        except ValueError:
            return None
        if not isinstance(details, dict):
            return None
        kept = {}
        for name, purpose in DETAIL_KEYS.items():
            if name in details:
                value = details[name]
                kept[name] = value if purpose is None or value is None else \
                    ctx.cache.setdefault((purpose, str(value)), keyed_hash(ctx.key, str(value), purpose))
        return json.dumps(kept, sort_keys=True)
    return frame["details"].map(shared).astype(object)


def _as_naive(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values, errors="coerce", utc=True)
    return dates.dt.tz_convert(None)


@dataclass(frozen=True)
class Shared:
    """A column of a shared file: its name, the run's columns it is made from, how, and what it is."""

    name: str
    needs: tuple[str, ...]
    make: Callable
    meaning: str


def _p(name: str, purpose: str, meaning: str) -> Shared:
    return Shared(name, (name,), _pseudonym(name, purpose), meaning)


# THE ALLOW-LIST: per file of the run, every column that leaves. Nothing else does.
SHARED: dict[str, tuple[Shared, ...]] = {
    "residents.parquet": (
        _p("resident_id", "resident_id", "pseudonym of the resident"),
        _p("household_id", "household_id", "pseudonym of the resident's household"),
        Shared("current_address_id", ("current_address_id",), _pseudonym("current_address_id", "address_id"),
               "pseudonym of the resident's current address"),
        Shared("age_band", ("date_of_birth",), _age_band,
               "ONS five-year age band on the date of the extracts (from the date of birth), or unknown"),
        Shared("sex", ("sex",), _sex, "female, male or unknown"),
        Shared("postcode_district", ("postcode",), _postcode_district,
               "district of the current postcode (LS6), or unknown"),
        Shared("household_size", ("household_id",), _household_size_of_residents,
               "residents in the household: 1 … 5, 6+"),
        Shared("sources", ("sources",), _copy("sources"), "the council services holding a record of the resident"),
        Shared("n_records", ("n_records",), _copy("n_records"), "how many records the resident has"),
        Shared("is_person", ("is_person",), _copy("is_person"), "a person, not an organisation"),
        Shared("is_deceased", ("is_deceased",), _copy("is_deceased"), "a record says the person died"),
    ),
    "resident_links.parquet": (
        Shared("source", ("source",), _copy("source"), "the service the record is from"),
        Shared("record_id", ("source", "record_id"), _record_pseudonym,
               "pseudonym of the record (of its source and the service's own reference)"),
        _p("resident_id", "resident_id", "pseudonym of the resident the record belongs to"),
        _p("household_id", "household_id", "pseudonym of the resident's household"),
        Shared("match_probability", ("match_probability",), _copy("match_probability"),
               "confidence that the record belongs to the resident"),
    ),
    "households.parquet": (
        _p("household_id", "household_id", "pseudonym of the household"),
        Shared("postcode_district", ("postcode",), _postcode_district, "district of the household's postcode"),
        Shared("household_size", ("size",), _household_size, "residents in the household: 1 … 5, 6+"),
    ),
    "addresses.parquet": (
        _p("resident_id", "resident_id", "pseudonym of the resident"),
        _p("address_id", "address_id", "pseudonym of the address"),
        Shared("postcode_district", ("postcode",), _postcode_district, "district of the address's postcode"),
        Shared("sources", ("sources",), _copy("sources"), "the services giving this address"),
        Shared("current", ("current",), _copy("current"), "the resident's current address"),
        Shared("first_seen", ("first_seen",), _month("first_seen"), "month first seen (YYYY-MM)"),
        Shared("last_seen", ("last_seen",), _month("last_seen"), "month last seen (YYYY-MM)"),
    ),
    "events.parquet": (
        Shared("run_date", ("run_timestamp",), _day("run_timestamp"), "date of the run that found the event"),
        Shared("event", ("event",), _copy("event"), "what happened: moved, died, turned_18, new_resident …"),
        _p("resident_id", "resident_id", "pseudonym of the resident"),
        Shared("event_date", ("event", "event_date"), _event_date,
               "month of the event (YYYY-MM); the year only for a birthday (turned_<N>)"),
        Shared("details", ("details",), _details,
               "JSON: the sources that showed it, record counts, and pseudonyms of the addresses, "
               "households and residents involved"),
    ),
    "id_changes.parquet": (
        Shared("run_date", ("run_timestamp",), _day("run_timestamp"), "date of the run that made the change"),
        Shared("entity", ("entity",), _copy("entity"), "resident or household"),
        Shared("change", ("change",), _copy("change"), "new, merged, split or retired"),
        Shared("old_id", ("entity", "old_id"), _id_by_entity("old_id"), "pseudonym of the id before"),
        Shared("new_id", ("entity", "new_id"), _id_by_entity("new_id"), "pseudonym of the id after"),
        Shared("n_records", ("n_records",), _copy("n_records"), "records that moved with the change"),
    ),
}
REQUIRED = "residents.parquet"


@dataclass
class SharedFile:
    name: str
    frame: pd.DataFrame
    columns: list[Shared]
    left_out: list[str]  # the run's columns not shared
    not_in_run: list[str]  # allowed columns the run's file lacks


@dataclass
class Share:
    recipient: str
    fingerprint: str
    files: list[SharedFile]
    run_name: Optional[str]
    run_date: Optional[pd.Timestamp]
    made: pd.Timestamp


def check_recipient(recipient: str) -> str:
    name = (recipient or "").strip()
    if not name or "\n" in name or "\r" in name or len(name) > 200:
        raise DataError(f"--recipient {recipient!r}: expected the recipient's name on one line (up to 200 characters)")
    return name


def check_folders(folder: Path, out: Path) -> None:
    """A run must be in `folder`; `out` must be neither it nor inside it (a share written among
    the council's outputs would sit beside everything it leaves out)."""
    if not (folder / REQUIRED).is_file():
        raise DataError(f"{folder}: no run here ({REQUIRED} is missing); expected the output folder of "
                        "`residentview link`")
    inside, target = folder.resolve(), out.resolve()
    if target == inside or inside in target.parents:
        raise DataError(f"--out {out}: is the run's folder {folder} or inside it; write the share somewhere else")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")


def config_copies(folder: Path) -> list[Path]:
    """Files in the run's folder that may hold its config: run.json, and the config file it names
    (when one is recorded there and still exists). A key appearing in any is refused."""
    found = [folder / "run.json"]
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = {}
    for name in ("config_path", "config"):
        value = run.get(name) if isinstance(run, dict) else None
        if isinstance(value, str) and Path(value).is_file():
            found.append(Path(value))
    return [path for path in found if path.is_file()]


def _run_facts(folder: Path) -> tuple[Optional[str], Optional[pd.Timestamp]]:
    try:
        name = json.loads((folder / "run.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    try:
        return name, run_date(folder)
    except DataError:
        return name, None


def build_share(folder: Union[str, Path], key: bytes, recipient: str) -> Share:
    """The shared files of the run in `folder` for `recipient`, pseudonymised under `key`."""
    folder = Path(folder)
    name, date = _run_facts(folder)
    ctx = _Context(key, date, {})
    files = []
    for file_name, allowed in SHARED.items():
        path = folder / file_name
        if not path.is_file():
            continue
        try:
            present = pq.read_schema(path).names
        except Exception as exc:
            raise DataError(f"{path}: cannot be read ({type(exc).__name__})") from None
        usable = [c for c in allowed if all(n in present for n in c.needs)]
        if date is None and any(c.make is _age_band for c in usable):
            raise DataError(f"{folder / 'run.json'}: missing, or holds no run_timestamp; the age band is the age "
                            "on the extracts' date (as_of) or the run's")
        needed = list(dict.fromkeys(n for c in usable for n in c.needs))
        frame = pd.read_parquet(path, columns=needed)
        shared = pd.DataFrame({c.name: c.make(frame, ctx).to_numpy() for c in usable})
        used = {n for c in usable for n in c.needs}
        files.append(SharedFile(file_name, shared, usable, [c for c in present if c not in used],
                                [c.name for c in allowed if c not in usable]))
    return Share(recipient, fingerprint(key), files, name, date, pd.Timestamp.now(tz="UTC").floor("s"))


# Writing ------------------------------------------------------------------------------------------
def sharing_note(share: Share) -> str:
    """SHARING_NOTE.md: for the recipient and for the council's records of what left."""
    run = f"`{share.run_name}`" if share.run_name else "(unnamed)"
    when = share.run_date.date().isoformat() if share.run_date is not None else "unknown"
    lines = [
        "# Data-sharing note", "",
        f"- **Recipient:** {share.recipient}",
        f"- **Made:** {share.made.date().isoformat()} (UTC)",
        f"- **From:** the resident view {run}, run on {when}",
        f"- **Key fingerprint:** `{share.fingerprint}` (names the recipient's key; the key itself is in no file here)",
        "",
        "Every resident, household, address and record id is replaced by a pseudonym: HMAC-SHA256 under a key "
        "held by the council and this recipient only (64 hex digits; a different purpose for each kind of id). "
        "Shares made later under the same key give the same pseudonyms, so residents can be followed over "
        "time; shares for other recipients use other keys, and their pseudonyms cannot be matched to these.",
        "",
        "Pseudonymised data is still personal data (UK GDPR; ICO guidance on pseudonymisation): keep it "
        "under the data-sharing agreement, do not try to re-identify anyone, and do not combine it with "
        "other data to do so.",
        "",
        "## Left out and generalised", "",
        "- **Left out:** names, titles and other names, addresses, UPRNs, NHS and NI numbers, phone numbers, "
        "email addresses, the services' own reference numbers, and every other column not listed below.",
        "- **Generalised:** the date of birth to an ONS five-year age band on the date of the extracts; the postcode to "
        "its district; the household to its size (6+ above five); dates to the month (an 18th birthday, and "
        "any other `turned_<N>`, to the year).",
        "- **Special category data:** `sources` says which services know a resident — social care among "
        "them — and `is_deceased` that a record says they died.",
        "",
        "## Files", "",
    ]
    for item in share.files:
        lines += [f"### {item.name} — {len(item.frame):,} rows", "", "| column | what it holds |", "|---|---|"]
        lines += [f"| `{c.name}` | {c.meaning}{_made_from(c)} |" for c in item.columns]
        lines.append("")
        if item.left_out:
            lines += [f"Left out of this file: {', '.join(f'`{c}`' for c in item.left_out)}.", ""]
        if item.not_in_run:
            lines += [f"Not in this run, so not here: {', '.join(f'`{c}`' for c in item.not_in_run)}.", ""]
    return "\n".join(lines)


def _made_from(column: Shared) -> str:
    others = [n for n in column.needs if n != column.name]
    return f" (made from {', '.join(f'`{n}`' for n in others)})" if column.name not in column.needs else ""


def write_share(share: Share, out: Union[str, Path]) -> list[Path]:
    """The shared files and the note into `out`, all or nothing (files of other names there are
    left alone)."""
    from residentview.outputs import folder_lock, staged_output

    out = Path(out)
    with folder_lock(out, "share"), staged_output(out) as staging:
        for item in share.files:
            item.frame.to_parquet(staging / item.name, index=False)
        (staging / NOTE_FILE).write_text(sharing_note(share), encoding="utf-8")
    return [out / item.name for item in share.files] + [out / NOTE_FILE]


def share_run(folder: Union[str, Path], recipient: str, key_file: Union[str, Path], out: Union[str, Path]) -> Share:
    """`residentview share`: check, build, write, and record the share in the run's audit log
    (recipient, files, row counts, the key's fingerprint; no values, no key)."""
    from residentview.audit import append_entries, os_user, versions
    from residentview.outputs import folder_lock, staged_output
    from residentview.review.store import file_digest

    folder, out = Path(folder), Path(out)
    recipient = check_recipient(recipient)
    check_folders(folder, out)
    key = read_key(Path(key_file), others=config_copies(folder))
    with folder_lock(folder, "share"):  # no run replaces the folder while it is read
        share = build_share(folder, key, recipient)
        written = write_share(share, out)
        entry = {
            "event": "share", "user": os_user(), "versions": versions(), "recipient": share.recipient,
            "key_fingerprint": share.fingerprint, "out": str(out.resolve()),
            "files": {item.name: {"rows": int(len(item.frame)), "columns": [c.name for c in item.columns],
                                  "sha256": file_digest(out / item.name)} for item in share.files},
            "note_sha256": file_digest(written[-1]),
        }
        with staged_output(folder) as staging:
            append_entries(folder, staging, [entry])
    return share

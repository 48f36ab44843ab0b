"""Synthetic council extracts with known truth: the demo, the tests and every accuracy claim rest on them.

    from residentview.synthetic import generate, NoiseRates
    written = generate(people=10_000, out="synthetic", seed=1)
    written.config_path   # a residentview config for the six extracts
    written.truth_path    # truth.parquet: source, record_id, person_id

A population living in households at UK addresses (`population.py`) is seen by six council
systems (`extracts.py`), each copying it with the errors of the noise catalogue (`noise.py`).

    pair = generate_pair(people=10_000, out="synthetic_pair", seed=1, months=12)
    pair.earlier, pair.later   # each a `Written`: the same people's extracts a year apart
    pair.events_path           # events_truth.parquet: who moved, died, married, turned 18, came or left

The same population a year on (`life_events.py`) is seen again by the same systems, which update
the records they hold as councils do, some late (`later.py`).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
import yaml

from residentview.outputs import staged_output
from residentview.synthetic.extracts import SOURCE_CONFIG, SYSTEMS, SystemRecords
from residentview.synthetic.later import later_records
from residentview.synthetic.life_events import LifeEventRates, live
from residentview.synthetic.noise import NoiseRates
from residentview.synthetic.population import REFERENCE_DATE, Population, make_population

log = logging.getLogger(__name__)

# Measured: ~1.4 records per person across the six systems at the default rates.
RECORDS_PER_PERSON = 1.4

# Where each system's extract goes and how it is written (the file type is part of the realism).
FILES = {
    "council_tax": "council_tax.csv",
    "housing_benefit": "housing_benefit.parquet",
    "electoral_register": "electoral_register.csv",
    "adult_social_care": "adult_social_care.csv",
    "children_services": "children_services.xlsx",
    "school_census": "school_census.csv",
}
ENCODINGS = {"electoral_register": "cp1252", "adult_social_care": "utf-8-sig"}


@dataclass
class Written:
    """What `generate` wrote: the folder, the config for the extracts, the truth and its size."""

    out: Path
    config_path: Path
    truth_path: Path
    n_records: int


def config_for(data_dir: str = ".", name: str = "synthetic_council") -> dict:
    """The residentview config for the six extracts, with paths under `data_dir`."""
    sources = {}
    for system, spec in SOURCE_CONFIG.items():
        path = f"{data_dir.rstrip('/')}/{FILES[system]}" if data_dir not in ("", ".") else FILES[system]
        sources[system] = {"path": path, **spec}
    return {"name": name, "sources": sources, "linkage": {"threshold": 0.95}}


def _cp1252_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Fold only the characters cp1252 cannot hold (ł, ś…), as a legacy export does; keep é, â."""
    def fold(text: str) -> str:
        try:
            text.encode("cp1252")
            return text
        except UnicodeEncodeError:
            return "".join(
                c if c.encode("cp1252", "ignore") else unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
                for c in text
            )

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = out[column].dropna().unique()
            mapping = {v: fold(v) for v in values if isinstance(v, str)}
            out[column] = out[column].map(mapping).where(out[column].notna(), None)
    return out


def _write(frame: pd.DataFrame, system: str, out: Path) -> None:
    path = out / FILES[system]
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            frame.to_excel(writer, sheet_name=SOURCE_CONFIG[system]["sheet"], index=False)
    else:
        encoding = ENCODINGS.get(system, "utf-8")
        if encoding == "cp1252":
            frame = _cp1252_safe(frame)
        frame.to_csv(path, index=False, encoding=encoding)


def draw_extracts(population: Population, rates: NoiseRates, rng: np.random.Generator) -> dict[str, SystemRecords]:
    """Each system's records of `population`, with the shuffled order its file is written in."""
    drawn = {}
    for system, make in SYSTEMS.items():
        frame, truth = make(population, rates, rng)
        drawn[system] = SystemRecords(frame, truth, rng.permutation(len(frame)))  # files are not in person order
        log.debug("drew %s: %d records", system, len(frame))
    return drawn


def _write_folder(drawn: dict[str, SystemRecords], folder: Path) -> int:
    """The six extracts, truth.parquet and the config into `folder`; the number of records."""
    folder.mkdir(parents=True, exist_ok=True)
    for system, records in drawn.items():
        _write(records.frame.iloc[records.order].reset_index(drop=True), system, folder)
    truth = pd.concat([records.truth for records in drawn.values()], ignore_index=True)
    truth.to_parquet(folder / "truth.parquet", index=False)
    (folder / "council.yaml").write_text(yaml.safe_dump(config_for("."), sort_keys=False), encoding="utf-8")
    return len(truth)


def _written(folder: Path, n_records: int) -> Written:
    return Written(folder, folder / "council.yaml", folder / "truth.parquet", n_records)


def generate(people: int = 1000, out: Union[str, Path] = "synthetic", seed: int = 1,
             noise: Optional[NoiseRates] = None) -> Written:
    """Write six council extracts for a synthetic population of `people`, a config and truth.parquet.

    The same `seed` (and `noise`) always writes the same files.
    """
    rates = noise or NoiseRates()
    out = Path(out)
    rng = np.random.default_rng(seed)
    drawn = draw_extracts(make_population(people, rng, rates), rates, rng)
    # All files or none: an interrupted run must not leave half the extracts (the config's paths
    # are relative, so the folder can be written elsewhere and moved into place).
    with staged_output(out) as staging:
        n_records = _write_folder(drawn, staging)
    return _written(out, n_records)


@dataclass
class WrittenPair:
    """What `generate_pair` wrote: the extracts at both dates and the true events between them."""

    out: Path
    earlier: Written
    later: Written
    events_path: Path


def with_shown(events: pd.DataFrame, later: dict[str, SystemRecords]) -> pd.DataFrame:
    """The true events with what the later extracts show of each: `shown_by` (the systems whose
    records show it, comma-separated) and `shown`. A council sees only what its systems record:
    a death the register removed without a mark, or a move no system has heard of, is true but
    not in the data. A new resident shows when any system holds them; a departure when none does."""
    shows = pd.concat([records.shows.assign(source=system) for system, records in later.items()
                       if records.shows is not None], ignore_index=True)
    held = pd.concat([records.truth[["person_id"]].assign(source=system) for system, records in later.items()],
                     ignore_index=True).drop_duplicates()
    shows = pd.concat([shows, held.assign(event="new_resident")], ignore_index=True)
    by = shows.groupby(["person_id", "event"])["source"].agg(lambda s: ",".join(sorted(set(s))))
    keys = pd.MultiIndex.from_arrays([events["person_id"], events["event"]])
    out = events.assign(shown_by=by.reindex(keys).fillna("").to_numpy())
    departed = (events["event"] == "left") & ~events["person_id"].isin(held["person_id"])
    return out.assign(shown=(out["shown_by"] != "") | departed.to_numpy())


def generate_pair(people: int = 1000, out: Union[str, Path] = "synthetic_pair", seed: int = 1, months: int = 12,
                  rates: Optional[LifeEventRates] = None, noise: Optional[NoiseRates] = None) -> WrittenPair:
    """The same population's six extracts at two dates `months` apart, and the life events between.

    Writes `out/earlier/` (what `generate(people, seed=seed, noise=noise)` writes, every date
    `months` earlier), `out/later/` (the same systems `months` on, as of the date `generate`'s
    extracts are: six extracts, council.yaml, truth.parquet) and
    `out/events_truth.parquet` (person_id, event, event_date, details as JSON; events are
    moved, died, name_changed, turned_18, new_resident, left; see `life_events.py`; and
    shown_by / shown: which systems' later records show each, `with_shown`).
    A record nothing happened to keeps its id and, mostly, every byte; what each system does with
    each event, and how often it lags behind, is in `later.py`. `rates` are the yearly life-event
    rates. The same arguments always write the same files.
    """
    if months < 1:
        raise ValueError(f"generate_pair: months must be 1 or more, got {months}")
    noise = noise or NoiseRates()
    rates = rates or LifeEventRates()
    out = Path(out)
    rng = np.random.default_rng(seed)
    # The later extracts are as of REFERENCE_DATE, the earlier ones `months` before: extracts
    # dated after the day they are read would be future dates, and invalid.
    population = make_population(people, rng, noise, reference=REFERENCE_DATE - pd.DateOffset(months=months))
    earlier = draw_extracts(population, noise, rng)
    # The events draw from a stream of their own, so the earlier extracts stay those of `generate`.
    life_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    after = live(population, months, rates, noise, life_rng)
    later = {system: later_records(system, records, population, after, noise, life_rng)
             for system, records in earlier.items()}
    with staged_output(out) as staging:
        n_earlier = _write_folder(earlier, staging / "earlier")
        n_later = _write_folder(later, staging / "later")
        with_shown(after.events, later).to_parquet(staging / "events_truth.parquet", index=False)
    return WrittenPair(out, _written(out / "earlier", n_earlier), _written(out / "later", n_later),
                       out / "events_truth.parquet")


__all__ = ["FILES", "LifeEventRates", "NoiseRates", "RECORDS_PER_PERSON", "Written", "WrittenPair", "config_for",
           "generate", "generate_pair"]

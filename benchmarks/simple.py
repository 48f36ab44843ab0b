"""A simple single-source benchmark dataset: ``simple-<N>[k|m]`` (e.g. ``simple-10k``, ``simple-1m``).

One CSV file, ``people.csv``, of about N records with the columns an analyst's plain extract has:
``id, first_name, surname, dob (YYYY-MM-DD), house_number, street, postcode``. It is the kind of
file a lean plain-Splink model is built for, so it measures what residentview's extra machinery
costs when the data does not need it.

* People: `residentview.synthetic`'s population (UK names of several traditions, households,
  streets and postcodes of one borough), everyone in a private household (no communal homes).
* Each person has 1, 2 or 3 records (probabilities 0.5 / 0.3 / 0.2; 1.7 on average), all in the
  one file and shuffled, so the task is deduplication.
* Light noise, independently per record: a keyboard slip in the first name (3 %) and in the
  surname (3 %); one digit of the date mistyped (1.5 %) or day and month swapped (0.5 %); a
  one-character slip in the postcode (0.5 %); each of first name, dob, house number, street and
  postcode left blank (2 % each). Names are written in plain ASCII (accents dropped).
* Movers: 5 % of households lived at another address in the borough before, and each of their
  records is at the old address with probability 0.5.

Deterministic from `SIMPLE_SEED`; a million records take well under a minute. Written next to
the CSV: ``config.yaml`` (a residentview config) and ``truth.parquet`` (source, record_id,
person_id), as for the other datasets.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

SIMPLE_SEED = 20261201
SOURCE = "people"
COLUMNS = ("id", "first_name", "surname", "dob", "house_number", "street", "postcode")
RECORDS_PER_PERSON = np.array([1, 2, 3])
RECORDS_PER_PERSON_P = np.array([0.5, 0.3, 0.2])
NAME_TYPO = 0.03
POSTCODE_TYPO = 0.005
MISSING = 0.02
MOVED_HOUSEHOLDS = 0.05
STALE_ADDRESS = 0.5
_NAME = re.compile(r"^simple-(\d+)([km]?)$")


def simple_records(name: str) -> int | None:
    """The record count a ``simple-10k`` style name asks for (None if the name is not one)."""
    match = _NAME.match(name)
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]


def config_for(name: str) -> dict:
    return {
        "name": name,
        "sources": {
            SOURCE: {
                "path": "people.csv",
                "id": "id",
                "fields": {
                    "first_name": "first_name",
                    "last_name": "surname",
                    "date_of_birth": {"column": "dob", "format": "%Y-%m-%d"},
                    "address": ["house_number", "street"],
                    "postcode": "postcode",
                },
            }
        },
    }


def make_records(records: int, seed: int = SIMPLE_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The people file (columns `COLUMNS`) and its truth (source, record_id, person_id)."""
    from residentview.synthetic import noise
    from residentview.synthetic.noise import NoiseRates
    from residentview.synthetic.population import make_population

    people = max(10, round(records / float(RECORDS_PER_PERSON @ RECORDS_PER_PERSON_P)))
    rates = NoiseRates(communal=0.0, moved=MOVED_HOUSEHOLDS)
    # make_addresses (population.py) can fail on large sizes when rounding street lengths leaves
    # more houses over than the longest street holds ("repeats may not contain negative values");
    # another deterministic draw then works.
    for attempt in range(10):
        rng = np.random.default_rng([seed, attempt])
        try:
            population = make_population(people, rng, rates)
            break
        except ValueError:
            if attempt == 9:
                raise
    p, addresses = population.people, population.addresses

    counts = RECORDS_PER_PERSON[rng.choice(len(RECORDS_PER_PERSON), size=len(p), p=RECORDS_PER_PERSON_P)]
    person = rng.permutation(np.repeat(np.arange(len(p)), counts))  # duplicates scattered in the file
    n = len(person)

    everyone = np.ones(n, dtype=bool)
    first = noise.strip_accents(p["first_name"].to_numpy(dtype=object)[person], everyone)
    last = noise.strip_accents(p["last_name"].to_numpy(dtype=object)[person], everyone)
    first = noise.typos(first, rng.random(n) < NAME_TYPO, rng)
    last = noise.typos(last, rng.random(n) < NAME_TYPO, rng)

    dob_rates = NoiseRates(dob_swap=0.005, dob_digit=0.015, dob_placeholder=0.0, dob_first_january=0.0)
    dob = noise.dob_errors(p["dob"].to_numpy()[person], dob_rates, rng)
    dob = np.datetime_as_string(dob.astype("datetime64[D]"), unit="D").astype(object)

    address = p["address_id"].to_numpy()[person]
    previous = p["previous_address_id"].to_numpy()[person]
    stale = (previous >= 0) & (rng.random(n) < STALE_ADDRESS)
    address = np.where(stale, previous, address)
    house_number = addresses["number"].to_numpy(dtype=object)[address]
    street = addresses["street"].to_numpy(dtype=object)[address]
    postcode = noise.typos(addresses["postcode"].to_numpy(dtype=object)[address], rng.random(n) < POSTCODE_TYPO, rng)

    columns = {"first_name": first, "dob": dob, "house_number": house_number, "street": street, "postcode": postcode}
    for column, values in columns.items():
        columns[column] = noise.blank(values, rng.random(n) < MISSING)
    ids = np.arange(1, n + 1)
    frame = pd.DataFrame({
        "id": ids,
        "first_name": columns["first_name"],
        "surname": last,
        "dob": columns["dob"],
        "house_number": columns["house_number"],
        "street": columns["street"],
        "postcode": columns["postcode"],
    })
    truth = pd.DataFrame({
        "source": SOURCE,
        "record_id": ids.astype(str).astype(object),
        "person_id": p["person_id"].to_numpy(dtype=object)[person],
    })
    return frame, truth


def write_simple(records: int, folder: Path, name: str | None = None, seed: int = SIMPLE_SEED) -> Path:
    """Write ``people.csv``, ``config.yaml`` and ``truth.parquet`` for about `records` records."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame, truth = make_records(records, seed)
    frame.to_csv(folder / "people.csv", index=False)
    truth.to_parquet(folder / "truth.parquet", index=False)
    config = config_for(name or folder.name)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return folder

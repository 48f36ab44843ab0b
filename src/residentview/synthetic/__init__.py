"""Synthetic council extracts with ground truth (placeholder: two small sources; the full
generator with six council systems and a noise catalogue replaces this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

RECORDS_PER_PERSON = 1.6


@dataclass
class Written:
    out: Path
    config_path: Path
    truth_path: Path
    n_records: int


def generate(people: int = 1000, out="synthetic", seed: int = 1) -> Written:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    first = np.array(["JOHN", "MARY", "AHMED", "SIAN", "PETER", "ZOE", "WILLIAM", "MARGARET"])
    last = np.array(["SMITH", "JONES", "KHAN", "PATEL", "EVANS", "BROWN", "TAYLOR", "WILSON"])
    pid = np.arange(people)
    fn = first[rng.integers(0, len(first), people)]
    ln = last[rng.integers(0, len(last), people)]
    dob = pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 25000, people), unit="D")
    a = pd.DataFrame({"ref": [f"A{i:06d}" for i in pid], "forename": fn, "surname": ln, "dob": dob.strftime("%d/%m/%Y"), "person": pid})
    take = rng.random(people) < 0.6
    b = pd.DataFrame({"acc": [f"{i:07d}" for i in pid[take]], "name": [f"{l}, {f.title()}" for f, l in zip(fn[take], ln[take])], "birth": dob[take].strftime("%Y-%m-%d"), "person": pid[take]})
    a.drop(columns="person").to_csv(out / "register.csv", index=False)
    b.drop(columns="person").to_csv(out / "benefits.csv", index=False)
    truth = pd.concat([
        pd.DataFrame({"source": "register", "record_id": a["ref"], "person_id": a["person"].astype(str)}),
        pd.DataFrame({"source": "benefits", "record_id": b["acc"], "person_id": b["person"].astype(str)}),
    ])
    truth.to_parquet(out / "truth.parquet", index=False)
    config = {
        "name": "demo",
        "sources": {
            "register": {"path": "register.csv", "id": "ref", "fields": {"first_name": "forename", "last_name": "surname", "date_of_birth": "dob"}},
            "benefits": {"path": "benefits.csv", "id": "acc", "fields": {"full_name": "name", "date_of_birth": "birth"}},
        },
    }
    config_path = out / "demo.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Written(out, config_path, out / "truth.parquet", len(a) + len(b))

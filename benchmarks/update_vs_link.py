"""`residentview update` against full runs on the same data, in one run.

    .venv/bin/python benchmarks/update_vs_link.py synthetic-1m --changes 10000 --out benchmarks/results/update

From a dataset with truth it writes two versions of the extracts: "before" lacks the records
that will be new, "after" lacks the ones that will be removed and has the changed ones edited
(a move to another record's address, a surname changed, a first name retyped, a date of birth
retyped). `--changes` records in all: 40% new, 30% changed, 30% removed. Then, each step the
real CLI in its own process (wall time and peak memory of the process and its children):

1. `link` the before extracts into a folder;
2. `update` it with the after extracts (the step measured);
3. `link` the after extracts with the model step 1 saved (`linkage.model`): what the update
   should agree with;
4. `link` the after extracts from scratch, training a model: the full run an update replaces.

Reported: each step's time and memory, the update's time as a share of each full run,
agreement of the update's residents with step 3's (pairwise F1 between the two groupings, and
the share of records whose resident has exactly the same records in both), the share of
untouched residents (no record changed, removed or joined) whose id the update kept, and
pairwise F1 against the truth for steps 2-4.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import prepare  # noqa: E402
from metrics import evaluate, pairwise_scores  # noqa: E402
from run import _FamilyMemory  # noqa: E402

SHARES = {"new": 0.4, "changed": 0.3, "removed": 0.3}
CLI = [sys.executable, "-m", "residentview.cli"]


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    for encoding in ("utf-8", "cp1252"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
    raise SystemExit(f"{path}: neither UTF-8 nor cp1252")


def _columns(spec) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, list):
        return list(spec)
    column = spec["column"]
    return [column] if isinstance(column, str) else list(column)


def _retyped(value: str, rng: np.random.Generator) -> str:
    """Two neighbouring letters swapped: a typo made, or put right."""
    if not isinstance(value, str) or len(value) < 4:
        return value
    i = int(rng.integers(1, len(value) - 2))
    return value[:i] + value[i + 1] + value[i] + value[i + 2:]


def _last_digit(value):
    if not isinstance(value, str) or not value[-1:].isdigit():
        return value
    return value[:-1] + str((int(value[-1]) + 1) % 10)


def _edit(frame: pd.DataFrame, rows: np.ndarray, fields: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Change each of `rows` in one way a council's records change."""
    frame = frame.copy()
    address = _columns(fields.get("address")) + _columns(fields.get("postcode")) + _columns(fields.get("uprn"))
    surname = _columns(fields.get("last_name")) or _columns(fields.get("full_name"))
    forename = _columns(fields.get("first_name")) or _columns(fields.get("full_name"))
    dob = _columns(fields.get("date_of_birth"))
    kinds = [k for k, cols in (("move", address), ("surname", surname), ("forename", forename), ("dob", dob)) if cols]
    choice = rng.integers(0, len(kinds), size=len(rows))
    for number, kind in enumerate(kinds):
        chosen = frame.index[rows[choice == number]]
        if not len(chosen):
            continue
        if kind == "move":  # to the address of another record of the same system
            donors = frame.index[rng.integers(0, len(frame), size=len(chosen))]
            frame.loc[chosen, address] = frame.loc[donors, address].to_numpy()
        elif kind == "surname":  # married, or a new surname's spelling
            donors = frame.index[rng.integers(0, len(frame), size=len(chosen))]
            column = surname[0]
            if "full_name" in fields and column in _columns(fields.get("full_name")):
                frame.loc[chosen, column] = [_retyped(v, rng) for v in frame.loc[chosen, column]]
            else:
                frame.loc[chosen, column] = frame.loc[donors, column].to_numpy()
        elif kind == "forename":
            frame.loc[chosen, forename[0]] = [_retyped(v, rng) for v in frame.loc[chosen, forename[0]]]
        else:  # a date of birth corrected: its last digit retyped
            frame.loc[chosen, dob[0]] = [_last_digit(v) for v in frame.loc[chosen, dob[0]]]
    return frame


def make_versions(config_path: Path, work: Path, changes: int, seed: int = 7) -> tuple[Path, Path]:
    """Write work/before and work/after (config.yaml and extracts) from a dataset's config."""
    rng = np.random.default_rng(seed)
    folder = config_path.parent
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    frames = {name: _read(folder / spec["path"]) for name, spec in config["sources"].items()}
    total = sum(len(f) for f in frames.values())
    versions = {}
    for version in ("before", "after"):
        versions[version] = work / version
        shutil.rmtree(versions[version], ignore_errors=True)
        versions[version].mkdir(parents=True)
    for name, spec in config["sources"].items():
        frame = frames[name].reset_index(drop=True)
        picked = rng.permutation(len(frame))[: round(changes * len(frame) / total)]
        cut = np.cumsum([round(SHARES[k] * len(picked)) for k in ("new", "changed")])
        new, changed, removed = np.split(picked, cut)
        before = frame.drop(index=new)
        after = _edit(frame, changed, spec["fields"], rng).drop(index=removed)
        suffix = ".parquet" if spec["path"].endswith(".parquet") else ".csv"
        file = Path(spec["path"]).stem + suffix
        for version, part in (("before", before), ("after", after)):
            target = versions[version] / file
            part.to_parquet(target, index=False) if suffix == ".parquet" else part.to_csv(target, index=False)
        spec["path"] = file
        spec.pop("sheet", None)
        spec.pop("encoding", None)
        if suffix == ".csv":
            spec["encoding"] = "utf-8"
    for version in versions.values():
        (version / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return versions["before"], versions["after"]


def timed(command: list[str]) -> dict:
    """Run a command; its wall time and the peak memory of it and its children (not this
    script's, which holds both versions of the extracts)."""
    started = time.perf_counter()
    with _FamilyMemory(children_only=True) as family:
        completed = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "peak_memory_mb": round(family.peak_bytes / 1024**2)}


def _keys(links: pd.DataFrame) -> pd.Series:
    return links["source"].astype(str) + "\x1f" + links["record_id"].astype(str)


def _members(links: pd.DataFrame) -> pd.Series:
    """Each record's resident as the frozen set of its records' keys."""
    keys = _keys(links)
    groups = keys.groupby(links["resident_id"].to_numpy()).agg(frozenset)
    return links["resident_id"].map(groups).set_axis(keys.to_numpy())


def agreement(update: pd.DataFrame, full: pd.DataFrame) -> dict:
    a, b = _members(update), _members(full)
    b = b.reindex(a.index)
    ids_a = update.set_axis(_keys(update).to_numpy())["resident_id"]
    ids_b = full.set_axis(_keys(full).to_numpy())["resident_id"].reindex(ids_a.index)
    scores = pairwise_scores(ids_a, ids_b)
    return {"pairwise_f1": round(scores["f1"], 5), "identical_residents_share": round(float((a == b).mean()), 5)}


def ids_kept(before: pd.DataFrame, after: pd.DataFrame, touched_keys: set) -> dict:
    """Residents of the first run none of whose records changed or left and that no record
    joined: does each keep its id?"""
    members_before = _members(before)
    members_after = _members(after)
    by_id_before = pd.Series(members_before.to_numpy(), index=before["resident_id"].to_numpy()).groupby(level=0).first()
    untouched = by_id_before[[not (m & touched_keys) for m in by_id_before]]
    after_by_members = pd.Series(after["resident_id"].to_numpy(), index=members_after.to_numpy()).groupby(level=0).first()
    same = untouched.map(after_by_members)
    # Joined by a new record: its members differ after, so it is not untouched; counted apart.
    present = same.notna()
    kept = (same[present] == untouched.index[present]).mean() if present.any() else float("nan")
    return {"untouched_residents": int(present.sum()), "ids_kept_share": round(float(kept), 5),
            "untouched_but_regrouped": int((~present).sum())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "update")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the configs written name the saved model by this path
    folder = prepare(args.dataset, args.data)
    work = args.out / "work" / args.dataset
    before, after = make_versions(folder / "config.yaml", work, args.changes)
    truth = pd.read_parquet(folder / "truth.parquet")

    folders = {step: work / step for step in ("updated", "same-model", "full")}
    for path in folders.values():
        shutil.rmtree(path, ignore_errors=True)
    rows = {"link before": timed([*CLI, "-q", "link", str(before / "config.yaml"), "--out", str(folders["updated"])])}
    first = pd.read_parquet(folders["updated"] / "resident_links.parquet")
    hashes_before = pd.read_parquet(folders["updated"] / "records.parquet", columns=["source", "record_id", "row_hash"])
    model = work / "model-before.json"
    shutil.copy(folders["updated"] / "model.json", model)
    rows["update"] = timed([*CLI, "-q", "update", str(after / "config.yaml"), "--out", str(folders["updated"])])
    same_model = yaml.safe_load((after / "config.yaml").read_text(encoding="utf-8"))
    same_model.setdefault("linkage", {})["model"] = str(model)
    (after / "config-same-model.yaml").write_text(yaml.safe_dump(same_model, sort_keys=False), encoding="utf-8")
    rows["link, same model"] = timed([*CLI, "-q", "link", str(after / "config-same-model.yaml"),
                                      "--out", str(folders["same-model"])])
    rows["link, training"] = timed([*CLI, "-q", "link", str(after / "config.yaml"), "--out", str(folders["full"])])

    run = json.loads((folders["updated"] / "run.json").read_text(encoding="utf-8"))
    updated = pd.read_parquet(folders["updated"] / "resident_links.parquet")
    same = pd.read_parquet(folders["same-model"] / "resident_links.parquet")
    full = pd.read_parquet(folders["full"] / "resident_links.parquet")
    hashes_after = pd.read_parquet(folders["updated"] / "records.parquet", columns=["source", "record_id", "row_hash"])
    fresh = run["diagnostics"]["update"]
    touched_keys = _touched_keys(hashes_before, hashes_after)
    for name, links in (("update", updated), ("link, same model", same), ("link, training", full)):
        rows[name].update({k: round(v, 4) for k, v in evaluate(links.rename(columns={"resident_id": "cluster"}),
                                                                truth).items() if k.startswith("pairwise")})
    result = {
        "dataset": args.dataset, "records": int(len(updated)), "changes": fresh["records"],
        "records_reclustered": fresh["records_reclustered"], "steps": rows,
        "update_share_of_link_same_model": round(rows["update"]["seconds"] / rows["link, same model"]["seconds"], 3),
        "update_share_of_link_training": round(rows["update"]["seconds"] / rows["link, training"]["seconds"], 3),
        "agreement_with_same_model": agreement(updated, same),
        "ids": ids_kept(first, updated, touched_keys),
        "update_timings": run["timings_seconds"],
        "drift": fresh["drift"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    (args.out / f"{args.dataset}.json").write_text(text, encoding="utf-8")
    print(text)


def _touched_keys(before: pd.DataFrame, after: pd.DataFrame) -> set:
    """Keys of the records the update found new, changed or removed (by their hashes)."""
    merged = before.merge(after, on=["source", "record_id"], how="outer", suffixes=("_before", "_after"))
    differ = merged["row_hash_before"].isna() | merged["row_hash_after"].isna() | (
        merged["row_hash_before"] != merged["row_hash_after"])
    return set(_keys(merged[differ]))


if __name__ == "__main__":
    main()

"""`residentview explain OUTDIR KEY`: why a resident's records are together, and why records that
scored as one person with them are not.

For one resident (KEY is its resident_id, or SOURCE:RECORD_ID of one of its records) it gathers,
from the run's output folder alone:

- its records;
- the scored pairs among them, each as a waterfall: the prior, the weight each comparison's level
  added, the term-frequency and full-name adjustments, and the pair's final match weight;
- the pairs at or above the run's threshold that join one of its records to another resident's:
  merges the clustering refused, with the rule that refused each (recomputed with cluster.py's
  own conflict rules on the residents as they ended up), or a reviewer's non-match decision;
- the reviewers' decisions on its records, and whether this run honoured them.

A KEY that is both a resident_id and a record (resident ids never hold ':', so only if that ever
changes) is read as the resident_id, the exact name of what is explained; the record is named in
a note. A record id may itself hold ':', so SOURCE:RECORD_ID is split at the first ':' only.

Everything here returns plain data (`Explanation`), rendered by `render` at the end of the module.
No data value (name, date of birth, address, number, a reviewer's note) is read into an
Explanation unless `show_values` asks for it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from residentview.errors import DataError
from residentview.review.in_force import DecisionsInForce, decisions_in_force
from residentview.review.store import PAIR_COLUMNS, latest, read_store

DEFAULT_LIMIT = 10  # pairs of each kind shown unless every one is asked for
REVIEW_PAIRS_FILE = "review_pairs.parquet"  # holds the per-comparison term-frequency weights of the pairs near the threshold
VALUE_COLUMNS = ("title", "first_name", "middle_names", "last_name", "date_of_birth", "postcode")
# What clustering reads of a record to judge conflicts (cluster._people, cluster._context).
CONFLICT_EVIDENCE = ("unique_id", "source", "record_id", "title", "sex", "date_of_birth", "record_date",
                     "first_name_key", "first_name_aliases", "middle_names_key", "last_name_key",
                     "nhs_number", "ni_number")


# -- what an explanation holds ----------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    key: str  # source:record_id
    unique_id: int
    membership: float  # the strongest pair tying it to its resident (1.0 when alone)
    values: Optional[dict] = None  # name, date of birth, postcode: only with show_values


@dataclass(frozen=True)
class Step:
    """One bar of a waterfall: what a comparison (or the prior, or an adjustment) added."""

    name: str  # a comparison, "prior", "tf_<comparison>" (term frequencies), "full_name"
    label: str  # the comparison level, or what the adjustment is
    weight: float  # match weight (bits) it added
    no_data: bool = False  # a comparison with a value missing on one side: adds nothing


@dataclass
class Pair:
    left: str  # the resident's record (for a refused pair), else the pair's first record
    right: str
    match_weight: float
    match_probability: float
    steps: list[Step]
    other_resident: Optional[str] = None  # the resident holding `right`, when not this one
    refused_by: Optional[str] = None  # why clustering kept the two apart


@dataclass(frozen=True)
class Decision:
    decision_id: int
    decision: str  # match, non-match, unsure
    left: str
    right: str
    other_resident: Optional[str]  # the resident holding the record that is not this one's
    reviewer: Optional[str]
    decided_at: Optional[pd.Timestamp]
    status: str  # honoured by this run / takes effect at the next run / overruled / no effect
    note: Optional[str] = None  # only with show_values


@dataclass
class Explanation:
    resident_id: str
    key: str
    record_key: Optional[str]  # the record KEY named, when it named one
    threshold: float
    records: list[Record]
    pairs: list[Pair]  # among its records, strongest first (up to the limit)
    n_pairs: int
    refused: list[Pair]  # at or above the threshold to another resident, strongest first (up to the limit)
    n_refused: int
    decisions: list[Decision]
    notes: list[str] = field(default_factory=list)


# -- reading the run folder -------------------------------------------------------------------

@dataclass
class RunFolder:
    folder: Path
    records: pd.DataFrame  # unique_id, source, record_id, key, resident_id, membership
    pair_columns: list[str]  # every column of pairs.parquet (read a few rows at a time: it is the largest file)
    run: dict
    model: Optional[dict]
    record_columns: list[str]  # every column of records.parquet

    def pairs_touching(self, unique_ids: np.ndarray) -> pd.DataFrame:
        """The scored pairs with a record of `unique_ids` on either side."""
        wanted = [int(i) for i in unique_ids]
        filters = [[("unique_id_l", "in", wanted)], [("unique_id_r", "in", wanted)]]
        return pq.read_table(self.folder / "pairs.parquet", filters=filters).to_pandas().reset_index(drop=True)

    def edges(self, threshold: float) -> pd.DataFrame:
        """unique_id_l, unique_id_r of every pair at or above `threshold`: what clustering joined."""
        return pd.read_parquet(self.folder / "pairs.parquet", columns=["unique_id_l", "unique_id_r"],
                               filters=[("match_probability", ">=", threshold)])


def _not_a_run(folder: Path, why: str) -> DataError:
    return DataError(f"{folder}: not a residentview output folder ({why}); run `residentview link` into it first")


def read_run(folder: Path) -> RunFolder:
    """The parts of an output folder every explanation needs; DataError when it is not one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    for name in ("resident_links.parquet", "records.parquet", "pairs.parquet", "run.json"):
        if not (folder / name).is_file():
            raise _not_a_run(folder, f"{name} is missing")
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        links = pd.read_parquet(folder / "resident_links.parquet", columns=["source", "record_id", "resident_id", "match_probability"])
        record_columns = pq.read_schema(folder / "records.parquet").names
        records = pd.read_parquet(folder / "records.parquet", columns=["unique_id", "source", "record_id"])
        pair_columns = pq.read_schema(folder / "pairs.parquet").names
    except Exception as exc:
        raise _not_a_run(folder, f"its files cannot be read: {type(exc).__name__}") from None
    if not isinstance(run, dict):
        raise _not_a_run(folder, "run.json is not a run's summary")
    try:
        model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        model = None
    for frame in (links, records):
        frame["source"], frame["record_id"] = frame["source"].astype(str), frame["record_id"].astype(str)
    merged = records.merge(links.rename(columns={"match_probability": "membership"}), on=["source", "record_id"],
                           how="left", validate="one_to_one")
    if merged["resident_id"].isna().any():
        raise _not_a_run(folder, "records.parquet and resident_links.parquet are of different runs")
    merged["key"] = merged["source"] + ":" + merged["record_id"]
    return RunFolder(folder, merged, pair_columns, run, model if isinstance(model, dict) else None, record_columns)


def threshold_of(run: RunFolder) -> tuple[float, Optional[str]]:
    from residentview.report.run_outputs import DEFAULT_THRESHOLD

    value = run.run.get("threshold")
    if isinstance(value, (int, float)) and 0 < value < 1:
        return float(value), None
    return DEFAULT_THRESHOLD, f"run.json gives no threshold; {DEFAULT_THRESHOLD:g} assumed"


def resolve_key(run: RunFolder, key: str) -> tuple[str, Optional[str], Optional[str]]:
    """(resident_id, the record KEY names or None, a note) for KEY; DataError when it names nothing."""
    records = run.records
    key = key.strip()
    record = None
    if ":" in key:
        source, record_id = key.split(":", 1)
        found = records[(records["source"] == source) & (records["record_id"] == record_id)]
        if len(found):
            record = found.iloc[0]
    if (records["resident_id"] == key).any():
        note = None
        if record is not None and record["resident_id"] != key:
            note = (f"{key} is also the record {record['key']}, of resident {record['resident_id']}: "
                    "explain that resident to see it")
        return key, None, note
    if record is not None:
        return str(record["resident_id"]), str(record["key"]), None
    if ":" in key:
        source = key.split(":", 1)[0]
        if source not in set(records["source"]):
            known = ", ".join(sorted(set(records["source"])))
            raise DataError(f"{run.folder}: no source '{source}' in this run (sources: {known}), and no resident '{key}'")
        raise DataError(f"{run.folder}: no record {key} in this run, and no resident '{key}'")
    raise DataError(f"{run.folder}: no resident '{key}' in this run (give a resident_id, or SOURCE:RECORD_ID of a record)")


# -- waterfalls -------------------------------------------------------------------------------

def _model_levels(run: RunFolder) -> tuple[Optional[pd.DataFrame], Optional[float], list[str], Optional[str]]:
    """The model's levels (comparison, level, label, match_weight, has_tf_adjustments), its prior
    weight and its comparisons, or the reason they cannot be had."""
    from residentview.report.model_view import build_model_view, input_columns

    records, pairs = pd.DataFrame(columns=run.record_columns), pd.DataFrame(columns=run.pair_columns)
    view, problem = build_model_view(run.model, input_columns(records, pairs, run.model))
    if view is None:
        return None, None, [], f"per-comparison weights unavailable: {problem}"
    return view.levels, view.prior_weight, view.comparisons, None


def _exact_tf_weights(folder: Path, pairs: pd.DataFrame, comparisons: list[str]) -> pd.DataFrame:
    """The per-comparison term-frequency weights Splink kept for the pairs near the threshold
    (review_pairs.parquet), aligned on `pairs`; NaN where the pair is not there."""
    wanted = [f"mw_tf_adj_{name}" for name in comparisons]
    empty = pd.DataFrame(np.nan, index=pairs.index, columns=wanted)
    path = Path(folder) / REVIEW_PAIRS_FILE
    if not path.is_file() or not len(pairs):
        return empty
    try:
        present = set(pq.read_schema(path).names)
        columns = [c for c in wanted if c in present]
        if not columns:
            return empty
        kept = pd.read_parquet(path, columns=["unique_id_l", "unique_id_r", *columns])
    except Exception:
        return empty
    kept = kept.drop_duplicates(["unique_id_l", "unique_id_r"]).set_index(["unique_id_l", "unique_id_r"])
    found = kept.reindex(pd.MultiIndex.from_arrays([pairs["unique_id_l"], pairs["unique_id_r"]]))
    return found.reindex(columns=wanted).set_axis(pairs.index)


def waterfalls(pairs: pd.DataFrame, levels: Optional[pd.DataFrame], prior: Optional[float],
               comparisons: list[str], exact_tf: pd.DataFrame) -> list[list[Step]]:
    """For each scored pair, the steps from the prior to its match weight.

    Each comparison adds the weight of the level the pair reached (`gamma_<name>` in the model).
    Splink also adjusts exact matches on a common or rare value (term frequencies); pairs.parquet
    does not keep those, so they are what is left of the match weight once the prior, the levels
    and the full-name adjustment are taken off — given per comparison where review_pairs.parquet
    kept them, or where one comparison alone could have one, else as one step. The steps
    therefore always add up to the pair's match weight."""
    from residentview.linkage.model import NAME_EXCESS
    from residentview.report.model_view import comparison_weights

    if levels is None or prior is None:
        return [[] for _ in range(len(pairs))]
    labels = {(c, int(lv)): label for c, lv, label in levels[["comparison", "level", "label"]].itertuples(index=False)}
    with_tf = set(zip(levels.loc[levels["has_tf_adjustments"].astype(bool), "comparison"],
                      levels.loc[levels["has_tf_adjustments"].astype(bool), "level"].astype(int)))
    weights = {name: comparison_weights(pairs, levels, name, with_tf=False).to_numpy(float) for name in comparisons}
    excess = pairs[NAME_EXCESS].astype(float).to_numpy() if NAME_EXCESS in pairs else np.zeros(len(pairs))
    out = []
    for i, (_, row) in enumerate(pairs.iterrows()):
        steps = [Step("prior", "two random records are one person", prior)]
        tf_candidates = []
        for name in comparisons:
            gamma = int(row[f"gamma_{name}"]) if f"gamma_{name}" in row and pd.notna(row[f"gamma_{name}"]) else -1
            if gamma == -1:
                steps.append(Step(name, "no value on one side", 0.0, no_data=True))
                continue
            steps.append(Step(name, labels.get((name, gamma), f"level {gamma}"), float(weights[name][i])))
            if (name, gamma) in with_tf:
                tf_candidates.append(name)
        if excess[i]:
            steps.append(Step("full_name", "full name commoner than its parts", float(excess[i])))
        known = exact_tf.iloc[i] if len(exact_tf.columns) else pd.Series(dtype=float)
        for name in tf_candidates:
            value = known.get(f"mw_tf_adj_{name}", np.nan)
            if pd.notna(value) and value:
                steps.append(Step(f"tf_{name}", "value frequency", float(value)))
        rest = float(row["match_weight"]) - sum(s.weight for s in steps)
        if abs(rest) >= 5e-4:
            unknown = [n for n in tf_candidates if pd.isna(known.get(f"mw_tf_adj_{n}", np.nan))]
            if len(unknown) == 1:
                steps.append(Step(f"tf_{unknown[0]}", "value frequency", rest))
            elif unknown:
                steps.append(Step("tf_adjustments", f"value frequency: {', '.join(unknown)}", rest))
            else:
                steps.append(Step("other", "an adjustment the model made", rest))
        out.append(steps)
    return out


# -- why a pair was refused -------------------------------------------------------------------

# cannot_link's rules in the order it tries them, each with the evidence (_Person fields) it reads.
# A rule tried on records holding only its evidence fires exactly when it fired on the records
# (see `conflict_rule`); a rule cluster.py adds later shows as "conflicting evidence".
CONFLICT_RULES = (
    ("different NHS numbers", ("nhs",)),
    ("NI numbers more than a typo apart", ("nino",)),
    ("two numbers of a reference one person keeps", ("refs",)),
    ("one is a record of adults made when the other was a child", ("adult_when", "born", "ids")),
    ("a man's and a woman's record under different first names", ("sex", "first", "ids")),
    ("dates of birth that no typo explains", ("dob", "first", "last", "aliases", "middle", "ids")),
    ("one record dated before the other person was born", ("seen", "dob", "first")),
)


def _only(person, evidence: tuple[str, ...]):
    """`person` with everything but `evidence` blanked."""
    blank = {f.name: (frozenset() if "frozenset" in str(f.type) else None) for f in dataclasses.fields(person)}
    return type(person)(**{**blank, **{name: getattr(person, name) for name in evidence}})


def conflict_rule(a, b, tied: bool, meet: bool) -> Optional[str]:
    """Which of cluster.cannot_link's rules keeps records a and b apart (None when none does).

    cannot_link returns at the first rule whose evidence both records carry; on records holding
    only one rule's evidence, no other rule finds its own, so the first rule that fires alone
    is the one that fired."""
    from residentview.cluster import cannot_link

    if not cannot_link(a, b, tied, meet):
        return None
    for label, evidence in CONFLICT_RULES:
        if cannot_link(_only(a, evidence), _only(b, evidence), tied, meet):
            return label
    return "conflicting evidence"


def _conflict_records(run: RunFolder) -> pd.DataFrame:
    wanted = [c for c in run.record_columns if c in CONFLICT_EVIDENCE or c.startswith("id_")]
    records = pd.read_parquet(run.folder / "records.parquet", columns=wanted)
    return records.reset_index(drop=True)


def refusal_reasons(run: RunFolder, refused: pd.DataFrame, members: dict[str, np.ndarray],
                    in_force: DecisionsInForce, threshold: float) -> list[str]:
    """Why each refused pair (unique_id_l: this resident's record, unique_id_r: another's, with
    resident_r) joins two residents: a reviewer's non-match, a cannot_link rule, or first names
    that do not fit — judged, like clustering judges a merge, between the two whole residents."""
    from residentview.cluster import _context, _dates_meet, _people, names_fit, share_a_number

    key_of = run.records.set_index("unique_id")["key"]
    apart = {}
    for row in in_force.cannot_link.itertuples(index=False):
        apart[(int(row.unique_id_l), int(row.unique_id_r))] = int(row.decision_id)
        apart[(int(row.unique_id_r), int(row.unique_id_l))] = int(row.decision_id)

    reasons: list[Optional[str]] = []
    for row in refused.itertuples(index=False):
        mine, theirs = members[row.resident_l], members[row.resident_r]
        decided = apart.get((int(row.unique_id_l), int(row.unique_id_r)))
        if decided is None:
            across = [(x, y) for x in mine.tolist() for y in theirs.tolist() if (x, y) in apart]
            if across:
                x, y = across[0]
                reasons.append(f"a reviewer's non-match decision between {key_of[x]} and {key_of[y]} "
                               f"(decision {apart[(x, y)]})")
                continue
            reasons.append(None)
        else:
            reasons.append(f"a reviewer's non-match decision on this pair (decision {decided})")
    if all(r is not None for r in reasons):
        return reasons

    records = _conflict_records(run)
    edges = run.edges(threshold)
    left = np.r_[edges["unique_id_l"].to_numpy(np.int64), in_force.must_link["unique_id_l"].to_numpy(np.int64)]
    right = np.r_[edges["unique_id_r"].to_numpy(np.int64), in_force.must_link["unique_id_r"].to_numpy(np.int64)]
    context = _context(records, left, right)[0]
    involved = np.unique(np.concatenate([members[r] for r in {*refused["resident_l"], *refused["resident_r"]}]))
    people = _people(records, involved, context)

    for i, row in enumerate(refused.itertuples(index=False)):
        if reasons[i] is not None:
            continue
        mine, theirs = members[row.resident_l].tolist(), members[row.resident_r].tolist()
        tied = share_a_number(set().union(*(people[x].ids for x in mine)), set().union(*(people[y].ids for y in theirs)))
        meet = _dates_meet(mine, theirs, people)
        pair = (int(row.unique_id_l), int(row.unique_id_r))
        # the pair itself first, then any other pair of records across the two residents
        for x, y in [pair, *((x, y) for x in mine for y in theirs if (x, y) != pair)]:
            rule = conflict_rule(people[x], people[y], tied, meet)
            if rule is not None:
                between = "" if (x, y) == pair else f" between {key_of[x]} and {key_of[y]}"
                reasons[i] = f"{rule}{between}"
                break
        else:
            if not names_fit([people[x] for x in mine], [people[y] for y in theirs]):
                reasons[i] = "first names that do not fit one another, and no number ties them (twins or siblings)"
            else:
                reasons[i] = ("no conflict shows between the two residents as they ended up: the merge was "
                              "refused against part of one of them, strongest pairs being merged first")
    return reasons


# -- decisions --------------------------------------------------------------------------------

def _decisions(run: RunFolder, store: pd.DataFrame, in_force: DecisionsInForce, mine: set[str],
               resident_id: str, show_values: bool) -> list[Decision]:
    """The latest decision on every pair touching one of `mine` (record keys), with its status."""
    if not len(store):
        return []
    current = latest(store)
    left = current["source_l"].astype(str) + ":" + current["record_id_l"].astype(str)
    right = current["source_r"].astype(str) + ":" + current["record_id_r"].astype(str)
    touching = left.isin(mine) | right.isin(mine)
    current, left, right = current[touching], left[touching], right[touching]
    resident_of = run.records.set_index("key")["resident_id"]
    run_time = pd.to_datetime(run.run.get("run_timestamp"), utc=True, errors="coerce")
    enforced = {int(i) for i in (*in_force.must_link["decision_id"], *in_force.cannot_link["decision_id"])}
    overruled = set(in_force.overruled["decision_id"].astype(int)) if len(in_force.overruled) else set()

    out = []
    for row, l_key, r_key in zip(current.itertuples(index=False), left.tolist(), right.tolist()):
        other = r_key if l_key in mine else l_key
        other_resident = resident_of.get(other)
        decided_at = pd.Timestamp(row.decided_at) if pd.notna(row.decided_at) else None
        if other_resident is None:
            status = f"inactive: {other} is no longer in the sources"
        elif row.decision == "unsure":
            status = "unsure: no effect on linking"
        elif int(row.decision_id) in overruled:
            status = "overruled: it contradicts a later decision"
        elif int(row.decision_id) in enforced:
            together = resident_of[l_key] == resident_of[r_key]
            if together == (row.decision == "match"):
                status = "honoured by this run"
            elif decided_at is not None and pd.notna(run_time) and decided_at > run_time:
                status = "made after this run: takes effect at the next `residentview link`"
            else:
                status = "not honoured by this run"
        else:
            status = "not in force"
        out.append(Decision(
            decision_id=int(row.decision_id), decision=row.decision, left=l_key, right=r_key,
            other_resident=None if other_resident == resident_id else other_resident,
            reviewer=row.reviewer if pd.notna(row.reviewer) else None, decided_at=decided_at, status=status,
            note=(row.note if pd.notna(row.note) else None) if show_values else None,
        ))
    return out


# -- the explanation --------------------------------------------------------------------------

def _values(run: RunFolder, unique_ids: np.ndarray) -> dict[int, dict]:
    columns = [c for c in VALUE_COLUMNS if c in run.record_columns]
    frame = pd.read_parquet(run.folder / "records.parquet", columns=["unique_id", *columns])
    frame = frame[frame["unique_id"].isin(unique_ids)]
    out = {}
    for row in frame.to_dict("records"):
        uid = int(row.pop("unique_id"))
        values = {}
        for column, value in row.items():
            if value is None or (not isinstance(value, (list, np.ndarray)) and pd.isna(value)):
                continue
            values[column] = value.date().isoformat() if isinstance(value, pd.Timestamp) else str(value)
        out[uid] = values
    return out


def _strongest(pairs: pd.DataFrame, limit: Optional[int]) -> pd.DataFrame:
    ordered = pairs.sort_values(["match_weight", "unique_id_l", "unique_id_r"], ascending=[False, True, True], kind="mergesort")
    return ordered if limit is None else ordered.head(limit)


def explain(folder: Path, key: str, show_values: bool = False, limit: Optional[int] = DEFAULT_LIMIT) -> Explanation:
    """Why the resident KEY names (a resident_id, or SOURCE:RECORD_ID) holds the records it does.
    `limit`: how many pairs of each kind to show, strongest first (None: all)."""
    run = read_run(folder)
    resident_id, record_key, note = resolve_key(run, key)
    threshold, threshold_note = threshold_of(run)
    notes = [n for n in (note, threshold_note) if n]

    records = run.records
    resident_of = records.set_index("unique_id")["resident_id"]
    own = records[records["resident_id"] == resident_id].sort_values(["source", "record_id"])
    uids = own["unique_id"].to_numpy(np.int64)
    values = _values(run, uids) if show_values else {}
    listed = [Record(r.key, int(r.unique_id), float(r.membership), values.get(int(r.unique_id)) if show_values else None)
              for r in own.itertuples(index=False)]
    key_of = records.set_index("unique_id")["key"]

    pairs = run.pairs_touching(uids)
    in_l, in_r = pairs["unique_id_l"].isin(uids), pairs["unique_id_r"].isin(uids)
    inside = pairs[in_l & in_r]
    crossing = pairs[(in_l ^ in_r) & (pairs["match_probability"] >= threshold)].copy()
    # a refused pair is told from this resident's side: its record on the left
    flip = ~crossing["unique_id_l"].isin(uids)
    crossing.loc[flip, ["unique_id_l", "unique_id_r"]] = crossing.loc[flip, ["unique_id_r", "unique_id_l"]].to_numpy()
    shown_inside, shown_crossing = _strongest(inside, limit), _strongest(crossing, limit)

    levels, prior, comparisons, model_note = _model_levels(run)
    if model_note:
        notes.append(model_note)

    def as_pairs(frame: pd.DataFrame) -> list[Pair]:
        steps = waterfalls(frame, levels, prior, comparisons, _exact_tf_weights(run.folder, _unordered(frame), comparisons))
        return [Pair(key_of[int(r.unique_id_l)], key_of[int(r.unique_id_r)], float(r.match_weight),
                     float(r.match_probability), s) for r, s in zip(frame.itertuples(index=False), steps)]

    store = read_store(run.folder)
    in_force = decisions_in_force(store, records[["unique_id", "source", "record_id"]])
    refused = as_pairs(shown_crossing)
    if len(shown_crossing):
        judged = shown_crossing.assign(resident_l=resident_id,
                                       resident_r=resident_of.reindex(shown_crossing["unique_id_r"]).to_numpy())
        members = {r: records.loc[records["resident_id"] == r, "unique_id"].to_numpy(np.int64)
                   for r in {resident_id, *judged["resident_r"]}}
        for pair, other, reason in zip(refused, judged["resident_r"],
                                       refusal_reasons(run, judged, members, in_force, threshold)):
            pair.other_resident, pair.refused_by = other, reason

    decisions = _decisions(run, store, in_force, set(own["key"]), resident_id, show_values)
    return Explanation(resident_id=resident_id, key=key, record_key=record_key, threshold=threshold,
                       records=listed, pairs=as_pairs(shown_inside), n_pairs=len(inside),
                       refused=refused, n_refused=len(crossing), decisions=decisions, notes=notes)


def _unordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Pairs as Splink wrote them (lower unique_id on the left), to look them up in its files."""
    low = np.minimum(frame["unique_id_l"], frame["unique_id_r"])
    high = np.maximum(frame["unique_id_l"], frame["unique_id_r"])
    return frame.assign(unique_id_l=low, unique_id_r=high)


# -- rendering --------------------------------------------------------------------------------

BAR_WIDTH = 40
EIGHTHS = " ▏▎▍▌▋▊▉"
LABEL_WIDTH = 40


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _bar(start: float, end: float, lo: float, hi: float, zero: bool = True) -> str:
    """A segment from `start` to `end` on a BAR_WIDTH-cell axis spanning lo..hi, in eighths of a
    cell, with the axis's zero marked."""
    scale = BAR_WIDTH / (hi - lo) if hi > lo else 1.0
    left, right = (min(start, end) - lo) * scale, (max(start, end) - lo) * scale
    cells = [" "] * BAR_WIDTH
    first = min(int(left), BAR_WIDTH - 1)
    eighths = max(1, round((right - first) * 8))
    for cell in range(first, BAR_WIDTH):
        if eighths <= 0:
            break
        cells[cell] = "█" if eighths >= 8 else EIGHTHS[eighths]
        eighths -= 8
    axis = min(int((0 - lo) * scale), BAR_WIDTH - 1)
    if zero and cells[axis] == " ":
        cells[axis] = "│"
    return "".join(cells).rstrip()


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _waterfall_lines(pair: Pair, bars: bool, colour: bool) -> list[str]:
    import click

    if not pair.steps:
        return []
    shown = [s for s in pair.steps if not s.no_data]
    no_data = [s.name for s in pair.steps if s.no_data]
    running, spans = 0.0, []
    for step in shown:
        start = 0.0 if step.name == "prior" else running
        running = start + step.weight
        spans.append((start, running))
    ends = [0.0, *(v for span in spans for v in span), pair.match_weight]
    lo, hi = min(ends), max(ends)
    lines = [] if bars else [_table_header()]
    for step, (start, end) in zip(shown, spans):
        if bars:
            bar = _bar(start, end, lo, hi)
            if colour:
                bar = click.style(bar, fg="green" if step.weight >= 0 else "red")
            lines.append(f"    {step.name:<16} {_short(step.label, LABEL_WIDTH):<{LABEL_WIDTH}} {step.weight:+8.2f}  {bar}")
        else:
            lines.append(f"    {step.name:<16} {step.label:<{LABEL_WIDTH}} {step.weight:+8.2f} {end:10.2f}")
    final = f"    {'final':<16} {'match weight':<{LABEL_WIDTH}} {pair.match_weight:8.2f}"
    if bars:
        bar = _bar(0.0, pair.match_weight, lo, hi)
        lines.append(f"{final}  {click.style(bar, bold=True) if colour else bar}")
    else:
        lines.append(f"{final} {pair.match_weight:10.2f}")
    if no_data:
        lines.append(f"    (no value on one side, no effect: {', '.join(no_data)})")
    return lines


def _table_header() -> str:
    return f"    {'step':<16} {'level':<{LABEL_WIDTH}} {'weight':>8} {'running':>10}"


def _values_text(values: Optional[dict]) -> str:
    if not values:
        return ""
    name = " ".join(values[c] for c in ("title", "first_name", "middle_names", "last_name") if c in values)
    parts = [p for p in (name, f"born {values['date_of_birth']}" if "date_of_birth" in values else "",
                         values.get("postcode", "")) if p]
    return "  " + " | ".join(parts)


def render(explanation: Explanation, bars: bool = False, colour: bool = False) -> list[str]:
    """The explanation as lines of text: waterfalls drawn as bars (a terminal) or as a table."""
    e = explanation
    lines = [f"resident {e.resident_id}: {_count(len(e.records), 'record')}, "
             f"{_count(e.n_pairs, 'scored pair')} among them, "
             f"{_count(e.n_refused, 'refused pair')} to other residents, {_count(len(e.decisions), 'decision')}"]
    if e.record_key:
        lines.append(f"({e.record_key} is one of its records)")
    lines += [f"note: {n}" for n in e.notes]

    lines += ["", "records (and the strongest pair tying each to the resident)"]
    for r in e.records:
        tie = "alone" if len(e.records) == 1 else f"{r.membership:.6f}"
        lines.append(f"  {r.key:<40} {tie}{_values_text(r.values)}")

    def pair_heading(p: Pair, extra: str = "") -> str:
        verdict = "at or above" if p.match_probability >= e.threshold else "below"
        return (f"  {p.left} ~ {p.right}{extra}: match weight {p.match_weight:.2f}, probability "
                f"{p.match_probability:.6f} ({verdict} the threshold {e.threshold:g})")

    def shown(n_shown: int, n_all: int) -> str:
        return f"all {n_all}" if n_shown == n_all else f"the strongest {n_shown} of {n_all}; --all for every one"

    lines += ["", f"pairs among its records ({shown(len(e.pairs), e.n_pairs)})" if e.n_pairs else
              "pairs among its records: none scored"]
    for p in e.pairs:
        lines.append(pair_heading(p))
        lines += _waterfall_lines(p, bars, colour)

    lines += ["", (f"pairs at or above the threshold joining its records to another resident, refused by clustering "
                   f"({shown(len(e.refused), e.n_refused)})") if e.n_refused else
              "pairs at or above the threshold joining its records to another resident: none"]
    for p in e.refused:
        lines.append(pair_heading(p, f" (resident {p.other_resident})"))
        lines.append(f"    refused: {p.refused_by}")
        lines += _waterfall_lines(p, bars, colour)

    lines += ["", "reviewers' decisions on its records" if e.decisions else "reviewers' decisions on its records: none"]
    for d in e.decisions:
        when = d.decided_at.strftime("%Y-%m-%d %H:%M UTC") if d.decided_at is not None else "when unknown"
        other = f" (resident {d.other_resident})" if d.other_resident else ""
        lines.append(f"  {d.decision:<9} {d.left} / {d.right}{other}: decision {d.decision_id}, "
                     f"by {d.reviewer or 'no reviewer named'}, {when}; {d.status}")
        if d.note:
            lines.append(f"    note: {d.note}")
    return lines

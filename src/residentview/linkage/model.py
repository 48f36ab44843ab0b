"""The link stage: build the linking frame, choose comparisons and blocking rules, train (or load
a saved model), and score candidate pairs."""

from __future__ import annotations

import json
import math
import re
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import duckdb
import pandas as pd
from splink import Linker, SettingsCreator

from residentview.config import LinkageConfig
from residentview.errors import ConfigError, DataError
from residentview.linkage.blocking import blocked_pairs_sql, choose_records_rules, fresh_pairs_sql
from residentview.linkage.comparisons import build_comparisons, compared_fields
from residentview.linkage.frame import ADDED, COMPARED_FIELDS, linking_frame, load_sql, with_derived
from residentview.linkage.training import initial_prior, learn_m_from_labels, train
from residentview.memory import duckdb_memory_limit, splink_duckdb_api

log = logging.getLogger(__name__)

PREDICT_FLOOR = 0.01  # pairs scored below this are never worth clustering or reviewing

PAIR_COLUMNS = ("unique_id_l", "unique_id_r", "match_weight", "match_probability")
REVIEW_BAND_WEIGHT = 4.0  # match weight either side of the threshold's
REVIEW_PAIRS_KEPT = 5_000


@dataclass
class Linkage:
    """Scored pairs, the trained model (Splink settings dict) and how it was built."""

    pairs: pd.DataFrame
    model: dict
    diagnostics: dict = field(default_factory=dict)
    review_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)


def new_linker(sdf, settings) -> Linker:
    """A Linker that logs through the caller's logging set-up: Splink's default attaches its own
    INFO handler to stderr, which would print progress chatter into a user's pipe or log."""
    return Linker(sdf, settings, log_level=None)


def link_settings(comparisons, rules) -> SettingsCreator:
    """The Splink settings of a model to train, in no engine's dialect yet."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[r.creator() for r in rules],
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
        max_iterations=25,
        em_convergence=0.0001,
    )


NAME_EXCESS_TABLE = "full_name_excess"
NAME_EXCESS = "full_name_frequency_adjustment"


def full_name_counts_sql(columns: set[str], table: str) -> str:
    """For each full name met at three places or more among `table`'s records: f, l, k (its
    places less two), n (all the records), fc and lc (the records of its forename and of its
    surname): what `_full_name_excess` works out the excess from. Integers only, in SQL any
    engine runs, so that another engine can count them and DuckDB do the arithmetic."""
    place = [c for c in ("uprn", "address_key", "postcode") if c in columns]
    where = f"coalesce({', '.join(place)})" if place else "NULL"
    return f"""
        WITH named AS (
            SELECT first_name_key AS f, last_name_key AS l, {where} AS place
            FROM {table} WHERE length(first_name_key) > 1 AND last_name_key IS NOT NULL
        ),
        total AS (SELECT count(*) AS n FROM {table}),
        forenames AS (SELECT f, count(*) AS c FROM named GROUP BY f),
        surnames AS (SELECT l, count(*) AS c FROM named GROUP BY l),
        together AS (SELECT f, l, count(DISTINCT place) - 2 AS k FROM named GROUP BY f, l)
        SELECT t.f, t.l, t.k, total.n, fc.c AS fc, lc.c AS lc
        FROM together t JOIN forenames fc USING (f) JOIN surnames lc USING (l), total
        WHERE t.k > 0
    """


def _full_name_excess(connection, columns: set[str], counted=None) -> bool:
    """A table of how much more often each full name occurs than its forename's and surname's
    frequencies predict, in bits (0 when no more often). False when the frame cannot tell.
    `counted(columns)`: `full_name_counts_sql`'s rows for all the records, as an Arrow table,
    from an engine that holds them; by default counted over `records_table` here.

    Splink scores forename and surname apart, as if they were chosen independently. They are
    not: MOHAMMED KHAN, or a surname and the forenames of the community that carries it, are
    far commoner together than apart. People counted once per place they are recorded at (not
    once per record), so that one person's many records do not make a rare name look common."""
    if not {"first_name_key", "last_name_key"} <= columns:
        return False
    counts = (connection.sql(full_name_counts_sql(columns, "records_table")) if counted is None
              else connection.from_arrow(counted(columns)))
    connection.register("full_name_counts", counts)
    try:
        connection.execute(f"""
            CREATE OR REPLACE TABLE {NAME_EXCESS_TABLE} AS
            SELECT f, l, greatest(0, log2(k * n / (fc * lc))) AS excess FROM full_name_counts
        """)
    finally:
        connection.unregister("full_name_counts")
    return True


def adjusted_sql(name: str, columns) -> str:
    """The query `_adjusted` runs over the scored pairs registered as `name` (with `columns`),
    beside `NAME_EXCESS_TABLE`: in DuckDB's SQL, which Spark runs translated."""
    apart = [f'"{c}_l" IS DISTINCT FROM "{c}_r"' for c in ("uprn", "postcode") if f"{c}_l" in columns]
    elsewhere = " AND ".join(apart) if apart else "TRUE"
    others = ", ".join(f'p."{c}"' for c in columns if c not in ("match_weight", "match_probability"))
    return f"""
        SELECT p.match_weight - coalesce(x.excess, 0) AS match_weight,
               1 / (1 + pow(2, -(p.match_weight - coalesce(x.excess, 0)))) AS match_probability,
               CAST(-coalesce(x.excess, 0) AS FLOAT) AS {NAME_EXCESS},
               {others}
        FROM {name} p
        LEFT JOIN {NAME_EXCESS_TABLE} x
          ON p.first_name_key_l = p.first_name_key_r AND p.last_name_key_l = p.last_name_key_r
         AND x.f = p.first_name_key_l AND x.l = p.last_name_key_l AND ({elsewhere})
    """


def _adjusted(connection, relation, name: str):
    """`relation` (scored pairs) with `_full_name_excess` taken off pairs that agree on forename
    and surname exactly and live at different places (at one address the place is evidence
    enough). Pairs that share a name and nothing else are where independent name frequencies go
    wrong: at a million records two different people of one name met at 0.97 more often than
    not. `name`: what to register the relation as."""
    connection.register(name, relation)
    return connection.sql(adjusted_sql(name, relation.columns))


def _scored(connection, predictions, columns: set[str], threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The slim pairs and the review pairs, both with the full-name frequency adjustment."""
    return scored_relation(connection, predictions.as_duckdbpyrelation(), columns, threshold)


def scored_relation(connection, relation, columns: set[str], threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`_scored` of predictions as a DuckDB relation (another engine's, handed over)."""
    if not name_adjustable(connection, relation.columns, columns):
        return _slim_pairs(relation), _review_pairs(relation, threshold)
    # The adjustment only ever lowers a weight: pairs below the review band stay below it.
    lowest = math.log2(threshold / (1 - threshold)) - REVIEW_BAND_WEIGHT
    near = relation.filter(f"match_weight >= {lowest}")
    return (_slim_pairs(_adjusted(connection, relation, "scored_pairs")),
            _review_pairs(_adjusted(connection, near, "scored_near_threshold"), threshold))


def name_adjustable(connection, pair_columns, columns: set[str], counted=None) -> bool:
    """Whether scored pairs with `pair_columns` take the full-name adjustment, the linking
    frame having `columns`: then `NAME_EXCESS_TABLE` is made in `connection`, from the linking
    table there or from `counted` (see `_full_name_excess`). (A loaded model may compare
    neither name: then the pairs carry no names to adjust by.)"""
    names = {f"{c}_{side}" for c in ("first_name_key", "last_name_key") for side in "lr"}
    return names <= set(pair_columns) and _full_name_excess(connection, columns, counted)


def slim_columns(pair_columns) -> list[str]:
    """What `_slim_pairs` keeps of scored pairs with `pair_columns`."""
    return [c for c in pair_columns if c in PAIR_COLUMNS or c == NAME_EXCESS or c.startswith(("gamma_", "bf_tf_adj_"))]


def _slim_pairs(relation) -> pd.DataFrame:
    """Scores, levels and term-frequency adjustments only: the compared values are in
    records.parquet already, and carrying them for millions of pairs costs gigabytes."""
    keep = []
    for name in slim_columns(relation.columns):
        if name.startswith("gamma_"):
            keep.append(f'CAST("{name}" AS TINYINT) AS "{name}"')
        elif name.startswith("bf_tf_adj_"):
            keep.append(f'CAST("{name}" AS FLOAT) AS "{name}"')
        else:
            keep.append(f'"{name}"')
    # In id order: DuckDB's threads finish in any order, and the same input must write the
    # same pairs.parquet.
    return relation.project(", ".join(keep)).order("unique_id_l, unique_id_r").df()


def review_band(threshold: float) -> tuple[str, tuple[str, ...]]:
    """The condition on a scored pair for a reviewer to be shown it, and the order the closest
    `REVIEW_PAIRS_KEPT` are chosen in: SQL any engine runs."""
    weight = math.log2(threshold / (1 - threshold))
    return f"abs(match_weight - {weight}) <= {REVIEW_BAND_WEIGHT}", (f"abs(match_weight - {weight})", "unique_id_l", "unique_id_r")


def review_columns(pair_columns) -> list[str]:
    """`pair_columns` in an order that does not change from run to run: each comparison's
    compared values by name, `_l` before `_r`. Splink lists a comparison's columns in the order
    of a Python set (`get_columns_used_from_sql`), so the process's hash seed chose it, and two
    runs of the same input wrote review_pairs.parquet's columns in different orders."""
    def compared(column: str) -> bool:
        return column.endswith(("_l", "_r")) and not column.startswith(("unique_id_", "tf_"))

    out: list[str] = []
    run: list[str] = []
    for column in [*pair_columns, None]:
        if column is not None and compared(column):
            run.append(column)
            continue
        out += sorted(run, key=lambda c: (c[:-2], c[-1] == "r"))
        run = []
        if column is not None:
            out.append(column)
    return out


def _review_pairs(relation, threshold: float) -> pd.DataFrame:
    """Every column Splink computed (values, weights, term frequencies), for the pairs close
    enough to the threshold for a reviewer to look at: Splink's comparison viewer needs them."""
    near, closest_first = review_band(threshold)
    chosen = relation.filter(near).order(", ".join(closest_first)).limit(REVIEW_PAIRS_KEPT)
    return chosen.project(", ".join(f'"{c}"' for c in review_columns(relation.columns))).df()


BLOCKED_PAIRS_TABLE = "blocked_pairs"


def _scoring_sqls(linker: Linker, threshold: Optional[float]):
    """Splink's SQL that scores a table of id pairs (`__splink__blocked_id_pairs`), as its
    `predict` assembles it; None when this Splink lacks a piece of it, or a rule is one this
    module's SQL cannot run (one exploding an array column)."""
    try:
        from splink.internals.blocking import BlockingRule
        from splink.internals.comparison_vector_values import compute_comparison_vector_values_from_id_pairs_sqls
        from splink.internals.predict import predict_from_comparison_vectors_sqls_using_settings

        settings = linker._settings_obj
        rules = settings._blocking_rules_to_generate_predictions
        info = settings.column_info_settings
        plain = (settings._link_type == "dedupe_only" and info.source_dataset_input_column is None
                 and all(type(rule) is BlockingRule for rule in rules))
        if not plain:
            log.debug("scoring with Splink's own blocking (rules this query cannot run)")
            return None
        return [
            *compute_comparison_vector_values_from_id_pairs_sqls(
                settings._columns_to_select_for_blocking,
                settings._columns_to_select_for_comparison_vector_values,
                input_tablename_l="__splink__df_concat_with_tf",
                input_tablename_r="__splink__df_concat_with_tf",
                source_dataset_input_column=None,
                unique_id_input_column=info.unique_id_input_column,
                link_type=settings._link_type,
                sql_dialect_str=linker._sql_dialect_str,
            ),
            *predict_from_comparison_vectors_sqls_using_settings(settings, threshold, None),
        ]
    except (ImportError, AttributeError, TypeError) as exc:
        log.debug("scoring with Splink's own blocking (%s)", exc)
        return None


def _score_id_pairs(linker: Linker, connection, pairs_sql: str, scoring: list):
    """Score the pairs `pairs_sql` selects (match_key, join_key_l < join_key_r) with `scoring`."""
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat_with_tf

    connection.execute(f"CREATE OR REPLACE TABLE {BLOCKED_PAIRS_TABLE} AS {pairs_sql}")
    try:
        db_api = linker._db_api
        blocked = db_api.table_to_splink_dataframe("__splink__blocked_id_pairs", BLOCKED_PAIRS_TABLE)
        pipeline = CTEPipeline([blocked])
        enqueue_df_concat_with_tf(linker, pipeline)
        pipeline.enqueue_list_of_sqls(scoring)
        return db_api.sql_pipeline_to_splink_dataframe(pipeline)
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {BLOCKED_PAIRS_TABLE}")


def _predict(linker: Linker, sdf, connection):
    """Splink's predict at PREDICT_FLOOR, from candidate pairs found by `blocked_pairs_sql`
    rather than by Splink's own blocking query (same pairs, half the time). Should this Splink
    lack a piece of the scoring, Splink's predict runs instead."""
    rules = linker._settings_obj._blocking_rules_to_generate_predictions
    scoring = _scoring_sqls(linker, PREDICT_FLOOR) if rules else None
    if scoring is None:
        return linker.inference.predict(threshold_match_probability=PREDICT_FLOOR)
    uid = linker._settings_obj.column_info_settings.unique_id_input_column.unquote().name
    sql = blocked_pairs_sql([rule.blocking_rule_sql for rule in rules], sdf.physical_name, uid)
    return _score_id_pairs(linker, connection, sql, scoring)


LABELS_TABLE = "labelled_pairs"


def _labelled_levels(linker: Linker, connection, labels: pd.DataFrame) -> Optional[pd.DataFrame]:
    """The comparison levels (gamma_* columns) of the pairs reviewers labelled as matches."""
    matches = labels.loc[labels["label"].astype(bool), ["unique_id_l", "unique_id_r"]].astype("int64")
    scoring = _scoring_sqls(linker, None)
    if scoring is None or not len(matches):
        return None
    frame = pd.DataFrame({"join_key_l": matches.min(axis=1), "join_key_r": matches.max(axis=1)}).drop_duplicates()
    connection.register(LABELS_TABLE, frame)
    try:
        scored = _score_id_pairs(linker, connection,
                                 f"SELECT '0' AS match_key, join_key_l, join_key_r FROM {LABELS_TABLE}", scoring)
        relation = scored.as_duckdbpyrelation()
        gammas = [c for c in relation.columns if c.startswith("gamma_")]
        return relation.project(", ".join(f'"{c}"' for c in gammas)).df()
    finally:
        connection.unregister(LABELS_TABLE)


def linking_database():
    """An embedded DuckDB for the linking table, within its share of the run's memory
    (`memory.duckdb_memory_limit`), spilling to disk past it instead of growing until the
    machine swaps."""
    connection = duckdb.connect(config={"memory_limit": duckdb_memory_limit()})
    connection.execute("SET enable_progress_bar = false")  # our own progress bars report the stage
    return connection


def _load(frame: pd.DataFrame, sample_ids: Optional[pd.Series] = None):
    """The frame copied into an embedded DuckDB table (with the columns `load_sql` derives),
    registered with Splink; and, given `sample_ids`, a second table of just those records for
    training (its derived columns, such as how common a full name is, are the whole table's);
    and the connection.

    Copied rather than viewed: DuckDB stores text far more compactly than pandas objects, so
    the caller can drop its frame."""
    connection = linking_database()
    connection.register("incoming", frame)
    connection.execute(f"CREATE TABLE records_table AS {load_sql(set(frame.columns), 'incoming')}")
    connection.unregister("incoming")
    return (*registered_tables(connection, sample_ids), connection)


def registered_tables(connection, sample_ids: Optional[pd.Series] = None):
    """`records_table` in `connection` registered with Splink, and (given `sample_ids`) the
    training sample's table made from it and registered too (else None)."""
    db = splink_duckdb_api(connection)
    records = db.register("records_table", dataset_display_name="records")
    if sample_ids is None:
        return records, None
    connection.register("sample_ids", pd.DataFrame({"unique_id": sample_ids.to_numpy()}))
    connection.execute(
        "CREATE TABLE training_sample_table AS SELECT r.* FROM records_table r "
        "JOIN sample_ids USING (unique_id) ORDER BY unique_id"
    )
    connection.unregister("sample_ids")
    return records, db.register("training_sample_table", dataset_display_name="training_sample")


def _load_model(path: Path) -> dict:
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"linkage.model: model file {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"linkage.model: {path} is not a model.json written by residentview") from None
    if not isinstance(model, dict) or "comparisons" not in model:
        raise ConfigError(f"linkage.model: {path} is not a model.json written by residentview")
    return model


def model_columns(model: dict) -> set[str]:
    """The record columns a saved model's comparisons read (``"dob_l"`` -> ``dob``)."""
    text = json.dumps(model.get("comparisons", []))
    return set(re.findall(r'\\"([a-z0-9_]+)_[lr]\\"', text))


LIST_COLUMNS = {"first_name_aliases"}


def model_fill(model: dict, columns: set[str], where: str) -> list[str]:
    """The columns a saved model compares that a linking frame with `columns` lacks, to be
    added empty (see `with_model_columns`); a ConfigError names those that cannot be."""
    missing = model_columns(model) - with_derived(columns)
    fillable = sorted(c for c in missing if c not in ADDED and c not in LIST_COLUMNS)
    still = model_columns(model) - with_derived(columns | set(fillable))
    if still:
        raise ConfigError(f"{where} compares field(s) these sources lack: {', '.join(sorted(still))}")
    if fillable:
        log.info("%s compares %s, which no record holds: scored as missing", where, ", ".join(fillable))
    return fillable


def with_model_columns(frame: pd.DataFrame, model: dict, where: str) -> pd.DataFrame:
    """The linking frame with an empty column for each column a saved model compares that these
    records hold no value of (a field still mapped, empty tonight): every pair then scores that
    comparison as missing, as it would with the field blank. A ConfigError names columns that
    cannot be left empty so (lists; all of a field's columns gone)."""
    fillable = model_fill(model, set(frame.columns), where)
    if fillable:
        frame = frame.copy()
        for column in fillable:
            empty = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]") if column == "dob" else (
                pd.Series(pd.array([None] * len(frame), dtype="string"), index=frame.index))
            frame[column] = empty
    return frame


def _no_pairs() -> pd.DataFrame:
    """No scored pairs, typed as scored pairs are: the report rounds the probabilities."""
    return pd.DataFrame({"unique_id_l": pd.Series(dtype="int64"), "unique_id_r": pd.Series(dtype="int64"),
                         "match_weight": pd.Series(dtype="float64"),
                         "match_probability": pd.Series(dtype="float64")})


def link_records(records: pd.DataFrame, settings: LinkageConfig, model_path: Optional[Path] = None,
                 labels: Optional[pd.DataFrame] = None) -> Linkage:
    """Score candidate pairs among the person records. See `residentview.schema` for the frames.
    `labels`: pairs reviewers decided (unique_id_l, unique_id_r, label: True for a match), whose
    matches a model trained here learns its m probabilities from, beside EM's."""
    return _link(records, settings, model_path, labels)


@dataclass
class LinkPlan:
    """What the link stage will do, whatever engine runs it: the linking frame, the fields it
    compares, the columns its loaded table will hold, a saved model (or None: train one), the
    records to train on (None: all of them) and the diagnostics so far. `done` holds the
    result already when there is nothing to link."""

    frame: Optional[pd.DataFrame]
    fields: set[str]
    columns: set[str]
    diagnostics: dict
    model: Optional[dict] = None
    model_path: Optional[Path] = None
    priors: dict = field(default_factory=dict)
    sample_ids: Optional[pd.Series] = None
    done: Optional[Linkage] = None


def plan_link(records: pd.DataFrame, settings: LinkageConfig, model_path: Optional[Path]) -> LinkPlan:
    """The engine-neutral first half of the link stage (see `LinkPlan`)."""
    frame = linking_frame(records)
    fields = set(frame.attrs[COMPARED_FIELDS]) if COMPARED_FIELDS in frame.attrs else compared_fields(frame)
    plan = new_plan(len(frame), fields, set(frame.columns), model_path)
    if plan.done is not None:
        return plan
    if plan.model is not None:
        frame = with_model_columns(frame, plan.model, f"linkage.model: {model_path}")
        plan.columns = with_derived(set(frame.columns))
    plan.frame = frame
    if "first_name_key" in frame:
        named = frame["first_name_key"].dropna()
        plan.priors = initial_priors(int(len(named)), int((named.str.len() == 1).sum()))
    plan.sample_ids = training_sample(plan, frame["unique_id"], settings)
    return plan


def new_plan(n_persons: int, fields: set[str], columns: set[str], model_path: Optional[Path]) -> LinkPlan:
    """A plan for `n_persons` person records whose linking frame has `columns` (before a saved
    model's are added) and carries `fields`: done already when there is nothing to link; with
    the saved model at `model_path` loaded, `columns` not yet widened for it."""
    diagnostics: dict = {"n_person_records": int(n_persons), "compared_fields": sorted(fields)}
    plan = LinkPlan(None, fields, with_derived(columns), diagnostics, model_path=model_path)
    if n_persons < 2 or not (fields - {"source"}):
        diagnostics["note"] = "fewer than two person records or no shared fields: nothing to link"
        plan.done = Linkage(_no_pairs(), {"comparisons": []}, diagnostics)
    elif model_path is not None:
        plan.model = _load_model(model_path)
    return plan


def initial_priors(n_named: int, n_initials: int) -> dict:
    """The stated prior of the first name's 'Initial agrees' level (`initial_prior`), from how
    many records give a first name and how many of those only an initial."""
    return {"Initial agrees": initial_prior(n_initials / n_named if n_named else None)}


def training_sample(plan: LinkPlan, ids: pd.Series, settings: LinkageConfig) -> Optional[pd.Series]:
    """The unique_ids to train on (`ids`: every person record's, in unique_id order), or None to
    train on all of them (or not at all: a saved model)."""
    if plan.model is not None or len(ids) <= settings.training_sample_size:
        return None
    sample = ids.sample(n=settings.training_sample_size, random_state=settings.seed)
    plan.diagnostics["training_sample"] = int(len(sample))
    return sample


def chosen_rules(plan: LinkPlan, connection, n_records: int, settings: LinkageConfig) -> list:
    """The blocking rules, measured on the loaded records table in `connection` (DuckDB)."""
    blocking = choose_records_rules(connection, plan.columns, n_records, settings)
    plan.diagnostics["blocking_rules"] = blocking.tried
    plan.diagnostics["blocking"] = blocking.summary()
    log.info("blocking: %d of %d rules kept, about %s comparisons (budget %s)", len(blocking.rules),
             len(blocking.tried), f"{blocking.comparisons:,}", f"{blocking.budget:,}")
    return blocking.rules


def trained_linker(plan: LinkPlan, rules: list, sdf, train_sdf, settings: LinkageConfig, n_records: int,
                   make_linker=new_linker) -> Linker:
    """A linker over `sdf` with the plan's saved model, or trained here (on `train_sdf`, the
    sample, when there is one). `make_linker(sdf, settings)`: how this engine builds a Linker
    from `link_settings(...)` or a saved model."""
    diagnostics = plan.diagnostics
    if plan.model is not None:
        diagnostics["model"] = f"loaded from {plan.model_path.name}; training skipped"
        return make_linker(sdf, plan.model)
    comparisons = build_comparisons(plan.fields, plan.columns)
    if train_sdf is None:
        linker = make_linker(sdf, link_settings(comparisons, rules))
        diagnostics.update(train(linker, plan.columns, settings.seed, plan.priors, n_records))
    else:
        trainer = make_linker(train_sdf, link_settings(comparisons, rules))
        diagnostics.update(train(trainer, plan.columns, settings.seed, plan.priors, len(plan.sample_ids)))
        linker = make_linker(sdf, trainer.misc.save_model_to_json())
        # Splink caches term-frequency tables by column name, per database: the trainer's
        # were counted on the training sample, and scoring would read them, so values the
        # sample missed would get no adjustment and every other a sample's noisy one.
        # Scoring counts them afresh over all the records.
        linker._intermediate_table_cache.invalidate_cache()
    diagnostics.setdefault("model", "trained")  # or the stated priors a tiny input gets
    return linker


def learn_from_labels(plan: LinkPlan, linker: Linker, connection, labels: Optional[pd.DataFrame]) -> None:
    """Reviewers' labelled matches move a model trained here (DuckDB `linker`, in place)."""
    if plan.model is None and labels is not None and len(labels):
        levels = _labelled_levels(linker, connection, labels)
        if levels is not None:
            plan.diagnostics["learnt_from_decisions"] = learn_m_from_labels(linker, levels)


def saved_model(linker: Linker) -> dict:
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)  # random per run; the same input must give the same model.json
    return model


def _link(records: pd.DataFrame, settings: LinkageConfig, model_path: Optional[Path],
          labels: Optional[pd.DataFrame] = None) -> Linkage:
    plan = plan_link(records, settings, model_path)
    if plan.done is not None:
        return plan.done
    n_records = len(plan.frame)
    sdf, train_sdf, connection = _load(plan.frame, plan.sample_ids)
    plan.frame = None  # DuckDB holds the records now
    rules = chosen_rules(plan, connection, n_records, settings)
    linker = trained_linker(plan, rules, sdf, train_sdf, settings, n_records)
    learn_from_labels(plan, linker, connection, labels)
    predictions = _predict(linker, sdf, connection)
    pairs, review_pairs = _scored(connection, predictions, plan.columns, settings.threshold)
    return Linkage(pairs=pairs, model=saved_model(linker), diagnostics=plan.diagnostics, review_pairs=review_pairs)


FRESH_TABLE = "fresh_records"


def score_fresh(records: pd.DataFrame, fresh_ids: pd.Series, model: dict, threshold: float) -> Linkage:
    """Score, with a saved `model` (no training), the candidate pairs its blocking rules find
    between the records `fresh_ids` (unique_ids: an update's new and changed records) and all
    of `records`, the fresh among themselves included. Term frequencies, and how common each
    full name is, are counted over all of `records`: the master as it stands after the update."""
    try:
        frame = with_model_columns(linking_frame(records), model, "the previous run's model")
    except ConfigError as exc:
        raise DataError(f"{exc}; run `residentview update --retrain` to train a new one") from None
    columns = with_derived(set(frame.columns))
    diagnostics: dict = {"n_person_records": int(len(frame))}
    fresh = pd.DataFrame({"unique_id": pd.Series(fresh_ids, dtype="int64")})
    fresh = fresh[fresh["unique_id"].isin(frame["unique_id"])]  # people only
    if len(frame) < 2 or not len(fresh) or not model.get("comparisons"):
        return Linkage(_no_pairs(), model, diagnostics)
    sdf, _, connection = _load(frame)
    del frame
    linker = new_linker(sdf, model)
    rules = linker._settings_obj._blocking_rules_to_generate_predictions
    scoring = _scoring_sqls(linker, PREDICT_FLOOR) if rules else None
    if scoring is None:
        raise DataError("the saved model's blocking rules cannot score an update; run `residentview update --retrain`")
    connection.register("fresh_ids", fresh)
    connection.execute(f"CREATE TABLE {FRESH_TABLE} AS SELECT r.* FROM records_table r JOIN fresh_ids USING (unique_id)")
    connection.unregister("fresh_ids")
    uid = linker._settings_obj.column_info_settings.unique_id_input_column.unquote().name
    sql = fresh_pairs_sql([rule.blocking_rule_sql for rule in rules], sdf.physical_name, FRESH_TABLE, uid)
    predictions = _score_id_pairs(linker, connection, sql, scoring)
    pairs, review_pairs = _scored(connection, predictions, columns, threshold)
    diagnostics["fresh_person_records"] = int(len(fresh))
    diagnostics["fresh_pairs_scored"] = int(len(pairs))
    return Linkage(pairs=pairs, model=model, diagnostics=diagnostics, review_pairs=review_pairs)

"""The systems compared: residentview and what an analyst would pick instead.

Each takes a prepared dataset's config and returns one row per record: source, record_id, cluster.

* ``residentview``: what ``residentview link`` does — ``residentview.link(config)``, the whole real
  pipeline, then ``.write()`` of every output (Parquet files, database, report.html).
* ``splink``: plain Splink 5 set up as a competent analyst would, after light cleaning in pandas
  (`analyst_clean`). Settings:
    - one stacked table, ``link_type="dedupe_only"`` (records of all sources together);
    - comparisons: ``NameComparison`` on first and last name, ``DateOfBirthComparison`` (date
      input), ``PostcodeComparison``, ``ExactMatch`` on every identifier the data holds
      (NHS number, NI number, UPRN, UPN, social-security id…);
    - blocking for prediction: first+last name, last name+DOB, first name+DOB, postcode+first
      name, and each identifier on its own;
    - λ from a deterministic rule (first+last name+DOB, recall 0.7); u by random sampling
      (2M pairs); m by EM on DOB and on postcode blocks;
    - predict at 0.5, ``cluster_pairwise_predictions_at_threshold`` at 0.95.
* ``splink-lean`` (only when asked for: ``run.py --systems … splink-lean``): plain Splink 5 as a
  lean analyst model for a simple people file (the ``simple-<N>`` datasets), on the same cleaning:
    - comparisons: ``NameComparison`` on first and last name, ``DateOfBirthComparison``,
      ``PostcodeComparison`` (no identifiers; no house number, see `run_splink_lean`);
    - exactly four blocking rules: first name+DOB, last name+DOB, postcode+first initial,
      postcode+last name (about 5M pairs at 1M records, and 99 % of the true pairs of
      ``simple-1m``);
    - λ from first+last name+DOB (recall 0.7); u by random sampling (1M pairs); m by EM on last
      name+DOB and on postcode+first name blocks;
    - predict at 0.5, cluster at 0.95.
* ``recordlinkage``: recordlinkage 0.16 after the same cleaning: ``Index`` blocking on
  (last name, first initial), on DOB and on (postcode, first initial); ``Compare`` Jaro–Winkler
  ≥ 0.85 on names, exact DOB, postcode and identifiers; the unsupervised ``ECMClassifier``; clusters
  are the connected components of the predicted matches.

The baselines read the extracts through residentview's source reader only to apply the config's
column mapping (what the analyst would do by hand); all cleaning and matching is their own.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

TITLES = r"\b(?:MR|MRS|MS|MISS|DR|MASTER|REV|PROF|SIR|LADY|MX)\b\.?"
IDENTIFIER_COLUMNS = ("nhs_number", "ni_number", "uprn")


# The analyst's light cleaning ---------------------------------------------------------------

def _upper_words(series: pd.Series) -> pd.Series:
    cleaned = series.astype("string").str.upper().str.replace(r"[^\w ]", " ", regex=True)
    cleaned = cleaned.str.replace(r"\s+", " ", regex=True).str.strip()
    return cleaned.where(cleaned != "", None)


def _split_full_name(full: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive split: 'SMITH, John A' -> (JOHN, SMITH); otherwise first and last word, titles removed."""
    text = full.astype("string").str.upper()
    comma = text.str.contains(",", na=False)
    before, after = text.str.split(",", n=1).str[0], text.str.split(",", n=1).str[1]
    ordered = text.where(~comma, after + " " + before)
    words = _upper_words(ordered.str.replace(TITLES, " ", regex=True)).str.split(" ")
    return words.str[0], words.str[-1]


def _dates(raw: pd.DataFrame, config) -> pd.Series:
    """Dates of birth parsed with each source's configured format, else day-first guessing."""
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if "date_of_birth" not in raw:
        return out
    for source, spec in config.sources.items():
        rows = raw["source"] == source
        text = raw.loc[rows, "date_of_birth"]
        fmt = spec.date_format("date_of_birth") if spec.fields.date_of_birth is not None else None
        parsed = pd.to_datetime(text, format=fmt, errors="coerce") if fmt else pd.to_datetime(
            text, errors="coerce", dayfirst=True, format="mixed")
        out.loc[rows] = parsed
    return out


def analyst_clean(config) -> pd.DataFrame:
    """The sources as one frame with upper-cased names, parsed dates and tidy postcodes and ids."""
    from residentview.config import load_config
    from residentview.sources import read_sources

    config = load_config(config)
    raw, _ = read_sources(config)
    first = _upper_words(raw["first_name"]).str.split(" ").str[0] if "first_name" in raw else pd.Series(None, index=raw.index)
    last = _upper_words(raw["last_name"]) if "last_name" in raw else pd.Series(None, index=raw.index)
    if "full_name" in raw:
        full_first, full_last = _split_full_name(raw["full_name"])
        has_full = raw["full_name"].notna()
        first = first.astype(object).where(~has_full, full_first.astype(object))
        last = last.astype(object).where(~has_full, full_last.astype(object))
    frame = pd.DataFrame({
        "unique_id": np.arange(len(raw)),
        "source": raw["source"],
        "record_id": raw["record_id"],
        "first_name": pd.Series(first, dtype=object),
        "last_name": pd.Series(last, dtype=object),
        "dob": _dates(raw, config),
    })
    if "postcode" in raw:
        postcode = raw["postcode"].astype("string").str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
        frame["postcode"] = (postcode.str[:-3] + " " + postcode.str[-3:]).where(postcode.str.len() >= 5).astype(object)
    else:
        frame["postcode"] = None
    for column in [c for c in raw.columns if c in IDENTIFIER_COLUMNS or c.startswith("id_")]:
        value = raw[column].astype("string").str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
        frame[column] = value.where(value != "").astype(object)
    return frame.astype({"first_name": object, "last_name": object}).where(frame.notna(), None)


def identifier_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if (c in IDENTIFIER_COLUMNS or c.startswith("id_")) and frame[c].notna().any()]


# The systems --------------------------------------------------------------------------------

def run_residentview(config) -> pd.DataFrame:
    """What `residentview link` does: the whole pipeline, and every output (Parquet files, the
    DuckDB database, report.html) written to a temporary folder."""
    import tempfile

    import residentview as rv

    result = rv.link(config, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        result.write(folder)
    links = result.links
    return pd.DataFrame({"source": links["source"], "record_id": links["record_id"], "cluster": links["resident_id"]})


def _splink_clusters(frame: pd.DataFrame, table: pd.DataFrame, comparisons, blocking, u_pairs: float,
                     em_rules) -> pd.DataFrame:
    """Plain Splink on `table` (a unique_id column and the compared ones): λ from a
    deterministic rule, u by random sampling, m by EM on `em_rules`, predict at 0.5 and cluster
    at 0.95. Returns source, record_id and cluster for the records of `frame`."""
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(DuckDBAPI().register(table, dataset_display_name="records"), settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=1)
    for rule in em_rules:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except Exception as exc:  # e.g. no pairs in a block on a tiny dataset: keep the other pass
            logging.getLogger(__name__).warning("EM on %s skipped: %s", rule, type(exc).__name__)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.95).as_pandas_dataframe()
    clusters = clusters[["unique_id", "cluster_id"]].merge(frame[["unique_id", "source", "record_id"]], on="unique_id")
    return pd.DataFrame({"source": clusters["source"], "record_id": clusters["record_id"], "cluster": clusters["cluster_id"].astype(str)})


def run_splink(config) -> pd.DataFrame:
    import splink.comparison_library as cl
    from splink import block_on

    frame = analyst_clean(config)
    ids = identifier_columns(frame)
    comparisons = [
        cl.NameComparison("first_name"),
        cl.NameComparison("last_name"),
        cl.DateOfBirthComparison("dob", input_is_string=False),
        cl.PostcodeComparison("postcode"),
        *[cl.ExactMatch(column) for column in ids],
    ]
    blocking = [
        block_on("first_name", "last_name"),
        block_on("last_name", "dob"),
        block_on("first_name", "dob"),
        block_on("postcode", "first_name"),
        *[block_on(column) for column in ids],
    ]
    return _splink_clusters(frame, frame.drop(columns=["source", "record_id"]), comparisons, blocking, 2e6,
                            (block_on("dob"), block_on("postcode")))


def run_splink_lean(config) -> pd.DataFrame:
    """Plain Splink 5 as a lean analyst model for a simple people file (see the module docstring)."""
    import splink.comparison_library as cl
    from splink import block_on

    frame = analyst_clean(config)
    # No house-number comparison: given the postcode, agreeing on it is far likelier than its
    # overall u says, so it adds evidence twice and joins family members at one address
    # (pairwise precision 0.88 instead of 0.97 on simple-10k).
    comparisons = [
        cl.NameComparison("first_name"),
        cl.NameComparison("last_name"),
        cl.DateOfBirthComparison("dob", input_is_string=False),
        cl.PostcodeComparison("postcode"),
    ]
    # Four rules, each a pair of keys, so that at 1M records they score a few million pairs,
    # not the tens of millions that first+last name, DOB or postcode on its own would.
    blocking = [
        block_on("first_name", "dob"),
        block_on("last_name", "dob"),
        block_on("postcode", "substr(first_name, 1, 1)"),
        block_on("postcode", "last_name"),
    ]
    # EM on two small blocks: same surname and DOB (trains first name and postcode), same first
    # name and postcode (trains surname and DOB). Not on a block of one address: it holds whole
    # households, and EM then learns "same family", not "same person".
    table = frame[["unique_id", "first_name", "last_name", "dob", "postcode"]]
    return _splink_clusters(frame, table, comparisons, blocking, 1e6,
                            (block_on("last_name", "dob"), block_on("postcode", "first_name")))


def run_recordlinkage(config) -> pd.DataFrame:
    import recordlinkage as rl
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    frame = analyst_clean(config).set_index("unique_id")
    frame["first_initial"] = frame["first_name"].str[:1]
    frame["dob_text"] = frame["dob"].dt.strftime("%Y-%m-%d") if frame["dob"].notna().any() else None
    ids = identifier_columns(frame.reset_index())

    indexer = rl.Index()
    indexer.block(["last_name", "first_initial"])
    indexer.block("dob_text")
    indexer.block(["postcode", "first_initial"])
    candidates = indexer.index(frame)

    compare = rl.Compare()
    compare.string("first_name", "first_name", method="jarowinkler", threshold=0.85, label="first_name")
    compare.string("last_name", "last_name", method="jarowinkler", threshold=0.85, label="last_name")
    compare.exact("dob_text", "dob_text", label="dob")
    compare.exact("postcode", "postcode", label="postcode")
    for column in ids:
        compare.exact(column, column, label=column)
    features = compare.compute(candidates, frame)
    # Missing values never agree: exact() on None == None would otherwise count as agreement.
    for column, label in [("dob_text", "dob"), ("postcode", "postcode"), *[(c, c) for c in ids]]:
        left = frame[column].reindex(features.index.get_level_values(0)).isna().to_numpy()
        right = frame[column].reindex(features.index.get_level_values(1)).isna().to_numpy()
        features.loc[left | right, label] = 0

    n = len(frame)
    if len(features):
        matches = rl.ECMClassifier(binarize=None).fit_predict(features.astype(int))
        left = np.asarray(matches.get_level_values(0), dtype=np.int64)
        right = np.asarray(matches.get_level_values(1), dtype=np.int64)
    else:
        left = right = np.array([], dtype=np.int64)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    frame = frame.reset_index()
    return pd.DataFrame({"source": frame["source"], "record_id": frame["record_id"], "cluster": labels[frame["unique_id"]].astype(str)})


SYSTEMS = {"residentview": run_residentview, "splink": run_splink, "recordlinkage": run_recordlinkage,
           "splink-lean": run_splink_lean}

"""Stage 1 on Spark: the sources read by Spark's workers, each with `sources.read_source` — the
very reading, mapping, checks and retention `link` runs — and the raw records kept on Spark.

One task a source (a council's systems are a handful of extracts: each is read whole, as its
format wants, and the extracts are read side by side). The workers must see what the config
names: the files (a path every worker can read, as on a cluster's shared storage) or the
database of an SQL source (its URL and password from the environment of every worker).

Each task yields its source's raw records in chunks, then one row of its own carrying the
source's summary (counts, warnings, retention) or its one-line error; the driver collects only
those rows. Records never come back to the driver at this stage.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Optional

import pandas as pd

from residentview.config import Config
from residentview.engines.spark.session import driver_frame
from residentview.errors import ConfigError, DataError
from residentview.sources import SourceSummary, canonical_fields, checked_read, read_source

SUMMARY = "_source_summary"  # the JSON of a source's summary, or of its error, on a row of its own
CHUNK = 100_000  # records a task hands Spark at a time


def raw_columns(config: Config) -> list[str]:
    """The raw frame's columns, in the order `read_sources` stacks them: source, record_id, then
    each source's mapped fields and identifiers, in the order they first appear."""
    columns = dict.fromkeys(["source", "record_id"])
    for spec in config.sources.values():
        columns.update(dict.fromkeys(canonical_fields(spec)))
    return list(columns)


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as objects, a missing value None (a field one source lacks, as `read_sources`)."""
    frame = frame.astype(object)
    return frame.where(frame.notna(), None)


def _reader(config: Config, columns: list[str], today: Optional[pd.Timestamp]):
    """The task: for each source name it is given, the source's records, then its summary row."""

    def note(name: str, content: dict) -> pd.DataFrame:
        row = pd.DataFrame({"source": [name], SUMMARY: [json.dumps(content)]})
        return _text(row.reindex(columns=[*columns, SUMMARY]))

    def read(batches):
        for batch in batches:
            for name in batch["source"]:
                try:
                    raw, summary = read_source(config, name, today)
                except (ConfigError, DataError) as exc:  # said on the driver, in one line
                    yield note(name, {"error": str(exc), "kind": type(exc).__name__})
                    continue
                raw = _text(raw.reindex(columns=columns))
                for start in range(0, len(raw), CHUNK):
                    yield raw.iloc[start:start + CHUNK].assign(**{SUMMARY: None})
                yield note(name, asdict(summary))

    return read


def read_sources_on_spark(spark, config: Config, today: Optional[pd.Timestamp] = None, progress=None):
    """(raw records: a Spark frame of text, as `read_sources` gives them; the summaries; the
    number of records). The same checks and one-line errors as `read_sources`."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    names = list(config.sources)
    if progress is not None:
        progress(f"reading {len(names)} source(s) on Spark")
    columns = raw_columns(config)
    schema = T.StructType([T.StructField(c, T.StringType(), True) for c in [*columns, SUMMARY]])
    tasks = driver_frame(spark, pd.DataFrame({"source": names}), "source string").repartition(len(names))
    # Read once, here: the summaries and the records below are two looks at the same reading.
    frame = tasks.mapInPandas(_reader(config, columns, today), schema).localCheckpoint()
    notes = {row["source"]: json.loads(row[SUMMARY])
             for row in frame.where(F.col(SUMMARY).isNotNull()).select("source", SUMMARY).collect()}
    for name in names:  # the first source's error, as `read_sources` would stop at it
        if "error" in notes[name]:
            raise (ConfigError if notes[name]["kind"] == "ConfigError" else DataError)(notes[name]["error"])
    summaries = [SourceSummary(**notes[name]) for name in names]
    raw = frame.where(F.col(SUMMARY).isNull()).drop(SUMMARY)
    n_records = sum(summary.n_records for summary in summaries)
    checked_read(config, n_records, summaries)
    return raw, summaries, n_records

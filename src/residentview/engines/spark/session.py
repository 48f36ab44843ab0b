"""The Spark session the pipeline runs on: the caller's (an active session, say on a cluster),
else a local one on this machine's cores.

Splink's similarity functions (`damerau_levenshtein`; its `jaro_winkler` is not DuckDB's, and
`similarity` stands in for it) are Scala UDFs in a jar that ships with Splink; a session made
here puts it on the classpath, and `SparkAPI` registers the functions. A session made elsewhere
must have the jar (`spark.jars`) already: see `splink.backends.spark.similarity_jar_location`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Optional

from residentview import interrupts
from residentview.errors import ConfigError

EXTRA = "pip install 'residentview[spark]'"
# Local mode: the master and the memory of the one JVM that is driver and executors at once.
MASTER_VARIABLE = "RESIDENTVIEW_SPARK_MASTER"
DEFAULT_MASTER = "local[2]"
# A local session's one JVM is driver and executors at once: it gets this share of the run's
# memory (the config's `memory_limit`, else the machine's), the Python process the rest (the
# records, the linking database, the resident view). Never less than the floor: Spark's own
# default of 1g thrashes in garbage collection at a few hundred thousand records.
JVM_SHARE = 0.4
JVM_FLOOR_MB = 2048


JVM_LOG = Path(__file__).with_name("log4j2.properties")


def _warehouse() -> str:
    """A folder of this process's own for the session's catalog (Spark makes `spark-warehouse`
    in the working directory otherwise), removed when the process ends."""
    return interrupts.temporary_folder("residentview-spark-warehouse-")


def require_pyspark() -> None:
    """A one-line error naming the extra, before any work, when PySpark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(f"engine: spark needs PySpark, which is not installed; install the extra: {EXTRA}") from None


def require_java() -> None:
    """A one-line error when no Java runtime is found (PySpark starts a JVM)."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise ConfigError("engine: spark needs a Java runtime (17 or later), and none was found; "
                          "install one or set JAVA_HOME")


def jvm_memory_mb(memory_limit: Optional[str] = None) -> int:
    """The heap of a local session's JVM, in MiB: `JVM_SHARE` of `memory_limit`, or of this
    machine's memory when the config sets none (a heap is reserved, not taken, up front)."""
    import psutil

    from residentview.memory import size_bytes

    budget = size_bytes(memory_limit) if memory_limit is not None else psutil.virtual_memory().total
    return max(JVM_FLOOR_MB, int(budget * JVM_SHARE) // 2**20)


_JVM_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)b?\s*$", re.IGNORECASE)


def driver_jvm_bytes(spark) -> int:
    """The heap of the session's driver JVM (`spark.driver.memory`, in Spark's notation: 4g,
    9830m, a bare number in MiB; Spark's default 1g when unset or unreadable); 0 for a Spark
    Connect session, whose driver runs on its server, not beside this process."""
    try:
        context = spark.sparkContext
    except Exception:  # Spark Connect: no JVM on the client
        return 0
    setting = context.getConf().get("spark.driver.memory", "1g")
    match = _JVM_SIZE.match(setting)
    if not match:
        return 2**30
    return int(match.group(1)) * 2 ** (10 * "kmgtp".index(match.group(2).lower() or "m") + 10)


def spark_session(memory_limit: Optional[str] = None):
    """The active SparkSession, else a new local one (`RESIDENTVIEW_SPARK_MASTER`, default
    local[2]) with Splink's jar, a UTC session time zone, no web UI and a heap sized by
    `jvm_memory_mb`. (An active session keeps the memory it was started with.)"""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    require_java()
    from splink.backends.spark import similarity_jar_location

    cores = os.cpu_count() or 2
    heap = jvm_memory_mb(memory_limit)
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    jvm_log = f"-Dlog4j2.configurationFile={JVM_LOG.as_uri()} -Dresidentview.jvm.log={'warn' if debug else 'off'}"
    # Local workers must run this interpreter (it has residentview and its dependencies), not
    # whichever `python3` is first on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("residentview")
        .master(os.environ.get(MASTER_VARIABLE, DEFAULT_MASTER))
        .config("spark.jars", similarity_jar_location())
        .config("spark.pyspark.python", sys.executable)  # workers import this very residentview
        .config("spark.driver.memory", f"{heap}m")
        # Quiet from its first line (`JVM_LOG`), and its catalog's folder, which no table of
        # ours uses, not made in the user's working directory.
        .config("spark.driver.extraJavaOptions", jvm_log)
        .config("spark.sql.warehouse.dir", _warehouse())
        # What a collect may bring back: the scored pairs come back to the driver as one result.
        .config("spark.driver.maxResultSize", f"{heap // 2}m")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # residentview shows its own progress
        .config("spark.sql.shuffle.partitions", str(max(4, 2 * cores)))
        # Dates of birth cross between pandas and Spark as timestamps: UTC keeps them the same day.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    with interrupts.held():  # a stop signal waits for the JVM to be up (see `held`)
        session = builder.getOrCreate()
        # The JVM's own log goes to the command's stderr. What fails in it fails the Python call
        # that waits on it, which residentview reports in one line; the rest is noise, and worst
        # when a run is stopped: the JVM ends with the process, logging the tasks it drops after
        # the command's last line. `--debug` (logging at DEBUG) keeps Spark's warnings and errors.
        session.sparkContext.setLogLevel("WARN" if debug else "OFF")
    return session


def driver_frame(spark, data, schema=None):
    """`spark.createDataFrame(data, schema)` of the driver's data (a pandas frame or an Arrow
    table), checkpointed on the executors so that a query over it holds a reference to the rows
    rather than the rows themselves. Spark keeps a driver's data in the query plan (a local
    relation), and hashes and compares that plan whole each time it analyses or caches a query
    over it: at 100,000 records, the link stage's 29 joins of the records spent 100 s of the
    driver's time in analysis alone, growing with the records."""
    return spark.createDataFrame(data, schema).localCheckpoint()

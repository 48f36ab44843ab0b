"""The Spark session the pipeline runs on: the caller's (an active session, say on a cluster),
else a local one on this machine's cores.

Splink's similarity functions (`jaro_winkler`, `damerau_levenshtein`) are Scala UDFs in a jar
that ships with Splink; a session made here puts it on the classpath, and `SparkAPI` registers
the functions. A session made elsewhere must have the jar (`spark.jars`) already: see
`splink.backends.spark.similarity_jar_location`.
"""

from __future__ import annotations

import os
import shutil
import sys

from residentview.errors import ConfigError

EXTRA = "pip install 'residentview[spark]'"
# Local mode: the master and the memory of the one JVM that is driver and executors at once.
MASTER_VARIABLE = "RESIDENTVIEW_SPARK_MASTER"
DEFAULT_MASTER = "local[2]"
DRIVER_MEMORY = "2g"


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


def spark_session():
    """The active SparkSession, else a new local one (`RESIDENTVIEW_SPARK_MASTER`, default
    local[2]) with Splink's jar, a UTC session time zone and no web UI."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    require_java()
    from splink.backends.spark import similarity_jar_location

    cores = os.cpu_count() or 2
    # Local workers must run this interpreter (it has residentview and its dependencies), not
    # whichever `python3` is first on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("residentview")
        .master(os.environ.get(MASTER_VARIABLE, DEFAULT_MASTER))
        .config("spark.jars", similarity_jar_location())
        .config("spark.pyspark.python", sys.executable)  # workers import this very residentview
        .config("spark.driver.memory", DRIVER_MEMORY)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(max(4, 2 * cores)))
        # Dates of birth cross between pandas and Spark as timestamps: UTC keeps them the same day.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session

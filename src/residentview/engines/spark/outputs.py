"""The run's Parquet outputs also written to a path Spark writes (`output: {spark_path: ...}`):
hdfs://, s3a://, abfss://, gs:// or file://, through the Hadoop file systems of the run's
SparkSession, with the credentials and settings that session already has (they never go in the
config).

What lands there: every Parquet file of the output folder (records, pairs, review_pairs,
resident_links, residents, households, id_changes, addresses, events, data_quality, decisions),
byte for byte the folder's, under the same names, and the run's `run.json`, so a job on the
cluster reads `spark.read.parquet("<spark_path>/residents.parquet")` and knows which run it has.
The tables are the driver's today (see `engines.spark.pipeline`), so they are copied from the
folder's staged files rather than written again by the executors: the same bytes, at the cost
of one copy.

All or nothing with the folder (`LinkResult.write`): the files are copied into a staging folder
inside `spark_path` while the folder's own are still staged; once those are in place, each file
at `spark_path` is set aside and the staged one renamed into its place, `run.json` last; a failure
there (or in the database's commit after it) puts the previous files back. Renames are atomic on
HDFS, ABFS and local disks; on object stores without renames (S3) each is a copy, so a reader
there should go by `run.json`, which changes only once every table has.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from residentview import interrupts
from residentview.config import Config
from residentview.errors import ConfigError, DataError

log = logging.getLogger(__name__)

STAGING_PREFIX = ".residentview-staging-"
_SET_ASIDE = "set-aside"  # inside the staging folder: the previous files, until the run is committed
LAST = "run.json"  # renamed into place after every table: a reader goes by it


def check_spark_path(cfg: Config, reach: bool = False) -> None:
    """`output.spark_path` needs the run on Spark: its files go through Spark's file systems.
    `reach`: also make the folder there now (starting the session), so a path Spark cannot
    write stops the run before linking rather than after."""
    if cfg.spark_path is None:
        return
    if cfg.engine != "spark":
        raise ConfigError(f"{cfg.label}: output.spark_path needs engine: spark (or --engine spark); "
                          "the files are written there through Spark's file systems")
    if reach:
        from residentview.engines.spark.session import spark_session

        _SparkPath(spark_session(cfg.memory_limit), cfg.spark_path)


def _reason(exc: Exception) -> str:
    """A Py4J error as one line: the Java exception's class and message, without its stack."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]


class _SparkPath:
    """A staging folder inside `spark_path`, filled from the output folder's staged files, then
    swapped into place by `commit()` (undone by `undo()`)."""

    def __init__(self, spark, path: str):
        self.where = "output.spark_path"
        try:  # (a Spark Connect session has no JVM here: its error is one line too)
            self._Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
            self.root = self._Path(path)
            self.fs = self.root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
            # Hadoop's local file system writes a .crc file beside each file it copies: not here.
            self.fs.setWriteChecksum(False)
            made = self.fs.mkdirs(self.root)
            self.staging = self._Path(self.root, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
            if made:  # a folder may be there and still refuse files: one is written, and removed
                self.fs.create(self.staging, False).close()
                self.fs.delete(self.staging, False)
        except Exception as exc:  # Py4J's errors: the JVM's, one line
            raise DataError(f"{self.where}: cannot write there ({_reason(exc)}); nothing was written") from None
        if not made:
            raise DataError(f"{self.where}: cannot make the folder there; nothing was written")
        self.moved_in: list[str] = []
        self.set_aside: list[str] = []

    def _at(self, name: str):
        return self._Path(self.root, name)

    def _java(self, what: str, action):
        try:
            return action()
        except Exception as exc:
            raise DataError(f"{self.where}: {what} failed ({_reason(exc)}); the previous files there are kept") from None

    def stage(self, folder: Path) -> list[str]:
        """Copy the Parquet files and run.json of `folder` (the output folder's staging) into
        the staging folder at the path. Returns the names, run.json last."""
        names = sorted(p.name for p in Path(folder).glob("*.parquet") if p.is_file())
        names += [LAST] if (Path(folder) / LAST).is_file() else []
        self._java("creating the staging folder", lambda: self.fs.mkdirs(self.staging))
        for name in names:
            interrupts.check()
            source = self._Path(Path(folder, name).resolve().as_uri())
            self._java(f"copying {name}", lambda: self.fs.copyFromLocalFile(False, True, source,
                                                                               self._Path(self.staging, name)))
        self.names = names
        return names

    def commit(self) -> None:
        """Each staged file into its place, the previous one set aside; on any failure the
        previous files are put back."""
        aside = self._Path(self.staging, _SET_ASIDE)
        self._java("setting the previous files aside", lambda: self.fs.mkdirs(aside))
        try:
            for name in self.names:
                target = self._at(name)
                if self.fs.exists(target):
                    self._rename(target, self._Path(aside, name), name)
                    self.set_aside.append(name)
                self._rename(self._Path(self.staging, name), target, name)
                self.moved_in.append(name)
        except BaseException:
            self.undo()
            raise

    def _rename(self, source, target, name: str) -> None:
        if not self._java(f"moving {name} into place", lambda: self.fs.rename(source, target)):
            raise DataError(f"{self.where}: moving {name} into place was refused; the previous files there are kept")

    def undo(self) -> None:
        """Put the previous files back (a later commit failed: the database's)."""
        aside = self._Path(self.staging, _SET_ASIDE)
        for name in reversed(self.moved_in):
            self._java(f"removing {name}", lambda: self.fs.delete(self._at(name), True))
        for name in reversed(self.set_aside):
            self._java(f"putting {name} back", lambda: self.fs.rename(self._Path(aside, name), self._at(name)))
        self.moved_in, self.set_aside = [], []

    def close(self) -> None:
        """The staging folder goes, with the files set aside once the run is committed."""
        try:
            self.fs.delete(self.staging, True)
        except Exception as exc:  # the run's outcome stands; the leftover is named
            log.warning("%s: could not remove the staging folder %s (%s)", self.where, self.staging.getName(),
                        _reason(exc))


class _NoSparkPath:
    def stage(self, folder: Path) -> list[str]:
        return []

    def commit(self) -> None:
        pass

    def undo(self) -> None:
        pass


@contextmanager
def spark_path_output(cfg: Config) -> Iterator[Union[_SparkPath, _NoSparkPath]]:
    """Yields `stage(folder)`, `commit()` and `undo()` for the config's `output.spark_path`
    (doing nothing without one); whatever is not committed when the block ends is dropped."""
    if cfg.spark_path is None:
        yield _NoSparkPath()
        return
    check_spark_path(cfg)
    from residentview.engines.spark.session import spark_session

    target = _SparkPath(spark_session(cfg.memory_limit), cfg.spark_path)
    try:
        yield target
    finally:
        target.close()

"""Memory: helpers for the stages that build millions of small Python objects, and the memory a
run may use (the config's `memory_limit`): DuckDB's share of it, and the check before the stages
that a run is expected to fit."""

import gc
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Optional


@contextmanager
def cycle_collector_paused():
    """Pause Python's cyclic garbage collector for a burst of allocations.

    Cleaning names and addresses, and building golden records' lists, create millions of
    short-lived lists and tuples with no reference cycles, yet each burst sets the cycle
    collector off, and each pass walks every live object: at a million records that was a
    sixth of a stage's time. The previous state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# The memory a run may use (`memory_limit` in the config) -----------------------------------

# DuckDB's working memory when the config sets no limit: the linking database spills to disk
# past it rather than growing until the machine swaps.
DUCKDB_MEMORY_LIMIT = "2GB"
# With a limit set, DuckDB's share of it: the rest is the pandas frames the stages hold (the
# records, the scored pairs, the resident view) beside the linking database.
DUCKDB_SHARE = 0.25

_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B)\s*$", re.IGNORECASE)

_duckdb_limit: ContextVar[str] = ContextVar("duckdb_memory_limit", default=DUCKDB_MEMORY_LIMIT)
_limit_set: ContextVar[bool] = ContextVar("memory_limit_set", default=False)


def size_bytes(text: str) -> Optional[int]:
    """`"8GB"` -> 8,000,000,000 (GB, MB … are powers of ten and GiB, MiB … of two, as DuckDB
    reads them); None when `text` is not a size with its unit."""
    match = _SIZE.match(text)
    if not match:
        return None
    amount = float(match.group(1)) * _UNITS[match.group(2).upper()]
    return int(amount) if amount >= 1 else None


def described(n_bytes: float) -> str:
    """`12.3 GB`, `800 MB`: how a message shows a size."""
    return f"{n_bytes / 10**9:.1f} GB" if n_bytes >= 10**9 else f"{n_bytes / 10**6:,.0f} MB"


def duckdb_memory_limit() -> str:
    """The `memory_limit` for a DuckDB database a stage opens, under the run's limit in force."""
    return _duckdb_limit.get()


def duckdb_connect(database: str = ":memory:"):
    """A DuckDB connection for a stage's working tables (golden records' survivors, the ids'
    overlaps, the coded addresses, the database written). Under a config's `memory_limit` it
    gets the run's DuckDB share, as the linking database does, spilling past it: the limit
    then holds for every database the run opens, not just the largest. Without one, DuckDB's
    own default (80% of the machine), since these work on tables handed over whole (Arrow) and
    their aggregates of lists are not proven to spill."""
    import duckdb

    if not _limit_set.get():
        return duckdb.connect(database)
    return duckdb.connect(database, config={"memory_limit": _duckdb_limit.get()})


def splink_duckdb_api(connection):
    """Splink's `DuckDBAPI` over `connection`. Splink opens a second DuckDB of its own for its
    small tables (EM's parameters, term frequencies, charts): under a config's `memory_limit`
    that one is held to the run's share too."""
    from splink import DuckDBAPI

    api = DuckDBAPI(connection=connection)
    if _limit_set.get():
        api.duckdb_con.execute(f"SET memory_limit = '{_duckdb_limit.get()}'")
    return api


@contextmanager
def memory_limit_in_force(memory_limit: Optional[str]):
    """Within: DuckDB databases the stages open get `DUCKDB_SHARE` of `memory_limit` (the
    config's), or `DUCKDB_MEMORY_LIMIT` when it is None."""
    limit = DUCKDB_MEMORY_LIMIT
    if memory_limit is not None:
        limit = f"{max(1, int(size_bytes(memory_limit) * DUCKDB_SHARE) // 10**6)}MB"
    token, set_token = _duckdb_limit.set(limit), _limit_set.set(memory_limit is not None)
    try:
        yield
    finally:
        _limit_set.reset(set_token)
        _duckdb_limit.reset(token)


# The peak resident set of a `link` on DuckDB (the process and its address cleaner), measured by
# benchmarks/scale.py at 1M and 2M records (BENCHMARKS.md, "One machine"): 3.3 GB and 6.0 GB, so
# 0.7 GB and 2,600 bytes a record. The margin covers the steepest stage (the resident view grew
# by 3,250 bytes a record) and a busier machine; the linking database is bounded by its limit.
# At 5.1M records this expects 17.5 GB; the run took 12.9 GB.
PEAK_FIXED_BYTES = 700 * 10**6
PEAK_BYTES_PER_RECORD = 2_600
MARGIN = 1.25


def expected_peak(n_records: int) -> int:
    """The memory a DuckDB `link` of `n_records` records is expected to need at its peak."""
    return int(MARGIN * (PEAK_FIXED_BYTES + PEAK_BYTES_PER_RECORD * n_records))


def memory_allowed(memory_limit: Optional[str]) -> tuple[int, str]:
    """How much the run may use, and what says so: the config's `memory_limit`, or what this
    machine has available (free now, plus what this run already holds), whichever is less."""
    import psutil

    me = psutil.Process()
    held = 0
    for process in (me, *me.children(recursive=True)):
        try:
            held += process.memory_info().rss
        except psutil.Error:  # a child that has just ended
            pass
    available = psutil.virtual_memory().available + held
    if memory_limit is not None and size_bytes(memory_limit) <= available:
        return size_bytes(memory_limit), f"memory_limit {memory_limit} allows"
    return available, "this machine has available"


_MORE = {True: "raise memory_limit on a machine that has the memory",
         False: "free memory or use a machine with more"}


# Without a memory_limit, runs expected to need less than this are not checked against the
# memory free at the moment (it moves with the page cache and other programs): about 300,000
# records. A limit the config sets is always checked.
MACHINE_CHECK_FROM = 2 * 10**9


def check_memory(n_records: int, memory_limit: Optional[str], label: str, spark_offered: bool = True) -> None:
    """A one-line `DataError` when a DuckDB run of `n_records` is expected to need more memory
    than it may use: said before the stages start rather than found out by running out of it.
    `spark_offered`: the message points to `engine: spark` (not for an update already on Spark,
    whose driver holds every record as DuckDB's does)."""
    needed = expected_peak(n_records)
    over = _over(needed, memory_limit)
    if over:
        allowed, bound = over
        spark = ", or run it on Spark (engine: spark, or --engine spark)" if spark_offered else ""
        _refuse(f"{label}: {n_records:,} records are expected to need about {described(needed)} of memory, "
                f"more than the {described(allowed)} {bound}; {_MORE[bound.startswith('memory_limit')]}{spark}")


# The Python driver of a run on Spark holds the standardised records, the scored pairs and the
# resident view, and writes the outputs; the executors' work is not held there. Measured by
# benchmarks/scale.py (BENCHMARKS.md, "The linking table made on Spark"): 0.74 GB at 100k records
# and 3.18 GB at 1M at its peak, so about 0.47 GB and 2,700 bytes a record.
DRIVER_FIXED_BYTES = 470 * 10**6
DRIVER_BYTES_PER_RECORD = 2_700


def expected_driver_peak(n_records: int) -> int:
    """The memory a Spark run's Python driver is expected to need at its peak for `n_records`."""
    return int(MARGIN * (DRIVER_FIXED_BYTES + DRIVER_BYTES_PER_RECORD * n_records))


def check_driver_memory(n_records: int, memory_limit: Optional[str], label: str, jvm_bytes: int) -> None:
    """A one-line `DataError` when a Spark run of `n_records` is expected to need more memory on
    its driver's machine than it may use there: the Python driver's peak beside the heap of the
    driver's JVM (`jvm_bytes`: spark.driver.memory; in local mode that JVM does the executors'
    work too). The executors are not checked: Spark spills to disk where a worker runs short."""
    needed = expected_driver_peak(n_records)
    over = _over(needed + jvm_bytes, memory_limit, checked_from=needed)
    if over:
        allowed, bound = over
        _refuse(f"{label}: {n_records:,} records are expected to need about {described(needed)} in the Spark "
                f"driver's Python process (it holds the standardised records and the resident view), beside "
                f"the {described(jvm_bytes)} of the driver's JVM (spark.driver.memory): more than the "
                f"{described(allowed)} {bound}; {_MORE[bound.startswith('memory_limit')]}")


def _over(needed: int, memory_limit: Optional[str], checked_from: Optional[int] = None) -> Optional[tuple[int, str]]:
    """(what the run may use, and what says so) when `needed` is more than that, else None. A
    run expected to need less than `MACHINE_CHECK_FROM` (`checked_from` of it: `needed` by
    default) is not checked without a limit: it fits any machine that runs Python, and free
    memory comes and goes."""
    if memory_limit is None and (needed if checked_from is None else checked_from) < MACHINE_CHECK_FROM:
        return None
    allowed, bound = memory_allowed(memory_limit)
    return (allowed, bound) if needed > allowed else None


def _refuse(message: str) -> None:
    from residentview.errors import DataError

    raise DataError(message)

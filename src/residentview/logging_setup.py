"""What residentview lets Splink say: the command line and the Python API share one rule.

Splink reports training progress and model caveats ("Consider increasing max_pairs…", "Level …
not observed in dataset") as log records. The report covers them, so only Splink's errors are
shown — unless the user has set up logging, in which case their handlers decide.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Iterator


class DropLibraryChatter(logging.Filter):
    """Lets through every record but Splink's below ERROR and any of Py4J's (PySpark's bridge
    to its JVM), which logs a traceback when a signal interrupts a call to the JVM: the call
    then fails, and the command stops with its own one line (`--debug` shows them). Py4J logs
    some of them on the root logger, so they are told by the file that logs them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("py4j") or "py4j" in Path(record.pathname).parts:
            return False
        return record.levelno >= logging.ERROR or not record.name.startswith("splink")


def logging_configured() -> bool:
    """Has the user (or a notebook, or a test runner) set up logging: a handler on the root or
    on Splink's logger?"""
    return bool(logging.getLogger().handlers or logging.getLogger("splink").handlers)


@contextmanager
def splink_errors_only() -> Iterator[None]:
    """Within the block, Splink's records below ERROR go nowhere when logging is not configured
    (Python would otherwise print each warning on stderr through its last-resort handler)."""
    if logging_configured():
        yield
        return
    splink = logging.getLogger("splink")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    saved = splink.propagate
    splink.addHandler(handler)
    splink.propagate = False  # Splink's Linker may lower its level to INFO: the handler decides
    try:
        yield
    finally:
        splink.removeHandler(handler)
        splink.propagate = saved


def quiet_splink(func):
    """Decorator: run `func` inside `splink_errors_only()`."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        with splink_errors_only():
            return func(*args, **kwargs)

    return wrapper

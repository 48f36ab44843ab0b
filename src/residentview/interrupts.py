"""Ctrl-C and SIGTERM (CONTRACT §10): any command can be stopped at any moment, exits 130 (143
for SIGTERM), and leaves the output folder exactly as it was.

Python raises KeyboardInterrupt where the main thread is; SIGTERM is made to raise `Terminated`
the same way, so every `finally` and the rollback of a half-moved output folder run. But a signal
that arrives inside DuckDB or Splink can come back as their own exception (an interrupted query),
and code that rightly carries on past a failed optional step would then carry on past the
signal. So the signal is also remembered here: `check()` raises it again, and is called between
the pipeline's stages and before any output is moved into place — a stopped run can never finish,
with or without a different result.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

_received: Optional[int] = None
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_folders: list[str] = []  # this process's temporary folders (`temporary_folder`)


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt."""


def _record(signum, frame) -> None:
    global _received
    _received = signum
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM as above for one command; returns a function that restores the
    previous handlers (a test or notebook invoking the CLI in-process keeps its own)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _received = None
    previous = {s: signal.signal(s, _record) for s in SIGNALS}
    previous_hook = sys.unraisablehook

    def unraisable(report) -> None:
        # A signal that lands in a finaliser (Py4J's, releasing a JVM object) cannot leave it:
        # Python would print its traceback and carry on. It is remembered here, and `check()`
        # raises it again at the next step.
        if not isinstance(report.exc_value, (KeyboardInterrupt, Terminated)):
            previous_hook(report)

    sys.unraisablehook = unraisable

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sys.unraisablehook = previous_hook

    return restore


def _remember(signum, frame) -> None:
    """The first stop signal within `held`; a second one stops the command there and then."""
    global _received
    if _received is not None:
        _record(signum, frame)
    _received = signum


@contextmanager
def held() -> Iterator[None]:
    """Within: a stop signal is remembered, not raised, and raised when the block ends — for a
    step a signal must not cut in two. Starting Spark is one: a SparkContext whose start is
    interrupted stops itself by calling the JVM that is still starting, which can wait for
    minutes. PySpark's SparkContext also takes SIGINT, for a handler that cancels its jobs by
    calling the JVM from inside the signal, mid-call (Py4J logs tracebacks, and the signal is
    not remembered for `check()`): when the block ends this module's handlers are back, so an
    interrupted call to the JVM fails, the command stops as any other, and the JVM ends with
    the process. A second signal within the block stops the command at once. Outside a
    command that installed the handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread() or \
            not any(signal.getsignal(s) is _record for s in SIGNALS):
        yield
        return
    for s in SIGNALS:
        signal.signal(s, _remember)
    try:
        yield
    finally:
        for s in SIGNALS:
            signal.signal(s, _record)
        check()


def received() -> Optional[int]:
    """The signal that asked this command to stop, if one did."""
    return _received


def check() -> None:
    """Raise again a signal received earlier (whatever became of its first exception)."""
    if _received == signal.SIGTERM:
        raise Terminated()
    if _received is not None:
        raise KeyboardInterrupt()


def temporary_folder(prefix: str) -> str:
    """A new folder for this process alone, removed when the process ends, and also when a stop
    signal ends the command line (which leaves with `os._exit`, so atexit's handlers do not run):
    `remove_temporary_folders`."""
    folder = tempfile.mkdtemp(prefix=prefix)
    if not _folders:
        atexit.register(remove_temporary_folders)
    _folders.append(folder)
    return folder


def remove_temporary_folders() -> None:
    while _folders:
        shutil.rmtree(_folders.pop(), ignore_errors=True)

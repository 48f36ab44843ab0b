"""A second process for some cleaners, so that standardising uses both cores.

Every cleaner is a pure function of one pandas Series, so a batch of them can run elsewhere
while this process cleans the names and dates:

    with Beside({"address": (standardise_address, raw["address"])}, use_worker=True) as beside:
        ...                        # other cleaning here, meanwhile
        results = beside.results()  # {"address": DataFrame}, exactly what the call would return

The worker is a fresh interpreter (`python -m residentview.standardise.worker IN OUT`) fed
through pickled temporary files, not a fork: forking a process that holds DuckDB or Arrow
threads is unsafe, and multiprocessing's spawn would re-run a user's script that calls
`residentview.link` without a `__main__` guard. If the worker cannot start or fails, the same
calls run here instead — slower, never different — and the log says why (never any values).
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Task = tuple[Callable[[Any], Any], Any]


def _package_root() -> str:
    import residentview

    return str(Path(residentview.__file__).resolve().parent.parent)


def _environment() -> dict[str, str]:
    """The worker must import this very copy of residentview, wherever it was imported from."""
    env = dict(os.environ)
    paths = [_package_root(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class Beside:
    """Run `tasks` (name -> (function, argument)) in a worker process, or here if not wanted."""

    def __init__(self, tasks: dict[str, Task], use_worker: bool) -> None:
        self.tasks = tasks
        self.process: subprocess.Popen[bytes] | None = None
        self.folder: tempfile.TemporaryDirectory[str] | None = None
        if use_worker and tasks:
            self._start()

    def _start(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="residentview-")
        given, answer = self._paths()
        try:
            with open(given, "wb") as file:
                pickle.dump(self.tasks, file, protocol=pickle.HIGHEST_PROTOCOL)
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(given), str(answer)],
                env=_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except (OSError, pickle.PicklingError, AttributeError, TypeError) as exc:
            log.warning("the standardising worker did not start (%s); cleaning on one core instead", type(exc).__name__)
            self._clean_up()

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *exc: object) -> None:
        self._clean_up()  # an error here meanwhile: stop the worker, remove its files

    def _paths(self) -> tuple[Path, Path]:
        assert self.folder is not None
        return Path(self.folder.name) / "tasks.pickle", Path(self.folder.name) / "results.pickle"

    def results(self) -> dict[str, Any]:
        """The result of every task, from the worker if it ran and succeeded."""
        try:
            found = self._from_worker()
        finally:
            self._clean_up()
        if found is not None:
            return found
        return {name: function(argument) for name, (function, argument) in self.tasks.items()}

    def _from_worker(self) -> dict[str, Any] | None:
        if self.process is None:
            return None
        _, errors = self.process.communicate()
        _, answer = self._paths()
        if self.process.returncode != 0 or not answer.exists():
            last = errors.decode(errors="replace").strip().splitlines()[-1:] or ["exit status"]
            # Only the exception's type: its message might quote a value from the records.
            kind = last[0].split(":")[0][:80]
            log.warning("the standardising worker failed (%s); cleaning on one core instead", kind)
            return None
        with open(answer, "rb") as file:
            found: dict[str, Any] = pickle.load(file)
        return found

    def _clean_up(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


def _main(given: str, answer: str) -> None:
    with open(given, "rb") as file:
        tasks: dict[str, Task] = pickle.load(file)
    from residentview.memory import cycle_collector_paused

    with cycle_collector_paused():
        found = {name: function(argument) for name, (function, argument) in tasks.items()}
    partial = answer + ".partial"
    with open(partial, "wb") as file:
        pickle.dump(found, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, answer)


if __name__ == "__main__":
    _main(*sys.argv[1:3])

"""Progress for long steps: a bar on a terminal, silence otherwise (CI logs, pipes, notebooks)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from residentview import interrupts

Step = Callable[[str], None]


def _on_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def pipeline_progress(total: int, enabled: Optional[bool] = None) -> Iterator[Step]:
    """Yields `step(description)`: call it as each stage starts; a bar advances on a terminal.
    `step.note(description)` says how far the current stage is ("reading tenancies: 150,000
    rows") without advancing."""
    if enabled is None:
        enabled = _on_terminal()
    if not enabled:
        # Each stage starts by checking that no stop signal was swallowed by the last one.
        def quiet(description: str) -> None:
            interrupts.check()

        quiet.note = quiet
        yield quiet
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # on stderr, so `residentview link ... > summary.txt` still shows the bar and keeps stdout clean
    with Progress(
        TextColumn("[bold]{task.description:<28}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), transient=False, console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("starting", total=total)
        started = [False]

        def step(description: str) -> None:
            interrupts.check()
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=description)

        def note(description: str) -> None:
            interrupts.check()
            bar.update(task, description=description)

        step.note = note
        yield step
        bar.update(task, completed=total, description="done")

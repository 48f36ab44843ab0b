"""The pages residentview writes — the report and the review page — share these Jinja2
templates: `base.html` (the page shell, the warning banner, `shared.css`), and the report's
`report.html` with its building blocks in `components.html` (tables, cards, notes, shaded grids).
A designer changes how the pages look here, without touching the pipeline.

    environment().get_template("report.html").render(...)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

FOLDER = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates of this folder, autoescaped: a value is text unless marked safe."""
    return Environment(loader=FileSystemLoader(FOLDER), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def shared_css() -> str:
    return (FOLDER / "shared.css").read_text(encoding="utf-8")

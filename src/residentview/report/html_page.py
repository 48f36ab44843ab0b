"""A self-contained HTML page: static tables and bars, plus Vega-Lite charts drawn by the vega
libraries Splink ships, inlined once in the page head so the file opens with no network.

The markup is in Jinja2 templates shared with the review page (`residentview/templates`:
report.html, its building blocks in components.html, the shell and banner in base.html); these
functions only turn frames into the plain values the templates lay out."""

from __future__ import annotations

import html
import json
import math
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Callable, Optional

import pandas as pd
from markupsafe import Markup
from splink.internals.html_utils import load_chart_libraries

from residentview.templates import environment

Formatter = Callable[[object], str]
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"

CHART_SCRIPT = """
document.querySelectorAll('.chart[data-spec]').forEach(function (el) {
  var spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
  vegaEmbed(el, spec, {actions: false, renderer: 'svg'}).then(function () {
    el.setAttribute('data-rendered', 'yes');
  }).catch(function (err) {
    el.setAttribute('data-rendered', 'error');
    el.textContent = 'Chart could not be drawn: ' + (err.message || err);
    console.error(err);
  });
});
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def count(value: object) -> str:
    return f"{int(value):,}" if _is_number(value) else "–"


def share(value: object) -> str:
    return f"{float(value):.1%}" if _is_number(value) else "–"


def decimal(places: int) -> Formatter:
    return lambda value: f"{float(value):,.{places}f}" if _is_number(value) else "–"


def share_bar(value: object) -> str:
    if not _is_number(value):
        return "–"
    width = max(0.0, min(1.0, float(value))) * 120
    return f'<span class="share"><span class="bar" style="width:{width:.0f}px"></span>{float(value):.1%}</span>'


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _component(macro: str, **values) -> str:
    """One macro of components.html, rendered: HTML, safe to join into a section's body."""
    return str(getattr(environment().get_template("components.html").module, macro)(**values))


def table(frame: pd.DataFrame, formats: Optional[dict[str, Formatter]] = None,
          highlight: Optional[pd.Series] = None, raw_html: tuple[str, ...] = ()) -> str:
    """An HTML table; `formats` turn values into text, `raw_html` columns are already HTML."""
    formats = formats or {}
    marks = highlight.to_numpy() if highlight is not None else [False] * len(frame)
    rows = []
    for mark, row in zip(marks, frame.itertuples(index=False)):  # display tables are a few dozen rows
        cells = []
        for column, value in zip(frame.columns, row):
            if column in formats:
                text = formats[column](value)
            elif value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
                text = ""
            else:
                text = str(value)
            cells.append({"text": Markup(text) if column in raw_html else text,
                          "numeric": column in formats and formats[column] is not share_bar})
        rows.append({"cells": cells, "highlight": bool(mark)})
    return _component("table", columns=[str(c) for c in frame.columns], rows=rows)


def heat_table(grid: pd.DataFrame, shortfall: bool = True, expected_sparse: tuple[str, ...] = (),
               sparse_cells: Optional[pd.DataFrame] = None) -> str:
    """A grid of shares (rows × columns), each cell shaded from red (0%) to white (100%) — or,
    where a low share is no shortfall (`shortfall` False, a row in `expected_sparse`: a field
    only some people have, or a True cell of `sparse_cells`), from white (0%) to blue (100%). A
    cell with no value (a source that does not hold the field) is hatched grey."""
    sparse = (sparse_cells.reindex(index=grid.index, columns=grid.columns).fillna(False).to_numpy(bool)
              if sparse_cells is not None else None)
    rows = []
    for i, (label, values) in enumerate(zip(grid.index, grid.to_numpy())):
        cells = []
        for j, value in enumerate(values):
            red = shortfall and label not in expected_sparse and not (sparse is not None and sparse[i, j])
            if _is_number(value):
                shade = int(255 * max(0.0, min(1.0, float(value))))
                colour = f"rgb(255,{shade},{shade})" if red else f"rgb({255 - shade // 2},{255 - shade // 2},255)"
                cells.append({"text": f"{float(value):.0%}", "colour": colour})
            else:
                cells.append({"text": None, "title": "not held"})
        rows.append({"label": str(label), "cells": cells})
    return _component("heat_table", columns=[str(c) for c in grid.columns], rows=rows)


def missing(what: str) -> str:
    return _component("missing", text=what)


def note(text: str) -> str:
    return _component("note", text=text)


def cards(values: dict[str, str]) -> str:
    return _component("cards", values=list(values.items()))


@dataclass
class Page:
    """Sections in order, and the chart specs they embed."""

    title: str
    banner: str
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, heading, body html)
    charts: list[tuple[str, dict]] = field(default_factory=list)

    def chart(self, name: str, spec: dict) -> str:
        """Register a Vega-Lite spec; returns the placeholder the page script draws it into."""
        index = len(self.charts)
        # Splink's specs name a newer Vega-Lite minor version than the library it bundles, which
        # makes vega-embed warn in the console; the major version is what matters.
        spec = {**spec, "$schema": VEGA_LITE_SCHEMA}
        self.charts.append((name, spec))
        return _component("chart", index=index, name=name)

    def section(self, anchor: str, heading: str, body: str) -> None:
        self.sections.append((anchor, heading, body))

    def render(self) -> str:
        libraries = load_chart_libraries() if self.charts else {}
        return environment().get_template("report.html").render(
            title=self.title, banner=Markup(self.banner),
            sections=[{"anchor": a, "heading": h, "body": Markup(b)} for a, h, b in self.sections],
            specs=[Markup(spec_json(spec)) for _, spec in self.charts],
            libraries=[libraries[name] for name in ("vega", "vega-lite", "vega-embed") if name in libraries],
            chart_script=CHART_SCRIPT,
        )


def _finite(value):
    """JSON.parse rejects NaN and Infinity: they become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # Decimal, timestamps


def spec_json(spec: dict) -> str:
    """A chart spec as JSON safe inside a <script> element (no '<', '>' or '&' to end it early)."""
    text = json.dumps(_finite(spec), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

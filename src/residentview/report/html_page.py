"""A self-contained HTML page: static tables and bars, plus Vega-Lite charts drawn by the vega
libraries Splink ships, inlined once in the page head so the file opens with no network."""

from __future__ import annotations

import html
import json
import math
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Callable, Optional

import pandas as pd
from splink.internals.html_utils import load_chart_libraries

Formatter = Callable[[object], str]
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif; margin: 0; color: #1b1b1b; }
main { max-width: 1200px; margin: 0 auto; padding: 0 24px 48px; }
.banner { background: #8a1c1c; color: #fff; padding: 12px 24px; font-weight: 600; }
.banner small { display: block; font-weight: 400; }
h1 { margin: 20px 0 4px; } h2 { border-bottom: 2px solid #1d70b8; padding-bottom: 4px; margin-top: 36px; }
nav a { margin-right: 12px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #c8c8c8; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.this-run td { background: #fff7d6; font-weight: 600; }
.share { white-space: nowrap; }
.scroll { overflow-x: auto; }
td.heat { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 10px; background: #1d70b8; vertical-align: middle; margin-right: 6px; }
.note { color: #505a5f; font-size: 14px; }
.missing { color: #8a1c1c; font-style: italic; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #c8c8c8; border-radius: 4px; padding: 8px 16px; min-width: 140px; }
.card b { display: block; font-size: 24px; }
.chart { margin: 12px 0 24px; overflow-x: auto; }
"""

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


def table(frame: pd.DataFrame, formats: Optional[dict[str, Formatter]] = None,
          highlight: Optional[pd.Series] = None, raw_html: tuple[str, ...] = ()) -> str:
    """An HTML table; `formats` turn values into text, `raw_html` columns are already HTML."""
    formats = formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    marks = highlight.to_numpy() if highlight is not None else [False] * len(frame)
    for mark, row in zip(marks, frame.itertuples(index=False)):  # display tables are a few dozen rows
        cells = []
        for column, value in zip(frame.columns, row):
            if column in formats:
                text = formats[column](value)
            elif value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
                text = ""
            else:
                text = str(value)
            text = text if column in raw_html else esc(text)
            numeric = column in formats and formats[column] is not share_bar
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        row_class = ' class="this-run"' if mark else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def heat_table(grid: pd.DataFrame, shortfall: bool = True) -> str:
    """A grid of shares (rows × columns), each cell shaded from red (0%) to white (100%) — or,
    where a low share is no shortfall (`shortfall` False), from white (0%) to blue (100%)."""
    head = "<th></th>" + "".join(f"<th>{esc(c)}</th>" for c in grid.columns)
    rows = []
    for label, values in zip(grid.index, grid.to_numpy()):
        cells = []
        for value in values:
            if _is_number(value):
                shade = int(255 * max(0.0, min(1.0, float(value))))
                colour = f"rgb(255,{shade},{shade})" if shortfall else f"rgb({255 - shade // 2},{255 - shade // 2},255)"
                cells.append(f'<td class="heat" style="background:{colour}">{float(value):.0%}</td>')
            else:
                cells.append('<td class="heat">–</td>')
        rows.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def missing(what: str) -> str:
    return f'<p class="missing">{esc(what)}</p>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def cards(values: dict[str, str]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in values.items()
    ) + "</div>"


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
        return f'<div class="chart" id="chart-{index}" data-spec="spec-{index}" aria-label="{esc(name)}"></div>'

    def section(self, anchor: str, heading: str, body: str) -> None:
        self.sections.append((anchor, heading, body))

    def render(self) -> str:
        nav = " ".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in self.sections)
        body = "".join(f'<section id="{a}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in self.sections)
        specs = "".join(
            f'<script type="application/json" id="spec-{i}">{spec_json(spec)}</script>'
            for i, (_, spec) in enumerate(self.charts)
        )
        scripts = ""
        if self.charts:
            libraries = load_chart_libraries()
            scripts = "".join(f"<script>{libraries[name]}</script>" for name in ("vega", "vega-lite", "vega-embed"))
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{STYLE}</style>{scripts}</head><body>"
            f'<div class="banner" role="alert">{self.banner}</div><main><h1>{esc(self.title)}</h1>'
            f"<nav>{nav}</nav>{body}</main>{specs}"
            + (f"<script>{CHART_SCRIPT}</script>" if self.charts else "")
            + "</body></html>"
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

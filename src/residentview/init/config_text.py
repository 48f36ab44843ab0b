"""The commented YAML `init` writes: every guess with its evidence beside it, every column not
guessed listed, so that editing the config is checking it rather than writing it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from residentview.fields import CANONICAL_FIELDS
from residentview.init.columns import Guess, IdChoice
from residentview.init.tables import Table

INDENT = "  "
COMMENT_AT = 44  # column the evidence comments start at, where the line is shorter


def scalar(value) -> str:
    """A YAML scalar that reads back as exactly `value` (plain where it can be, else quoted)."""
    text = str(value)
    plain = bool(re.fullmatch(r"[A-Za-z_%][^:#{}\[\],&*!|>'\"@`]*", text)) and text == text.strip()
    if plain:
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def _line(text: str, comment: str = "") -> str:
    if not comment:
        return text
    return f"{text.ljust(COMMENT_AT)} # {comment}" if len(text) < COMMENT_AT else f"{text}  # {comment}"


@dataclass
class SourceDraft:
    """One source as `init` will write it."""

    name: str
    table: Table
    path_text: str  # the file's path, relative to the config's folder
    id: IdChoice
    guesses: list[Guess]
    notes: list[str] = field(default_factory=list)

    def mapped(self) -> dict[str, list[Guess]]:
        """Canonical field (or identifiers.<name>) -> its column(s), in canonical order."""
        by_field: dict[str, list[Guess]] = {}
        for g in self.guesses:
            if g.field and g.column != self.id.column:
                by_field.setdefault(g.field, []).append(g)
        order = {name: i for i, name in enumerate(CANONICAL_FIELDS)}
        return dict(sorted(by_field.items(), key=lambda item: order.get(item[0].split(".")[0], len(order))))

    def unmapped(self) -> list[Guess]:
        return [g for g in self.guesses if not g.field and g.column != self.id.column]

    @property
    def usable(self) -> bool:
        """A source needs a record id and a name field (CONTRACT §1)."""
        names = {"full_name", "first_name", "middle_names", "last_name"}
        return self.id.column is not None and bool(names & set(self.mapped()))

    def why_not(self) -> str:
        if self.id.column is None:
            return "no column is unique and filled in every row, so none can be the record id"
        return "no column looks like a name (first, last or full name)"

    def lines(self) -> list[str]:
        table = self.table
        out = [f"{self.name}:", _line(f"{INDENT}path: {scalar(self.path_text)}", f"{len(table.frame):,} records")]
        if table.sheet is not None:
            out.append(f"{INDENT}sheet: {scalar(table.sheet)}")
        if table.path.suffix.lower() == ".csv" and table.delimiter != ",":
            named = {"\t": "tabs", ";": "semicolons", "|": "'|'"}.get(table.delimiter, repr(table.delimiter))
            out.append(_line(f"{INDENT}delimiter: {json.dumps(table.delimiter)}", f"the columns are separated by {named}"))
        if table.header_row:
            above = f"{table.title_rows} title row{'s' if table.title_rows != 1 else ''}" if table.title_rows else "blank rows"
            out.append(_line(f"{INDENT}header_row: {table.header_row}", f"the header is row {table.header_row}, "
                                                                        f"below {above}"))
        out.append(_line(f"{INDENT}id: {scalar(self.id.column or 'CHOOSE_AN_ID_COLUMN')}", self.id.evidence))
        out.append(f"{INDENT}fields:")
        identifiers = []
        for name, guesses in self.mapped().items():
            if name.startswith("identifiers."):
                identifiers.append((name.split(".", 1)[1], guesses[0]))
                continue
            out.append(_line(f"{INDENT * 2}{name}: {self._spec(guesses)}", self._evidence(guesses)))
        if identifiers:
            out.append(_line(f"{INDENT * 2}identifiers:", "shared reference numbers, compared between sources "
                                                         "that map the same name"))
            out.extend(_line(f"{INDENT * 3}{label}: {scalar(g.column)}", g.evidence) for label, g in identifiers)
        for g in self.unmapped():
            out.append(f"{INDENT * 2}# not mapped: {scalar(g.column)} ({g.evidence})")
        out.extend(f"{INDENT}# {note}" for note in self.notes)
        return out

    @staticmethod
    def _spec(guesses: list[Guess]) -> str:
        if len(guesses) > 1:
            return "[" + ", ".join(scalar(g.column) for g in guesses) + "]"
        g = guesses[0]
        if g.date_format:
            return f"{{column: {scalar(g.column)}, format: {json.dumps(g.date_format)}}}"
        return scalar(g.column)

    @staticmethod
    def _evidence(guesses: list[Guess]) -> str:
        if len(guesses) == 1:
            return guesses[0].evidence
        return "; ".join(f"{g.column}: {g.evidence}" for g in guesses)


def config_text(name: str, folder_text: str, drafts: list[SourceDraft], skipped: list[str],
                config_file: str) -> str:
    """The whole config, as text to write."""
    out = [
        f"# residentview config drafted by `residentview init` from the files in {folder_text}.",
        "# Each mapping below is a guess, with its evidence beside it: check every one, map what was",
        "# missed (the columns no field was guessed for are listed under each source), then run",
        f"#   residentview validate {config_file}",
        f"#   residentview link {config_file}",
        "# The config's keys are explained in the README (\"The config\").",
        f"name: {scalar(name)}",
        "sources:",
    ]
    for draft in drafts:
        if draft.usable:
            out.extend(INDENT + line for line in draft.lines())
    for draft in drafts:
        if not draft.usable:
            out.append(f"{INDENT}# {draft.table.label} is left out: {draft.why_not()}. Its guesses, to use once fixed:")
            out.extend(f"{INDENT}# {line}" for line in draft.lines())
    for note in skipped:
        out.append(f"{INDENT}# {note}")
    out += [
        "linkage:",
        _line(f"{INDENT}threshold: 0.95", "match probability at which records join one resident"),
        "# output: residentview-output/             # the default: beside this file",
    ]
    return "\n".join(out) + "\n"

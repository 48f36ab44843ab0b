"""Reading a decisions file: a filled-in review_queue.csv, or any CSV with the columns of
CONTRACT §5 (source_l, record_id_l, source_r, record_id_r, decision; optional reviewer, note;
any other column ignored).

A file is imported whole or not at all: every bad row (an unknown record, an unknown decision
word, a record paired with itself) is reported on a line of its own with its line number, and
nothing is taken from the file until it is clean. Rows with no decision are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from residentview.errors import DataError
from residentview.review.store import DECISION_WORDS, PAIR_COLUMNS, latest, ordered_pairs

REQUIRED_COLUMNS = (*PAIR_COLUMNS, "decision")
ENCODINGS = ("utf-8-sig", "cp1252")  # ours, then what Excel saves a CSV as on a UK Windows machine
PROBLEMS_SHOWN = 20


@dataclass
class DecisionsFile:
    """The decisions a file holds, ready for the store (`decision_id` not yet given)."""

    rows: pd.DataFrame
    n_blank: int  # rows with no decision
    n_repeated: int  # rows that say again what is already in force on their pair

    @property
    def counts(self) -> dict[str, int]:
        return {word: int((self.rows["decision"] == word).sum()) for word in DECISION_WORDS}


def decision_word(value: str) -> Optional[str]:
    """'Match', ' NON MATCH ', 'non_match' -> the canonical word; '' -> None; else ValueError."""
    word = re.sub(r"[\s_]+", "-", str(value).strip().lower())
    if not word:
        return None
    word = {"nonmatch": "non-match", "no-match": "non-match"}.get(word, word)
    if word not in DECISION_WORDS:
        raise ValueError(word)
    return word


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: decisions file not found" if not path.exists() else
                        f"{path}: not a decisions file (a folder or a device); expected a CSV file")
    for encoding in ENCODINGS:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the decisions file is empty") from None
        except (pd.errors.ParserError, ValueError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path}: not a readable CSV file ({first_line})") from None
    raise DataError(f"{path}: not text in UTF-8 or Windows-1252; save it as CSV UTF-8")


def _known_keys(known: pd.DataFrame) -> set:
    return set(zip(known["source"].astype(str), known["record_id"].astype(str)))


def read_decisions_file(path: Path, known: pd.DataFrame, store: pd.DataFrame, *, reviewer: Optional[str],
                        origin: str, decided_at: pd.Timestamp, model_version: Optional[str],
                        superseded_after: Optional[pd.Timestamp] = None) -> DecisionsFile:
    """The decisions in `path` as store rows. `known`: the records decisions may name (source,
    record_id). `store`: decisions already kept; a row repeating the decision in force on its
    pair (same word, reviewer and note) adds nothing. `superseded_after`: rows on pairs decided
    in the store after this time are skipped (a queue written before those decisions were made
    is out of date on them)."""
    return decisions_from_frame(_read_csv(Path(path)), str(path), known, store, reviewer=reviewer, origin=origin,
                                decided_at=decided_at, model_version=model_version, superseded_after=superseded_after)


def decisions_from_frame(frame: pd.DataFrame, label: str, known: pd.DataFrame, store: pd.DataFrame, *,
                         reviewer: Optional[str], origin: str, decided_at: pd.Timestamp,
                         model_version: Optional[str], superseded_after: Optional[pd.Timestamp] = None) -> DecisionsFile:
    """As `read_decisions_file`, for rows already in memory (text, as a CSV reads); `label`
    names them in messages."""
    frame = frame.fillna("").astype(str)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{label}: a decisions file needs the columns {', '.join(REQUIRED_COLUMNS)}; "
                        f"missing {', '.join(missing)}")
    for column in ("reviewer", "note"):
        if column not in frame:
            frame[column] = ""
    for column in (*REQUIRED_COLUMNS, "reviewer", "note"):
        frame[column] = frame[column].astype(str).str.strip()

    keys = _known_keys(known)
    problems: list[str] = []
    words: list[Optional[str]] = []
    for line, row in zip(range(2, len(frame) + 2), frame.itertuples(index=False)):
        try:
            word = decision_word(row.decision)
        except ValueError:
            problems.append(f"line {line}: unknown decision '{row.decision}' (use match, non-match or unsure)")
            words.append(None)
            continue
        words.append(word)
        if word is None:
            continue
        left, right = (row.source_l, row.record_id_l), (row.source_r, row.record_id_r)
        for side, key in (("left", left), ("right", right)):
            if not key[0] or not key[1]:
                problems.append(f"line {line}: the {side} record has no source or record_id")
            elif key not in keys:
                problems.append(f"line {line}: unknown record {key[0]}:{key[1]}")
        if left == right and left[0] and left[1]:
            problems.append(f"line {line}: a record paired with itself ({left[0]}:{left[1]})")
    if problems:
        shown = problems[:PROBLEMS_SHOWN]
        more = [f"... and {len(problems) - PROBLEMS_SHOWN} more"] if len(problems) > PROBLEMS_SHOWN else []
        raise DataError("\n".join([f"{label}: {len(problems)} bad row(s); nothing imported from this file",
                                   *shown, *more]))

    decided = np.array([w is not None for w in words], dtype=bool)
    n_blank = int((~decided).sum())
    frame = frame.loc[decided].assign(decision=[w for w in words if w is not None])
    rows = ordered_pairs(frame[[*PAIR_COLUMNS, "decision", "reviewer", "note"]]).copy()
    if reviewer:
        rows.loc[rows["reviewer"] == "", "reviewer"] = reviewer
    for column in ("reviewer", "note"):
        rows[column] = rows[column].where(rows[column] != "", None)
    rows["decided_at"] = decided_at
    rows["origin"] = origin
    rows["model_version"] = model_version
    for column in ("match_probability", "match_weight"):
        seen = pd.to_numeric(frame[column], errors="coerce") if column in frame else np.nan
        rows[column] = seen
    # A file's last word on a pair is its decision (a reviewer who changed their mind lower down).
    rows = rows.drop_duplicates(list(PAIR_COLUMNS), keep="last")

    n_before = len(rows)
    in_force = latest(store)
    if superseded_after is not None and len(in_force):
        later = in_force[pd.to_datetime(in_force["decided_at"], utc=True) > superseded_after]
        rows = rows[~_pair_in(rows, later)]
    same = in_force.merge(rows[[*PAIR_COLUMNS, "decision", "reviewer", "note"]], how="inner",
                          on=[*PAIR_COLUMNS, "decision"], suffixes=("", "_new"))
    same = same[(same["reviewer"].fillna("") == same["reviewer_new"].fillna(""))
                & (same["note"].fillna("") == same["note_new"].fillna(""))]
    rows = rows[~_pair_in(rows, same)]
    return DecisionsFile(rows=rows.reset_index(drop=True), n_blank=n_blank, n_repeated=n_before - len(rows))


def _pair_in(rows: pd.DataFrame, others: pd.DataFrame) -> np.ndarray:
    if not len(others) or not len(rows):
        return np.zeros(len(rows), dtype=bool)
    wanted = set(others[list(PAIR_COLUMNS)].itertuples(index=False, name=None))
    return np.array([key in wanted for key in rows[list(PAIR_COLUMNS)].itertuples(index=False, name=None)], dtype=bool)

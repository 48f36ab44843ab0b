"""The noise catalogue: how council systems get a person's details wrong, each rate configurable.

Every function takes whole columns (numpy object arrays of str/None) and a boolean mask of the
records to damage, so a million records cost a handful of array operations, not a million calls.
String edits work on a (records x characters) array of code points.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from residentview.synthetic.vocabulary import nickname_table


@dataclass(frozen=True)
class NoiseRates:
    """Per-record (or per-person, where noted) probabilities of each kind of error.

    Defaults are judgements of what a UK council's extracts look like; set any to 0 to switch
    that error off, e.g. ``generate(..., noise=NoiseRates(typo=0.0))``.
    """

    typo: float = 0.03                 # keyboard slip in a name (substitute, drop, double, swap)
    ocr: float = 0.005                 # scanned-form confusions (O/0, I/1, rn/m-like single letters)
    nickname: float = 0.25             # a known form (Bill for William), where one exists
    name_swap: float = 0.01            # forename and surname entered the wrong way round
    goes_by_middle: float = 0.04       # per person: known by their middle name…
    middle_as_first: float = 0.6       # …and a system records that middle name as the first name
    middle_dropped: float = 0.35       # middle names not captured
    double_barrelled: float = 0.02     # per household: a double-barrelled or hyphenated surname
    surname_part: float = 0.35         # only one half, or the hyphen lost, of such a surname
    maiden_name: float = 0.15          # a system still holds the surname from before marriage
    dob_swap: float = 0.01             # day and month swapped (when both are 12 or less)
    dob_digit: float = 0.01            # one digit of the date mistyped
    dob_placeholder: float = 0.004     # 1900-01-01 typed when the date was not known
    dob_first_january: float = 0.004   # only the year known: 01/01/YYYY
    missing: float = 0.03              # any optional field left blank
    moved: float = 0.08                # per household: lived at another address before
    stale_address: float = 0.5         # a mover's record in a system still at the old address
    copied_identifier: float = 0.01    # a household member's identifier recorded on this person
    twins: float = 0.03                # per family child: twin of the previous child
    junior: float = 0.03               # per son: named after his father
    communal: float = 0.03             # share of people in care homes, halls, hostels and HMOs
    title_in_name: float = 0.02        # "Mrs Jane" typed into the forename field
    deceased_marker: float = 0.6       # "(Deceased)" added to a deceased person's surname
    accents_lost: float = 0.5          # Siân -> Sian in systems that cannot hold accents
    case_mangled: float = 0.1          # all upper or all lower case in a mixed-case system
    identifier_typo: float = 0.005     # one digit wrong in an NHS number or NI number
    postcode_typo: float = 0.01        # one character wrong in a postcode
    duplicate: float = 0.02            # the same person registered twice in one system
    # Hostile damage, off by default (`benchmarks/datasets.py`'s ``-hostile`` datasets switch it on).
    # At 0 none of these draws a random number, so the default data stay exactly as they were.
    heavy_typo: float = 0.0            # 2–3 keyboard slips in one name (WILLIAMS -> WILAIMSS)
    name_truncated: float = 0.0        # a name cut to its first 2–4 letters (MA for MATTHEWS)
    name_fragment: float = 0.0         # a name reduced to a fragment with a letter replaced (WILLIAMS -> WIRL)
    house_number_error: float = 0.0    # house number with a digit changed, doubled or read as a letter (12 -> I2)
    town_typo: float = 0.0             # one or two keyboard slips in the town name
    postcode_blank: float = 0.0        # postcode left blank (on top of `missing`)
    postcode_cut: float = 0.0          # postcode one character short (LS6 2AB -> LS6 2A)
    dob_withheld: float = 0.0          # per system: share of a DOB-holding system's records sent without DOB
    #                                    (the systems in extracts.DOB_WITHHELD_SYSTEMS; 1 blanks the whole column)

    def scaled(self, factor: float) -> "NoiseRates":
        """The same catalogue with every per-record error rate multiplied (population and per-system rates kept)."""
        population = {"goes_by_middle", "double_barrelled", "moved", "twins", "junior", "communal", "dob_withheld"}
        return NoiseRates(**{
            f.name: (getattr(self, f.name) if f.name in population else min(1.0, getattr(self, f.name) * factor))
            for f in fields(self)
        })


# Code-point arrays -------------------------------------------------------------------------

def _to_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    text = np.asarray(values, dtype=str)
    width = max(1, text.dtype.itemsize // 4)
    text = text.astype(f"U{width + 1}")  # room for one inserted character
    codes = text.view(np.uint32).reshape(len(text), width + 1).copy()
    return codes, np.char.str_len(text)


def _from_codes(codes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(codes).view(f"U{codes.shape[1]}").ravel().astype(object)


_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_table() -> tuple[np.ndarray, np.ndarray]:
    """Code point -> up to 4 neighbouring keys (lower and upper case), and how many there are."""
    neighbours = np.zeros((0x2000, 4), dtype=np.uint32)
    counts = np.zeros(0x2000, dtype=np.int64)
    for r, row in enumerate(_KEYBOARD_ROWS):
        for c, key in enumerate(row):
            near = [row[j] for j in (c - 1, c + 1) if 0 <= j < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(_KEYBOARD_ROWS) and c < len(_KEYBOARD_ROWS[other]):
                    near.append(_KEYBOARD_ROWS[other][c])
            near = near[:4]
            for transform in (str.lower, str.upper):
                neighbours[ord(transform(key)), : len(near)] = [ord(transform(k)) for k in near]
                counts[ord(transform(key))] = len(near)
    return neighbours, counts


_NEIGHBOURS, _NEIGHBOUR_COUNTS = _keyboard_table()
_OCR = np.arange(0x2000, dtype=np.uint32)
for _a, _b in {"O": "0", "0": "O", "I": "1", "1": "I", "l": "1", "S": "5", "5": "S", "B": "8", "8": "B",
               "e": "c", "c": "e", "n": "h", "h": "n", "u": "v", "v": "u", "G": "C", "C": "G", "E": "F",
               "a": "o", "o": "a"}.items():
    _OCR[ord(_a)] = ord(_b)


def _edit_strings(values: np.ndarray, mask: np.ndarray, min_length: int, edit) -> np.ndarray:
    """Apply `edit(codes, lengths) -> codes` to the masked strings of at least `min_length` characters."""
    out = values.copy()
    lengths = pd.Series(values, dtype=object).str.len().to_numpy(dtype=float, na_value=0)
    chosen = np.flatnonzero(mask & (lengths >= min_length))
    if len(chosen):
        codes, lengths = _to_codes(values[chosen])
        out[chosen] = _from_codes(edit(codes, lengths).astype(np.uint32))
    return out


def _slip_at(codes: np.ndarray, lengths: np.ndarray, pos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One keyboard slip per row at `pos`: a neighbouring key, a dropped, doubled or swapped letter."""
    rows = np.arange(len(codes))
    kind = rng.integers(0, 4, len(codes))
    cols = np.arange(codes.shape[1])[None, :]
    # 0: neighbouring key
    current = codes[rows, pos]
    count = _NEIGHBOUR_COUNTS[np.minimum(current, 0x1FFF)]
    pick = (rng.random(len(codes)) * np.maximum(count, 1)).astype(int)
    substitute = codes.copy()
    substitute[rows, pos] = np.where(count > 0, _NEIGHBOURS[np.minimum(current, 0x1FFF), pick], current)
    # 1: dropped letter (the spare last column is always empty, so shifting left pads with it)
    dropped = np.take_along_axis(codes, np.where(cols >= pos[:, None], cols + 1, cols).clip(max=codes.shape[1] - 1), axis=1)
    # 2: doubled letter
    doubled = np.take_along_axis(codes, np.where(cols > pos[:, None], cols - 1, cols), axis=1)
    # 3: neighbouring letters swapped
    swap_at = np.minimum(pos, lengths - 2)
    swapped = codes.copy()
    swapped[rows, swap_at] = codes[rows, swap_at + 1]
    swapped[rows, swap_at + 1] = codes[rows, swap_at]
    return np.select([kind[:, None] == k for k in range(4)], [substitute, dropped, doubled, swapped])


def typos(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keyboard slips in the masked strings: a neighbouring key, a dropped, doubled or swapped letter."""

    def slip(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        pos = (rng.random(len(codes)) * (lengths - 1)).astype(int) + 1  # the first letter is usually right
        pos = np.minimum(pos, lengths - 1)
        return _slip_at(codes, lengths, pos, rng)

    return _edit_strings(values, mask, 3, slip)


def ocr_errors(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One character read wrongly from a scanned form (O for 0, 1 for I, c for e…)."""

    def misread(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        rows = np.arange(len(codes))
        pos = (rng.random(len(codes)) * lengths).astype(int)
        codes[rows, pos] = _OCR[np.minimum(codes[rows, pos], 0x1FFF)]
        return codes

    return _edit_strings(values, mask, 2, misread)


def one_digit_wrong(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Identifiers with one digit replaced by another."""

    def mistype(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        is_digit = (codes >= ord("0")) & (codes <= ord("9"))
        # a random digit position per row: the argmax of random keys over digit positions
        pos = np.where(is_digit, rng.random(codes.shape), -1.0).argmax(axis=1)
        rows = np.arange(len(codes))
        new_digit = (codes[rows, pos] - ord("0") + rng.integers(1, 10, len(codes))) % 10 + ord("0")
        codes[rows, pos] = np.where(is_digit[rows, pos], new_digit, codes[rows, pos])
        return codes

    return _edit_strings(values, mask, 1, mistype)


def heavy_typos(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two or three keyboard slips in each masked string (half get three): WILLIAMS -> WILIAMSS.

    Each slip falls in its own part of the string after the first letter, applied right to left so
    an earlier slip's position does not move, and so slips rarely undo or merge with each other
    (in names of 3–4 letters they still can)."""

    def slips(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        codes = np.pad(codes, ((0, 0), (0, 2)))  # room for up to three doubled letters
        count = np.where(rng.random(len(codes)) < 0.5, 3, 2)
        span = lengths - 1
        for part in (2, 1, 0):
            low = 1 + span * part // count
            high = 1 + span * (part + 1) // count
            pos = low + (rng.random(len(codes)) * np.maximum(high - low, 1)).astype(int)
            lengths = (codes != 0).sum(axis=1)
            pos = np.minimum(pos, lengths - 1)
            edited = _slip_at(codes, lengths, pos, rng)
            codes = np.where((part < count)[:, None], edited, codes)
        return codes

    return _edit_strings(values, mask, 3, slips)


def truncate(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The masked strings (of 3+ characters) cut to their first 2–4 characters, always shorter than they were."""

    def cut(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        keep = np.minimum(rng.integers(2, 5, len(codes)), lengths - 1)
        codes[np.arange(codes.shape[1])[None, :] >= keep[:, None]] = 0
        return codes

    return _edit_strings(values, mask, 3, cut)


def fragments(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Heavy damage: the masked strings (of 5+ characters) cut to 3–4 characters with one letter
    after the first replaced by another (WILLIAMS -> WIRL), as from a smudged or misheard form."""

    def shatter(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        rows = np.arange(len(codes))
        keep = rng.integers(3, 5, len(codes))
        codes[np.arange(codes.shape[1])[None, :] >= keep[:, None]] = 0
        pos = 1 + (rng.random(len(codes)) * (keep - 1)).astype(int)
        current = codes[rows, pos]
        lower = (current >= ord("a")) & (current <= ord("z"))
        base = np.where(lower, ord("a"), ord("A"))
        letter = (current.astype(np.int64) - base) % 26
        new = (letter + rng.integers(1, 26, len(codes))) % 26 + base  # never the letter it was
        codes[rows, pos] = new
        return codes

    return _edit_strings(values, mask, 5, shatter)


_DIGIT_AS_LETTER = np.array([ord(c) for c in "OIZBASGTBQ"], dtype=np.uint32)  # 0 -> O, 1 -> I, 5 -> S…


def house_number_errors(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit of each masked house number substituted, doubled or read as a letter (5657 -> 565O, 12 -> I2)."""

    def mangle(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        rows = np.arange(len(codes))
        cols = np.arange(codes.shape[1])[None, :]
        is_digit = (codes >= ord("0")) & (codes <= ord("9"))
        pos = np.where(is_digit, rng.random(codes.shape), -1.0).argmax(axis=1)
        has_digit = is_digit[rows, pos]
        kind = rng.integers(0, 3, len(codes))
        digit = codes[rows, pos].astype(np.int64) - ord("0")
        substituted = codes.copy()
        substituted[rows, pos] = (digit + rng.integers(1, 10, len(codes))) % 10 + ord("0")
        doubled = np.take_along_axis(codes, np.where(cols > pos[:, None], cols - 1, cols), axis=1)
        as_letter = codes.copy()
        as_letter[rows, pos] = _DIGIT_AS_LETTER[digit.clip(0, 9)]
        out = np.select([kind[:, None] == 0, kind[:, None] == 1], [substituted, doubled], as_letter)
        return np.where(has_digit[:, None], out, codes)

    return _edit_strings(values, mask, 1, mangle)


def cut_last_character(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The masked strings one character short (LS6 2AB -> LS6 2A, LS62AB -> LS62A)."""

    def cut(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        codes[np.arange(len(codes)), lengths - 1] = 0
        return codes

    return _edit_strings(values, mask, 2, cut)


def strip_accents(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Siân -> Sian, as systems limited to ASCII write it. Loops over distinct names only."""
    out = values.copy()
    chosen = mask & pd.notna(values)
    if not chosen.any():
        return out
    series = pd.Series(values[chosen])
    folded = {v: unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode() for v in series.unique()}
    out[chosen] = series.map(folded).to_numpy()
    return out


def nicknames(first: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A known short form of the first name (William -> Bill), where the name has one."""
    formal, short = nickname_table()
    out = first.copy()
    lookup = pd.Series(np.arange(len(formal)), index=formal)
    starts = lookup.groupby(level=0).min()
    sizes = lookup.groupby(level=0).size()
    series = pd.Series(first)
    start = series.map(starts).to_numpy()
    size = series.map(sizes).to_numpy()
    chosen = mask & ~pd.isna(start)
    if chosen.any():
        offset = (rng.random(chosen.sum()) * size[chosen]).astype(int)
        out[chosen] = short[start[chosen].astype(int) + offset]
    return out


def blank(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[mask] = None
    return out


def dob_errors(dob: np.ndarray, rates: NoiseRates, rng: np.random.Generator) -> np.ndarray:
    """Day/month swapped, one digit wrong, 1900-01-01 placeholders and 1 January estimates."""
    dates = pd.DatetimeIndex(dob)
    year, month, day = dates.year.to_numpy(), dates.month.to_numpy(), dates.day.to_numpy()
    n = len(dob)
    draw = rng.random(n)
    edges = np.cumsum([rates.dob_swap, rates.dob_digit, rates.dob_placeholder, rates.dob_first_january])
    swap = (draw < edges[0]) & (day <= 12) & (day != month)
    digit = (draw >= edges[0]) & (draw < edges[1])
    placeholder = (draw >= edges[1]) & (draw < edges[2])
    first_january = (draw >= edges[2]) & (draw < edges[3])

    new_year, new_month, new_day = year.copy(), month.copy(), day.copy()
    new_month[swap], new_day[swap] = day[swap], month[swap]
    which = rng.integers(0, 3, n)
    delta = rng.integers(1, 10, n)
    year_digit = digit & (which == 0)
    new_year[year_digit] = year[year_digit] - year[year_digit] % 10 + (year[year_digit] % 10 + delta[year_digit]) % 10
    day_units = digit & (which == 1)
    candidate = day - day % 10 + (day % 10 + delta) % 10
    ok = (candidate >= 1) & (candidate <= 28)
    new_day[day_units & ok] = candidate[day_units & ok]
    day_tens = digit & (which == 2)
    candidate = (day + 10 * rng.choice([-1, 1], n))
    ok = (candidate >= 1) & (candidate <= 28)
    new_day[day_tens & ok] = candidate[day_tens & ok]
    new_year[day_tens & ~ok] = year[day_tens & ~ok] + 1
    new_year[placeholder], new_month[placeholder], new_day[placeholder] = 1900, 1, 1
    new_month[first_january], new_day[first_january] = 1, 1
    out = pd.to_datetime(pd.DataFrame({"year": new_year, "month": new_month, "day": new_day}), errors="coerce")
    return out.fillna(pd.Series(dates)).to_numpy().astype("datetime64[D]")

"""Reference numbers that pass their real check rules, drawn vectorised and unique.

NHS numbers pass the modulus-11 check digit; NI numbers use only the prefixes HMRC allows and a
suffix A–D; UPNs carry the DfE check letter; UPRNs are 11–12 digit numbers like the AddressBase
ones a council holds.
"""

from __future__ import annotations

import numpy as np

_NINO_FIRST = np.array([c for c in "ABCEGHJKLMNOPRSTWXYZ"])  # never D F I Q U V
_NINO_SECOND = np.array([c for c in "ABCEGHJKLMNPRSTWXYZ"])  # never D F I O Q U V
_NINO_BANNED_PAIRS = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_UPN_CHECK_LETTERS = np.array(list("ABCDEFGHJKLMNPQRTUVWXYZ"))


def _digits_to_text(digits: np.ndarray) -> np.ndarray:
    """(n, k) array of 0–9 -> n strings of k digits."""
    codes = (digits.astype(np.uint32) + ord("0")).astype(np.uint32)
    return codes.view(f"U{digits.shape[1]}").ravel().astype(object)


def nhs_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct 10-digit NHS numbers whose last digit is the modulus-11 check digit."""
    out: list[np.ndarray] = []
    seen = 0
    while seen < n:
        batch = max(1000, int((n - seen) * 1.3))
        body = rng.integers(0, 10, size=(batch, 9))
        body[:, 0] = rng.choice([4, 6, 7], size=batch)
        check = 11 - (body * np.arange(10, 1, -1)).sum(axis=1) % 11
        check = np.where(check == 11, 0, check)
        ok = check != 10  # a check value of 10 means the number is never issued
        digits = np.column_stack([body[ok], check[ok]])
        out.append(_digits_to_text(digits))
        seen += len(digits)
    numbers = np.concatenate(out)
    numbers = pd_unique(numbers)
    if len(numbers) < n:  # a collision among 10^9 is rare; top up rather than fail
        return np.concatenate([numbers, nhs_numbers(n - len(numbers), rng)])[:n]
    return numbers[:n]


def nhs_check_digit_ok(numbers) -> np.ndarray:
    """True where a 10-digit string passes the modulus-11 check."""
    numbers = np.asarray(numbers, dtype="U10")
    digits = numbers.view(np.uint32).reshape(len(numbers), 10).astype(int) - ord("0")
    check = 11 - (digits[:, :9] * np.arange(10, 1, -1)).sum(axis=1) % 11
    check = np.where(check == 11, 0, check)
    return (check != 10) & (check == digits[:, 9])


def ni_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct NI numbers (`AB123456C`) with allowed prefixes and an A–D suffix."""
    prefixes = np.char.add(_NINO_FIRST[:, None], _NINO_SECOND[None, :]).ravel()
    prefixes = np.array([p for p in prefixes if p not in _NINO_BANNED_PAIRS])
    batch = int(n * 1.05) + 100
    numbers = pd_unique(
        np.char.add(
            np.char.add(prefixes[rng.integers(0, len(prefixes), batch)], _digits_to_text(rng.integers(0, 10, (batch, 6))).astype(str)),
            np.array(list("ABCD"))[rng.integers(0, 4, batch)],
        )
    )
    if len(numbers) < n:
        return np.concatenate([numbers, ni_numbers(n - len(numbers), rng)])[:n]
    return numbers[:n]


def upn_numbers(n: int, rng: np.random.Generator, la_code: int) -> np.ndarray:
    """`n` distinct DfE unique pupil numbers: check letter + LA + school + year + serial."""
    batch = int(n * 1.05) + 100
    school = rng.integers(2000, 7000, batch)
    year = rng.integers(5, 26, batch)
    serial = rng.integers(0, 1000, batch)
    body = np.char.add(
        np.char.add(np.char.zfill(str(la_code), 3), np.char.zfill(school.astype(str), 4)),
        np.char.add(np.char.zfill(year.astype(str), 2), np.char.zfill(serial.astype(str), 3)),
    )
    digits = body.view(np.uint32).reshape(batch, 12).astype(int) - ord("0")
    check = _UPN_CHECK_LETTERS[(digits * np.arange(2, 14)).sum(axis=1) % 23]
    numbers = pd_unique(np.char.add(check, body))
    if len(numbers) < n:
        return np.concatenate([numbers, upn_numbers(n - len(numbers), rng, la_code)])[:n]
    return numbers[:n]


def uprns(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct UPRNs, mostly 12-digit (100…/200…) with some older 11-digit ones."""
    gaps = rng.integers(1, 2000, n)
    base = np.where(rng.random(n) < 0.8, 100_000_000_000, 10_000_000_000)
    values = base + np.cumsum(gaps)
    return rng.permutation(values).astype(str).astype(object)


def mobile_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """UK mobile numbers as 11 digits (`07…`), in the ranges phone companies issue."""
    prefix = rng.choice(np.array(["074", "075", "077", "078", "079"]), n)
    rest = _digits_to_text(rng.integers(0, 10, (n, 8))).astype(str)
    return np.char.add(prefix, rest).astype(object)


def pd_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values in first-seen order (numpy's unique would sort them)."""
    import pandas as pd

    return pd.unique(pd.Series(values.astype(object))).astype(object)

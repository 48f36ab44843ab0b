"""Values as integer codes, so the resident view's group-bys, joins and sorts handle integers, not text.

`coded(values)` numbers a column's distinct values in their sorted order (text sorted by its
bytes, as DuckDB and Arrow sort it): comparing two codes compares the values, and the text itself
is only looked at once per distinct value — to sort, to build "FIRST LAST" (`combined`) — and
looked up again at the end (`Coded.decoded`, `distinct_lists`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from residentview.memory import cycle_collector_paused, duckdb_connect


class Coded(NamedTuple):
    """A column as integer codes, -1 where the value is missing, and `values`, its distinct values
    sorted: code i stands for values[i]."""

    codes: np.ndarray
    values: np.ndarray

    def decoded(self, codes: np.ndarray) -> np.ndarray:
        """The values of `codes`: None (NaT for dates) for -1."""
        return np.append(self.values, np.array([None], dtype=self.values.dtype))[codes]

    def as_arrow(self) -> pa.Array:
        """The codes as an Arrow column, null where the value is missing."""
        return pa.array(self.codes, mask=self.codes < 0)


def arrow_text(values: pd.Series | np.ndarray) -> pa.Array:
    """Text typed as text even when every value is missing, so the SQL types never vary."""
    if isinstance(values.dtype, pd.ArrowDtype):  # read from Parquet: Arrow already
        array = pa.array(values)
        return (array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array).cast(pa.string())
    if values.dtype == object:
        return pa.array(values, type=pa.string(), from_pandas=True)
    return pa.array(values, from_pandas=True)


def coded(values: pd.Series | np.ndarray | pa.Array) -> Coded:
    if isinstance(values, pa.Array):  # text made in Arrow or DuckDB: no Python string per row
        encoded = values.dictionary_encode()
        codes = pc.fill_null(encoded.indices, -1).to_numpy()
        order = pc.sort_indices(encoded.dictionary).to_numpy()
        sorted_values = encoded.dictionary.take(order).to_numpy(zero_copy_only=False)
    else:
        codes, uniques = pd.factorize(np.asarray(values))
        order = pc.sort_indices(arrow_text(uniques)).to_numpy()
        sorted_values = uniques[order]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return Coded(lookup(rank, codes), sorted_values)


def lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """table[codes], and -1 where a code is -1 (a missing value, or no row)."""
    return np.append(table, -1)[codes]


def stacked(*parts: Coded) -> Coded:
    """The parts' rows one after another, coded together (a value in several parts gets one code)."""
    together = coded(np.concatenate([part.values for part in parts]))
    ends = np.cumsum([len(part.values) for part in parts])
    return Coded(
        np.concatenate([lookup(together.codes[end - len(p.values):end], p.codes) for p, end in zip(parts, ends)]),
        together.values,
    )


def combined(a: Coded, b: Coded, **expressions: str) -> dict[str, Coded]:
    """Per row, the text each SQL expression makes of the row's values `a` and `b`, coded. The text
    is made once per distinct pair of values, and by DuckDB, whose text functions (concat_ws,
    coalesce) decide it as they did when it was made per record."""
    width = len(b.values) + 1
    pair_codes, pairs = pd.factorize((a.codes + 1) * width + (b.codes + 1))
    a_at, b_at = np.divmod(pairs, width)
    table = pa.table({
        "a": arrow_text(a.values).take(pa.array(a_at - 1, mask=a_at == 0)),
        "b": arrow_text(b.values).take(pa.array(b_at - 1, mask=b_at == 0)),
    })
    with duckdb_connect() as con:
        con.register("pairs", table)
        made = con.sql(f"SELECT {', '.join(f'{sql} AS {name}' for name, sql in expressions.items())} FROM pairs")
        made = made.to_arrow_table()
    texts = {name: coded(made[name].combine_chunks()) for name in expressions}
    return {name: Coded(text.codes[pair_codes], text.values) for name, text in texts.items()}


def distinct_lists(owners: np.ndarray, values: Coded, n: int) -> pd.Series:
    """Per owner 0..n-1, its distinct non-empty values, sorted, as a Python list (empty when none).

    Sorted numpy codes sliced per owner: pandas' groupby(...).agg(list) costs a Series per owner."""
    present = values.codes >= 0
    present[present] = values.values[values.codes[present]] != ""
    width = max(len(values.values), 1)
    # np.unique would do, but sorts several times slower than np.sort of the distinct pairs.
    pairs = np.sort(pd.unique(owners[present] * width + values.codes[present]))
    return owner_lists(*np.divmod(pairs, width), values.values, n)


def owner_lists(owner_of: np.ndarray, code_of: np.ndarray, values: np.ndarray, n: int) -> pd.Series:
    """Per owner 0..n-1, the list of values[code] of its (owner, code) pairs, which are sorted by owner."""
    flat = values[code_of].tolist()
    bounds = np.searchsorted(owner_of, np.arange(n + 1)).tolist()
    with cycle_collector_paused():
        return pd.Series([flat[start:end] for start, end in zip(bounds[:-1], bounds[1:])], dtype=object)

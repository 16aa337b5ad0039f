"""A random sample of two columns over the whole table (scatter plots), reproducible by its seed.

Pure functions, no I/O; plain ints, floats, strings and None (never NaN or inf), ready for an API body.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.column_values import dtype_of, finite

MAX_SAMPLE_ROWS = 20_000
DEFAULT_SAMPLE_ROWS = 3_000
DEFAULT_SEED = 0


class PairSample(msgspec.Struct, kw_only=True):
    x: str
    y: str
    seed: int
    total_rows: int
    eligible: int  # rows where both values are present (and finite for numbers)
    returned: int
    sampled: bool  # True when `eligible` exceeded the requested size, so a random subset is returned
    row_index: list[int]  # 0-based positions in the dataset, ascending
    xs: list[Any]
    ys: list[Any]


def _present(col: pa.ChunkedArray) -> np.ndarray:
    mask = pc.is_valid(col)
    if pa.types.is_floating(col.type):
        mask = pc.and_(mask, pc.is_finite(col))
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return finite(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def sample_pair(table: pa.Table, x: str, y: str, *, size: int, seed: int = DEFAULT_SEED) -> PairSample:
    """Up to `size` rows drawn uniformly (without replacement) from every row where both columns have a value,
    returned in dataset order. The same table, columns, size and seed always give the same rows."""
    cx, cy = table.column(x), table.column(y)
    rows = np.flatnonzero(_present(cx) & _present(cy))
    eligible = len(rows)
    sampled = eligible > size
    if sampled:
        chosen = np.random.default_rng(seed).choice(eligible, size=size, replace=False)
        rows = rows[np.sort(chosen)]
    picked = pa.array(rows, type=pa.int64())

    def values(col: pa.ChunkedArray) -> list[Any]:
        taken = col.take(picked)
        if pa.types.is_dictionary(taken.type):
            taken = taken.cast(taken.type.value_type)
        out = taken.to_pylist()
        return out if dtype_of(col.type) in ("integer", "string", "boolean") else [_plain(v) for v in out]

    return PairSample(
        x=x,
        y=y,
        seed=seed,
        total_rows=table.num_rows,
        eligible=eligible,
        returned=len(rows),
        sampled=sampled,
        row_index=rows.tolist(),
        xs=values(cx),
        ys=values(cy),
    )

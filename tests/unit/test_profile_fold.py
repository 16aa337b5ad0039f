"""The profile folded piece by piece (api.datasets.profile_fold) must equal the whole-table profile exactly."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from api.datasets.kinds import DatasetKind
from api.datasets.profile import CATEGORICAL_MAX_DISTINCT, summarize
from api.datasets.profile_fold import ProfileFold


def tricky_table(n: int = 3000, seed: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = datetime(2021, 1, 1)
    floats = rng.normal(10, 3, n)
    floats[::17] = np.nan
    floats[::29] = np.inf
    return pa.table(
        {
            # identifier-like at first (no repeats in the first piece), then repeats: counted whole at the end
            "ID": pa.array([f"ID_{i:05d}" if i < n // 2 else f"ID_{i % 300:05d}" for i in range(n)]),
            "지역": pa.array([None if i % 7 == 0 else ["대구 중구", "대구 동구", "수성구"][i % 3] for i in range(n)]),
            # all missing in the first pieces, Korean values later
            "비고": pa.array([None if i < n // 3 else f"메모 {i % 5}" for i in range(n)], pa.string()),
            # many distinct values that still repeat: categorical by count only through the merge
            "주소": pa.array([f"대구광역시 {rng.integers(0, 2 * CATEGORICAL_MAX_DISTINCT)}번지" for _ in range(n)]),
            "flag": pa.array([None if i % 11 == 0 else bool(i % 3) for i in range(n)]),
            "count": pa.array([None if i % 13 == 0 else int(v) for i, v in enumerate(rng.integers(0, 50, n))]),
            "ratio": pa.array(floats),
            "when": pa.array([start + timedelta(hours=int(h)) for h in rng.integers(0, 9600, n)], pa.timestamp("s")),
            "day": pa.array([None if i % 5 == 0 else date(2022, 1, 1) + timedelta(days=i % 90) for i in range(n)]),
            "empty": pa.array([None] * n, pa.float64()),
            "dict": pa.array([["가", "나", None][i % 3] for i in range(n)]).dictionary_encode(),
        }
    )


def fold_in_pieces(table: pa.Table, sizes: list[int]) -> list:
    fold = ProfileFold()
    at = 0
    for size in sizes:
        fold.add(table.slice(at, size))
        at += size
    fold.add(table.slice(at))
    result = fold.result()
    assert result is not None
    return result


@pytest.mark.parametrize("sizes", [[], [1], [700, 0, 900], [100] * 20, [1499, 1]])
def test_folded_profile_equals_the_whole_table_profile(sizes):
    table = tricky_table()
    pieces = [table.slice(sum(sizes[:i]), s) for i, s in enumerate(sizes)] + [table.slice(sum(sizes))]
    # The same chunks as the streamed table (a sum's rounding, hence a mean or std, depends on the chunking).
    whole = pa.concat_tables(pieces)
    folded = fold_in_pieces(table, sizes)
    expected = msgspec.to_builtins(summarize(whole, DatasetKind.GENERIC))
    assert msgspec.to_builtins(summarize(whole, DatasetKind.GENERIC, folded)) == expected


def test_the_probe_overrides_an_identifier_guess_from_the_first_piece():
    # The first piece has no repeats, the whole column is categorical: the fold gives up on it, summarize counts it.
    n = 120_000
    table = pa.table({"code": pa.array([f"C{i}" if i < 1000 else f"C{i % 50}" for i in range(n)])})
    folded = fold_in_pieces(table, [1000])
    assert folded[0].counts is None
    summary = summarize(table, DatasetKind.GENERIC, folded)
    assert summary == summarize(table, DatasetKind.GENERIC)
    assert summary.columns[0].role == "categorical"


def test_a_piece_whose_types_differ_stops_the_fold():
    fold = ProfileFold()
    fold.add(pa.table({"a": pa.array([1, 2])}))
    fold.add(pa.table({"a": pa.array(["x", "y"])}))
    assert fold.result() is None

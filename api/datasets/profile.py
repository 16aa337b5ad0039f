"""The dataset summary computed once at upload from an in-memory ``pyarrow.Table``.

Each column is profiled on its own (in parallel for big tables), then the results are assembled with the
coordinate quality into one ``DatasetSummary``. Pure functions, no I/O. Everything returned is a msgspec
Struct holding plain ints, floats, strings and None (never NaN or inf), ready to be sent as an API body.
Per-column distributions live in ``distribution.py``, map points in ``map_points.py``; the column
helpers all three share are in ``column_values.py``.

Missing values: null everywhere, plus NaN and ±inf in float columns.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.column_values import (
    DType,
    ValueCount,
    as_numbers,
    as_strings,
    coordinate_masks,
    dtype_of,
    find_table_coordinates,
    finite,
    iso,
    top_values,
    value_counts,
)
from api.datasets.kinds import DatasetKind

Role = Literal["numeric", "categorical", "datetime", "text"]

# Which profiling code made a stored summary (`datasets.profile_version`). Bump it when `summarize` would
# give a different result for the same table; stored rows of an older version are then recomputed from
# their Parquet blob (api/datasets/reprofile.py). 1: coordinates by column name only; 2: x좌표/y좌표-style
# pairs recognised by their WGS84 values.
PROFILE_VERSION = 2

# A string column is categorical when at most this share of its non-missing values is distinct, or
# when it has at most this many distinct values and some value repeats; otherwise it is free text
# (IDs, addresses, names: a column whose every value is distinct is never categorical). Booleans are
# always categorical.
CATEGORICAL_MAX_DISTINCT = 200
CATEGORICAL_MAX_DISTINCT_RATIO = 0.5
SUMMARY_TOP_VALUES = 20
_PARALLEL_MIN_ROWS = 50_000  # below this, a thread pool costs more than it saves
# Long string columns are first probed with a random sample of this many rows: if no value repeats
# there, the column is an identifier-like text column and its distinct count is taken as its number of
# non-missing values (approximate, but saves hashing every value, the costliest step of a summary).
_TEXT_PROBE_ROWS = 20_000


# --------------------------------------------------------------------------------------- structs


class ColumnProfile(msgspec.Struct, kw_only=True):
    name: str
    dtype: DType
    missing: int
    missing_ratio: float  # 0..1, 4 decimals
    unique: int  # distinct non-missing values
    role: Role


class NumericSummary(msgspec.Struct, kw_only=True):
    column: str
    count: int  # non-missing values
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1), as pandas' describe
    min: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    max: float | None


class CategoricalSummary(msgspec.Struct, kw_only=True):
    column: str
    values: list[ValueCount]  # most frequent first (ties by value)
    other_count: int  # non-missing values outside `values`


class DateRange(msgspec.Struct, kw_only=True):
    column: str
    min: str | None  # ISO 8601
    max: str | None
    days: int | None  # calendar days from min to max, both included


class CoordinateQuality(msgspec.Struct, kw_only=True):
    lat_column: str
    lon_column: str
    valid: int
    invalid: int  # present but outside Korea's box, or exactly 0
    missing: int  # null/NaN/non-numeric in either column


class DatasetSummary(msgspec.Struct, kw_only=True):
    kind: DatasetKind
    rows: int
    column_count: int
    columns: list[ColumnProfile]
    numeric: list[NumericSummary]
    categorical: list[CategoricalSummary]
    dates: list[DateRange]
    coordinates: CoordinateQuality | None


# ------------------------------------------------------------------------------------- summarize


class _ColumnResult(msgspec.Struct, kw_only=True):
    profile: ColumnProfile
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None
    dates: DateRange | None = None


def _profile_column(name: str, col: pa.ChunkedArray) -> _ColumnResult:
    dtype = dtype_of(col.type)
    rows = len(col)

    def profile(missing: int, unique: int, role: Role) -> ColumnProfile:
        ratio = round(missing / rows, 4) if rows else 0.0
        return ColumnProfile(name=name, dtype=dtype, missing=missing, missing_ratio=ratio, unique=unique, role=role)

    if dtype in ("integer", "float"):
        col = as_numbers(col)
        count = rows - col.null_count
        quartiles = pc.quantile(col, q=[0.25, 0.5, 0.75]).to_pylist() if count else [None] * 3
        low, high = pc.min_max(col).values() if count else (None, None)
        numeric = NumericSummary(
            column=name,
            count=count,
            mean=finite(pc.mean(col).as_py()) if count else None,
            std=finite(pc.stddev(col, ddof=1).as_py()) if count > 1 else None,
            min=finite(low.as_py()) if low is not None else None,
            p25=finite(quartiles[0]),
            p50=finite(quartiles[1]),
            p75=finite(quartiles[2]),
            max=finite(high.as_py()) if high is not None else None,
        )
        unique = pc.count_distinct(col).as_py() if count else 0
        return _ColumnResult(profile=profile(col.null_count, unique, "numeric"), numeric=numeric)

    if dtype == "datetime":
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        count = rows - col.null_count
        low, high = (v.as_py() for v in pc.min_max(col).values()) if count else (None, None)
        days = None
        if low is not None and high is not None:
            days = (_as_date(high) - _as_date(low)).days + 1
        dates = DateRange(column=name, min=iso(low), max=iso(high), days=days)
        unique = pc.count_distinct(col).as_py() if count else 0
        return _ColumnResult(profile=profile(col.null_count, unique, "datetime"), dates=dates)

    strings = as_strings(col)
    non_missing = rows - strings.null_count
    if dtype != "boolean" and _looks_all_distinct(strings):
        return _ColumnResult(profile=profile(strings.null_count, non_missing, "text"))
    values, counts = value_counts(strings)
    unique = len(values)
    is_categorical = (
        dtype == "boolean"
        or unique <= CATEGORICAL_MAX_DISTINCT_RATIO * non_missing
        or (unique <= CATEGORICAL_MAX_DISTINCT and unique < non_missing)
    )
    if not is_categorical:
        return _ColumnResult(profile=profile(strings.null_count, unique, "text"))
    top, other = top_values(values, counts, SUMMARY_TOP_VALUES)
    categorical = CategoricalSummary(column=name, values=top, other_count=other)
    return _ColumnResult(profile=profile(strings.null_count, unique, "categorical"), categorical=categorical)


def _looks_all_distinct(strings: pa.ChunkedArray) -> bool:
    """Whether a long column's random sample of non-missing values has no repeats (fixed seed)."""
    if len(strings) < 5 * _TEXT_PROBE_ROWS:
        return False
    rows = np.random.default_rng(0).choice(len(strings), size=_TEXT_PROBE_ROWS, replace=False)
    probe = strings.take(pa.array(np.sort(rows))).drop_null()
    return len(probe) > CATEGORICAL_MAX_DISTINCT and pc.count_distinct(probe).as_py() == len(probe)


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def summarize(table: pa.Table, kind: DatasetKind) -> DatasetSummary:
    """Column types, missing values, describe-style statistics, top values, date ranges, coordinates."""
    names, columns = table.column_names, table.columns
    workers = min(4, os.cpu_count() or 1)
    if table.num_rows >= _PARALLEL_MIN_ROWS and workers > 1 and len(columns) > 1:
        # pyarrow and numpy release the GIL, so columns are profiled in parallel
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="profile") as pool:
            results = list(pool.map(_profile_column, names, columns))
    else:
        results = [_profile_column(n, c) for n, c in zip(names, columns, strict=True)]

    coordinates = None
    cols = find_table_coordinates(table)
    if cols is not None:
        _, _, valid, missing = coordinate_masks(table, cols)
        n_valid, n_missing = int(valid.sum()), int(missing.sum())
        coordinates = CoordinateQuality(
            lat_column=cols.lat,
            lon_column=cols.lon,
            valid=n_valid,
            invalid=table.num_rows - n_valid - n_missing,
            missing=n_missing,
        )
    return DatasetSummary(
        kind=kind,
        rows=table.num_rows,
        column_count=table.num_columns,
        columns=[r.profile for r in results],
        numeric=[r.numeric for r in results if r.numeric is not None],
        categorical=[r.categorical for r in results if r.categorical is not None],
        dates=[r.dates for r in results if r.dates is not None],
        coordinates=coordinates,
    )

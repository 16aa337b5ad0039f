"""Dataset summaries and map points computed from an in-memory ``pyarrow.Table``.

Pure functions, no I/O. Everything returned is a msgspec Struct holding plain ints, floats, strings
and None (never NaN or inf), ready to be sent as an API body. Per-column distributions live in
``distribution.py`` and share the helpers defined here.

Missing values: null everywhere, plus NaN and ±inf in float columns.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.kinds import (
    KOREA_LAT_RANGE,
    KOREA_LON_RANGE,
    CoordinateColumns,
    DatasetKind,
    detect_kind,
    find_coordinate_columns,
)

DType = Literal["integer", "float", "string", "datetime", "boolean"]
Role = Literal["numeric", "categorical", "datetime", "text"]

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

# Map labels shown by default, by dataset kind (those present are used, in this order).
DEFAULT_LABEL_COLUMNS: dict[DatasetKind, tuple[str, ...]] = {
    DatasetKind.ACCIDENT: ("사고일시", "사고유형", "ECLO"),
    DatasetKind.ACCIDENT_TEST: ("사고일시", "사고유형", "도로형태"),
    DatasetKind.CCTV: ("설치장소", "제한속도", "소재지도로명주소"),
    DatasetKind.LIGHTS: ("보안등위치명", "설치개수", "설치형태"),
    DatasetKind.ZONES: ("대상시설명", "시설종류", "소재지도로명주소"),
    DatasetKind.PARKING: ("주차장명", "주차장구분", "주차구획수"),
}

_NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


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


class ValueCount(msgspec.Struct, kw_only=True):
    value: str
    count: int


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


class MapPoint(msgspec.Struct, kw_only=True):
    lat: float
    lon: float
    label: dict[str, str | int | float | None]


class MapPoints(msgspec.Struct, kw_only=True):
    lat_column: str
    lon_column: str
    label_columns: list[str]
    total_rows: int
    valid: int
    invalid: int
    missing: int
    returned: int
    sampled: bool  # True when only a random subset of the valid points is returned
    points: list[MapPoint]


# --------------------------------------------------------------------------------- shared helpers


def dtype_of(type_: pa.DataType) -> DType:
    """The profile dtype of an Arrow type; anything unusual (binary, null, lists...) counts as string."""
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if pa.types.is_boolean(type_):
        return "boolean"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "float"
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        return "datetime"
    return "string"


def column_by_name(table: pa.Table, column: str) -> pa.ChunkedArray:
    """The (first) column with this name; ``KeyError(column)`` when there is none."""
    indices = table.schema.get_all_field_indices(column)
    if not indices:
        raise KeyError(column)
    return table.column(indices[0])


def finite(value: Any) -> float | None:
    """A plain float, or None for null/NaN/inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def as_numbers(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """An integer or float column with NaN/±inf turned into nulls (ints and clean floats unchanged)."""
    type_ = col.type
    if pa.types.is_dictionary(type_):
        col = col.cast(type_.value_type)
    if pa.types.is_decimal(col.type) or pa.types.is_float16(col.type):
        col = col.cast(pa.float64())
    if pa.types.is_floating(col.type) and len(col) and pc.any(pc.invert(pc.is_finite(col))).as_py():
        col = pc.if_else(pc.is_finite(col), col, pa.scalar(None, col.type))
    return col


def as_strings(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as (large) strings; booleans become "true"/"false"."""
    type_ = col.type
    if pa.types.is_dictionary(type_):
        col, type_ = col.cast(type_.value_type), type_.value_type
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return col
    try:
        return col.cast(pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        values = [None if v is None else str(v) for v in col.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.large_string())])


def value_counts(strings: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Distinct non-null values of a string column and their counts (unordered)."""
    if len(strings) == 0 or strings.null_count == len(strings):
        return pa.array([], pa.large_string()), np.zeros(0, dtype=np.int64)
    vc = pc.value_counts(strings)
    values, counts = vc.field("values"), vc.field("counts")
    if values.null_count:
        keep = pc.is_valid(values)
        values, counts = values.filter(keep), counts.filter(keep)
    return values, counts.to_numpy(zero_copy_only=False)


def top_values(values: pa.Array, counts: np.ndarray, top: int) -> tuple[list[ValueCount], int]:
    """The ``top`` most frequent values (ties broken by value) and the count of all the others."""
    total = int(counts.sum())
    if top <= 0 or len(values) == 0:
        return [], total
    pairs = pa.table({"values": values, "counts": counts})
    if len(pairs) > top:
        keys = [("counts", "descending"), ("values", "ascending")]
        pairs = pairs.take(pc.select_k_unstable(pairs, k=top, sort_keys=keys))
    rows = sorted(zip(pairs["values"].to_pylist(), pairs["counts"].to_pylist(), strict=True), key=_by_count)
    result = [ValueCount(value=v, count=int(c)) for v, c in rows]
    return result, total - sum(vc.count for vc in result)


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return -pair[1], pair[0]


def floats_from(col: pa.ChunkedArray) -> np.ndarray:
    """A column as float64 numpy values, NaN where missing; strings that are not numbers count as missing."""
    type_ = col.type
    if pa.types.is_dictionary(type_):
        col, type_ = col.cast(type_.value_type), type_.value_type
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        trimmed = pc.utf8_trim_whitespace(col)
        numeric = pc.match_substring_regex(trimmed, _NUMBER_RE)
        col = pc.if_else(numeric, trimmed, pa.scalar(None, type_)).cast(pa.float64())
    elif pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        col = col.cast(pa.float64())
    else:
        return np.full(len(col), np.nan)
    if len(col) == 0:
        return np.zeros(0)
    return np.asarray(col.to_numpy(), dtype=np.float64)


def coordinate_masks(table: pa.Table, cols: CoordinateColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitudes, longitudes and boolean masks (valid, missing) for every row."""
    lat, lon = floats_from(column_by_name(table, cols.lat)), floats_from(column_by_name(table, cols.lon))
    missing = np.isnan(lat) | np.isnan(lon)
    with np.errstate(invalid="ignore"):
        valid = (
            (lat >= KOREA_LAT_RANGE[0])
            & (lat <= KOREA_LAT_RANGE[1])
            & (lon >= KOREA_LON_RANGE[0])
            & (lon <= KOREA_LON_RANGE[1])
            & (lat != 0)
            & (lon != 0)
        )
    return lat, lon, valid & ~missing, missing


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


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
    cols = find_coordinate_columns(names)
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


# ---------------------------------------------------------------------------------------- points


def default_label_columns(table: pa.Table, kind: DatasetKind | None = None) -> list[str]:
    """Up to three columns worth showing next to a map point, chosen by dataset kind."""
    names = table.column_names
    kind = detect_kind(names) if kind is None else kind
    chosen = [c for c in DEFAULT_LABEL_COLUMNS.get(kind, ()) if c in names]
    if chosen:
        return chosen
    coords = find_coordinate_columns(names)
    skip = {coords.lat, coords.lon} if coords else set()
    strings = [f.name for f in table.schema if dtype_of(f.type) == "string" and f.name not in skip]
    return list(dict.fromkeys(strings))[:2]


def _label_value(value: Any) -> str | int | float | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    try:
        return finite(float(value))  # Decimal and friends
    except (TypeError, ValueError):
        return str(value)


def sample_points(
    table: pa.Table,
    *,
    max_points: int,
    label_columns: list[str] | None = None,
    seed: int = 0,
    kind: DatasetKind | None = None,
) -> MapPoints:
    """Rows with valid coordinates as map points, uniformly sampled down to ``max_points``.

    ``label_columns``: None for sensible defaults by kind (detected when not given); otherwise the
    given names that exist, in order. Raises ``ValueError`` when the table has no coordinate columns.
    """
    if max_points < 0:
        raise ValueError("max_points must not be negative")
    cols = find_coordinate_columns(table.column_names)
    if cols is None:
        raise ValueError("This dataset has no latitude/longitude columns, so it cannot be shown on a map.")
    lat, lon, valid, missing = coordinate_masks(table, cols)
    rows = np.flatnonzero(valid)
    n_valid, n_missing = len(rows), int(missing.sum())
    sampled = n_valid > max_points
    if sampled:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))

    if label_columns is None:
        labels = default_label_columns(table, kind)
    else:
        labels = list(dict.fromkeys(c for c in label_columns if c in table.column_names))
    indices = pa.array(rows, pa.int64())
    label_values = [[_label_value(v) for v in column_by_name(table, name).take(indices).to_pylist()] for name in labels]
    points = [
        MapPoint(lat=la, lon=lo, label=dict(zip(labels, values, strict=True)))
        for la, lo, *values in zip(lat[rows].tolist(), lon[rows].tolist(), *label_values, strict=True)
    ]
    return MapPoints(
        lat_column=cols.lat,
        lon_column=cols.lon,
        label_columns=labels,
        total_rows=table.num_rows,
        valid=n_valid,
        invalid=table.num_rows - n_valid - n_missing,
        missing=n_missing,
        returned=len(points),
        sampled=sampled,
        points=points,
    )

"""Reading the values of one Arrow column, shared by the summary, the distributions and the map points.

Its profile dtype; numbers with NaN/±inf as missing; strings; value counts and top values; coordinate
validity. Pure functions; results are plain ints, floats, strings and None (never NaN or inf).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.kinds import (
    KOREA_LAT_RANGE,
    KOREA_LON_RANGE,
    WGS84_LAT_RANGE,
    WGS84_LON_RANGE,
    CoordinateColumns,
    coordinate_candidates,
    find_coordinate_columns,
)

# Share of a candidate pair's present values that must lie in WGS84 ranges (a few typos do not disqualify).
WGS84_SHARE = 0.9

DType = Literal["integer", "float", "string", "datetime", "boolean"]

_NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


class ValueCount(msgspec.Struct, kw_only=True):
    value: str
    count: int


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


def _share_within(values: np.ndarray, bounds: tuple[float, float]) -> float:
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return 0.0
    return float(np.mean((present >= bounds[0]) & (present <= bounds[1])))


def find_table_coordinates(table: pa.Table) -> CoordinateColumns | None:
    """The table's latitude/longitude columns: by name (위도/경도, lat/lon, …), else a pair named like
    coordinates (x좌표/y좌표, …) whose values lie in WGS84 ranges, x and y swapped when the values say so."""
    names = table.column_names
    named = find_coordinate_columns(names)
    if named is not None:
        return named
    pair = coordinate_candidates(names)
    if pair is None:
        return None
    first, second = floats_from(column_by_name(table, pair.lat)), floats_from(column_by_name(table, pair.lon))
    if _share_within(first, WGS84_LAT_RANGE) >= WGS84_SHARE and _share_within(second, WGS84_LON_RANGE) >= WGS84_SHARE:
        return pair
    if _share_within(second, WGS84_LAT_RANGE) >= WGS84_SHARE and _share_within(first, WGS84_LON_RANGE) >= WGS84_SHARE:
        return CoordinateColumns(lat=pair.lon, lon=pair.lat)
    return None


def coordinate_masks(table: pa.Table, cols: CoordinateColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitudes, longitudes and boolean masks (valid, missing) for every row."""
    lat, lon = floats_from(column_by_name(table, cols.lat)), floats_from(column_by_name(table, cols.lon))
    missing = np.isnan(lat) | np.isnan(lon)
    return lat, lon, in_korea(lat, lon) & ~missing, missing


def in_korea(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Which (lat, lon) pairs lie in Korea's ranges and are not 0 (NaN is never inside)."""
    with np.errstate(invalid="ignore"):
        return (
            (lat >= KOREA_LAT_RANGE[0])
            & (lat <= KOREA_LAT_RANGE[1])
            & (lon >= KOREA_LON_RANGE[0])
            & (lon <= KOREA_LON_RANGE[1])
            & (lat != 0)
            & (lon != 0)
        )


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)

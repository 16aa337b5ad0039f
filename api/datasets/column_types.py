"""Column typing: which columns are read as text, and how they are typed after the read.

사고일시 becomes a millisecond timestamp, 설치연도 an integer year, coordinates float64 with junk as missing,
and seconds units become milliseconds so a fresh table equals its Parquet reload.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.column_values import find_table_coordinates
from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, DatasetKind, find_coordinate_columns
from api.errors import InvalidInput

# Columns that hold calendar years (written as floats like 2010.0 in public files) and must stay integers.
_YEAR_COLUMNS = ("설치연도",)
ACCIDENT_TIME_COLUMN = "사고일시"
ACCIDENT_TIME_FORMAT = "%Y-%m-%d %H"
_ACCIDENT_TIME_FALLBACKS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")
_SECOND_UNIT_TYPES = {pa.time32("s"): pa.time32("ms"), pa.timestamp("s"): pa.timestamp("ms")}


def pinned_column_types(kind: DatasetKind, names: list[str]) -> dict[str, pa.DataType]:
    """Columns that must not be left to type inference."""
    types: dict[str, pa.DataType] = {}
    if kind in ACCIDENT_SHAPED_KINDS:
        # Every accident column except the casualty counts is text; 사고일시 is parsed afterwards so that
        # a bad value is reported by row rather than failing inference for the whole file.
        numeric = {"사망자수", "중상자수", "경상자수", "부상자수", "ECLO"}
        types.update({n: pa.string() for n in names if n not in numeric})
    coords = find_coordinate_columns(names)
    if coords:
        types[coords.lat] = pa.string()
        types[coords.lon] = pa.string()
    for year_col in _YEAR_COLUMNS:
        if year_col in names:
            types[year_col] = pa.string()
    return types


def normalise_columns(table: pa.Table, kind: DatasetKind) -> pa.Table:
    names = table.column_names
    coords = find_table_coordinates(table)
    columns: list[pa.Array | pa.ChunkedArray] = []
    for name in names:
        col = table.column(name)
        if pa.types.is_null(col.type):
            col = col.cast(pa.string())  # an all-empty column is still a text column
        elif col.type in _SECOND_UNIT_TYPES:
            # Parquet has no seconds unit: store what a reload gives, so fresh and reloaded tables match.
            col = col.cast(_SECOND_UNIT_TYPES[col.type])
        if name == ACCIDENT_TIME_COLUMN and kind in ACCIDENT_SHAPED_KINDS:
            col = _parse_accident_time(col)
        elif name in _YEAR_COLUMNS:
            col = _parse_year(name, col)
        elif coords and name in (coords.lat, coords.lon):
            # Non-numeric coordinates become missing; the profile counts them as such.
            col = _to_float_or_null(col)
        columns.append(col)
    return pa.table(columns, names=names)


def _to_float_or_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.cast(pa.float64())
    text = pc.utf8_trim_whitespace(col)
    numeric_like = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    return pc.if_else(numeric_like, text, pa.scalar(None, pa.string())).cast(pa.float64())


def _parse_accident_time(col: pa.ChunkedArray) -> pa.ChunkedArray:
    # Milliseconds: Parquet has no seconds unit, and a table must look the same fresh and reloaded.
    parsed = pc.strptime(col, format=ACCIDENT_TIME_FORMAT, unit="ms", error_is_null=True)
    if pc.any(pc.and_(pc.is_valid(col), pc.is_null(parsed))).as_py():
        # Files re-saved by spreadsheets carry minutes/seconds ("2019-01-01 00:00:00.000"): accept those too.
        head = pc.utf8_slice_codeunits(col, 0, 19)
        for fmt in _ACCIDENT_TIME_FALLBACKS:
            parsed = pc.coalesce(parsed, pc.strptime(head, format=fmt, unit="ms", error_is_null=True))
    bad = pc.and_(pc.is_valid(col), pc.is_null(parsed))
    bad_count = pc.sum(bad).as_py() or 0
    if bad_count:
        first = pc.index(bad, True).as_py()
        raise InvalidInput(
            f"사고일시 값 '{col[first].as_py()}'(데이터 {first + 1}번째 행)을 읽을 수 없습니다. "
            "'YYYY-MM-DD HH' 형식(예: 2019-01-01 00)이어야 합니다.",
            detail={
                "column": ACCIDENT_TIME_COLUMN,
                "row": first + 1,
                "value": col[first].as_py(),
                "invalid_count": bad_count,
            },
        )
    return parsed


def _parse_year(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    """'2010.0' → 2010 (an integer year, never a timestamp)."""
    as_float = _to_float_or_null(col)
    fractional = pc.and_(pc.is_valid(as_float), pc.not_equal(pc.floor(as_float), as_float))
    if pc.any(fractional).as_py():
        first = pc.index(fractional, True).as_py()
        raise InvalidInput(
            f"{name} 열의 값 '{col[first].as_py()}'은 연도가 아닙니다.",
            detail={"column": name, "row": first + 1, "value": col[first].as_py()},
        )
    return as_float.cast(pa.int64())

"""Vectorised twin of ``encode_row``: ``encode_frame`` encodes a whole pandas DataFrame or Arrow table.

Same rules, same check order, same errors; numpy/pyarrow operations over whole columns, with Python loops
only over the rows that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.features.encoding import canonical_name, lookup_tables
from models.features.errors import FeatureError, invalid_value, missing_value
from models.features.schema import (
    DATETIME_FIELD,
    DATETIME_PATTERN,
    INTEGER_PATTERN,
    NUMERIC_FEATURES,
    NUMERIC_RANGES,
    WEEKDAYS,
)
from models.metadata import ModelMetadata

if TYPE_CHECKING:
    import pandas as pd

_MISSING, _INVALID = 0, 1


class EncodedBatch(msgspec.Struct, kw_only=True):
    """Model matrix for the valid rows of a batch, their positions in the input, and one error per bad row."""

    matrix: np.ndarray
    row_index: np.ndarray
    errors: list[tuple[int, FeatureError]]


def _to_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        return values
    try:  # a pandas Series
        return _to_array(pa.Array.from_pandas(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed object column (or an int beyond int64):
        # compare as text, like encode_row's str()
        return pa.array([None if v is None or v != v else str(v) for v in values.tolist()], pa.string())


def _columns(data: Any, ignore_unknown: bool) -> tuple[dict[str, pa.Array], dict[str, Callable[[int], Any]], int]:
    """Canonical name -> Arrow array, a getter of each column's original values (for error reports), row count."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        names, n = data.column_names, data.num_rows
        raw = {name: data.column(i) for i, name in enumerate(names)}

        def getter(col: Any) -> Callable[[int], Any]:
            return lambda i: col[i].as_py()
    else:  # pandas DataFrame
        frame: pd.DataFrame = data
        names, n = [str(c) for c in frame.columns], len(frame)
        raw = {str(name): frame.iloc[:, i] for i, name in enumerate(frame.columns)}

        def getter(col: Any) -> Callable[[int], Any]:
            return lambda i: col.iloc[i]

    columns: dict[str, pa.Array] = {}
    getters: dict[str, Callable[[int], Any]] = {}
    for key in names:
        try:
            name = canonical_name(key)
        except FeatureError:
            if ignore_unknown:
                continue
            raise
        if name is None:
            continue
        if name in columns:
            raise FeatureError(name, None, [], 0, f"{name} 열이 두 번 주어졌습니다 ('{key}').")
        columns[name] = _to_array(raw[key])
        getters[name] = getter(raw[key])
    return columns, getters, n


def _numpy(values: pa.Array, fill: Any = 0) -> np.ndarray:
    return values.fill_null(fill).to_numpy(zero_copy_only=False)


def _present_text(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Trimmed strings and a mask of non-blank, non-null entries."""
    trimmed = pc.utf8_trim_whitespace(values)
    present = _numpy(pc.not_equal(trimmed, ""), False).astype(bool)
    return trimmed, present


def _datetime_parts(values: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(present, valid, parts (n, 5): year, month, day, hour, weekday) of a 사고일시 column."""
    parts = np.zeros((n, 5), dtype=np.int64)
    low, high = NUMERIC_RANGES["사고연"]
    if pa.types.is_timestamp(values.type):
        present = _numpy(values.is_valid(), False).astype(bool)
        for j, fn in enumerate((pc.year, pc.month, pc.day, pc.hour, pc.day_of_week)):
            parts[:, j] = _numpy(fn(values))
        return present, present & (parts[:, 0] >= low) & (parts[:, 0] <= high), parts
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        present = _numpy(values.is_valid(), False).astype(bool)
        return present, np.zeros(n, dtype=bool), parts
    present = _present_text(values)[1]
    match = pc.extract_regex(values, DATETIME_PATTERN)
    matched = present & _numpy(match.is_valid(), False).astype(bool)
    mask = pa.array(matched)
    for j, group in enumerate("ymdh"):
        text = pc.if_else(mask, match.field(group), "0")
        parts[:, j] = _numpy(pc.cast(text, pa.int64()))
    year, month, day, hour = parts[:, 0], parts[:, 1], parts[:, 2], parts[:, 3]
    ok = matched & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour <= 23)
    ok &= (year >= low) & (year <= high)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(ok, day - 1, 0)
    ok &= days.astype("datetime64[M]") == months  # rejects 2019-02-30
    parts[:, 4] = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return present, ok, parts


def _integers(values: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(present, well-formed integer, value) of a numeric column."""
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        number = _numpy(values.cast(pa.float64()), np.nan).astype(np.float64)
        present = ~np.isnan(number)
        ok = present & (np.floor(number) == number)
        return present, ok, np.where(ok, number, 0.0)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        trimmed, present = _present_text(values)
        ok = present & _numpy(pc.match_substring_regex(values, INTEGER_PATTERN), False).astype(bool)
        text = pc.if_else(pa.array(ok), trimmed, "0")
        return present, ok, _numpy(pc.cast(text, pa.float64()))
    present = _numpy(values.is_valid(), False).astype(bool)  # booleans and other types are never numbers
    return present, np.zeros(n, dtype=bool), np.zeros(n)


def _categories(values: pa.Array, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(present, code or -1) of a categorical column."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        try:
            values = values.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())
    trimmed, present = _present_text(values)
    codes = _numpy(pc.index_in(trimmed, value_set=pa.array(vocabulary, pa.string())), -1).astype(np.int64)
    return present, np.where(present, codes, -1)


def encode_frame(data: Any, meta: ModelMetadata, *, ignore_unknown: bool = False) -> EncodedBatch:
    """Encode many rows at once (pandas DataFrame or pyarrow Table/RecordBatch) with the same rules as encode_row.

    Invalid rows are reported in ``errors`` as (position, FeatureError) with their first bad field; the valid
    rows are encoded into ``matrix`` and their positions (0-based, not the DataFrame index) are ``row_index``.
    Column-level problems raise FeatureError for the whole batch: an unknown column (unless ``ignore_unknown``),
    a column given twice (e.g. weather and 기상상태), or a feature that no column gives or derives.
    """
    compiled = lookup_tables(meta)
    columns, getters, n = _columns(data, ignore_unknown)
    fields: list[str] = []
    error_field = np.full(n, -1, dtype=np.int16)
    error_kind = np.zeros(n, dtype=np.int8)
    derived: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # field -> (used, labels, label index)

    def flag(field: str, bad: np.ndarray, kind: int) -> None:
        new = bad & (error_field < 0)
        if new.any():
            if field not in fields:
                fields.append(field)
            error_field[new] = fields.index(field)
            error_kind[new] = kind

    if DATETIME_FIELD in columns:
        dt_present, dt_ok, parts = _datetime_parts(columns[DATETIME_FIELD], n)
        flag(DATETIME_FIELD, dt_present & ~dt_ok, _INVALID)
    else:
        dt_ok, parts = np.zeros(n, dtype=bool), np.zeros((n, 5), dtype=np.int64)

    numbers: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # field -> (available, value)
    for position, field in enumerate(NUMERIC_FEATURES):
        if field in columns:
            present, ok, value = _integers(columns[field], n)
            low, high = NUMERIC_RANGES[field]
            ok &= (value >= low) & (value <= high)
            flag(field, present & ~ok, _INVALID)
            numbers[field] = (ok | (~present & dt_ok), np.where(present, value, parts[:, position]))
        else:
            numbers[field] = (dt_ok, parts[:, position].astype(np.float64))

    matrix = np.zeros((n, len(compiled.order)), dtype=np.float64)
    for i, field in enumerate(compiled.order):
        codes = compiled.codes.get(field)
        if codes is None:
            if field not in columns and DATETIME_FIELD not in columns:
                raise missing_value(field, meta)
            available, value = numbers[field]
            flag(field, ~available, _MISSING)
            matrix[:, i] = value
            continue
        vocabulary = meta.categories[field]
        if field in columns:
            present, code = _categories(columns[field], vocabulary)
        else:
            present, code = np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
        derivable = None
        if field == "시간대" and ("사고시" in columns or DATETIME_FIELD in columns):
            derivable, labels = numbers["사고시"][0], np.array(compiled.hour_band, dtype=object)
            index = np.where(derivable, numbers["사고시"][1], 0).astype(np.int64)
        elif field == "요일" and DATETIME_FIELD in columns:
            derivable, labels, index = dt_ok, np.array(WEEKDAYS, dtype=object), parts[:, 4]
        if derivable is None and field not in columns:
            raise missing_value(field, meta)
        if derivable is not None:
            use = ~present & derivable
            label_codes = np.array([codes.get(label, -1.0) for label in labels], dtype=np.float64)
            code = np.where(use, label_codes[index], code)
            derived[field] = (use, labels, index)
            present = present | use
        flag(field, ~present, _MISSING)
        flag(field, present & (code < 0), _INVALID)
        matrix[:, i] = code

    bad_rows = np.flatnonzero(error_field >= 0)
    errors: list[tuple[int, FeatureError]] = []
    for row in bad_rows.tolist():
        field = fields[error_field[row]]
        if error_kind[row] == _MISSING:
            errors.append((row, missing_value(field, meta)))
            continue
        if field in derived and derived[field][0][row]:
            value = derived[field][1][derived[field][2][row]]
        else:
            value = getters[field](row)
        errors.append((row, invalid_value(field, value, meta)))
    valid = error_field < 0
    return EncodedBatch(matrix=np.ascontiguousarray(matrix[valid]), row_index=np.flatnonzero(valid), errors=errors)

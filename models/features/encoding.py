"""Encoding of one row into the model matrix (``encode_row``), and the per-model lookup tables that the
row and the batch encoder (models.features.batch) share. The rules are in the models.features docstring.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from models.features.errors import FeatureError, invalid_value, missing_value, unknown_field
from models.features.schema import (
    ACCEPTED_ALIASES,
    DATETIME_FIELD,
    DATETIME_PATTERN,
    IGNORED_FIELDS,
    INTEGER_PATTERN,
    KNOWN_FIELDS,
    NUMERIC_RANGES,
    WEEKDAYS,
)
from models.metadata import ModelMetadata, PerMetadata

_DATETIME_RE = re.compile(DATETIME_PATTERN)
_INTEGER_RE = re.compile(INTEGER_PATTERN)


def canonical_name(key: Any) -> str | None:
    """Korean feature name for a key, None for ignored raw-file columns; raises FeatureError for unknown keys."""
    if key in KNOWN_FIELDS:
        return key
    if key in IGNORED_FIELDS:
        return None
    if isinstance(key, str):
        folded = key.strip()
        if folded in KNOWN_FIELDS:
            return folded
        alias = ACCEPTED_ALIASES.get(folded.lower())
        if alias is not None:
            return alias
    raise unknown_field(key)


# ---- per-model lookup tables -------------------------------------------------------------------------


class LookupTables:
    """Lookup tables derived once per metadata object (encode_row must stay in the tens of microseconds)."""

    def __init__(self, meta: ModelMetadata) -> None:
        self.meta = meta
        self.order = tuple(meta.feature_order)
        self.codes = {f: {v: float(i) for i, v in enumerate(meta.categories[f])} for f in meta.categorical_features}
        self.hour_band = [meta.hour_bands[str(h)] for h in range(24)]


# Shared with models.features.batch and warmed by LoadedModel.warm().
lookup_tables = PerMetadata(LookupTables, size=16)


def hour_band(hour: int, meta: ModelMetadata) -> str:
    """시간대 label of an hour (0–23) under the model's mapping."""
    if isinstance(hour, bool) or not isinstance(hour, int | np.integer) or not 0 <= hour <= 23:
        raise invalid_value("사고시", hour, meta)
    return meta.hour_bands[str(int(hour))]


# ---- one row -----------------------------------------------------------------------------------------


def _absent(value: Any) -> bool:
    kind = type(value)
    if kind is int:  # with str, what a JSON body holds: decided before the slower isinstance checks
        return False
    if value is None:
        return True
    if kind is str or isinstance(value, str):
        return not value.strip()
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return type(value).__name__ in ("NaTType", "NAType")  # pandas' missing markers, without importing pandas


def _parse_datetime(value: Any, meta: ModelMetadata) -> tuple[int, int, int, int, int]:
    """(year, month, day, hour, weekday) of a 사고일시 value; its year must be in NUMERIC_RANGES["사고연"]."""
    low, high = NUMERIC_RANGES["사고연"]
    if isinstance(value, np.datetime64) and not np.isnat(value):
        value = value.astype("datetime64[us]").item()
    if isinstance(value, dt.datetime):
        if low <= value.year <= high:
            return value.year, value.month, value.day, value.hour, value.weekday()
    elif isinstance(value, str):
        match = _DATETIME_RE.match(value)
        if match is not None:
            y, m, d, h = (int(g) for g in match.groups())
            if h <= 23 and low <= y <= high:
                try:
                    return y, m, d, h, dt.date(y, m, d).weekday()
                except ValueError:
                    pass
    raise invalid_value(DATETIME_FIELD, value, meta)


def _parse_integer(field: str, value: Any, meta: ModelMetadata) -> int:
    number: int | None = None
    if type(value) is int:  # a JSON number (bool is a subclass, not this type)
        number = value
    elif isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        number = int(value)
    elif isinstance(value, float | np.floating):
        number = int(value) if float(value).is_integer() else None
    elif isinstance(value, str) and _INTEGER_RE.match(value):
        number = int(float(value))
    low, high = NUMERIC_RANGES[field]
    if number is None or not low <= number <= high:
        raise invalid_value(field, value, meta)
    return number


def encode_row(row: Mapping[str, Any], meta: ModelMetadata) -> np.ndarray:
    """Encode one row into the model matrix, shape (1, n_features) float64 in ``meta.feature_order``."""
    compiled = lookup_tables(meta)
    given: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in row.items():
        name = canonical_name(key)
        if name is None:
            continue
        if name in seen:
            raise FeatureError(name, value, [], 0, f"{name} 항목이 두 번 주어졌습니다 ('{key}').")
        seen.add(name)
        if not _absent(value):
            given[name] = value
    parts = _parse_datetime(given[DATETIME_FIELD], meta) if DATETIME_FIELD in given else None
    numbers: dict[str, int | None] = {}
    for position, field in enumerate(("사고연", "사고월", "사고일", "사고시")):
        if field in given:
            numbers[field] = _parse_integer(field, given[field], meta)
        else:
            numbers[field] = parts[position] if parts is not None else None
    out: list[float] = []  # one array at the end: item assignment into an ndarray costs more per value
    for field in compiled.order:
        codes = compiled.codes.get(field)
        if codes is None:
            number = numbers[field]
            if number is None:
                raise missing_value(field, meta)
            out.append(number)
            continue
        value = given.get(field)
        if value is None:
            if field == "시간대" and numbers["사고시"] is not None:
                value = compiled.hour_band[numbers["사고시"]]
            elif field == "요일" and parts is not None:
                value = WEEKDAYS[parts[4]]
            else:
                raise missing_value(field, meta)
        code = codes.get(value) if isinstance(value, str) else None
        if code is None:
            code = codes.get(str(value).strip())
            if code is None:
                raise invalid_value(field, value, meta)
        out.append(code)
    return np.array([out], dtype=np.float64)

"""FeatureError and the Korean messages for a missing, invalid or unknown model input (row and batch alike)."""

from __future__ import annotations

import datetime as dt
import difflib
import math
from typing import Any

import numpy as np

from models.features.schema import (
    ACCEPTED_ALIASES,
    ALIASES,
    DATETIME_EXAMPLE,
    DATETIME_FIELD,
    FEATURE_ORDER,
    NUMERIC_RANGES,
)
from models.metadata import ModelMetadata


class FeatureError(ValueError):
    """A field of a prediction row is missing, unknown or has a value the model cannot take."""

    def __init__(self, field: str, value: Any, valid: list[Any], valid_count: int, message: str) -> None:
        super().__init__(message)
        self.field, self.value, self.valid, self.valid_count, self.message = field, value, valid, valid_count, message

    def to_detail(self) -> dict[str, Any]:
        value = _jsonable(self.value)
        return {"field": self.field, "value": value, "valid": self.valid, "valid_count": self.valid_count}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):  # integral floats (pandas turns int columns with gaps into floats) read as ints
        return None if math.isnan(value) else int(value) if value.is_integer() and abs(value) < 2**53 else value
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _valid_values(field: str, meta: ModelMetadata) -> list[str]:
    if field in NUMERIC_RANGES:
        low, high = NUMERIC_RANGES[field]
        return [str(i) for i in range(low, high + 1)]
    if field == DATETIME_FIELD:
        return [DATETIME_EXAMPLE]
    return list(meta.categories.get(field, ()))


def _describe_valid(field: str, values: list[str]) -> str:
    if field in NUMERIC_RANGES:
        low, high = NUMERIC_RANGES[field]
        return f"{low}부터 {high}까지의 정수"
    if field == DATETIME_FIELD:
        return f"{DATETIME_EXAMPLE} 형식의 날짜와 시각"
    shown = ", ".join(values[:10])
    return f"{shown}{', …' if len(values) > 10 else ''} (모두 {len(values)}개)"


def invalid_value(field: str, value: Any, meta: ModelMetadata) -> FeatureError:
    valid = _valid_values(field, meta)
    message = f"{field} 값 '{_jsonable(value)}'은(는) 올바르지 않습니다. 가능한 값: {_describe_valid(field, valid)}"
    return FeatureError(field, value, valid[:10], len(valid), message)


def missing_value(field: str, meta: ModelMetadata) -> FeatureError:
    valid = _valid_values(field, meta)
    source = {"시간대": "사고시 또는 사고일시", "요일": "사고일시"}.get(field, "사고일시")
    hint = f" ({source}로도 줄 수 있습니다)" if field in NUMERIC_RANGES or field in ("시간대", "요일") else ""
    message = f"{field} 값이 없습니다{hint}. 가능한 값: {_describe_valid(field, valid)}"
    return FeatureError(field, None, valid[:10], len(valid), message)


def unknown_field(key: Any) -> FeatureError:
    accepted = [*FEATURE_ORDER, DATETIME_FIELD]
    close = difflib.get_close_matches(str(key), [*accepted, *ACCEPTED_ALIASES], n=1)
    hint = f" 혹시 '{close[0]}'인가요?" if close else ""
    message = (
        f"알 수 없는 항목 '{key}'입니다.{hint} 가능한 항목: {', '.join(accepted)} (영문 별칭: {', '.join(ALIASES)})"
    )
    return FeatureError(str(key), None, accepted[:10], len(accepted), message)

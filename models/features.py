"""The one place that turns accident rows into ECLO model features (training, API, workers, chat tools).

A row gives either the 11 features directly (Korean names or English aliases) or a raw accident row:
사고일시 ("YYYY-MM-DD HH", optionally ":MM[:SS]", or a datetime) plus the categorical columns. Rules:

- Explicit values win: 사고연/사고월/사고일/사고시, 요일 and 시간대 are derived from 사고일시 (시간대 from the hour
  through the model's own ``hour_bands``) only when they are absent. 사고일시, when given, must still parse.
- Absent means: key missing, ``None``, NaN or a blank string.
- Unknown keys are errors (typos must not silently drop a feature); the other columns of the 23-column
  accident file (ID, casualty counts, ECLO, driver columns …) are accepted and ignored.
- A categorical value is encoded as its index in ``meta.categories[feature]`` (sorted, like scikit-learn's
  LabelEncoder), passed to the model as a float; numbers are passed as they are.
- Errors are checked in a fixed order (사고일시, explicit numbers, then ``meta.feature_order``) so that
  ``encode_row`` and ``encode_frame`` report the same first bad field.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import msgspec
import numpy as np

if TYPE_CHECKING:
    from models.artifact import ModelMetadata

T = TypeVar("T")

CATEGORICAL_FEATURES = ("기상상태", "노면상태", "도로형태", "사고유형", "시간대", "시군구", "요일")
NUMERIC_FEATURES = ("사고연", "사고월", "사고일", "사고시")
# v1.2.5 model input order (feature_config.json); trained models use it too.
FEATURE_ORDER = (
    "기상상태", "노면상태", "도로형태", "사고시", "사고연", "사고월", "사고유형", "사고일", "시간대", "시군구", "요일",
)  # fmt: skip
DATETIME_FIELD = "사고일시"
NUMERIC_RANGES: dict[str, tuple[int, int]] = {
    "사고연": (2000, 2100), "사고월": (1, 12), "사고일": (1, 31), "사고시": (0, 23),
}  # fmt: skip
WEEKDAYS = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")  # date.weekday() order

# 심야 21–06시, 출근 07–09시, 일반 10–17시, 퇴근 18–20시: the mapping the demo data is generated with
# (api/datasets/vocab.py). v1.2.5 did not ship its mapping, so the legacy import uses this one by default.
DEFAULT_HOUR_BANDS: dict[str, str] = {
    str(h): "심야" if h <= 6 or h >= 21 else "출근시간대" if h <= 9 else "일반시간대" if h <= 17 else "퇴근시간대"
    for h in range(24)
}

ALIASES: dict[str, str] = {
    "weather": "기상상태", "road_surface": "노면상태", "road_type": "도로형태", "accident_type": "사고유형",
    "time_band": "시간대", "district": "시군구", "weekday": "요일", "year": "사고연", "month": "사고월",
    "day": "사고일", "hour": "사고시", "datetime": DATETIME_FIELD, "accident_datetime": DATETIME_FIELD,
}  # fmt: skip
# Columns of the raw accident files that are not model inputs: accepted in a row and ignored.
IGNORED_FIELDS = frozenset(
    {
        "ID", "id", "사고유형 - 세부분류", "법규위반", "가해운전자 차종", "가해운전자 성별", "가해운전자 연령",
        "가해운전자 상해정도", "피해운전자 차종", "피해운전자 성별", "피해운전자 연령", "피해운전자 상해정도",
        "사망자수", "중상자수", "경상자수", "부상자수", "ECLO", "eclo",
    }
)  # fmt: skip
_KNOWN = frozenset((*FEATURE_ORDER, DATETIME_FIELD))
_ALIAS_OF = {korean: alias for alias, korean in ALIASES.items() if alias != "accident_datetime"}

DESCRIPTIONS: dict[str, str] = {
    "기상상태": "사고 당시 날씨",
    "노면상태": "사고 당시 도로 표면 상태",
    "도로형태": "사고 장소의 도로 형태 (대분류 - 세부)",
    "사고유형": "사고 유형 (차대사람, 차대차, 차량단독)",
    "시간대": "사고 시각대. 없으면 사고시(또는 사고일시)에서 자동 계산",
    "시군구": "사고 장소 (시도 시군구 읍면동)",
    "요일": "사고 요일. 없으면 사고일시에서 자동 계산",
    "사고연": "사고 연도. 없으면 사고일시에서 계산",
    "사고월": "사고 월 (1–12). 없으면 사고일시에서 계산",
    "사고일": "사고 일 (1–31). 없으면 사고일시에서 계산",
    "사고시": "사고 시각의 시 (0–23). 없으면 사고일시에서 계산",
}
DATETIME_EXAMPLE = "YYYY-MM-DD HH (예: 2019-01-01 00)"
# Accepted 사고일시 strings; RE2-compatible so that pyarrow's extract_regex accepts exactly the same strings.
DATETIME_PATTERN = (
    r"^\s*(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})[ T](?P<h>\d{1,2})"
    r"(?::[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?\s*$"
)
INTEGER_PATTERN = r"^\s*[+-]?\d+(?:\.0*)?\s*$"
_DATETIME_RE = re.compile(DATETIME_PATTERN)
_INTEGER_RE = re.compile(INTEGER_PATTERN)


class FeatureError(ValueError):
    """A field of a prediction row is missing, unknown or has a value the model cannot take."""

    def __init__(self, field: str, value: Any, valid: list[Any], valid_count: int, message: str) -> None:
        super().__init__(message)
        self.field, self.value, self.valid, self.valid_count, self.message = field, value, valid, valid_count, message

    def to_detail(self) -> dict[str, Any]:
        value = _jsonable(self.value)
        return {"field": self.field, "value": value, "valid": self.valid, "valid_count": self.valid_count}


class FeatureSpec(msgspec.Struct, kw_only=True):
    """One model input, as described by GET /api/predict/schema."""

    name: str
    alias: str
    type: Literal["categorical", "integer"]
    values: list[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class EncodedBatch(msgspec.Struct, kw_only=True):
    """Model matrix for the valid rows of a batch, their positions in the input, and one error per bad row."""

    matrix: np.ndarray
    row_index: np.ndarray
    errors: list[tuple[int, FeatureError]]


# ---- errors ------------------------------------------------------------------------------------------


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
    close = difflib.get_close_matches(str(key), [*accepted, *ALIASES], n=1)
    hint = f" 혹시 '{close[0]}'인가요?" if close else ""
    message = (
        f"알 수 없는 항목 '{key}'입니다.{hint} 가능한 항목: {', '.join(accepted)} (영문 별칭: {', '.join(ALIASES)})"
    )
    return FeatureError(str(key), None, accepted[:10], len(accepted), message)


def canonical_name(key: Any) -> str | None:
    """Korean feature name for a key, None for ignored raw-file columns; raises FeatureError for unknown keys."""
    if key in _KNOWN:
        return key
    if key in IGNORED_FIELDS:
        return None
    if isinstance(key, str):
        folded = key.strip()
        if folded in _KNOWN:
            return folded
        alias = ALIASES.get(folded.lower())
        if alias is not None:
            return alias
    raise unknown_field(key)


# ---- per-model lookup tables -------------------------------------------------------------------------


class _Compiled:
    """Lookup tables derived once per metadata object (encode_row must stay in the tens of microseconds)."""

    def __init__(self, meta: ModelMetadata) -> None:
        self.meta = meta
        self.order = tuple(meta.feature_order)
        self.codes = {f: {v: float(i) for i, v in enumerate(meta.categories[f])} for f in meta.categorical_features}
        self.hour_band = [meta.hour_bands[str(h)] for h in range(24)]


class PerMetadata(Generic[T]):
    """Objects derived from a model's metadata, built once per metadata object and kept for a few models.

    Keyed by id(); each entry holds its metadata (as `.meta`), so an id is never reused while it is cached.
    """

    def __init__(self, build: Callable[[ModelMetadata], T], size: int) -> None:
        self._build = build
        self._size = size
        self._entries: dict[int, T] = {}
        self._lock = threading.Lock()

    def __call__(self, meta: ModelMetadata) -> T:
        entry = self._entries.get(id(meta))
        if entry is None or entry.meta is not meta:  # type: ignore[attr-defined]
            with self._lock:
                while len(self._entries) >= self._size:
                    self._entries.pop(next(iter(self._entries)))
                entry = self._entries[id(meta)] = self._build(meta)
        return entry


_compiled = PerMetadata(_Compiled, size=16)


def hour_band(hour: int, meta: ModelMetadata) -> str:
    """시간대 label of an hour (0–23) under the model's mapping."""
    if isinstance(hour, bool) or not isinstance(hour, int | np.integer) or not 0 <= hour <= 23:
        raise invalid_value("사고시", hour, meta)
    return meta.hour_bands[str(int(hour))]


def _hour_ranges(hour_bands: Mapping[str, str]) -> dict[str, list[str]]:
    """Group hours into contiguous ranges per label, e.g. 심야 -> ["21–6시"] (wrapping past midnight)."""
    labels = [hour_bands[str(h)] for h in range(24)]
    start = next((h for h in range(24) if labels[h] != labels[h - 1]), 0)
    out: dict[str, list[str]] = {}
    h = start
    for _ in range(24):
        if labels[h] != labels[(h - 1) % 24] or h == start:
            first = h
        nxt = (h + 1) % 24
        if labels[nxt] != labels[h] or nxt == start:
            out.setdefault(labels[h], []).append(f"{first}시" if first == h else f"{first}–{h}시")
        h = nxt
    return out


def feature_schema(meta: ModelMetadata) -> list[FeatureSpec]:
    """The model's inputs in model order, with vocabularies and ranges, for clients and the API schema."""
    specs = []
    for name in meta.feature_order:
        description = DESCRIPTIONS.get(name, "")
        if name in meta.categorical_features:
            if name == "시간대":
                bands = "; ".join(f"{k} {', '.join(v)}" for k, v in _hour_ranges(meta.hour_bands).items())
                description = f"{description} ({bands})"
            specs.append(
                FeatureSpec(
                    name=name, alias=_ALIAS_OF.get(name, name), type="categorical",
                    values=list(meta.categories[name]), description=description,
                )
            )  # fmt: skip
        else:
            low, high = NUMERIC_RANGES[name]
            specs.append(
                FeatureSpec(
                    name=name, alias=_ALIAS_OF.get(name, name), type="integer",
                    minimum=low, maximum=high, description=description,
                )
            )  # fmt: skip
    return specs


# ---- one row -----------------------------------------------------------------------------------------


def _absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
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
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
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
    compiled = _compiled(meta)
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
    out = np.empty((1, len(compiled.order)), dtype=np.float64)
    for i, field in enumerate(compiled.order):
        codes = compiled.codes.get(field)
        if codes is None:
            number = numbers[field]
            if number is None:
                raise missing_value(field, meta)
            out[0, i] = number
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
        out[0, i] = code
    return out


def encode_frame(data: Any, meta: ModelMetadata, *, ignore_unknown: bool = False) -> EncodedBatch:
    """Encode many rows at once (pandas DataFrame or pyarrow Table/RecordBatch) with the same rules as encode_row.

    Invalid rows are reported in ``errors`` as (position, FeatureError) with their first bad field; the valid
    rows are encoded into ``matrix`` and their positions (0-based, not the DataFrame index) are ``row_index``.
    Column-level problems raise FeatureError for the whole batch: an unknown column (unless ``ignore_unknown``),
    a column given twice (e.g. weather and 기상상태), or a feature that no column gives or derives.
    """
    from models._batch import encode_batch

    return encode_batch(data, meta, ignore_unknown=ignore_unknown)


__all__ = [
    "ALIASES",
    "CATEGORICAL_FEATURES",
    "DATETIME_FIELD",
    "DEFAULT_HOUR_BANDS",
    "FEATURE_ORDER",
    "NUMERIC_FEATURES",
    "NUMERIC_RANGES",
    "WEEKDAYS",
    "EncodedBatch",
    "FeatureError",
    "FeatureSpec",
    "encode_frame",
    "encode_row",
    "feature_schema",
    "hour_band",
]

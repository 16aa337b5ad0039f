"""The feature spec: the model inputs, their names, aliases, ranges and patterns, and the schema a model
publishes for clients (GET /api/predict/schema). Pure constants and descriptions; no encoding here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from models.metadata import ModelMetadata

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
# (api/demo/vocab.py). v1.2.5 did not ship its mapping, so the legacy import uses this one by default.
DEFAULT_HOUR_BANDS: dict[str, str] = {
    str(h): "심야" if h <= 6 or h >= 21 else "출근시간대" if h <= 9 else "일반시간대" if h <= 17 else "퇴근시간대"
    for h in range(24)
}

ALIASES: dict[str, str] = {
    "weather": "기상상태", "road_surface": "노면상태", "road_type": "도로형태", "accident_type": "사고유형",
    "time_band": "시간대", "district": "시군구", "weekday": "요일", "year": "사고연", "month": "사고월",
    "day": "사고일", "hour": "사고시", "datetime": DATETIME_FIELD, "accident_datetime": DATETIME_FIELD,
}  # fmt: skip
# The English names v1.2.5's code and its guide used for the same inputs; accepted as well, so a client
# written against v1.2.5 works unchanged. ALIASES stays the canonical spelling shown in the schema.
LEGACY_ALIASES: dict[str, str] = {
    "weather_condition": "기상상태", "road_condition": "노면상태", "road_surface_condition": "노면상태",
    "time_period": "시간대", "day_of_week": "요일", "sigungu": "시군구", "accident_year": "사고연",
    "accident_month": "사고월", "accident_day": "사고일", "accident_hour": "사고시", "accident_road_type": "도로형태",
    "accident_weather": "기상상태", "accident_road_surface": "노면상태", "accident_district": "시군구",
    "accident_weekday": "요일", "accident_time_period": "시간대",
}  # fmt: skip
ACCEPTED_ALIASES: dict[str, str] = {**ALIASES, **LEGACY_ALIASES}
# Columns of the raw accident files that are not model inputs: accepted in a row and ignored.
IGNORED_FIELDS = frozenset(
    {
        "ID", "id", "사고유형 - 세부분류", "법규위반", "가해운전자 차종", "가해운전자 성별", "가해운전자 연령",
        "가해운전자 상해정도", "피해운전자 차종", "피해운전자 성별", "피해운전자 연령", "피해운전자 상해정도",
        "사망자수", "중상자수", "경상자수", "부상자수", "ECLO", "eclo",
    }
)  # fmt: skip
# Every name a row may give a model input under (besides the English ALIASES).
KNOWN_FIELDS = frozenset((*FEATURE_ORDER, DATETIME_FIELD))
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

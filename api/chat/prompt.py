"""The Korean system prompt: role, rules, glossary, and each selected dataset's context.

Bump PROMPT_VERSION whenever the text or the way datasets are described changes: it is part of every
response-cache key, so old answers stop being served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

PROMPT_VERSION = "2026-11-24.1"

# Wide tables are trimmed so the prompt stays small; the tools can always look further.
MAX_COLUMNS_LISTED = 40
MAX_SAMPLE_COLUMNS = 12
SAMPLE_ROWS = 3
MAX_CELL_CHARS = 30
MAX_TOP_VALUES = 5

ROLE = """당신은 대구광역시 교통안전 공공데이터를 분석하는 한국어 데이터 분석 도우미 'hab'입니다.
사용자는 분석가와 학생입니다. 항상 한국어로, 근거가 된 수치와 함께 간결하게 답하세요.

규칙:
- 데이터에 대한 질문은 추측하지 말고 제공된 도구로 확인한 뒤 답하세요. 수치는 도구 결과에서만 가져오세요.
- 데이터셋이 여러 개면 모든 도구 호출에 dataset 인자로 대상 데이터셋 이름을 정확히 넣으세요.
- 도구가 오류나 빈 결과를 돌려주면 그 이유를 읽고 인자를 고쳐 다시 시도하거나, 사용자에게 설명하세요.
- ECLO 예측에 필요한 값(기상상태, 노면상태, 도로형태, 사고유형, 시군구, 요일, 사고일시 또는 연·월·일·시)이
  질문에 빠져 있으면 임의로 채우지 말고, 빠진 항목을 자연스러운 한국어 문장으로 사용자에게 되물어 보세요.
- 도구 결과 표를 그대로 길게 붙이지 말고, 핵심을 요약하고 필요한 만큼만 표로 보여 주세요."""

GLOSSARY = """용어 설명:
- ECLO(Equivalent Casualties Level Of accident, 사고 심각도 가중 인명피해): 사망자 1명 10점, 중상자 1명 5점,
  경상자 1명 3점, 부상신고자 1명 1점을 더한 값입니다. 예) 경상 1명이면 3, 중상 1명이면 5, 사망 1명이면 10.
- 사고일시: 'YYYY-MM-DD HH' 형식의 날짜와 시(hour). 요일: 월요일~일요일.
- 기상상태(맑음, 흐림, 비, 눈, 안개 등), 노면상태(건조, 젖음/습기, 서리/결빙, 적설 등),
  도로형태(예: '교차로 - 교차로안', '단일로 - 기타'), 사고유형(차대사람, 차대차, 차량단독).
- 시군구: '대구광역시 중구 대신동'처럼 시·구·동 단위 지역명.
- 사망자수, 중상자수, 경상자수, 부상자수: 사고 한 건의 인명피해 인원.
- 가해운전자/피해운전자 차종·성별·연령·상해정도: 사고 당사자 정보(단독사고는 피해운전자 값이 비어 있음).
- CCTV, 보안등, 어린이 보호구역, 주차장 데이터는 위도·경도 좌표와 설치 정보를 담고 있습니다.
- ECLO 예측 모델은 기상상태, 노면상태, 도로형태, 사고유형, 시간대, 시군구, 요일, 사고연·월·일·시로 ECLO를 예측합니다."""

LIMIT_NOTE = (
    "분석 단계 한도에 도달했습니다. 더 이상 도구를 부르지 말고, 지금까지의 결과만으로 최선의 답을 한국어로 "
    "정리하세요. 확인하지 못한 부분은 솔직히 밝히세요."
)


@dataclass(frozen=True)
class DatasetContext:
    """What the prompt says about one dataset: its label (tools' `dataset` value), summary and a few rows."""

    label: str
    dataset_id: int
    name: str
    kind: str
    rows: int
    summary: dict[str, Any]
    sample: pa.Table | None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{value:,}"


def describe_dataset(ctx: DatasetContext) -> str:
    summary = ctx.summary
    columns = summary.get("columns", [])
    lines = [
        f"### 데이터셋 '{ctx.label}' (id {ctx.dataset_id}, 종류 {ctx.kind}, {ctx.rows:,}행 × {len(columns)}열)",
        "열(이름: 자료형, 결측 비율):",
    ]
    shown = columns[:MAX_COLUMNS_LISTED]
    lines.append(", ".join(f"{c['name']}: {c['dtype']}, 결측 {c.get('missing_ratio', 0) * 100:.1f}%" for c in shown))
    if len(columns) > len(shown):
        lines.append(f"… 외 {len(columns) - len(shown)}개 열 (get_dataframe_info 도구로 전체 확인)")
    numeric = summary.get("numeric", [])[:MAX_COLUMNS_LISTED]
    if numeric:
        lines.append("수치 열 요약(평균/최소/최대):")
        lines.append(
            "; ".join(
                f"{n['column']} {_number(n.get('mean'))}/{_number(n.get('min'))}/{_number(n.get('max'))}"
                for n in numeric
            )
        )
    categorical = summary.get("categorical", [])[:MAX_COLUMNS_LISTED]
    if categorical:
        lines.append("범주 열의 상위 값:")
        for cat in categorical:
            top = ", ".join(f"{v['value']}({v['count']:,})" for v in cat.get("values", [])[:MAX_TOP_VALUES])
            lines.append(f"- {cat['column']}: {top}")
    for date in summary.get("dates", []):
        lines.append(f"기간 {date['column']}: {date.get('min')} ~ {date.get('max')}")
    if ctx.sample is not None and ctx.sample.num_rows:
        names = ctx.sample.column_names[:MAX_SAMPLE_COLUMNS]
        lines.append(
            f"처음 {ctx.sample.num_rows}행"
            + (" (앞쪽 열만)" if len(ctx.sample.column_names) > len(names) else "")
            + ":"
        )
        lines.append(" | ".join(names))
        for row in ctx.sample.select(names).to_pylist():
            lines.append(" | ".join(_cell(row[n]) for n in names))
    return "\n".join(lines)


def system_prompt(datasets: Sequence[DatasetContext]) -> str:
    parts = [ROLE, GLOSSARY]
    if datasets:
        names = ", ".join(f"'{d.label}'" for d in datasets)
        parts.append(f"## 이번 대화에서 선택된 데이터셋: {names}")
        parts.extend(describe_dataset(d) for d in datasets)
    else:
        parts.append("## 선택된 데이터셋이 없습니다. 데이터 질문에는 먼저 데이터셋을 고르도록 안내하세요.")
    return "\n\n".join(parts)

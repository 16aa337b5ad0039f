"""Shape, types and missing values: get_dataframe_info, get_missing_values, analyze_missing_pattern,
detect_data_types."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from api.analysis import pycode
from api.analysis.columns import DATE_LIKE, column_kind, dtype_name
from api.analysis.core import Call, ToolResult
from api.analysis.render import fmt_cell, fmt_num, fmt_pct, table
from api.analysis.spec import Param, Tool
from api.analysis.tools._common import code, frame_var

_TYPE_SAMPLE = 2000
_NUMBER_WITH_UNIT = re.compile(r"^\s*[+-]?\d+(?:\.\d+)?\s*[^\d\s.,+-]{1,4}\s*$")
_LAT_NAMES = ("위도", "lat", "latitude", "y")
_LON_NAMES = ("경도", "lng", "lon", "longitude", "x")


def _first_value(series: pd.Series) -> Any:
    present = series.notna().to_numpy()
    return series.iloc[int(present.argmax())] if present.any() else None


def dataframe_info(call: Call) -> ToolResult:
    frame = call.frame
    nulls = frame.isna().sum()
    rows = [
        [str(c), dtype_name(frame[c]), fmt_num(int(nulls[c])), fmt_cell(_first_value(frame[c]), 30)]
        for c in frame.columns
    ]
    text = f"행 {len(frame):,}개, 열 {frame.shape[1]}개\n" + table(["열", "형식", "결측", "예시"], rows, unit="열")
    return ToolResult(
        text=text,
        summary=f"데이터 개요: {len(frame):,}행 × {frame.shape[1]}열",
        snippet="(df.shape, df.dtypes, df.isna().sum())",
        rows_touched=len(frame),
    )


def missing_values(call: Call) -> ToolResult:
    prelude, var = frame_var(call)
    columns = call.args["columns"] or list(call.frame.columns)
    part = call.frame[columns]
    nulls = part.isna().sum().sort_values(ascending=False, kind="stable")
    total = len(part)
    missing = nulls[nulls > 0]
    selected = pycode.lits(columns) if call.args["columns"] else None
    target = f"{var}[{selected}]" if selected else var
    snippet = code(prelude, f"{target}.isna().sum()")
    if missing.empty:
        text = f"{len(columns)}개 열 모두 결측값이 없습니다 ({total:,}행)."
        return ToolResult(text=text, summary="결측값 없음", snippet=snippet, rows_touched=total)
    rows = [[str(c), fmt_num(int(n)), fmt_pct(int(n), total)] for c, n in missing.items()]
    any_missing = int(part.isna().any(axis=1).sum())
    text = (
        f"{total:,}행 중 결측이 하나라도 있는 행: {any_missing:,} ({fmt_pct(any_missing, total)})\n"
        f"결측이 있는 열 {len(missing)}개 / {len(columns)}개:\n" + table(["열", "결측 수", "비율"], rows, unit="열")
    )
    return ToolResult(text=text, summary=f"결측 있는 열 {len(missing)}개", snippet=snippet, rows_touched=total)


def missing_pattern(call: Call) -> ToolResult:
    prelude, var = frame_var(call)
    frame = call.frame
    candidates = call.args["columns"] or list(frame.columns)
    nulls = frame[candidates].isna().sum()
    columns = [c for c in candidates if nulls[c] > 0]
    if not columns:
        return ToolResult(
            text=f"선택한 {len(candidates)}개 열에 결측값이 없습니다 ({len(frame):,}행).",
            summary="결측값 없음",
            snippet=code(prelude, f"{var}[{pycode.lits(candidates)}].isna().sum()"),
            rows_touched=len(frame),
        )
    flags = frame[columns].isna()
    patterns = flags.value_counts()
    limit = call.args["limit"]
    rows = []
    for key, count in patterns.iloc[:limit].items():
        key = key if isinstance(key, tuple) else (key,)
        missing = [str(c) for c, flag in zip(columns, key, strict=True) if flag]
        rows.append(
            [" + ".join(missing) if missing else "(결측 없음)", fmt_num(int(count)), fmt_pct(int(count), len(frame))]
        )
    lines = [
        f"결측이 있는 열 {len(columns)}개의 결측 조합 {len(patterns)}가지 ({len(frame):,}행 기준):",
        table(["함께 결측인 열", "행 수", "비율"], rows, total=len(patterns), unit="가지"),
    ]
    together = _always_together(flags)
    if together:
        lines.append("항상 함께 결측인 열 묶음: " + "; ".join(" + ".join(map(str, g)) for g in together))
    return ToolResult(
        text="\n".join(lines),
        summary=f"결측 조합 {len(patterns)}가지",
        snippet=code(prelude, f"m = {var}[{pycode.lits(columns)}].isna()", "m.value_counts()"),
        rows_touched=len(frame),
    )


def _always_together(flags: pd.DataFrame) -> list[list[Any]]:
    """Groups of 2+ columns whose missing-value masks are identical."""
    groups: dict[bytes, list[Any]] = {}
    for column in flags.columns:
        groups.setdefault(np.packbits(flags[column].to_numpy()).tobytes(), []).append(column)
    return [g for g in groups.values() if len(g) > 1]


def _semantic(series: pd.Series, name: str, unique: int, present: int) -> str:
    kind = column_kind(series)
    sample = series.dropna().iloc[:_TYPE_SAMPLE]
    lowered = name.strip().lower()
    if kind == "datetime":
        return "날짜시각"
    if kind == "bool":
        return "참거짓"
    if kind == "numeric":
        values = sample.astype("float64")
        if lowered in _LAT_NAMES and values.between(33, 39).mean() > 0.9:
            return "위도"
        if lowered in _LON_NAMES and values.between(124, 132).mean() > 0.9:
            return "경도"
        integral = bool((values % 1 == 0).all())
        if "연도" in name and integral and values.between(1900, 2100).all():
            return "연도"
        if integral and not ptypes.is_integer_dtype(series.dtype):
            return "정수값 (결측 때문에 실수로 저장됨)" if series.isna().any() else "정수값 (실수로 저장됨)"
        if integral and unique <= 12:
            return f"정수 (값 {unique}가지: 범주로도 볼 수 있음)"
        return "숫자"
    if kind == "text":
        text = sample.astype(str)
        if pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce").notna().mean() >= 0.95:
            return "숫자로 바꿀 수 있는 문자열"
        if text.str.match(_NUMBER_WITH_UNIT).mean() >= 0.9:
            return "숫자+단위 문자열 (예: 51세)"
        if text.iloc[:20].str.match(DATE_LIKE).all():
            parsed = pd.to_datetime(text.iloc[:500], errors="coerce")
            if parsed.notna().mean() >= 0.95:
                return "날짜 문자열"
        if present > 20 and unique == present:
            return "식별자 (모든 값이 다름)"
        if unique <= 50 or unique <= 0.05 * present:
            return f"범주형 ({unique}가지)"
        return "텍스트"
    inferred = pd.api.types.infer_dtype(sample, skipna=True)
    return {"date": "날짜 (객체)", "time": "시각 (객체)", "datetime": "날짜시각 (객체)"}.get(
        inferred, f"혼합 ({inferred})"
    )


def detect_types(call: Call) -> ToolResult:
    frame = call.frame
    columns = call.args["columns"] or list(frame.columns)
    rows = []
    for column in columns:
        series = frame[column]
        present = int(series.notna().sum())
        try:
            unique = int(series.nunique())
        except TypeError:  # unhashable objects
            unique = -1
        semantic = _semantic(series, str(column), unique, present) if present else "전부 결측"
        rows.append(
            [
                str(column),
                dtype_name(series),
                semantic,
                fmt_num(unique) if unique >= 0 else "-",
                fmt_cell(_first_value(series), 25),
            ]
        )
    text = (
        f"{len(columns)}개 열의 형식 추정 ({len(frame):,}행, 추정은 앞쪽 최대 {_TYPE_SAMPLE:,}개 값 기준):\n"
        + table(["열", "저장 형식", "추정 의미", "고유값 수", "예시"], rows, unit="열")
    )
    target = f"df[{pycode.lits(columns)}]" if call.args["columns"] else "df"
    return ToolResult(
        text=text,
        summary=f"열 형식 추정 {len(columns)}개",
        snippet=f'pd.DataFrame({{"dtype": {target}.dtypes.astype(str), "nunique": {target}.nunique()}})',
        rows_touched=len(frame),
    )


_COLUMNS = Param("columns", "columns", "대상 열 목록 (생략하면 모든 열)", max_items=100)

TOOLS = (
    Tool(
        "get_dataframe_info",
        "데이터셋의 행·열 수와 각 열의 형식, 결측 수, 예시 값을 보여 줍니다. 분석을 시작할 때 먼저 쓰세요.",
        (),
        dataframe_info,
        needs_rows=False,
    ),
    Tool(
        "get_missing_values",
        "열별 결측값 수와 비율을 보여 줍니다 (결측이 있는 열만, 많은 순).",
        (_COLUMNS,),
        missing_values,
        filterable=True,
    ),
    Tool(
        "analyze_missing_pattern",
        "여러 열의 결측이 어떤 조합으로 함께 나타나는지(결측 패턴)와 항상 함께 결측인 열 묶음을 보여 줍니다.",
        (_COLUMNS, Param("limit", "integer", "보여 줄 최대 패턴 수", default=10, minimum=1, maximum=50)),
        missing_pattern,
        filterable=True,
    ),
    Tool(
        "detect_data_types",
        "각 열의 저장 형식과 실제 의미(식별자, 범주형, 날짜 문자열, 숫자+단위 문자열, 위도/경도 등)를 추정합니다.",
        (_COLUMNS,),
        detect_types,
        needs_rows=False,
    ),
)

"""Time and place: get_date_range, get_temporal_pattern, get_geo_bounds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from api.analysis import pycode
from api.analysis.columns import DATE_LIKE, KIND_NAMES, column_kind, require_kind
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.render import fmt_cell, fmt_num, fmt_pct, frame_table
from api.analysis.spec import Param, Tool
from api.analysis.tools._common import code, frame_var, scope
from api.analysis.tools.categorical import AGG_NAMES, AGGREGATIONS, check_aggregation

WEEKDAY_NAMES = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")
_DATE_HINTS = ("일시", "일자", "날짜", "date", "time", "시각")
# Period -> (key function, source suffix, Korean name). Fixed table: the model picks a key, never an attribute.
PERIODS: dict[str, tuple[Callable[[pd.Series], pd.Series], str, str]] = {
    "hour": (lambda s: s.dt.hour, ".dt.hour", "시"),
    "weekday": (lambda s: s.dt.day_of_week, ".dt.day_of_week", "요일"),
    "month": (lambda s: s.dt.month, ".dt.month", "월"),
    "quarter": (lambda s: s.dt.quarter, ".dt.quarter", "분기"),
    "year": (lambda s: s.dt.year, ".dt.year", "연도"),
    "year_month": (lambda s: s.dt.to_period("M"), '.dt.to_period("M")', "연월"),
    "date": (lambda s: s.dt.normalize(), ".dt.normalize()", "날짜"),
}
TEMPORAL_AGGREGATIONS = ("count", "mean", "sum", "median", "min", "max")
KOREA_LAT, KOREA_LON = (33.0, 39.0), (124.0, 132.0)
DAEGU_LAT, DAEGU_LON = (35.60, 36.02), (128.35, 128.77)
_COORDINATE_PAIRS = (("위도", "경도"), ("lat", "lng"), ("lat", "lon"), ("latitude", "longitude"), ("y", "x"))


def _parsed_dates(series: pd.Series) -> pd.Series | None:
    """A text (or date-object) column as datetimes, when at least half of its values look like dates."""
    sample = series.dropna().iloc[:200]
    kind = column_kind(series)
    if sample.empty:
        return None
    if kind == "text":
        if sample.astype(str).str.match(DATE_LIKE).mean() < 0.5:  # e.g. "09:00:00" must not become today
            return None
    elif kind != "other" or pd.api.types.infer_dtype(sample, skipna=True) not in ("date", "datetime"):
        return None
    try:
        parsed = pd.to_datetime(series, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if parsed.notna().sum() >= 0.5 * series.notna().sum() else None


def datetime_column(call: Call, var: str) -> tuple[Any, pd.Series, str]:
    """(column, datetime Series, its source): the given column or the first date-like one; text is parsed."""
    frame = call.frame
    column = call.args["column"]
    if column is None:
        stored = [c for c in frame.columns if column_kind(frame[c]) == "datetime"]
        if stored:
            return stored[0], frame[stored[0]], pycode.col(var, stored[0])
        hinted = [c for c in frame.columns if any(h in str(c).lower() for h in _DATE_HINTS)]
        for candidate in [*hinted, *[c for c in frame.columns if c not in hinted]]:
            parsed = _parsed_dates(frame[candidate])
            if parsed is not None:
                return _converted(call, var, candidate, parsed)
        raise ToolError("날짜시각 열을 찾지 못했습니다. 날짜가 든 열이 있으면 'column' 인자로 지정하세요.")
    series = frame[column]
    kind = column_kind(series)
    if kind == "datetime":
        return column, series, pycode.col(var, column)
    if kind not in ("text", "other"):
        raise ToolError(
            f"'{column}'은(는) {KIND_NAMES[kind]} 열이라 날짜로 볼 수 없습니다. 연도 같은 숫자 열은 "
            "get_value_counts나 group_by_aggregate를 쓰세요."
        )
    parsed = _parsed_dates(series)
    if parsed is None:
        present = series.dropna()
        example = fmt_cell(present.iloc[0]) if len(present) else "전부 결측"
        raise ToolError(f"'{column}'의 값 대부분을 날짜로 해석할 수 없습니다 (예: {example}).")
    return _converted(call, var, column, parsed)


def _converted(call: Call, var: str, column: Any, parsed: pd.Series) -> tuple[Any, pd.Series, str]:
    failed = int(call.frame[column].notna().sum() - parsed.notna().sum())
    call.notes.append(f"참고: 열 '{column}'을(를) 날짜로 변환해 계산했습니다 (변환 실패 {failed:,}행 제외).")
    return column, parsed, f'pd.to_datetime({pycode.col(var, column)}, errors="coerce")'


def date_range(call: Call) -> ToolResult:
    prelude, var = frame_var(call)
    column, series, source = datetime_column(call, var)
    values = series.dropna()
    if values.empty:
        raise ToolError(f"'{column}'의 날짜 값이 모두 결측입니다.")
    first, last = values.min(), values.max()
    missing = len(series) - len(values)
    lines = [
        f"'{column}' 범위 ({scope(call)}): {fmt_cell(first)} ~ {fmt_cell(last)} ({(last - first).days:,}일)",
        f"값 {len(values):,}개, 결측 {missing:,} ({fmt_pct(missing, len(series))}), "
        f"서로 다른 날짜 {values.dt.normalize().nunique():,}일",
    ]
    years = values.dt.year.value_counts().sort_index()
    if len(years) <= 30:
        lines.append("연도별 행 수: " + ", ".join(f"{y}년 {fmt_num(int(n))}" for y, n in years.items()))
    return ToolResult(
        text="\n".join(lines),
        summary=f"{column}: {fmt_cell(first)} ~ {fmt_cell(last)}",
        snippet=code(prelude, f"s = {source}", "(s.min(), s.max(), s.count(), s.dt.year.value_counts().sort_index())"),
        rows_touched=len(values),
    )


def temporal_pattern(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    column, series, source = datetime_column(call, var)
    by = call.args["by"]
    key_of, suffix, unit = PERIODS[by]
    key = key_of(series)
    value = call.args["value_column"]
    agg = call.args["agg"] or ("mean" if value is not None else "count")
    if value is None and agg != "count":
        raise ToolError(f"agg '{agg}'에는 집계할 숫자 열 'value_column'이 필요합니다.")
    lines_code = [*prelude, f"key = {source}{suffix}"]
    if by == "weekday":
        lines_code.insert(len(prelude), "# key: 0=월요일 … 6=일요일")
    grouped = frame.groupby(key)
    if value is None:
        result = grouped.size().rename("count").to_frame()
        lines_code.append(f"{var}.groupby(key).size()")
        main = "count"
    else:
        check_aggregation(frame, value, agg)
        aggs = [AGGREGATIONS[agg]] + (["count"] if agg != "count" else [])
        result = grouped[value].agg(aggs)
        lines_code.append(f"{var}.groupby(key)[{pycode.lit(value)}].agg({pycode.lit(aggs)})")
        main = aggs[0]
    if result.empty:
        raise ToolError(f"'{column}'에 날짜 값이 없어 시간 패턴을 구할 수 없습니다.")
    display = result.copy()
    if by == "weekday":
        display.index = [WEEKDAY_NAMES[int(i)] for i in display.index]
    elif by in ("hour", "month", "quarter", "year"):
        display.index = [f"{int(i)}{unit}" for i in display.index]
    counts = result["count"]
    if value is None:
        display["비율"] = [fmt_pct(int(n), int(counts.sum())) for n in counts]
    display = display.rename(columns={a: AGG_NAMES.get(a, a) for a in result.columns})
    what = "행 수" if value is None else f"'{value}'의 {AGG_NAMES[agg]}"
    peak, low = (
        display.index[int(result[main].to_numpy().argmax())],
        display.index[int(result[main].to_numpy().argmin())],
    )
    lines = [
        f"'{column}' {unit}별 {what} ({scope(call)}, 날짜 없는 행 {int(series.isna().sum()):,} 제외):",
        frame_table(display, index_name=unit, max_rows=call.args["limit"], total=len(display)),
        f"가장 큰 {unit}: {fmt_cell(peak)} ({fmt_cell(result[main].max())}), "
        f"가장 작은 {unit}: {fmt_cell(low)} ({fmt_cell(result[main].min())})",
    ]
    return ToolResult(
        text="\n".join(lines),
        summary=f"{column} {unit}별 {what}",
        snippet=code(lines_code),
        rows_touched=int(series.notna().sum()),
    )


def _coordinate_columns(call: Call) -> tuple[Any, Any]:
    frame = call.frame
    lat, lon = call.args["lat_column"], call.args["lon_column"]
    if lat is None or lon is None:
        by_lower = {str(c).strip().lower(): c for c in frame.columns}
        for lat_name, lon_name in _COORDINATE_PAIRS:
            if lat_name in by_lower and lon_name in by_lower:
                lat = by_lower[lat_name] if lat is None else lat
                lon = by_lower[lon_name] if lon is None else lon
                break
    if lat is None or lon is None:
        raise ToolError("위도·경도 열을 찾지 못했습니다. 'lat_column'과 'lon_column' 인자로 지정하세요.")
    require_kind(frame, lat, ("numeric",), "위도")
    require_kind(frame, lon, ("numeric",), "경도")
    return lat, lon


def geo_bounds(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    lat_col, lon_col = _coordinate_columns(call)
    lat, lon = frame[lat_col].astype("float64"), frame[lon_col].astype("float64")
    present = lat.notna() & lon.notna()
    valid = lat.between(*KOREA_LAT) & lon.between(*KOREA_LON)
    bad = present & ~valid
    total = len(frame)
    n_valid, n_bad, n_missing = int(valid.sum()), int(bad.sum()), int((~present).sum())
    lines = [
        f"좌표 열: {lat_col}, {lon_col} ({scope(call)})",
        f"유효 좌표 {n_valid:,} ({fmt_pct(n_valid, total)}), 한국 범위 밖·0 좌표 {n_bad:,} ({fmt_pct(n_bad, total)}), "
        f"결측 {n_missing:,} ({fmt_pct(n_missing, total)})",
    ]
    if n_valid:
        stats = frame.loc[valid, [lat_col, lon_col]].agg(["min", "max", "mean", "median"])
        lines.append(
            f"범위: 위도 {fmt_num(stats.loc['min', lat_col])} ~ {fmt_num(stats.loc['max', lat_col])}, "
            f"경도 {fmt_num(stats.loc['min', lon_col])} ~ {fmt_num(stats.loc['max', lon_col])}"
        )
        lines.append(
            f"중심: 평균 ({fmt_num(stats.loc['mean', lat_col])}, {fmt_num(stats.loc['mean', lon_col])}), "
            f"중앙값 ({fmt_num(stats.loc['median', lat_col])}, {fmt_num(stats.loc['median', lon_col])})"
        )
        daegu = int((valid & lat.between(*DAEGU_LAT) & lon.between(*DAEGU_LON)).sum())
        lines.append(
            f"대구 범위(위도 35.60–36.02, 경도 128.35–128.77) 안: {daegu:,} (유효 좌표의 {fmt_pct(daegu, n_valid)})"
        )
    if n_bad:
        lines.append("잘못된 좌표 예 (지도에서는 빼야 합니다):")
        lines.append(frame_table(frame.loc[bad, [lat_col, lon_col]], index_name="행", max_rows=5, total=n_bad))
    lat_code, lon_code = pycode.col(var, lat_col), pycode.col(var, lon_col)
    return ToolResult(
        text="\n".join(lines),
        summary=f"좌표 범위: 유효 {n_valid:,}, 잘못됨 {n_bad:,}",
        snippet=code(
            prelude,
            f"valid = {lat_code}.between{KOREA_LAT} & {lon_code}.between{KOREA_LON}",
            f'{var}.loc[valid, {pycode.lits([lat_col, lon_col])}].agg(["min", "max", "mean", "median", "count"])',
        ),
        rows_touched=total,
    )


_DATE_COLUMN = Param("column", "column", "날짜시각 열 (생략 시 자동 선택, 날짜 문자열 열은 변환)")

TOOLS = (
    Tool(
        "get_date_range",
        "날짜시각 열의 처음·마지막 날짜, 기간, 결측, 연도별 행 수를 보여 줍니다.",
        (_DATE_COLUMN,),
        date_range,
        filterable=True,
    ),
    Tool(
        "get_temporal_pattern",
        "날짜시각 열을 시(hour)·요일·월·분기·연도·연월·날짜별로 묶어 행 수 또는 다른 숫자 열의 집계를 보여 줍니다.",
        (
            _DATE_COLUMN,
            Param("by", "choice", "묶을 단위 (기본 month)", default="month", choices=tuple(PERIODS)),
            Param("value_column", "column", "집계할 숫자 열 (선택, 예: ECLO)"),
            Param(
                "agg",
                "choice",
                "집계 함수 (기본: value_column이 있으면 mean, 없으면 count)",
                choices=TEMPORAL_AGGREGATIONS,
            ),
            Param("limit", "integer", "보여 줄 최대 행 수", default=60, minimum=1, maximum=400),
        ),
        temporal_pattern,
        filterable=True,
    ),
    Tool(
        "get_geo_bounds",
        "위도·경도 열의 범위와 중심, 유효 좌표 수, 한국 밖이거나 0인 잘못된 좌표 수를 보여 줍니다.",
        (
            Param("lat_column", "column", "위도 열 (생략 시 위도/lat/latitude/y 자동)"),
            Param("lon_column", "column", "경도 열 (생략 시 경도/lng/lon/longitude/x 자동)"),
        ),
        geo_bounds,
        filterable=True,
    ),
)

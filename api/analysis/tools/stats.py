"""Numeric summaries: get_column_statistics, calculate_percentile, get_outliers, get_correlation,
get_column_correlation_with_target."""

from __future__ import annotations

import math

import pandas as pd

from api.analysis import pycode
from api.analysis.columns import column_kind, dtype_name, numeric_columns, require_kind
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.render import fmt_cell, fmt_num, fmt_pct, frame_table, series_lines, table
from api.analysis.spec import COLUMN, Param, Tool
from api.analysis.tools._common import code, frame_var, non_null, scope

_STAT_NAMES = {
    "count": "개수", "mean": "평균", "std": "표준편차", "min": "최솟값", "25%": "1사분위수(25%)",
    "50%": "중앙값(50%)", "75%": "3사분위수(75%)", "max": "최댓값", "unique": "고유값 수", "top": "최빈값",
    "freq": "최빈값 빈도",
}  # fmt: skip
DEFAULT_PERCENTILES = [25.0, 50.0, 75.0, 90.0, 95.0, 99.0]
MAX_CORRELATION_COLUMNS = 20
MAX_TARGET_CATEGORIES = 200
# Columns an accident's ECLO is computed from: their correlation with ECLO is by construction.
_ECLO_PARTS = ("사망자수", "중상자수", "경상자수", "부상자수")


def column_statistics(call: Call) -> ToolResult:
    column = call.args["column"]
    prelude, var = frame_var(call)
    series = call.frame[column]
    non_null(call, column)
    described = series.describe()
    labelled = pd.Series({_STAT_NAMES.get(str(k), str(k)): v for k, v in described.items()}, dtype=object)
    missing = int(series.isna().sum())
    share = fmt_pct(missing, len(series))
    lines = [f"'{column}' ({dtype_name(series)}) 기술통계, {scope(call)}, 결측 {missing:,} ({share}):"]
    lines.append(series_lines(labelled))
    if column_kind(series) == "numeric":
        lines.append(f"합계: {fmt_num(series.sum())}")
    return ToolResult(
        text="\n".join(lines),
        summary=f"{column} 기술통계 ({scope(call)})",
        snippet=code(prelude, f"{pycode.col(var, column)}.describe()"),
        rows_touched=len(call.frame),
    )


def percentiles(call: Call) -> ToolResult:
    column = call.args["column"]
    kind = require_kind(call.frame, column, ("numeric", "datetime"), "백분위수 계산")
    prelude, var = frame_var(call)
    values = non_null(call, column)
    wanted = call.args["percentiles"] or DEFAULT_PERCENTILES
    quantiles = [p / 100.0 for p in wanted]
    result = values.quantile(quantiles)
    rows = [[f"{fmt_num(p)}%", fmt_cell(v)] for p, v in zip(wanted, result.tolist(), strict=True)]
    lines = [f"'{column}' 백분위수 (결측 제외 {len(values):,}개 값, 선형 보간):", table(["백분위", "값"], rows)]
    snippet_lines = [*prelude, f"s = {pycode.col(var, column)}"]
    value = call.args["value"]
    if value is not None:
        if kind != "numeric":
            raise ToolError("'value'는 숫자 열에서만 쓸 수 있습니다.")
        share = float((values <= value).mean() * 100.0)
        lines.append(f"값 {fmt_num(value)} 이하인 비율: {share:.1f}% (즉 상위 {100.0 - share:.1f}%)")
        snippet_lines.append(f"(s.quantile({pycode.lit(quantiles)}), (s.dropna() <= {pycode.lit(value)}).mean() * 100)")
    else:
        snippet_lines.append(f"s.quantile({pycode.lit(quantiles)})")
    return ToolResult(
        text="\n".join(lines),
        summary=f"{column} 백분위수 {len(wanted)}개",
        snippet=code(snippet_lines),
        rows_touched=len(values),
    )


def _span(low: float, high: float) -> str:
    return f"범위 [{fmt_num(low)}, {fmt_num(high)}]"


def outliers(call: Call) -> ToolResult:
    column = call.args["column"]
    require_kind(call.frame, column, ("numeric",), "이상치 탐지")
    prelude, var = frame_var(call)
    frame = call.frame
    series = frame[column]
    values = non_null(call, column)
    method = call.args["method"]
    c = pycode.col(var, column)
    if method == "iqr":
        k = call.args["threshold"] if call.args["threshold"] is not None else 1.5
        q1, q3 = (float(v) for v in series.quantile([0.25, 0.75]).tolist())
        low, high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
        center = (q1 + q3) / 2.0
        rule = f"IQR 기준: Q1 {fmt_num(q1)}, Q3 {fmt_num(q3)}, {_span(low, high)} 밖 (배수 {fmt_num(k)})"
        snippet_lines = [
            *prelude, f"s = {c}", "q1, q3 = s.quantile([0.25, 0.75])",
            f"low, high = q1 - {pycode.lit(k)} * (q3 - q1), q3 + {pycode.lit(k)} * (q3 - q1)",
            f"{var}[(s < low) | (s > high)]",
        ]  # fmt: skip
    else:
        k = call.args["threshold"] if call.args["threshold"] is not None else 3.0
        mean, std = float(series.mean()), float(series.std())
        if not math.isfinite(std) or std == 0:
            raise ToolError(f"'{column}'의 표준편차가 0이거나 계산되지 않아 z-점수 이상치를 구할 수 없습니다.")
        low, high = mean - k * std, mean + k * std
        center = mean
        rule = f"z-점수 기준: 평균 {fmt_num(mean)}, 표준편차 {fmt_num(std)}, |z| > {fmt_num(k)} ({_span(low, high)} 밖)"
        snippet_lines = [*prelude, f"s = {c}", "z = (s - s.mean()) / s.std()", f"{var}[z.abs() > {pycode.lit(k)}]"]
    if method == "iqr":
        mask = (series < low) | (series > high)
    else:
        mask = ((series - series.mean()) / series.std()).abs() > k
    mask = mask.fillna(False).astype(bool)
    found = frame[mask]
    below = int((found[column] < center).sum())
    lines = [
        rule,
        f"이상치 {len(found):,}개 / 값 {len(values):,}개 ({fmt_pct(len(found), len(values))}): "
        f"낮은 쪽 {below:,}, 높은 쪽 {len(found) - below:,}",
    ]
    if len(found):
        shown = call.args["columns"] or []
        order = (found[column] - center).abs().sort_values(ascending=False, kind="stable").index
        extreme = found.loc[order, [column, *[s for s in shown if s != column]]]
        lines.append("가장 극단적인 행 (행 번호는 원래 인덱스):")
        lines.append(frame_table(extreme, index_name="행", max_rows=call.args["limit"], total=len(found)))
    return ToolResult(
        text="\n".join(lines),
        summary=f"{column} 이상치 {len(found):,}개 ({method})",
        snippet=code(snippet_lines),
        rows_touched=len(values),
    )


def correlation(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    columns = call.args["columns"]
    if columns:
        for column in columns:
            require_kind(frame, column, ("numeric",), "상관계수 계산")
    else:
        columns = numeric_columns(frame)
        if len(columns) > MAX_CORRELATION_COLUMNS:
            call.notes.append(
                f"참고: 숫자 열이 많아 앞의 {MAX_CORRELATION_COLUMNS}개만 썼습니다. columns로 고를 수 있습니다."
            )
            columns = columns[:MAX_CORRELATION_COLUMNS]
    if len(columns) < 2:
        raise ToolError(
            "상관계수에는 숫자 열이 2개 이상 필요합니다. 숫자 열: "
            + (", ".join(map(str, numeric_columns(frame))) or "없음")
        )
    method = call.args["method"]
    matrix = frame[columns].corr(method=method)
    pairs = []
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            value = matrix.loc[a, b]
            if pd.notna(value):
                pairs.append((abs(float(value)), str(a), str(b), float(value)))
    pairs.sort(key=lambda p: -p[0])
    lines = [f"{'피어슨' if method == 'pearson' else '스피어만'} 상관계수, {len(columns)}개 열, {scope(call)}:"]
    if len(columns) <= 6:
        lines.append(frame_table(matrix.round(4), index_name=""))
    lines.append("절댓값이 큰 쌍:")
    lines.append(
        table(
            ["열 A", "열 B", "상관계수"], [[a, b, fmt_num(v)] for _, a, b, v in pairs[:15]], total=len(pairs), unit="쌍"
        )
    )
    undefined = [str(c) for c in columns if matrix[c].drop(c).isna().all()]
    if undefined:
        lines.append(f"값이 일정해 상관계수를 구할 수 없는 열: {', '.join(undefined)}")
    return ToolResult(
        text="\n".join(lines),
        summary=f"상관계수 {len(columns)}개 열 ({method})",
        snippet=code(prelude, f"{var}[{pycode.lits(columns)}].corr(method={pycode.lit(method)})"),
        rows_touched=len(frame),
    )


def _eta(categories: pd.Series, target: pd.Series) -> float:
    """Correlation ratio: the share of the target's spread explained by the category means, square-rooted."""
    both = pd.DataFrame({"c": categories, "y": target}).dropna()
    total = both["y"].var(ddof=0)
    if len(both) < 2 or not total or not math.isfinite(total):
        return float("nan")
    return float((both.groupby("c")["y"].transform("mean").var(ddof=0) / total) ** 0.5)


def correlation_with_target(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    target = call.args["target"]
    if target is None:
        if "ECLO" not in frame.columns:
            options = ", ".join(map(str, numeric_columns(frame))) or "없음"
            raise ToolError(f"'target' 인자(목표 숫자 열)가 필요합니다. 숫자 열: {options}")
        target = "ECLO"
    require_kind(frame, target, ("numeric",), "목표 열")
    y = frame[target]
    method = call.args["method"]
    candidates = [c for c in (call.args["columns"] or list(frame.columns)) if c != target]
    numeric, categorical, skipped = [], [], []
    for column in candidates:
        kind = column_kind(frame[column])
        unique = frame[column].nunique()
        if kind in ("numeric", "bool") and unique > 1:
            numeric.append(column)
        elif kind == "text" and 1 < unique <= MAX_TARGET_CATEGORIES:
            categorical.append(column)
        else:
            skipped.append(str(column))
    results: list[tuple[float, str, str, float]] = []
    for column in numeric:
        value = float(frame[column].astype("float64").corr(y.astype("float64"), method=method))
        results.append((abs(value) if math.isfinite(value) else -1.0, str(column), method, value))
    for column in categorical:
        value = _eta(frame[column], y)
        results.append((value if math.isfinite(value) else -1.0, str(column), "eta", value))
    if not results:
        raise ToolError(
            f"'{target}'와 비교할 수 있는 열이 없습니다 "
            f"(숫자 열 또는 고유값 {MAX_TARGET_CATEGORIES}개 이하의 문자열 열)."
        )
    results.sort(key=lambda r: -r[0])
    limit = call.args["limit"]
    rows = [
        [name, "상관계수" if measure != "eta" else "eta(범주)", fmt_num(value)]
        for _, name, measure, value in results[:limit]
    ]
    lines = [
        f"'{target}'과(와) 각 열의 관련 강도 ({scope(call)}). 숫자 열은 {method} 상관계수(-1~1), "
        "문자열 열은 상관비 eta(0~1, 범주별 평균이 설명하는 정도의 제곱근):",
        table(["열", "척도", "값"], rows, total=len(results), unit="개"),
    ]
    if skipped:
        lines.append(
            f"제외한 열 (날짜·상수·고유값이 너무 많음): {', '.join(skipped[:20])}{' …' if len(skipped) > 20 else ''}"
        )
    parts = [p for p in _ECLO_PARTS if p in map(str, numeric)]
    if str(target) == "ECLO" and parts:
        lines.append(f"참고: {', '.join(parts)}는 ECLO 계산에 직접 쓰이는 열이라 관련이 높을 수밖에 없습니다.")
    snippet_lines = [*prelude, f"y = {pycode.col(var, target)}"]
    if numeric:
        snippet_lines.append(
            f'num = {var}[{pycode.lits(numeric)}].astype("float64")'
            f'.corrwith(y.astype("float64"), method={pycode.lit(method)})'
        )
    if categorical:
        snippet_lines += [
            "def eta(c):",
            f'    both = pd.DataFrame({{"c": {var}[c], "y": y}}).dropna()',
            '    return (both.groupby("c")["y"].transform("mean").var(ddof=0) / both["y"].var(ddof=0)) ** 0.5',
            f"cat = pd.Series({{c: eta(c) for c in {pycode.lits(categorical)}}})",
        ]
    final = "pd.concat([num, cat])" if numeric and categorical else "num" if numeric else "cat"
    snippet_lines.append(final)
    return ToolResult(
        text="\n".join(lines),
        summary=f"{target}과 관련 강도 {len(results)}개 열",
        snippet=code(snippet_lines),
        rows_touched=int(y.notna().sum()),
    )


_LIMIT = Param("limit", "integer", "보여 줄 최대 행 수", default=10, minimum=1, maximum=100)
_METHOD = Param("method", "choice", "상관계수 종류 (기본 pearson)", default="pearson", choices=("pearson", "spearman"))

TOOLS = (
    Tool(
        "get_column_statistics",
        "한 열의 기술통계(개수, 평균, 표준편차, 최솟값, 사분위수, 최댓값; 문자열 열은 고유값 수·최빈값)를 구합니다.",
        (COLUMN,),
        column_statistics,
        filterable=True,
    ),
    Tool(
        "calculate_percentile",
        "숫자·날짜 열의 백분위수를 구합니다. value를 주면 그 값 이하인 비율(백분위 순위)도 구합니다.",
        (
            COLUMN,
            Param(
                "percentiles",
                "numbers",
                "백분위 목록 (0–100, 기본 25·50·75·90·95·99)",
                minimum=0,
                maximum=100,
                max_items=20,
            ),
            Param("value", "number", "이 값 이하인 비율을 구할 값 (선택)"),
        ),
        percentiles,
        filterable=True,
    ),
    Tool(
        "get_outliers",
        "숫자 열의 이상치를 IQR(기본, 배수 1.5) 또는 z-점수(기본 3) 기준으로 찾고 극단적인 행을 보여 줍니다.",
        (
            Param("column", "column", "숫자 열 이름", required=True),
            Param("method", "choice", "기준 (기본 iqr)", default="iqr", choices=("iqr", "zscore")),
            Param("threshold", "number", "IQR 배수 또는 z-점수 기준값", minimum=0.1, maximum=100),
            Param("columns", "columns", "이상치 행과 함께 보여 줄 열", max_items=10),
            _LIMIT,
        ),
        outliers,
        filterable=True,
    ),
    Tool(
        "get_correlation",
        "숫자 열들 사이의 상관계수 행렬과 상관이 큰 쌍을 구합니다 (columns 생략 시 모든 숫자 열).",
        (Param("columns", "columns", "숫자 열 목록 (2개 이상)", max_items=MAX_CORRELATION_COLUMNS), _METHOD),
        correlation,
        filterable=True,
    ),
    Tool(
        "get_column_correlation_with_target",
        "목표 숫자 열(기본 ECLO)과 다른 열들의 관련 강도를 큰 순으로 보여 줍니다. "
        "숫자 열은 상관계수, 문자열 열은 상관비 eta.",
        (
            Param("target", "column", "목표 숫자 열 (기본 ECLO)"),
            Param("columns", "columns", "비교할 열 목록 (생략 시 모든 열)", max_items=100),
            _METHOD,
            Param("limit", "integer", "보여 줄 최대 열 수", default=20, minimum=1, maximum=100),
        ),
        correlation_with_target,
        filterable=True,
    ),
)

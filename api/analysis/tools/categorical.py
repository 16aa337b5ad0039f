"""Counts and groups: get_value_counts, get_unique_values, group_by_aggregate, cross_tabulation,
summarize_categorical_distribution."""

from __future__ import annotations

from typing import Any

import pandas as pd

from api.analysis import pycode
from api.analysis.columns import KIND_NAMES, column_kind
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.render import clip, fmt_cell, fmt_num, fmt_pct, frame_table, table
from api.analysis.spec import COLUMN, Param, Tool
from api.analysis.tools._common import code, frame_var, scope

# Aggregations the model may ask for -> the pandas names passed to .agg(); nothing else reaches pandas.
AGGREGATIONS: dict[str, str] = {
    "mean": "mean", "sum": "sum", "count": "count", "min": "min", "max": "max", "median": "median",
    "std": "std", "nunique": "nunique",
}  # fmt: skip
AGG_NAMES: dict[str, str] = {
    "mean": "평균", "sum": "합계", "count": "개수", "min": "최솟값", "max": "최댓값", "median": "중앙값",
    "std": "표준편차", "nunique": "고유값 수",
}  # fmt: skip
_NUMERIC_ONLY = ("mean", "sum", "median", "std")
_ORDERED = ("min", "max")
CROSSTAB_AGGREGATIONS = ("count", "mean", "sum", "median", "min", "max")


def check_aggregation(frame: pd.DataFrame, column: Any, agg: str) -> None:
    """ToolError when an aggregation does not fit the column (e.g. the mean of a text column)."""
    kind = column_kind(frame[column])
    if agg in _NUMERIC_ONLY and kind != "numeric":
        raise ToolError(
            f"'{column}'은(는) {KIND_NAMES[kind]} 열이라 {AGG_NAMES[agg]}({agg})을(를) 구할 수 없습니다. "
            "숫자 열을 고르거나 count·nunique를 쓰세요.",
            summary=f"오류: {column}에 {agg} 불가",
        )
    if agg in _ORDERED and kind not in ("numeric", "datetime", "text"):
        raise ToolError(f"'{column}'은(는) {KIND_NAMES[kind]} 열이라 {agg}을(를) 구할 수 없습니다.")


def value_counts(call: Call) -> ToolResult:
    column = call.args["column"]
    prelude, var = frame_var(call)
    series = call.frame[column]
    counts = series.value_counts(dropna=False)
    limit = call.args["limit"]
    total = len(series)
    rows = [[k, fmt_num(int(v)), fmt_pct(int(v), total)] for k, v in counts.iloc[:limit].items()]
    unique = int(series.nunique())
    text = f"'{column}' 값별 행 수 ({scope(call)}, 고유값 {unique:,}개, 결측 포함):\n" + table(
        ["값", "행 수", "비율"], rows, total=len(counts), unit="개 값"
    )
    top = counts.index[0] if len(counts) else None
    return ToolResult(
        text=text,
        summary=f"{column} 값 분포 (최빈 {clip(fmt_cell(top), 20)})",
        snippet=code(prelude, f"{pycode.col(var, column)}.value_counts(dropna=False).head({limit})"),
        rows_touched=total,
    )


def unique_values(call: Call) -> ToolResult:
    column = call.args["column"]
    prelude, var = frame_var(call)
    series = call.frame[column]
    distinct = series.dropna().drop_duplicates()
    sort = ".sort_values()"
    try:
        distinct = distinct.sort_values()
    except TypeError:  # mixed object types cannot be ordered; keep first-seen order
        sort = ""
    limit = call.args["limit"]
    shown = [fmt_cell(v, 60) for v in distinct.iloc[:limit].tolist()]
    missing = int(series.isna().sum())
    lines = [f"'{column}' 고유값 {len(distinct):,}개 (결측 {missing:,}행 제외), {'정렬 순' if sort else '등장 순'}:"]
    body = ", ".join(shown)
    if len(distinct) > len(shown):
        body += f" …외 {len(distinct) - len(shown):,}개"
    lines.append(body)
    return ToolResult(
        text="\n".join(lines),
        summary=f"{column} 고유값 {len(distinct):,}개",
        snippet=code(prelude, f"{pycode.col(var, column)}.dropna().drop_duplicates(){sort}.head({limit}).tolist()"),
        rows_touched=len(series),
    )


def group_by_aggregate(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    keys = call.args["group_by"]
    column = call.args["column"]
    if column is not None and column in keys:
        raise ToolError(f"'{column}'은(는) 그룹 열이라 집계 대상 column으로 함께 쓸 수 없습니다.")
    aggs = call.args["agg"] or (
        ["mean"] if column is not None and column_kind(frame[column]) == "numeric" else ["count"]
    )
    if column is None and aggs != ["count"]:
        raise ToolError(
            f"{', '.join(aggs)} 집계에는 집계할 열 'column'이 필요합니다. 그룹별 행 수만 원하면 agg를 count로 두세요."
        )
    grouped = frame.groupby(keys, dropna=False, observed=True, sort=True)
    group_code = f"{var}.groupby({pycode.lits(keys)}, dropna=False, observed=True)"
    if column is None:
        result = grouped.size().rename("count").to_frame()
        expression = f"{group_code}.size()"
        sort_key = "count"
    else:
        for agg in aggs:
            check_aggregation(frame, column, agg)
        if "count" not in aggs:
            aggs = [*aggs, "count"]  # the group sizes tell the model how much to trust each value
        pandas_aggs = [AGGREGATIONS[a] for a in aggs]
        result = grouped[column].agg(pandas_aggs)
        expression = f"{group_code}[{pycode.lit(column)}].agg({pycode.lit(pandas_aggs)})"
        sort_key = pandas_aggs[0]
    order = call.args["sort"]
    if order != "group":
        ascending = order == "asc"
        result = result.sort_values(sort_key, ascending=ascending, kind="stable", na_position="last")
        expression += (
            f'.sort_values({pycode.lit(sort_key)}, ascending={ascending}, kind="stable", na_position="last")'
            if column is not None
            else f'.sort_values(ascending={ascending}, kind="stable", na_position="last")'
        )
    limit = call.args["limit"]
    display = result.rename(columns={a: AGG_NAMES.get(a, a) for a in result.columns})
    what = f"'{column}'의 {', '.join(AGG_NAMES[a] for a in aggs)}" if column is not None else "행 수"
    lines = [f"{' × '.join(map(str, keys))}별 {what} ({scope(call)}, 그룹 {len(result):,}개):"]
    lines.append(frame_table(display, index_name=" / ".join(map(str, keys)), max_rows=limit, total=len(result)))
    if column is not None:
        overall = frame[column].agg(pandas_aggs)
        lines.append("전체: " + ", ".join(f"{AGG_NAMES[a]} {fmt_cell(overall[a])}" for a in pandas_aggs))
    headline = AGG_NAMES[aggs[0]] if column is not None else "행 수"
    return ToolResult(
        text="\n".join(lines),
        summary=f"{'·'.join(map(str, keys))}별 {headline} ({len(result):,}그룹)",
        snippet=code(prelude, f"{expression}.head({limit})"),
        rows_touched=len(frame),
    )


def cross_tabulation(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    row, column, values = call.args["row"], call.args["column"], call.args["values"]
    if row == column:
        raise ToolError("'row'와 'column'에 서로 다른 열을 주세요.")
    agg = call.args["agg"]
    normalize = call.args["normalize"]
    if values is None and agg != "count":
        raise ToolError(f"agg '{agg}'에는 집계할 숫자 열 'values'가 필요합니다.")
    if values is not None:
        check_aggregation(frame, values, agg)
    if normalize != "none" and values is not None:
        raise ToolError("normalize는 values 없이 행 수를 셀 때만 쓸 수 있습니다.")
    args: dict[str, Any] = {}
    kwargs: list[str] = []
    margin = "합계" if agg in ("count", "sum") else "전체"
    if values is not None:
        args.update(values=frame[values], aggfunc=AGGREGATIONS[agg])
        kwargs += [f"values={pycode.col(var, values)}", f"aggfunc={pycode.lit(AGGREGATIONS[agg])}"]
    if normalize != "none":
        args["normalize"] = normalize
        kwargs.append(f"normalize={pycode.lit(normalize)}")
    else:
        args.update(margins=True, margins_name=margin)
        kwargs.append(f"margins=True, margins_name={pycode.lit(margin)}")
    crosstab = pd.crosstab(frame[row], frame[column], **args)
    expression = f"pd.crosstab({pycode.col(var, row)}, {pycode.col(var, column)}, {', '.join(kwargs)})"
    shown = crosstab * 100.0 if normalize != "none" else crosstab
    max_columns = call.args["max_columns"]
    hidden = max(0, shown.shape[1] - max_columns)
    if hidden:
        keep = (
            [*list(shown.columns[: max_columns - 1]), shown.columns[-1]]
            if margin in shown.columns
            else list(shown.columns[:max_columns])
        )
        shown = shown[keep]
    limit = call.args["limit"]
    if margin in shown.index and len(shown) > limit:  # keep the margins row visible when rows are cut
        shown = pd.concat([shown.iloc[: limit - 1], shown.loc[[margin]]]) if limit > 1 else shown.loc[[margin]]
    if normalize != "none":
        shown = shown.map(lambda v: f"{v:.1f}%" if pd.notna(v) else "-")
    label = "행 수" if agg == "count" else AGG_NAMES[agg]
    what = f"'{values}'의 {label}" if values is not None else label
    scale = {"all": " (전체 대비 %)", "index": " (행별 %)", "columns": " (열별 %)"}.get(normalize, "")
    lines = [
        f"{row} × {column} 교차표: {what}{scale}, {scope(call)} (결측 조합 제외)",
        frame_table(
            shown, index_name=f"{row} \\ {column}", max_rows=limit, total=len(crosstab), max_columns=max_columns + 1
        ),
    ]
    if hidden:
        lines.append(f"(열 {hidden}개 생략: max_columns를 늘리거나 조건으로 좁히세요)")
    return ToolResult(
        text="\n".join(lines),
        summary=f"{row} × {column} 교차표 ({crosstab.shape[0]}×{crosstab.shape[1]})",
        snippet=code(prelude, expression),
        rows_touched=len(frame),
    )


def categorical_summary(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    columns = call.args["columns"] or [c for c in frame.columns if column_kind(frame[c]) in ("text", "bool")]
    if not columns:
        raise ToolError("범주형(문자열) 열이 없습니다. columns로 열을 직접 고르세요.")
    top = call.args["top"]
    total = len(frame)
    lines = [f"범주형 열 {len(columns)}개의 분포 ({scope(call)}, 상위 {top}개 값):"]
    for column in columns:
        series = frame[column]
        counts = series.value_counts(dropna=False)
        unique = int(series.nunique())
        missing = int(series.isna().sum())
        if unique > 0.5 * max(total, 1) and unique > 50:
            lines.append(
                f"■ {column}: 고유값 {unique:,}개 (거의 모든 행이 달라 식별자·자유 텍스트로 보임), 결측 {missing:,}"
            )
            continue
        head = counts.iloc[:top]
        covered = int(head.sum())
        values = ", ".join(f"{fmt_cell(k, 30)} {fmt_num(int(v))} ({fmt_pct(int(v), total)})" for k, v in head.items())
        lines.append(
            f"■ {column}: 고유값 {unique:,}개, 결측 {missing:,} ({fmt_pct(missing, total)}), "
            f"상위 {len(head)}개가 {fmt_pct(covered, total)}\n  {values}"
        )
    return ToolResult(
        text="\n".join(lines),
        summary=f"범주형 분포 {len(columns)}개 열",
        snippet=code(
            prelude, f"{{c: {var}[c].value_counts(dropna=False).head({top}) for c in {pycode.lits(columns)}}}"
        ),
        rows_touched=total,
    )


TOOLS = (
    Tool(
        "get_value_counts",
        "한 열의 값별 행 수와 비율을 많은 순으로 보여 줍니다 (결측 포함).",
        (
            COLUMN,
            Param("limit", "integer", "보여 줄 최대 값 수", default=20, minimum=1, maximum=200),
        ),
        value_counts,
        filterable=True,
    ),
    Tool(
        "get_unique_values",
        "한 열의 고유값 목록(정렬)과 개수를 보여 줍니다. 조건에 쓸 정확한 값을 확인할 때 쓰세요.",
        (
            COLUMN,
            Param("limit", "integer", "보여 줄 최대 값 수", default=50, minimum=1, maximum=500),
        ),
        unique_values,
        filterable=True,
    ),
    Tool(
        "group_by_aggregate",
        "열(최대 3개)로 그룹을 나눠 다른 열을 집계합니다 (예: 기상상태별 ECLO 평균). "
        "column이 없으면 그룹별 행 수. 결과에는 항상 그룹별 개수(count)가 함께 나옵니다.",
        (
            Param("group_by", "columns", "그룹으로 나눌 열 목록", required=True, max_items=3),
            Param("column", "column", "집계할 열 (생략하면 그룹별 행 수)"),
            Param(
                "agg",
                "choices",
                "집계 함수 목록 (기본: 숫자 열이면 mean, column이 없으면 count)",
                choices=tuple(AGGREGATIONS),
                max_items=len(AGGREGATIONS),
            ),
            Param(
                "sort",
                "choice",
                "정렬: desc(첫 집계값 큰 순, 기본), asc, group(그룹 이름 순)",
                default="desc",
                choices=("desc", "asc", "group"),
            ),
            Param("limit", "integer", "보여 줄 최대 그룹 수", default=30, minimum=1, maximum=200),
        ),
        group_by_aggregate,
        filterable=True,
    ),
    Tool(
        "cross_tabulation",
        "두 열의 교차표를 만듭니다 (행 수, 또는 values 열의 평균 등). normalize로 비율(%)을 볼 수 있습니다.",
        (
            Param("row", "column", "행으로 쓸 열", required=True),
            Param("column", "column", "열로 쓸 열", required=True),
            Param("values", "column", "집계할 숫자 열 (선택)"),
            Param("agg", "choice", "집계 함수 (기본 count)", default="count", choices=CROSSTAB_AGGREGATIONS),
            Param(
                "normalize",
                "choice",
                "비율: none(기본), all, index(행별), columns(열별)",
                default="none",
                choices=("none", "all", "index", "columns"),
            ),
            Param("limit", "integer", "보여 줄 최대 행 수", default=20, minimum=1, maximum=50),
            Param("max_columns", "integer", "보여 줄 최대 열 수", default=12, minimum=1, maximum=30),
        ),
        cross_tabulation,
        filterable=True,
    ),
    Tool(
        "summarize_categorical_distribution",
        "여러 범주형(문자열) 열의 고유값 수, 결측, 상위 값과 비율을 한 번에 요약합니다.",
        (
            Param("columns", "columns", "열 목록 (생략 시 모든 문자열 열)", max_items=30),
            Param("top", "integer", "열마다 보여 줄 상위 값 수", default=5, minimum=1, maximum=20),
        ),
        categorical_summary,
        filterable=True,
    ),
)

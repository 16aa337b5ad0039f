"""Rows themselves: filter_dataframe, sort_dataframe, get_sample_rows."""

from __future__ import annotations

from typing import Any

from api.analysis import pycode
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.filters import CONDITION_HELP
from api.analysis.render import frame_table
from api.analysis.spec import Param, Tool
from api.analysis.tools._common import code, frame_var

_COLUMNS = Param("columns", "columns", "보여 줄 열 목록 (생략 시 모든 열)", max_items=30)


def _pick(call: Call, first: list[Any] | None = None) -> tuple[list[Any], str]:
    """Columns to show and the snippet suffix selecting them ("" when all columns are shown in order)."""
    chosen = call.args["columns"]
    if chosen:
        columns = [*(first or []), *[c for c in chosen if c not in (first or [])]]
        return columns, f"[{pycode.lits(columns)}]"
    if first:  # sort keys shown first; the snippet keeps the frame's own column order
        return [*first, *[c for c in call.frame.columns if c not in first]], ""
    return list(call.frame.columns), ""


def filter_rows(call: Call) -> ToolResult:
    if not call.args["conditions"]:
        raise ToolError("filter_dataframe에는 조건이 하나 이상 필요합니다. " + CONDITION_HELP)
    prelude, var = frame_var(call)
    limit = call.args["limit"]
    columns, select = _pick(call)
    text = f"일치한 행 중 처음 {min(limit, len(call.frame))}행 (행 번호는 원래 인덱스):\n" + frame_table(
        call.frame[columns], index_name="행", max_rows=limit
    )
    return ToolResult(
        text=text,
        summary=f"조건에 맞는 행 {len(call.frame):,}개",
        snippet=code(prelude, f"{var}{select}.head({limit})"),
        rows_touched=len(call.frame),
    )


def sort_rows(call: Call) -> ToolResult:
    prelude, var = frame_var(call)
    keys = call.args["by"]
    ascending = call.args["ascending"]
    limit = call.args["limit"]
    ordered = call.frame.sort_values(keys, ascending=ascending, kind="stable", na_position="last")
    columns, select = _pick(call, first=keys)
    direction = "오름차순" if ascending else "내림차순"
    text = (
        f"{', '.join(map(str, keys))} {direction} 상위 {min(limit, len(ordered))}행 (행 번호는 원래 인덱스):\n"
        + frame_table(ordered[columns], index_name="행", max_rows=limit)
    )
    sort_code = f'.sort_values({pycode.lits(keys)}, ascending={ascending}, kind="stable", na_position="last")'
    return ToolResult(
        text=text,
        summary=f"{', '.join(map(str, keys))} {direction} 정렬 상위 {min(limit, len(ordered))}행",
        snippet=code(prelude, f"{var}{sort_code}{select}.head({limit})"),
        rows_touched=len(call.frame),
    )


def sample_rows(call: Call) -> ToolResult:
    prelude, var = frame_var(call)
    n = min(call.args["n"], len(call.frame))
    method = call.args["method"]
    columns, select = _pick(call)
    if method == "head":
        rows, expression, what = call.frame.head(n), f"{var}.head({n})", "처음"
    elif method == "tail":
        rows, expression, what = call.frame.tail(n), f"{var}.tail({n})", "마지막"
    else:
        seed = call.args["seed"]
        rows = call.frame.sample(n=n, random_state=seed)
        expression, what = f"{var}.sample(n={n}, random_state={seed})", f"무작위(seed {seed})"
    text = f"{what} {n}행 (전체 {len(call.frame):,}행, 행 번호는 원래 인덱스):\n" + frame_table(
        rows[columns], index_name="행", max_rows=n
    )
    return ToolResult(
        text=text,
        summary=f"표본 {n}행 ({method})",
        snippet=code(prelude, f"{expression}{select}"),
        rows_touched=n,
    )


TOOLS = (
    Tool(
        "filter_dataframe",
        "조건에 맞는 행 수와 처음 몇 행을 보여 줍니다. 같은 conditions 인자는 다른 분석 도구에도 줄 수 있습니다. "
        + CONDITION_HELP,
        (
            Param("conditions", "conditions", "행 조건 목록 (1개 이상)", required=True, max_items=20),
            _COLUMNS,
            Param("limit", "integer", "보여 줄 최대 행 수", default=10, minimum=1, maximum=100),
        ),
        filter_rows,
        filterable=True,
    ),
    Tool(
        "sort_dataframe",
        "열 기준으로 정렬한 상위 행을 보여 줍니다 (기본 내림차순: 큰 값부터).",
        (
            Param("by", "columns", "정렬 기준 열 목록", required=True, max_items=5),
            Param("ascending", "boolean", "오름차순이면 true (기본 false)", default=False),
            _COLUMNS,
            Param("limit", "integer", "보여 줄 최대 행 수", default=10, minimum=1, maximum=100),
        ),
        sort_rows,
        filterable=True,
    ),
    Tool(
        "get_sample_rows",
        "행 몇 개를 그대로 보여 줍니다 (head: 처음, tail: 마지막, random: 무작위).",
        (
            Param("n", "integer", "행 수", default=5, minimum=1, maximum=50),
            Param("method", "choice", "방식 (기본 head)", default="head", choices=("head", "tail", "random")),
            Param("seed", "integer", "random일 때 시드", default=0, minimum=0, maximum=2**31 - 1),
            _COLUMNS,
        ),
        sample_rows,
        filterable=True,
    ),
)

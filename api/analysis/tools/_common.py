"""Small helpers shared by the tool modules."""

from __future__ import annotations

from typing import Any

import pandas as pd

from api.analysis.core import Call, ToolError

LIMIT_HELP = "보여 줄 최대 행 수"


def frame_var(call: Call) -> tuple[list[str], str]:
    """Snippet prelude and the variable naming the analysed frame (``df``, or ``d`` after conditions)."""
    if call.filtered:
        return [f"d = {call.source}"], "d"
    return [], "df"


def code(*lines: str | list[str]) -> str:
    out: list[str] = []
    for line in lines:
        out.extend(line if isinstance(line, list) else [line])
    return "\n".join(out)


def non_null(call: Call, column: Any) -> pd.Series:
    """The column's non-missing values; ToolError when there are none."""
    values = call.frame[column].dropna()
    if values.empty:
        where = " (조건 적용 후)" if call.filtered else ""
        raise ToolError(
            f"열 '{column}'의 값이 모두 결측이라{where} 계산할 수 없습니다.", summary=f"결과 없음: {column} 전부 결측"
        )
    return values


def scope(call: Call) -> str:
    """Row count for texts and summaries: "792행", or "조건에 맞는 123행" after conditions."""
    return ("조건에 맞는 " if call.filtered else "") + f"{len(call.frame):,}행"

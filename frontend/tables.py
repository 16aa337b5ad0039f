"""Tables as people read them: a missing value is a blank cell (not `None`), and the dataset profile's column
information and describe() tables, built from the summary the API computed at upload."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

DTYPE_LABELS = {"integer": "정수", "float": "실수", "string": "문자", "datetime": "날짜·시간", "boolean": "참/거짓"}
ROLE_LABELS = {"numeric": "수치", "categorical": "범주", "datetime": "날짜·시간", "text": "텍스트"}
DESCRIBE_ROWS = {
    "count": "개수", "mean": "평균", "std": "표준편차", "min": "최솟값",
    "p25": "25%", "p50": "50%", "p75": "75%", "max": "최댓값",
}  # fmt: skip


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, float):
        if value == 0 or abs(value) >= 1e-4:
            return f"{value:,.4f}".rstrip("0").rstrip(".")
        return f"{value:.3g}"
    return str(value)


def blank_missing(frame: pd.DataFrame) -> Styler:
    """The frame for st.dataframe with missing cells shown empty; the values (and sorting) stay as they are."""
    return frame.style.format(_cell)


def column_info(summary: dict[str, Any]) -> pd.DataFrame:
    """v1.2.5's 컬럼 정보 table: type, non-missing, distinct and missing counts of every column."""
    rows = summary["rows"]
    return pd.DataFrame(
        [
            {
                "열": c["name"],
                "자료형": DTYPE_LABELS.get(c["dtype"], c["dtype"]),
                "역할": ROLE_LABELS.get(c.get("role", ""), c.get("role", "")),
                "값 있음": rows - c["missing"],
                "고유값": c["unique"],
                "결측": c["missing"],
                "결측 비율(%)": round(c["missing_ratio"] * 100, 2),
            }
            for c in summary["columns"]
        ]
    )


def describe_table(summary: dict[str, Any]) -> pd.DataFrame:
    """pandas' describe() of the numeric columns (statistics as rows, columns as columns), from the profile."""
    numeric = summary.get("numeric") or []
    data = {n["column"]: [n.get(key) for key in DESCRIBE_ROWS] for n in numeric}
    return pd.DataFrame(data, index=list(DESCRIBE_ROWS.values()))

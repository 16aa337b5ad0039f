"""Column lookup with suggestions, and the coarse kind of a column that decides which operations make sense."""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

import pandas as pd
from pandas.api import types as ptypes

from api.analysis.core import ToolError

Kind = Literal["bool", "numeric", "datetime", "text", "other"]
KIND_NAMES: dict[str, str] = {
    "bool": "참거짓",
    "numeric": "숫자",
    "datetime": "날짜시각",
    "text": "문자열",
    "other": "기타(객체)",
}
_INFER_SAMPLE = 500
DATE_LIKE = re.compile(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")


def column_kind(series: pd.Series) -> Kind:
    """bool, numeric, datetime, text (strings or categories) or other (mixed Python objects)."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return "bool"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_string_dtype(dtype):
        return "text"
    if ptypes.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series.iloc[:_INFER_SAMPLE], skipna=True)
        if inferred in ("string", "empty"):
            return "text"
    return "other"


def dtype_name(series: pd.Series) -> str:
    """Korean name of a column's storage type (정수, 실수, 문자열 …)."""
    kind = column_kind(series)
    if kind == "numeric":
        return "정수" if ptypes.is_integer_dtype(series.dtype) else "실수"
    return KIND_NAMES[kind]


def resolve_column(frame: pd.DataFrame, name: Any, *, arg: str = "column") -> Any:
    """The frame's column label for a name given by the model; ToolError with close matches otherwise."""
    if not isinstance(name, str):
        raise ToolError(f"'{arg}' 인자는 열 이름(문자열)이어야 합니다. 받은 값: {_short(name)}")
    labels = {str(c): c for c in frame.columns}
    if name in labels:
        return labels[name]
    stripped = name.strip()
    if stripped in labels:
        return labels[stripped]
    folded = {k.casefold().replace(" ", ""): v for k, v in labels.items()}
    key = stripped.casefold().replace(" ", "")
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(stripped, list(labels), n=3, cutoff=0.4)
    hint = f" 비슷한 열: {', '.join(repr(c) for c in close)}." if close else ""
    shown = ", ".join(list(labels)[:40]) + (f" …외 {len(labels) - 40}개" if len(labels) > 40 else "")
    raise ToolError(
        f"열 '{_short(name, 60)}'이(가) 데이터셋에 없습니다.{hint} 사용할 수 있는 열: {shown}",
        summary=f"오류: 없는 열 {_short(name, 30)}",
    )


def require_kind(frame: pd.DataFrame, column: Any, kinds: tuple[Kind, ...], purpose: str) -> Kind:
    """ToolError unless the column is of one of ``kinds``; lists columns that would fit."""
    kind = column_kind(frame[column])
    if kind in kinds:
        return kind
    fitting = [str(c) for c in frame.columns if column_kind(frame[c]) in kinds]
    wanted = "·".join(KIND_NAMES[k] for k in kinds)
    options = ", ".join(fitting[:30]) if fitting else "없음"
    raise ToolError(
        f"열 '{column}'은(는) {KIND_NAMES[kind]} 형식이라 {purpose}에 쓸 수 없습니다 ({wanted} 열만 가능). "
        f"가능한 열: {options}",
        summary=f"오류: {column} 형식 불일치",
    )


def numeric_columns(frame: pd.DataFrame) -> list[Any]:
    return [c for c in frame.columns if column_kind(frame[c]) == "numeric"]


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"

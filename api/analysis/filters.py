"""Structured row conditions ({column, op, value}) -> boolean mask and the same mask as pandas source.

No strings are evaluated: every op maps to a fixed function here, and every value is coerced toward the
column's kind (numbers for numeric columns, Timestamps for datetime columns, text for text columns) before
it is compared. Partial dates ("2021", "2021-03", "2021-03-05") on datetime columns mean the whole period:
``==`` becomes a between over the period, ``>``/``<=`` compare with its end, ``>=``/``<`` with its start.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

import pandas as pd

from api.analysis import pycode
from api.analysis.columns import KIND_NAMES, Kind, column_kind, resolve_column
from api.analysis.core import ToolError
from api.analysis.render import fmt_cell, fmt_num, fmt_pct

OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "between", "is_null", "not_null")
COMBINES = ("and", "or")
MAX_CONDITIONS = 20
MAX_IN_VALUES = 500
_ORDERING = (">", ">=", "<", "<=", "between")
_CONDITION_KEYS = ("column", "op", "value")
_PARTIAL_DATE = re.compile(r"^\s*(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?\s*$")
CONDITION_HELP = (
    '조건 형식: [{"column": "기상상태", "op": "==", "value": "비"}, …], '
    f"op: {' '.join(OPS)}; combine: and(기본) 또는 or."
)
_TRUE = {"true", "참", "예", "y", "yes", "1"}
_FALSE = {"false", "거짓", "아니오", "n", "no", "0"}

# op -> (mask function, source template); {s} is the column expression, {v} the value literal.
_COMPARE: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "==": (operator.eq, "{s} == {v}"),
    "!=": (operator.ne, "{s} != {v}"),
    ">": (operator.gt, "{s} > {v}"),
    ">=": (operator.ge, "{s} >= {v}"),
    "<": (operator.lt, "{s} < {v}"),
    "<=": (operator.le, "{s} <= {v}"),
}


@dataclass(frozen=True)
class Condition:
    """One validated condition; ``op`` may be the internal "not_between" (``!=`` against a partial date)."""

    column: Any
    op: str
    value: Any = None

    def _mask_and_template(self, series: pd.Series) -> tuple[pd.Series, str]:
        op, value = self.op, self.value
        if op in _COMPARE:
            function, template = _COMPARE[op]
            return function(series, value), template.format(s="{s}", v=pycode.lit(value))
        if op == "in":
            return series.isin(value), "{s}.isin(" + pycode.lit(value) + ")"
        if op == "not_in":
            return ~series.isin(value), "~{s}.isin(" + pycode.lit(value) + ")"
        if op == "contains":
            return series.str.contains(value, regex=False, na=False), (
                "{s}.str.contains(" + pycode.lit(value) + ", regex=False, na=False)"
            )
        if op in ("between", "not_between"):
            low, high = value
            mask = series.between(low, high)
            code = "{s}.between(" + pycode.lit(low) + ", " + pycode.lit(high) + ")"
            return (~mask, "~" + code) if op == "not_between" else (mask, code)
        if op == "is_null":
            return series.isna(), "{s}.isna()"
        if op == "not_null":
            return series.notna(), "{s}.notna()"
        raise AssertionError(op)  # parse_conditions only lets the ops above through

    def evaluate(self, frame: pd.DataFrame, source: str = "df") -> tuple[pd.Series, str]:
        """(boolean mask over frame, the same mask as source code over ``source``)."""
        mask, template = self._mask_and_template(frame[self.column])
        code = template.replace("{s}", pycode.col(source, self.column))
        if mask.dtype != bool:  # nullable results (Int64, boolean …) carry NA, which cannot index a frame
            mask = mask.fillna(False).astype(bool)
            code = f"({code}).fillna(False)"
        return mask, code

    def describe(self) -> str:
        if self.op in ("is_null", "not_null"):
            return f"{self.column} {'결측' if self.op == 'is_null' else '결측 아님'}"
        if self.op in ("between", "not_between"):
            low, high = self.value
            word = "범위" if self.op == "between" else "범위 밖"
            return f"{self.column} {word} {fmt_cell(low)} ~ {fmt_cell(high)}"
        if self.op in ("in", "not_in"):
            shown = ", ".join(fmt_cell(v) for v in self.value[:8]) + (" …" if len(self.value) > 8 else "")
            return f"{self.column} {self.op} [{shown}]"
        return f"{self.column} {self.op} {fmt_cell(self.value)}"


def parse_combine(raw: Any) -> str:
    if raw is None:
        return "and"
    if isinstance(raw, str) and raw.strip().lower() in COMBINES:
        return raw.strip().lower()
    raise ToolError(f'\'combine\' 인자는 "and" 또는 "or"여야 합니다. 받은 값: {_show(raw)}')


def parse_conditions(raw: Any, frame: pd.DataFrame) -> list[Condition]:
    """Validate the model's conditions against the frame; ToolError with a precise Korean reason otherwise."""
    if raw is None:
        return []
    if isinstance(raw, str):  # models sometimes send the array as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ToolError(_usage("'conditions'는 조건 객체의 배열이어야 합니다.")) from None
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise ToolError(_usage(f"'conditions'는 조건 객체의 배열이어야 합니다. 받은 값: {_show(raw)}"))
    if len(raw) > MAX_CONDITIONS:
        raise ToolError(f"조건은 최대 {MAX_CONDITIONS}개까지 줄 수 있습니다 (받은 조건 {len(raw)}개).")
    return [_parse_one(item, i + 1, frame) for i, item in enumerate(raw)]


def build_mask(frame: pd.DataFrame, conditions: list[Condition], combine: str) -> tuple[pd.Series, str]:
    """Combined mask and its source, e.g. ``(df["기상상태"] == "비") & (df["ECLO"] >= 5)``."""
    parts = [c.evaluate(frame) for c in conditions]
    join = operator.and_ if combine == "and" else operator.or_
    mask = reduce(join, (m for m, _ in parts))
    code = f" {'&' if combine == 'and' else '|'} ".join(f"({c})" for _, c in parts)
    return mask, code


def apply_conditions(frame: pd.DataFrame, conditions: list[Condition], combine: str) -> tuple[pd.DataFrame, str]:
    """Filtered frame and its source expression (``df`` when there are no conditions)."""
    if not conditions:
        return frame, "df"
    mask, code = build_mask(frame, conditions, combine)
    return frame[mask], f"df[{code}]"


def describe_conditions(conditions: list[Condition], combine: str) -> str:
    return f" {'그리고' if combine == 'and' else '또는'} ".join(c.describe() for c in conditions)


def explain_empty(frame: pd.DataFrame, conditions: list[Condition], combine: str) -> str:
    """Why no row matched: the match count of each condition alone, with close values for text equality."""
    lines = [f"조건에 맞는 행이 없습니다 (전체 {len(frame):,}행, 결합: {combine})."]
    if len(conditions) > 1:
        lines.append("조건별 단독 일치 행 수:")
    for condition in conditions:
        mask, _ = condition.evaluate(frame)
        count = int(mask.sum())
        line = f"- {condition.describe()}: {count:,}행"
        hint = _close_values(frame[condition.column], condition)
        if hint:
            line += f" — 비슷한 실제 값: {hint}"
        lines.append(line)
    lines.append("값의 철자를 확인하거나(get_unique_values) 조건을 넓혀 다시 시도하세요.")
    return "\n".join(lines)


def filter_summary(conditions: list[Condition], combine: str, matched: int, total: int) -> str:
    share = fmt_pct(matched, total)
    return (
        f"조건: {describe_conditions(conditions, combine)} → {fmt_num(matched)}행 / 전체 {fmt_num(total)}행 ({share})"
    )


# ---- parsing ---------------------------------------------------------------------------------------------


def _parse_one(item: Any, number: int, frame: pd.DataFrame) -> Condition:
    where = f"{number}번째 조건"
    if not isinstance(item, Mapping):
        raise ToolError(_usage(f"{where}이 객체가 아닙니다: {_show(item)}"))
    unknown = [k for k in item if k not in _CONDITION_KEYS]
    if unknown:
        raise ToolError(_usage(f"{where}에 알 수 없는 키 {', '.join(_show(k) for k in unknown)}가 있습니다."))
    if item.get("column") is None:
        raise ToolError(_usage(f"{where}에 'column'이 없습니다."))
    column = resolve_column(frame, item["column"], arg=f"{where}의 column")
    op = item.get("op")
    if not isinstance(op, str) or op.strip() not in OPS:
        close = difflib.get_close_matches(str(op), OPS, n=1, cutoff=0.3) if isinstance(op, str) else []
        hint = f" 혹시 '{close[0]}'인가요?" if close else ""
        raise ToolError(f"{where}의 op {_show(op)}는 지원하지 않습니다.{hint} 가능한 op: {' '.join(OPS)}")
    op = op.strip()
    series = frame[column]
    kind = column_kind(series)
    tz = series.dtype.tz if isinstance(series.dtype, pd.DatetimeTZDtype) else None
    value = item.get("value")
    if op in ("is_null", "not_null"):
        return Condition(column, op)
    if op in _ORDERING and kind not in ("numeric", "datetime"):
        raise ToolError(
            f"{where}: '{column}'은(는) {KIND_NAMES[kind]} 열이라 '{op}' 크기 비교를 할 수 없습니다. "
            "크기 비교는 숫자·날짜 열에만 쓰고, 문자열 열에는 ==, !=, in, not_in, contains를 쓰세요."
        )
    if op == "contains":
        if kind != "text":
            raise ToolError(
                f"{where}: 'contains'는 문자열 열에만 쓸 수 있습니다 ('{column}'은(는) {KIND_NAMES[kind]})."
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise ToolError(f"{where}: 'contains'의 value는 찾을 글자(문자열)여야 합니다. 받은 값: {_show(value)}")
        return Condition(column, op, _text_value(value))
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ToolError(
                f"{where}: 'between'의 value는 [최소, 최대] 두 값의 배열이어야 합니다. 받은 값: {_show(value)}"
            )
        low = _scalar(value[0], kind, column, where, tz)
        high = _scalar(value[1], kind, column, where, tz)
        low = _period(low)[0] if kind == "datetime" else low
        high = _period(high)[1] if kind == "datetime" else high
        if low > high:
            raise ToolError(f"{where}: 'between'의 최소값 {fmt_cell(low)}이(가) 최대값 {fmt_cell(high)}보다 큽니다.")
        return Condition(column, op, [low, high])
    if op in ("in", "not_in"):
        values = value if isinstance(value, list | tuple) else [value]
        if not values:
            raise ToolError(f"{where}: '{op}'의 value는 값이 하나 이상인 배열이어야 합니다.")
        if len(values) > MAX_IN_VALUES:
            raise ToolError(f"{where}: '{op}' 값은 최대 {MAX_IN_VALUES}개까지 줄 수 있습니다.")
        coerced = [_scalar(v, kind, column, where, tz) for v in values]
        if kind == "datetime":
            coerced = [_period(v)[0] for v in coerced]
        return Condition(column, op, coerced)
    scalar = _scalar(value, kind, column, where, tz)
    if kind == "datetime":
        start, end = _period(scalar)
        if start != end and op in ("==", "!="):
            return Condition(column, "between" if op == "==" else "not_between", [start, end])
        scalar = end if op in (">", "<=") else start
    return Condition(column, op, scalar)


def _scalar(value: Any, kind: Kind, column: Any, where: str, tz: Any = None) -> Any:
    """Coerce one JSON value toward the column's kind; datetime values come back as (start, end) periods."""
    if value is None:
        raise ToolError(f"{where}: value가 없습니다. 결측값을 찾으려면 op를 'is_null' 또는 'not_null'로 쓰세요.")
    if isinstance(value, Mapping | list | tuple):
        raise ToolError(f"{where}: value는 하나의 값(문자열·숫자)이어야 합니다. 받은 값: {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(f"{where}: value {value}는 유한한 숫자가 아닙니다.")
    if kind == "numeric":
        number = _number(value)
        if number is None:
            raise ToolError(f"{where}: '{column}'은(는) 숫자 열이라 숫자 값이 필요합니다. 받은 값: {_show(value)}")
        return number
    if kind == "datetime":
        start, end = _timestamp(value, column, where)
        return _align_tz(start, tz), _align_tz(end, tz)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ToolError(
            f"{where}: '{column}'은(는) 참거짓 열이라 true 또는 false가 필요합니다. 받은 값: {_show(value)}"
        )
    if isinstance(value, bool):
        raise ToolError(f"{where}: '{column}'은(는) {KIND_NAMES[kind]} 열이라 true/false와 비교할 수 없습니다.")
    return _text_value(value)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _text_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _timestamp(value: Any, column: Any, where: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    problem = (
        f"{where}: '{column}'은(는) 날짜시각 열이라 '2021-01-01', '2021-01-01 18:00', '2021-03', '2021' 같은 "
        f"날짜 문자열이 필요합니다. 받은 값: {_show(value)}"
    )
    if not isinstance(value, str):
        raise ToolError(problem)
    match = _PARTIAL_DATE.match(value)
    try:
        if match:
            year, month, day = (int(g) if g else None for g in match.groups())
            start = pd.Timestamp(year=year, month=month or 1, day=day or 1)
            step = pd.DateOffset(days=1) if day else pd.DateOffset(months=1) if month else pd.DateOffset(years=1)
            return start, start + step - pd.Timedelta(1, "ns")
        stamp = pd.Timestamp(value.strip())
    except (ValueError, TypeError, OverflowError):
        raise ToolError(problem) from None
    if stamp is pd.NaT:
        raise ToolError(problem)
    return stamp, stamp


def _align_tz(stamp: pd.Timestamp, tz: Any) -> pd.Timestamp:
    """Naive strings on a tz-aware column mean local time there; aware strings on a naive column, wall time."""
    if tz is not None and stamp.tzinfo is None:
        return stamp.tz_localize(tz)
    if tz is None and stamp.tzinfo is not None:
        return stamp.tz_localize(None)
    return stamp


def _period(value: Any) -> tuple[Any, Any]:
    return value if isinstance(value, tuple) else (value, value)


def _close_values(series: pd.Series, condition: Condition) -> str:
    if condition.op not in ("==", "in", "contains") or column_kind(series) != "text":
        return ""
    wanted = condition.value if isinstance(condition.value, list) else [condition.value]
    vocabulary = [str(v) for v in series.value_counts().index[:500]]
    close: list[str] = []
    for value in wanted[:5]:
        text = str(value).strip()
        contained = [v for v in vocabulary if v and text and (v in text or text in v)][:3]
        for match in [*contained, *difflib.get_close_matches(text, vocabulary, n=3, cutoff=0.5)]:
            if match not in close:
                close.append(match)
    return ", ".join(repr(v) for v in close[:5])


def _usage(reason: str) -> str:
    return (
        f'{reason} 형식: [{{"column": "열 이름", "op": "==", "value": 값}}, …]. '
        f"op: {' '.join(OPS)} (in/not_in은 배열, between은 [최소, 최대], is_null/not_null은 value 없음)."
    )


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

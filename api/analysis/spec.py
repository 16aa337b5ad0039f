"""Tool and parameter declarations: one place that yields both the JSON schema and the argument checks."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from api.analysis.columns import resolve_column
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.filters import COMBINES, OPS, parse_combine, parse_conditions
from api.analysis.render import fmt_num

ParamType = Literal[
    "column", "columns", "string", "choice", "choices", "integer", "number", "numbers", "boolean",
    "conditions", "combine", "object",
]  # fmt: skip
MAX_STRING = 200


@dataclass(frozen=True)
class Param:
    """One tool argument. Integers outside [minimum, maximum] are clamped (with a note); numbers are refused."""

    name: str
    type: ParamType
    description: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any]
        if self.type == "column":
            out = {"type": "string"}
        elif self.type == "columns":
            out = {"type": "array", "items": {"type": "string"}}
        elif self.type in ("string", "choice", "combine"):
            out = {"type": "string"}
            choices = COMBINES if self.type == "combine" else self.choices
            if choices:
                out["enum"] = list(choices)
        elif self.type == "choices":
            out = {"type": "array", "items": {"type": "string", "enum": list(self.choices)}}
        elif self.type in ("integer", "number"):
            out = {"type": self.type}
            if self.minimum is not None:
                out["minimum"] = self.minimum
            if self.maximum is not None:
                out["maximum"] = self.maximum
        elif self.type == "numbers":
            out = {"type": "array", "items": {"type": "number"}}
        elif self.type == "boolean":
            out = {"type": "boolean"}
        elif self.type == "conditions":
            out = {"type": "array", "items": CONDITION_SCHEMA}
        else:
            out = {"type": "object"}
        if self.max_items is not None and out.get("type") == "array":
            out["maxItems"] = self.max_items
        out["description"] = self.description
        if self.default is not None:
            out["default"] = self.default
        return out


CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "column": {"type": "string", "description": "열 이름"},
        "op": {"type": "string", "enum": list(OPS)},
        "value": {
            "description": "비교 값. in/not_in은 배열, between은 [최소, 최대], is_null/not_null은 생략. "
            "날짜 열은 '2021-03-05', '2021-03', '2021' 형식(해당 기간 전체)."
        },
    },
    "required": ["column", "op"],
    "additionalProperties": False,
}
CONDITIONS = Param(
    "conditions",
    "conditions",
    "행 조건 목록 (선택). 조건에 맞는 행만 분석합니다.",
    max_items=20,
)
COMBINE = Param("combine", "combine", "조건 결합 방식 (기본 and)", default="and")
COLUMN = Param("column", "column", "열 이름", required=True)


@dataclass(frozen=True)
class Tool:
    """An analysis tool: its schema, its checks and the function that computes the answer."""

    name: str
    description: str
    params: tuple[Param, ...]
    run: Callable[[Call], ToolResult]
    version: str = "1"
    uses_dataset: bool = True
    filterable: bool = False  # accepts conditions/combine; the registry filters the frame before ``run``
    needs_rows: bool = True  # an empty dataset is an empty result (ok=False) before ``run``
    dataset_params: tuple[str, ...] = ()  # arguments naming datasets of the conversation (read via Call.datasets)

    @property
    def all_params(self) -> tuple[Param, ...]:
        if not self.filterable:
            return self.params
        own = {p.name for p in self.params}
        return (*self.params, *(p for p in (CONDITIONS, COMBINE) if p.name not in own))

    def input_schema(self) -> dict[str, Any]:
        params = self.all_params
        return {
            "type": "object",
            "properties": {p.name: p.schema() for p in params},
            "required": [p.name for p in params if p.required],
            "additionalProperties": False,
        }

    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema()}


def parse_args(tool: Tool, raw: Mapping[str, Any], frame: pd.DataFrame | None, notes: list[str]) -> dict[str, Any]:
    """Checked and coerced arguments (defaults filled in); ToolError names the first problem."""
    params = tool.all_params
    names = [p.name for p in params]
    for key in raw:
        if key == "dataset":
            continue
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f" 혹시 '{close[0]}'인가요?" if close else ""
            accepted = ", ".join(names) if names else "(인자 없음)"
            raise ToolError(f"{tool.name}에 알 수 없는 인자 {_show(key)}가 있습니다.{hint} 가능한 인자: {accepted}")
    out: dict[str, Any] = {}
    for param in params:
        value = raw.get(param.name)
        if value is None:
            if param.required:
                raise ToolError(
                    f"{tool.name}의 필수 인자 '{param.name}'이(가) 없습니다 ({param.description}).",
                    summary=f"오류: {param.name} 누락",
                )
            value = param.default
            if value is None:
                out[param.name] = None
                continue
        out[param.name] = _convert(param, value, frame, notes)
    return out


def _convert(param: Param, value: Any, frame: pd.DataFrame | None, notes: list[str]) -> Any:
    name, kind = param.name, param.type
    if kind == "column":
        assert frame is not None
        return resolve_column(frame, value, arg=name)
    if kind == "columns":
        assert frame is not None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ToolError(f"'{name}' 인자는 열 이름의 배열이어야 합니다. 받은 값: {_show(value)}")
        _check_items(param, items)
        resolved = []
        for item in items:
            label = resolve_column(frame, item, arg=name)
            if label not in resolved:
                resolved.append(label)
        return resolved
    if kind == "string":
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise ToolError(f"'{name}' 인자는 {MAX_STRING}자 이하의 문자열이어야 합니다. 받은 값: {_show(value)}")
        return value
    if kind == "choice":
        return _choice(param, value)
    if kind == "choices":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ToolError(f"'{name}' 인자는 {', '.join(param.choices)} 중 값의 배열이어야 합니다.")
        _check_items(param, items)
        chosen: list[str] = []
        for item in items:
            choice = _choice(param, item)
            if choice not in chosen:
                chosen.append(choice)
        return chosen
    if kind == "integer":
        return _integer(param, value, notes)
    if kind == "number":
        return _bounded_number(param, value)
    if kind == "numbers":
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ToolError(f"'{name}' 인자는 숫자 배열이어야 합니다.")
        _check_items(param, items)
        return [_bounded_number(param, item) for item in items]
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ToolError(f"'{name}' 인자는 true 또는 false여야 합니다. 받은 값: {_show(value)}")
    if kind == "conditions":
        assert frame is not None
        return parse_conditions(value, frame)
    if kind == "combine":
        return parse_combine(value)
    if isinstance(value, str):  # "object": accept a JSON object sent as a string
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if not isinstance(value, Mapping):
        raise ToolError(f"'{name}' 인자는 객체(키-값)여야 합니다. 받은 값: {_show(value)}")
    return dict(value)


def _check_items(param: Param, items: list[Any]) -> None:
    if param.max_items is not None and len(items) > param.max_items:
        raise ToolError(f"'{param.name}'에는 최대 {param.max_items}개까지 줄 수 있습니다 (받은 개수 {len(items)}).")


def _choice(param: Param, value: Any) -> str:
    if isinstance(value, str):
        folded = value.strip().lower()
        for choice in param.choices:
            if choice.lower() == folded:
                return choice
    close = difflib.get_close_matches(str(value), param.choices, n=1, cutoff=0.5) if isinstance(value, str) else []
    hint = f" 혹시 '{close[0]}'인가요?" if close else ""
    raise ToolError(
        f"'{param.name}' 값 {_show(value)}는 지원하지 않습니다.{hint} 가능한 값: {', '.join(param.choices)}"
    )


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _integer(param: Param, value: Any, notes: list[str]) -> int:
    number = _to_number(value)
    if number is None:
        raise ToolError(f"'{param.name}' 인자는 정수여야 합니다. 받은 값: {_show(value)}")
    result = round(number)
    low = int(param.minimum) if param.minimum is not None else None
    high = int(param.maximum) if param.maximum is not None else None
    clamped = max(result, low) if low is not None else result
    clamped = min(clamped, high) if high is not None else clamped
    if clamped != result or result != number:
        notes.append(
            f"참고: '{param.name}' 값 {_show(value)}을(를) {fmt_num(clamped)}(으)로 조정했습니다"
            f" (허용 범위 {fmt_num(low)}–{fmt_num(high)}의 정수)."
        )
    return clamped


def _bounded_number(param: Param, value: Any) -> float:
    number = _to_number(value)
    if number is None:
        raise ToolError(f"'{param.name}' 인자는 숫자여야 합니다. 받은 값: {_show(value)}")
    if (param.minimum is not None and number < param.minimum) or (param.maximum is not None and number > param.maximum):
        allowed = f"{fmt_num(param.minimum)}–{fmt_num(param.maximum)}"
        raise ToolError(f"'{param.name}' 값 {fmt_num(number)}은(는) 허용 범위 {allowed} 밖입니다.")
    return number


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""The tool table, the schemas handed to the model, and ``run_tool``: validate, dispatch, bound, record."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from api.analysis.core import Call, ToolContext, ToolError, ToolOutcome, ToolRecord, ToolResult
from api.analysis.filters import apply_conditions, explain_empty, filter_summary
from api.analysis.render import MAX_TEXT_CHARS, bound, clip
from api.analysis.spec import Tool, parse_args
from api.analysis.tools import categorical, insights, overview, predict, rows, stats, temporal

log = logging.getLogger(__name__)

TOOL_NAMES: tuple[str, ...] = (
    "get_dataframe_info", "get_column_statistics", "get_missing_values", "get_value_counts", "filter_dataframe",
    "sort_dataframe", "get_correlation", "group_by_aggregate", "get_unique_values", "get_date_range",
    "get_outliers", "get_sample_rows", "calculate_percentile", "get_geo_bounds", "cross_tabulation",
    "analyze_missing_pattern", "get_column_correlation_with_target", "detect_data_types", "get_temporal_pattern",
    "summarize_categorical_distribution", "predict_eclo", "predict_eclo_batch", "get_insights",
    "proximity_analysis",
)  # fmt: skip

_MODULES = (overview, stats, categorical, rows, temporal, predict, insights)
_ALL: dict[str, Tool] = {tool.name: tool for module in _MODULES for tool in module.TOOLS}
TOOLS: dict[str, Tool] = {name: _ALL[name] for name in TOOL_NAMES}
assert set(_ALL) == set(TOOL_NAMES), sorted(set(_ALL) ^ set(TOOL_NAMES))

DATASET_DESCRIPTION = "분석할 데이터셋 이름"
_MAX_RECORDED_ARGS_CHARS = 4000


def _schema_version() -> str:
    payload = [(t.schema(), t.version) for t in TOOLS.values()]
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


TOOL_SCHEMA_VERSION: str = _schema_version()


def tool_schemas(dataset_names: Sequence[str]) -> list[dict[str, Any]]:
    """Anthropic tool definitions; dataset tools get a ``dataset`` enum, required when there are 2+ datasets.

    With no dataset names the ``dataset`` property is left out (the data tools then answer that there is no
    dataset); callers may prefer to offer only predict_eclo in that case.
    """
    names = list(dict.fromkeys(str(n) for n in dataset_names))
    out = []
    for tool in TOOLS.values():
        schema = copy.deepcopy(tool.schema())
        if tool.uses_dataset and names:
            properties = schema["input_schema"]["properties"]
            schema["input_schema"]["properties"] = {
                "dataset": {"type": "string", "enum": names, "description": DATASET_DESCRIPTION},
                **properties,
            }
            if len(names) > 1:
                schema["input_schema"]["required"] = ["dataset", *schema["input_schema"]["required"]]
        for param in tool.dataset_params if names else ():
            schema["input_schema"]["properties"][param]["enum"] = names
        out.append(schema)
    return out


def tool_version(name: str) -> str:
    """Behaviour version of one tool (part of result cache keys); KeyError for unknown names."""
    return TOOLS[name].version


def tool_uses_dataset(name: str) -> bool:
    return TOOLS[name].uses_dataset


def tool_dataset_params(name: str) -> tuple[str, ...]:
    """Arguments of a cross-dataset tool that name datasets (their content is part of its cache key)."""
    return TOOLS[name].dataset_params


def run_tool(name: str, args: Mapping[str, Any], ctx: ToolContext) -> ToolOutcome:
    """Run one tool call from the model. Never raises: problems come back as Korean text with ok=False."""
    start = time.perf_counter()
    try:
        return _run(name, args, ctx, start)
    except Exception:  # last resort, e.g. arguments that cannot even be copied for the record
        log.exception("analysis tool %r failed outside its guard", name)
        record = ToolRecord(
            tool=name[:100] if isinstance(name, str) else "?",
            args={},
            ok=False,
            rows_touched=0,
            duration_ms=round((time.perf_counter() - start) * 1000.0, 3),
            snippet="",
            summary="오류: 내부 오류",
        )
        return ToolOutcome(text="도구 실행 중 내부 오류가 발생했습니다. 인자를 바꿔 다시 시도하세요.", record=record)


def _run(name: Any, args: Any, ctx: ToolContext, start: float) -> ToolOutcome:
    recorded = _recordable(args)
    dataset: str | None = None
    try:
        tool = _tool(name)
        raw = _raw_args(args)
        notes: list[str] = []
        frame: pd.DataFrame | None = None
        if tool.uses_dataset:
            dataset, frame = _dataset(raw.get("dataset"), ctx)
        parsed = parse_args(tool, raw, frame, notes)
        call = _prepare(tool, parsed, frame, ctx, notes)
        result = tool.run(call)
        header = list(call.notes)
        if len(ctx.datasets) > 1 and dataset is not None:
            header.insert(0, f"[데이터셋: {dataset}]")
        if call.filtered:
            header.append(filter_summary(parsed["conditions"], parsed["combine"], len(call.frame), call.total_rows))
        text = "\n".join([*header, result.text]) if header else result.text
        return _outcome(name, recorded, dataset, start, text=text, ok=True, result=result)
    except ToolError as error:
        failure = ToolResult(
            text=error.message,
            summary=error.summary or _first_line(error.message),
            snippet=error.snippet,
            rows_touched=0,
        )
        return _outcome(name, recorded, dataset, start, text=error.message, ok=False, result=failure)
    except Exception as error:  # a bug or a pandas corner case must not end the conversation
        log.warning("analysis tool %s failed", name, exc_info=True)
        message = (
            f"도구 실행 중 예기치 않은 오류가 발생했습니다 ({type(error).__name__}: {clip(str(error), 200)}). "
            "인자를 바꾸거나 다른 도구로 다시 시도하세요."
        )
        failure = ToolResult(text=message, summary=f"오류: {type(error).__name__}", snippet="", rows_touched=0)
        return _outcome(name, recorded, dataset, start, text=message, ok=False, result=failure)


def _tool(name: Any) -> Tool:
    tool = TOOLS.get(name) if isinstance(name, str) else None
    if tool is None:
        close = difflib.get_close_matches(str(name), TOOL_NAMES, n=2, cutoff=0.5)
        hint = f" 혹시 {', '.join(close)}인가요?" if close else ""
        raise ToolError(
            f"알 수 없는 도구 '{clip(str(name), 60)}'입니다.{hint} 사용할 수 있는 도구: {', '.join(TOOL_NAMES)}",
            summary="오류: 알 수 없는 도구",
        )
    return tool


def _raw_args(args: Any) -> Mapping[str, Any]:
    if args is None:
        return {}
    if isinstance(args, str):  # tolerate a JSON object sent as text
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            pass
    if not isinstance(args, Mapping):
        raise ToolError(f"도구 인자는 객체(키-값)여야 합니다. 받은 값: {clip(repr(args), 80)}")
    bad = [k for k in args if not isinstance(k, str)]
    if bad:
        raise ToolError(f"인자 이름은 문자열이어야 합니다: {clip(repr(bad), 80)}")
    return args


def _dataset(requested: Any, ctx: ToolContext) -> tuple[str, pd.DataFrame]:
    labels = list(ctx.datasets)
    if not labels:
        raise ToolError(
            "분석할 데이터셋이 없습니다. 사용자가 대화에 데이터셋을 추가해야 합니다.", summary="오류: 데이터셋 없음"
        )
    if requested is None:
        if len(labels) == 1:
            return labels[0], ctx.datasets[labels[0]]
        raise ToolError(
            f"데이터셋이 여러 개라 'dataset' 인자가 필요합니다. 가능한 값: {', '.join(repr(n) for n in labels)}",
            summary="오류: dataset 누락",
        )
    if isinstance(requested, str):
        if requested in ctx.datasets:
            return requested, ctx.datasets[requested]
        stripped = [n for n in labels if n.strip() == requested.strip()]
        if len(stripped) == 1:
            return stripped[0], ctx.datasets[stripped[0]]
    close = difflib.get_close_matches(str(requested), labels, n=2, cutoff=0.4)
    hint = f" 혹시 {', '.join(repr(c) for c in close)}인가요?" if close else ""
    raise ToolError(
        f"데이터셋 {clip(repr(requested), 60)}이(가) 없습니다.{hint} 가능한 값: {', '.join(repr(n) for n in labels)}",
        summary="오류: 없는 데이터셋",
    )


def _prepare(
    tool: Tool, parsed: dict[str, Any], frame: pd.DataFrame | None, ctx: ToolContext, notes: list[str]
) -> Call:
    if frame is None:
        return Call(
            args=parsed,
            frame=pd.DataFrame(),
            source="df",
            total_rows=0,
            model=ctx.model,
            notes=notes,
            datasets=ctx.datasets,
        )
    if frame.empty and tool.needs_rows:
        raise ToolError(
            "데이터셋에 행이 없습니다. get_dataframe_info로 열 구성을 확인하거나 다른 데이터셋을 고르세요.",
            summary="결과 없음: 빈 데이터셋",
        )
    conditions = parsed.get("conditions") or []
    if not tool.filterable or not conditions:
        return Call(args=parsed, frame=frame, source="df", total_rows=len(frame), model=ctx.model, notes=notes)
    filtered, source = apply_conditions(frame, conditions, parsed["combine"])
    if filtered.empty:
        raise ToolError(explain_empty(frame, conditions, parsed["combine"]), summary="결과 없음: 조건에 맞는 행 0개")
    return Call(args=parsed, frame=filtered, source=source, total_rows=len(frame), model=ctx.model, notes=notes)


def _outcome(
    name: Any, args: dict[str, Any], dataset: str | None, start: float, *, text: str, ok: bool, result: ToolResult
) -> ToolOutcome:
    record = ToolRecord(
        tool=str(name)[:100],
        args=args,
        ok=ok,
        rows_touched=int(result.rows_touched),
        duration_ms=round((time.perf_counter() - start) * 1000.0, 3),
        snippet=result.snippet,
        summary=clip(result.summary, 120),
        dataset=dataset,
    )
    return ToolOutcome(text=bound(text, MAX_TEXT_CHARS), record=record)


def _first_line(message: str) -> str:
    return "오류: " + message.split("\n", 1)[0]


def _recordable(args: Any) -> dict[str, Any]:
    """A JSON-safe, size-capped copy of the arguments as the model sent them."""
    if not isinstance(args, Mapping):
        return {} if args is None else {"_invalid": clip(repr(args), 200)}
    value = _jsonable(args, depth=0)
    if len(json.dumps(value, ensure_ascii=False, default=str)) > _MAX_RECORDED_ARGS_CHARS:
        return {"_truncated": clip(json.dumps(value, ensure_ascii=False, default=str), _MAX_RECORDED_ARGS_CHARS)}
    return value


def _jsonable(value: Any, depth: int) -> Any:
    if depth > 6:
        return "…"
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in list(value)[:200]]
    return clip(repr(value), 200)

"""ECLO predictions with the served model: predict_eclo (one accident) and predict_eclo_batch (dataset rows).

Both go through models.features, the one module that turns rows into model features, so the chat agent
predicts exactly what the API would.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from api.analysis import pycode
from api.analysis.columns import column_kind
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.render import fmt_cell, fmt_num, fmt_pct, frame_table
from api.analysis.spec import Param, Tool
from api.analysis.tools._common import code, frame_var
from models.features import (
    ALIASES,
    DATETIME_FIELD,
    KNOWN_FIELDS,
    NUMERIC_RANGES,
    FeatureError,
    canonical_name,
    encode_frame,
    encode_row,
)

if TYPE_CHECKING:
    from models.loaded import LoadedModel
    from models.metadata import ModelMetadata

NO_MODEL = "활성 모델이 없습니다. 관리자가 모델을 학습하거나 활성화해야 ECLO를 예측할 수 있습니다."
DEFAULT_BATCH_LIMIT = 1000
MAX_BATCH_LIMIT = 10_000
_DATE_NUMBERS = frozenset(("사고연", "사고월", "사고일", "사고시"))
_DATE_PARTS = _DATE_NUMBERS | {"요일", "시간대"}
_PLACEHOLDER_DATETIME = "2020-01-01 12"
_SHOWN_FEATURES = ("사고일시", "기상상태", "노면상태", "도로형태", "사고유형", "시군구")
DATETIME_TIP = (
    "팁: 사고일시('YYYY-MM-DD HH', 예: 2021-07-03 23)를 주면 사고연·사고월·사고일·사고시·요일·시간대가 "
    "자동으로 채워집니다."
)
DATETIME_QUESTION = (
    "사고 날짜와 시각을 'YYYY-MM-DD HH' 형식(예: 2021-07-03 23)으로 주세요. "
    "사고연·사고월·사고일·사고시(0–23)와 요일을 따로 줘도 됩니다."
)
CAVEAT = "예측값은 같은 조건 사고의 기대 피해 수준이며 개별 사고의 실제 피해와 다를 수 있습니다."
REQUIRED_INPUTS = (
    "기상상태, 노면상태, 도로형태, 사고유형, 시군구, 그리고 사고일시('YYYY-MM-DD HH') "
    "또는 사고연·사고월·사고일·사고시·요일"
)


def _model(call: Call) -> LoadedModel:
    if call.model is None:
        raise ToolError(NO_MODEL, summary="오류: 활성 모델 없음")
    return call.model


def _placeholder(field: str, meta: ModelMetadata) -> Any:
    if field == DATETIME_FIELD:
        return _PLACEHOLDER_DATETIME
    if field in NUMERIC_RANGES:
        return NUMERIC_RANGES[field][0]
    values = meta.categories.get(field) or []
    return values[0] if values else None


def _canonical(key: Any) -> str | None:
    try:
        return canonical_name(key)
    except FeatureError:
        return None


def encode_collecting(features: Mapping[str, Any], meta: ModelMetadata) -> tuple[np.ndarray | None, list[FeatureError]]:
    """Encode one row, or collect every problem: after each error the bad field is set to a valid stand-in
    (or an unknown key dropped) and encoding is retried, so the model can ask the user for all of them at once."""
    row = dict(features)
    problems: list[FeatureError] = []
    for _ in range(3 * len(KNOWN_FIELDS)):
        try:
            return encode_row(row, meta), problems
        except FeatureError as error:
            problems.append(error)
            if error.field not in KNOWN_FIELDS:  # an unknown key
                row = {k: v for k, v in row.items() if str(k) != error.field}
                continue
            stand_in = _placeholder(error.field, meta)
            if error.valid_count == 0 or stand_in is None:  # the field was given twice: nothing to guess
                break
            row = {k: v for k, v in row.items() if _canonical(k) != error.field}
            row[error.field] = stand_in
    return None, problems


def _close_values(error: FeatureError, meta: ModelMetadata) -> str:
    vocabulary = meta.categories.get(error.field)
    if not vocabulary or error.value is None:
        return ""
    wanted = str(error.value).strip()
    matches = [v for v in vocabulary if wanted and wanted in v][:5]
    if not matches:
        matches = difflib.get_close_matches(wanted, vocabulary, n=3, cutoff=0.3)
    return f" 비슷한 값: {', '.join(repr(m) for m in matches)}." if matches else ""


def problem_text(problems: list[FeatureError], meta: ModelMetadata) -> str:
    lines = ["예측에 필요한 입력이 부족하거나 올바르지 않습니다. 아래 내용을 사용자에게 물어본 뒤 다시 호출하세요."]
    missing = {p.field for p in problems if p.value is None}
    collapse = _DATE_NUMBERS <= missing  # no date at all: one question instead of five
    if collapse:
        lines.append(f"- {DATETIME_FIELD} 값이 없습니다. {DATETIME_QUESTION}")
    lines += [
        f"- {p.message}{_close_values(p, meta)}"
        for p in problems
        if not (collapse and p.value is None and p.field in _DATE_PARTS)
    ]
    if not collapse and missing & _DATE_PARTS:
        lines.append(DATETIME_TIP)
    aliases = ", ".join(a for a in ALIASES if a != "accident_datetime")
    lines.append(f"필요한 입력: {REQUIRED_INPUTS}. 영문 별칭도 됩니다: {aliases}.")
    return "\n".join(lines)


def _used_inputs(matrix_row: np.ndarray, meta: ModelMetadata, given: set[str]) -> str:
    parts = []
    for field, value in zip(meta.feature_order, matrix_row.tolist(), strict=True):
        shown = meta.categories[field][int(value)] if field in meta.categories else str(int(value))
        parts.append(f"{field}={shown}{'' if field in given else '(자동)'}")
    return ", ".join(parts)


def predict_one(call: Call) -> ToolResult:
    model = _model(call)
    meta = model.metadata
    features: dict[str, Any] = call.args["features"]
    matrix, problems = encode_collecting(features, meta)
    if matrix is None or problems:
        fields = ", ".join(dict.fromkeys(p.field for p in problems))
        raise ToolError(problem_text(problems, meta), summary=f"입력 확인 필요: {fields}")
    eclo = float(model.predict(matrix)[0])
    label, sentence = model.interpret(eclo)
    given = {name for key, value in features.items() if (name := _canonical(key)) and value not in (None, "")}
    lines = [
        f"예측 ECLO: {eclo:.2f} ({label})",
        sentence,
        f"사용한 입력: {_used_inputs(matrix[0], meta, given)}",
        f"모델: {model.name} {model.metadata.version}. {CAVEAT}",
    ]
    return ToolResult(
        text="\n".join(lines),
        summary=f"ECLO 예측 {eclo:.2f} ({label})",
        snippet=f"model.predict_row({pycode.lit(features)})",
        rows_touched=1,
    )


def predict_many(call: Call) -> ToolResult:
    model = _model(call)
    meta = model.metadata
    prelude, var = frame_var(call)
    limit = call.args["limit"]
    part = call.frame.head(limit)
    if len(call.frame) > limit:
        call.notes.append(
            f"참고: 대상 {len(call.frame):,}행 중 앞 {limit:,}행만 예측했습니다 (limit 최대 {MAX_BATCH_LIMIT:,})."
        )
    try:
        batch = encode_frame(part, meta, ignore_unknown=True)
    except FeatureError as error:
        raise ToolError(
            f"이 데이터셋으로는 ECLO를 예측할 수 없습니다: {error.message}\n"
            f"예측에는 사고 데이터(train/test/accident 형식)의 열이 필요합니다: {REQUIRED_INPUTS}.",
            summary="오류: 예측에 필요한 열 없음",
        ) from None
    invalid = len(batch.errors)
    first_error = ""
    if invalid:
        position, problem = batch.errors[0]
        first_error = f"첫 무효 행 (행 {fmt_cell(part.index[position])}): {problem.message}"
    if len(batch.row_index) == 0:
        raise ToolError(
            f"예측할 수 있는 행이 없습니다 ({invalid:,}행 모두 무효). {first_error}", summary="오류: 유효한 행 없음"
        )
    predicted = model.predict(batch.matrix)
    labels, _, _ = model.describe_many(predicted)
    counts = pd.Series(labels).value_counts()
    n = len(predicted)
    bands = ", ".join(
        f"{b.label} {int(counts.get(b.label, 0)):,} ({fmt_pct(int(counts.get(b.label, 0)), n)})" for b in meta.bands
    )
    lines = [
        f"예측 대상 {len(part):,}행: 유효 {n:,}행, 무효 {invalid:,}행 (모델 {model.name} {model.metadata.version})",
        f"예측 ECLO: 평균 {fmt_num(float(predicted.mean()))}, 중앙값 {fmt_num(float(np.median(predicted)))}, "
        f"최솟값 {fmt_num(float(predicted.min()))}, 최댓값 {fmt_num(float(predicted.max()))}",
        f"해석 구간별 행 수: {bands}",
    ]
    if "ECLO" in part.columns and column_kind(part["ECLO"]) == "numeric":
        actual = part["ECLO"].to_numpy(dtype="float64", na_value=np.nan)[batch.row_index]
        known = np.isfinite(actual)
        if known.any():
            mae = float(np.abs(actual[known] - predicted[known]).mean())
            lines.append(
                f"데이터의 실제 ECLO (같은 {int(known.sum()):,}행): 평균 {fmt_num(float(actual[known].mean()))}, "
                f"예측과의 평균절대오차 {fmt_num(mae)}"
            )
    if first_error:
        lines.append(first_error)
    top = np.argsort(-predicted, kind="stable")[:5]
    shown = [c for c in _SHOWN_FEATURES if c in part.columns]
    best = part.iloc[batch.row_index[top]][shown].copy()
    best.insert(0, "예측 ECLO", np.round(predicted[top], 2))
    lines += ["예측 ECLO가 가장 높은 행:", frame_table(best, index_name="행", max_rows=5)]
    return ToolResult(
        text="\n".join(lines),
        summary=f"ECLO 일괄 예측 {n:,}행 (평균 {fmt_num(float(predicted.mean()))})",
        snippet=code(
            prelude,
            "from models.features import encode_frame",
            f"part = {var}.head({limit})",
            "batch = encode_frame(part, model.metadata, ignore_unknown=True)",
            "pred = pd.Series(model.predict(batch.matrix), index=part.index[batch.row_index])",
            "pred.describe()",
        ),
        rows_touched=len(part),
    )


TOOLS = (
    Tool(
        "predict_eclo",
        "사고 조건 하나로 ECLO(인명피해 환산 점수)를 예측하고 해석(경미·보통·심각·매우 심각)과 백분위를 알려 줍니다. "
        "입력이 빠지거나 틀리면 무엇이 필요한지와 가능한 값을 돌려주니, 사용자에게 물어본 뒤 다시 호출하세요.",
        (
            Param(
                "features",
                "object",
                "사고 조건. 키: 기상상태, 노면상태, 도로형태, 사고유형, 시군구('대구광역시 중구 대신동' 형식), "
                "사고일시('YYYY-MM-DD HH') 또는 사고연·사고월·사고일·사고시, 요일·시간대(사고일시가 있으면 자동). "
                "영문 별칭(weather, road_surface, road_type, accident_type, district, datetime …)도 됩니다.",
                required=True,
            ),
        ),
        predict_one,
        uses_dataset=False,
    ),
    Tool(
        "predict_eclo_batch",
        "데이터셋의 사고 행들(조건으로 고를 수 있음)의 ECLO를 한꺼번에 예측해 평균·중앙값·최댓값, 해석 구간별 행 수, "
        "무효 행 수를 보여 줍니다.",
        (
            Param(
                "limit",
                "integer",
                f"예측할 최대 행 수 (앞에서부터, 최대 {MAX_BATCH_LIMIT:,})",
                default=DEFAULT_BATCH_LIMIT,
                minimum=1,
                maximum=MAX_BATCH_LIMIT,
            ),
        ),
        predict_many,
        filterable=True,
    ),
)

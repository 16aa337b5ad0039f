"""Insight sentences and proximity across datasets: get_insights, proximity_analysis.

Both reuse the server's own computations (api.insights.compute, api.proximity.geo) so that the assistant
states the same figures as the explore and map pages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from api.analysis import pycode
from api.analysis.core import Call, ToolError, ToolResult
from api.analysis.spec import Param, Tool
from api.analysis.tools._common import code, frame_var, scope
from api.datasets.column_values import in_korea
from api.datasets.kinds import detect_kind, find_coordinate_columns
from api.insights.compute import dataset_insights
from api.proximity.geo import proximity

MAX_RADIUS_M = 5_000.0
TOP_SOURCES = 10


def insights(call: Call) -> ToolResult:
    frame = call.frame
    prelude, var = frame_var(call)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    items = dataset_insights(table, detect_kind(table.column_names))
    if not items:
        raise ToolError("이 데이터에서 뽑을 만한 인사이트가 없습니다. 다른 도구로 열을 직접 살펴보세요.")
    lines = [f"데이터 인사이트 ({scope(call)}, {len(items)}개):", *(f"- {item.text}" for item in items)]
    columns = list(dict.fromkeys(c for item in items for c in item.columns))
    return ToolResult(
        text="\n".join(lines),
        summary=f"인사이트 {len(items)}개",
        snippet=code(prelude, f"{{c: {var}[c].value_counts(dropna=False).head(2) for c in {pycode.lits(columns)}}}"),
        rows_touched=len(frame),
    )


def _points(frame: pd.DataFrame, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    cols = find_coordinate_columns([str(c) for c in frame.columns])
    if cols is None:
        raise ToolError(f"데이터셋 '{label}'에는 위도/경도 열이 없어 근접 분석을 할 수 없습니다.")
    lat = pd.to_numeric(frame[cols.lat], errors="coerce").to_numpy(dtype=np.float64)
    lon = pd.to_numeric(frame[cols.lon], errors="coerce").to_numpy(dtype=np.float64)
    rows = np.flatnonzero(in_korea(lat, lon))
    return rows, lat[rows], lon[rows], [cols.lat, cols.lon]


def _frame(call: Call, label: str) -> pd.DataFrame:
    if label not in call.datasets:
        names = ", ".join(repr(n) for n in call.datasets) or "(없음)"
        raise ToolError(f"데이터셋 '{label}'이(가) 없습니다. 가능한 값: {names}", summary="오류: 없는 데이터셋")
    return call.datasets[label]


def proximity_analysis(call: Call) -> ToolResult:
    source, target, radius = call.args["source_dataset"], call.args["target_dataset"], call.args["radius_m"]
    rows, lat, lon, source_cols = _points(_frame(call, source), source)
    _, target_lat, target_lon, target_cols = _points(_frame(call, target), target)
    if len(target_lat) == 0:
        raise ToolError(f"데이터셋 '{target}'에 올바른 좌표가 있는 행이 없습니다.")
    if len(rows) == 0:
        raise ToolError(f"데이터셋 '{source}'에 올바른 좌표가 있는 행이 없습니다.")
    found = proximity(lat, lon, target_lat, target_lon, radius)
    n, hit = len(rows), int((found.counts > 0).sum())
    lines = [
        f"'{source}' 지점 {n:,}곳 중 {hit:,}곳({100 * hit / n:.1f}%)의 반경 {radius:,.0f}m 안에 '{target}' 지점"
        f"({len(target_lat):,}곳)이 있습니다. 지점당 평균 {found.counts.mean():.2f}개, "
        f"최대 {int(found.counts.max()):,}개, "
        f"가장 가까운 지점까지 거리 중앙값 {float(np.median(found.nearest_m)):,.0f}m.",
        f"반경 안 지점이 많은 순 상위 {min(TOP_SOURCES, n)}곳 (행 번호 | 위도 | 경도 | 개수 | 최근접 m):",
    ]
    order = np.lexsort((rows, -found.counts))[:TOP_SOURCES]
    for i in order.tolist():
        lines.append(f"{rows[i]} | {lat[i]:.6f} | {lon[i]:.6f} | {int(found.counts[i]):,} | {found.nearest_m[i]:,.0f}")
    return ToolResult(
        text="\n".join(lines),
        summary=f"근접 분석 {radius:,.0f}m: {hit:,}/{n:,}곳",
        snippet=code(
            "import numpy as np",
            "from sklearn.neighbors import BallTree",
            f"targets = datasets[{pycode.lit(target)}]  # df is {pycode.lit(source)}",
            f"tree = BallTree(np.radians(targets[{pycode.lits(target_cols)}].dropna()), metric='haversine')",
            f"np.radians(df[{pycode.lits(source_cols)}].dropna())",
            f"tree.query_radius(_, r={radius!r} / 6371008.8, count_only=True)",
        ),
        rows_touched=n,
    )


TOOLS = (
    Tool(
        "get_insights",
        "데이터셋의 핵심 인사이트를 한국어 문장으로 요약합니다: 주요 범주, 결측 경고, 가장 많은 시간·요일, "
        "사고 데이터면 기상·노면·도로형태·사고유형별 ECLO 평균의 최고·최저 그룹.",
        (),
        insights,
        filterable=True,
        version="1",
    ),
    Tool(
        "proximity_analysis",
        "두 데이터셋의 좌표로 근접 분석을 합니다: 원본의 각 지점 반경 radius_m 안에 있는 대상 지점 수와 "
        "가장 가까운 대상까지의 거리(대원거리). 예: 어린이보호구역 300m 안의 CCTV 수.",
        (
            Param("source_dataset", "string", "원본 데이터셋 이름 (각 지점을 기준으로 셉니다)", required=True),
            Param("target_dataset", "string", "대상 데이터셋 이름 (세어질 지점)", required=True),
            Param("radius_m", "number", "반경 (미터, 1~5000)", default=300, minimum=1, maximum=MAX_RADIUS_M),
        ),
        proximity_analysis,
        uses_dataset=False,
        version="1",
        dataset_params=("source_dataset", "target_dataset"),
    ),
)

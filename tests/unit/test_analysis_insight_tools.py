"""The get_insights and proximity_analysis chat tools, checked against figures computed here."""

from __future__ import annotations

import math

import pandas as pd

from api.analysis import ToolContext, run_tool

R = 6_371_008.8
CENTRE = (35.87, 128.60)


def north(metres: float) -> tuple[float, float]:
    return CENTRE[0] + math.degrees(metres / R), CENTRE[1]


ZONES = pd.DataFrame(
    {"대상시설명": ["가", "나", "다"], "위도": [CENTRE[0], north(1000)[0], None], "경도": [CENTRE[1]] * 3}
)
CCTV = pd.DataFrame(
    {"설치장소": ["a", "b", "c"], "위도": [north(d)[0] for d in (50, 280, 1500)], "경도": [CENTRE[1]] * 3}
)
ACCIDENTS = pd.DataFrame({"기상상태": ["맑음"] * 7 + ["비"] * 3, "ECLO": list(range(10))})


def test_get_insights_names_the_dominant_value_with_its_share():
    out = run_tool("get_insights", {}, ToolContext(datasets={"사고": ACCIDENTS}))
    assert out.record.ok, out.text
    assert "'맑음'" in out.text and "7행(70.0%)" in out.text


def test_proximity_counts_targets_within_the_radius():
    ctx = ToolContext(datasets={"구역": ZONES, "CCTV": CCTV})
    args = {"source_dataset": "구역", "target_dataset": "CCTV", "radius_m": 300}
    out = run_tool("proximity_analysis", args, ctx)
    assert out.record.ok, out.text
    # zone 0: cameras at 50 m and 280 m; zone 1 (1,000 m north): the camera at 1,500 m is 500 m away.
    assert "지점 2곳 중 1곳(50.0%)" in out.text and "최대 2개" in out.text
    assert "0 | 35.870000 | 128.600000 | 2 | 50" in out.text
    assert "1 | " in out.text and "| 0 | 500" in out.text


def test_proximity_refuses_a_radius_out_of_range_and_a_dataset_without_coordinates():
    ctx = ToolContext(datasets={"구역": ZONES, "사고": ACCIDENTS})
    far = run_tool("proximity_analysis", {"source_dataset": "구역", "target_dataset": "구역", "radius_m": 9000}, ctx)
    assert not far.record.ok and "5,000" in far.text.replace("5000", "5,000")
    plain = run_tool("proximity_analysis", {"source_dataset": "구역", "target_dataset": "사고"}, ctx)
    assert not plain.record.ok and "위도/경도" in plain.text
    unknown = run_tool("proximity_analysis", {"source_dataset": "없음", "target_dataset": "구역"}, ctx)
    assert not unknown.record.ok and "없습니다" in unknown.text

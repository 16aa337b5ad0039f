"""근접 분석: for each point of one dataset, the points of another within a radius (a section of the map page).

Self-contained: the map page calls `render_proximity_section` once at its end.
"""

from __future__ import annotations

from typing import Any

import folium
import pandas as pd
import streamlit as st

from frontend import maps
from frontend.client import HabClient
from frontend.ui import dataset_label, fetch

MAP_POINTS = 1000  # the API's page limit: sources drawn with circles, targets coloured
INSIDE, OUTSIDE, SOURCE = "#e53935", "#9e9e9e", "#1e88e5"


def render_proximity_section(client: HabClient, datasets: list[dict[str, Any]]) -> None:
    """Pick a source and a target dataset (both with coordinates) and a radius; show counts and the map."""
    st.divider()
    st.subheader("근접 분석")
    if not datasets:
        st.caption("위도·경도 열이 있는 데이터셋이 있어야 근접 분석을 할 수 있습니다.")
        return
    left, right = st.columns(2)
    source = left.selectbox("기준 지점 (원)", datasets, format_func=dataset_label, key="proximity_source")
    target = right.selectbox(
        "셀 지점", datasets, index=min(1, len(datasets) - 1), format_func=dataset_label, key="proximity_target"
    )
    radius = st.slider("반경 (m)", min_value=1, max_value=5000, value=300, step=10, key="proximity_radius")
    if not st.toggle("근접 분석 보기", key="proximity_on"):
        return
    found = fetch(client.proximity, source["id"], target["id"], float(radius), limit=MAP_POINTS, context="근접 분석")
    if found is None:
        return
    summary = found["summary"]
    st.info(summary["text"])
    cols = st.columns(4)
    cols[0].metric("기준 지점", f"{summary['sources']:,}")
    cols[1].metric(
        "반경 안에 대상이 있는 곳", f"{summary['sources_with_target']:,}", f"{summary['share_with_target']}%"
    )
    cols[2].metric("평균 / 최대 개수", f"{summary['mean_count']:.2f} / {summary['max_count']:,}")
    median = summary["median_nearest_m"]
    cols[3].metric("최근접 거리 중앙값", "-" if median is None else f"{median:,.0f} m")
    # The targets as sources of the reverse question: inside when some source lies within the radius.
    reverse = fetch(client.proximity, target["id"], source["id"], float(radius), limit=MAP_POINTS, context="대상 지점")
    targets = reverse["items"] if reverse else []
    maps.render(proximity_map(found["items"], targets, float(radius)), key="proximity_map", height=520)
    if found["total"] > len(found["items"]) or (reverse and reverse["total"] > len(targets)):
        st.caption(f"지도에는 앞쪽 {MAP_POINTS:,}곳까지만 그렸습니다. 표와 요약은 전체 지점 기준입니다.")
    table = pd.DataFrame(found["items"]).rename(
        columns={"row_index": "행", "lat": "위도", "lon": "경도", "count": "반경 안 개수", "nearest_m": "최근접 (m)"}
    )
    st.dataframe(table, hide_index=True, width="stretch")


def proximity_map(sources: list[dict[str, Any]], targets: list[dict[str, Any]], radius: float) -> folium.Map:
    points = sources + targets
    centre = (
        (sum(p["lat"] for p in points) / len(points), sum(p["lon"] for p in points) / len(points))
        if points
        else maps.DAEGU_CENTRE
    )
    # Tiles as configured, and served from hab's own Leaflet files (maps.render): it draws offline too.
    fmap = folium.Map(location=centre, zoom_start=12, control_scale=True, **maps.tile_options())
    fmap.options["max_zoom"] = maps.MAX_ZOOM
    for s in sources:
        folium.Circle(
            (s["lat"], s["lon"]), radius=radius, color=SOURCE, weight=1, fill=True, fill_opacity=0.08,
            tooltip=f"행 {s['row_index']}: {s['count']:,}개, 최근접 {s['nearest_m']:,.0f} m",
        ).add_to(fmap)  # fmt: skip
    for t in targets:
        colour = INSIDE if t["count"] > 0 else OUTSIDE
        folium.CircleMarker((t["lat"], t["lon"]), radius=3, color=colour, fill=True, fill_opacity=0.9, weight=1).add_to(
            fmap
        )
    if points:
        lats, lons = [p["lat"] for p in points], [p["lon"] for p in points]
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    return fmap

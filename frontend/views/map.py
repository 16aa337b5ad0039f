"""지도: datasets with coordinates on one Folium map, each in its own colour, with a legend."""

from __future__ import annotations

import html
from typing import Any

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from frontend.client import DatasetSource, HabClient
from frontend.proximity import render_proximity_section
from frontend.session import get_client, map_max_points
from frontend.ui import coordinate_columns, dataset_label, fetch, kind_label, require

DAEGU_CENTRE = (35.8714, 128.6014)
COLOURS = ("#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab")


def load_layers(client: HabClient, chosen: list[dict[str, Any]], budget: int) -> list[tuple[dict, dict, str]]:
    """(dataset, points payload, colour) per dataset; the point budget is shared evenly."""
    per_dataset = max(1, budget // len(chosen))
    layers = []
    progress = st.progress(0.0, text="좌표를 불러오는 중…")
    for i, dataset in enumerate(chosen):
        points = fetch(
            client.points, DatasetSource(dataset_id=dataset["id"]), max_points=per_dataset, context=dataset["name"]
        )
        if points is not None:
            layers.append((dataset, points, COLOURS[i % len(COLOURS)]))
        progress.progress((i + 1) / len(chosen), text=f"{i + 1}/{len(chosen)} 데이터셋 준비")
    progress.empty()
    return layers


def quality_table(layers: list[tuple[dict, dict, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "데이터셋": d["name"],
                "종류": kind_label(d["kind"]),
                "전체 행": p["total_rows"],
                "유효 좌표": p["valid"],
                "잘못된 좌표": p["invalid"],
                "좌표 없음": p["missing"],
                "지도에 표시": p["returned"],
            }
            for d, p, _ in layers
        ]
    )


def _popup_html(label: dict[str, Any]) -> str:
    return "<br>".join(
        f"<b>{html.escape(str(k))}</b>: {html.escape(str(v))}" for k, v in label.items() if v is not None
    )


def build_map(layers: list[tuple[dict, dict, str]]) -> folium.Map:
    lats = [pt["lat"] for _, p, _ in layers for pt in p["points"]]
    lons = [pt["lon"] for _, p, _ in layers for pt in p["points"]]
    centre = (sum(lats) / len(lats), sum(lons) / len(lons)) if lats else DAEGU_CENTRE
    fmap = folium.Map(location=centre, zoom_start=11, control_scale=True)
    for dataset, points, colour in layers:
        # One GeoJSON layer per dataset: far lighter in the browser than a marker object per point.
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [pt["lon"], pt["lat"]]},
                "properties": {"popup": _popup_html(pt["label"])},
            }
            for pt in points["points"]
        ]
        group = folium.FeatureGroup(name=f"{dataset['name']} ({points['returned']:,})", show=True)
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            marker=folium.CircleMarker(radius=4, weight=1, fill=True, fill_opacity=0.7),
            style_function=lambda _f, c=colour: {"color": c, "fillColor": c},
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
        ).add_to(group)
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(legend_html(layers)))
    if lats:
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    return fmap


def legend_html(layers: list[tuple[dict, dict, str]]) -> str:
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;'
        f'background:{colour};margin-right:6px"></span>{html.escape(d["name"])}</div>'
        for d, _, colour in layers
    )
    return (
        '<div style="position:fixed;bottom:24px;left:24px;z-index:9999;background:white;padding:8px 12px;'
        f'border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.3);font-size:13px"><b>범례</b>{rows}</div>'
    )


client = get_client()
st.title("지도")
items = require(client.datasets)["items"]
mappable = [d for d in items if coordinate_columns(d["columns"])]
if not mappable:
    st.info("위도·경도 열이 있는 데이터셋이 없습니다. CCTV, 보안등, 어린이 보호구역, 주차장 CSV를 올려 보세요.")
    st.stop()

chosen = st.multiselect(
    "지도에 겹쳐 볼 데이터셋", mappable, default=mappable[:1], format_func=dataset_label, key="map_datasets"
)
if not chosen:
    st.info("데이터셋을 하나 이상 골라 주세요.")
    st.stop()

budget = map_max_points()
layers = load_layers(client, chosen, budget)
if not layers:
    st.stop()

invalid = sum(p["invalid"] for _, p, _ in layers)
missing = sum(p["missing"] for _, p, _ in layers)
shown = sum(p["returned"] for _, p, _ in layers)
cols = st.columns(3)
cols[0].metric("지도에 표시한 점", f"{shown:,}")
cols[1].metric("잘못된 좌표", f"{invalid:,}", help="한국 범위(위도 33–39, 경도 124–132)를 벗어나거나 0인 좌표")
cols[2].metric("좌표 없는 행", f"{missing:,}")
if invalid:
    st.warning(f"잘못된 좌표 {invalid:,}개는 지도에서 뺐습니다.", icon="📍")
if any(p["sampled"] for _, p, _ in layers):
    st.caption(f"최대 점 수 {budget:,}개(사이드바에서 바꿀 수 있음)를 데이터셋마다 나누어 무작위로 골라 표시했습니다.")
st.dataframe(quality_table(layers), hide_index=True, width="stretch")
st_folium(build_map(layers), key="hab_map", height=620, use_container_width=True, returned_objects=[])

render_proximity_section(client, mappable)

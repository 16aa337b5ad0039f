"""지도: datasets with coordinates on one Folium map, each in its own colour, with a legend.

Deep link: `/map?dataset=3&dataset=7` selects those layers. Each section is one function, so further
sections (e.g. a proximity analysis) are one call in the page body.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend import maps
from frontend.client import DatasetSource, HabClient
from frontend.proximity import render_proximity_section
from frontend.session import get_client, map_max_points
from frontend.ui import dataset_label, fetch, is_mappable, kind_label, query_dataset_ids, require

MAP_DATASETS = "map_datasets"


def load_layers(client: HabClient, chosen: list[tuple[dict[str, Any], DatasetSource]], budget: int) -> list[maps.Layer]:
    """A layer per (dataset, source) whose points load; the point budget is shared evenly."""
    per_dataset = max(1, budget // len(chosen))
    layers = []
    progress = st.progress(0.0, text="좌표를 불러오는 중…")
    for i, (dataset, source) in enumerate(chosen):
        points = fetch(client.points, source, max_points=per_dataset, context=dataset["name"])
        if points is not None:
            layers.append(maps.Layer(dataset, points, maps.COLOURS[i % len(maps.COLOURS)]))
        progress.progress((i + 1) / len(chosen), text=f"{i + 1}/{len(chosen)} 데이터셋 준비")
    progress.empty()
    return layers


def quality_table(layers: list[maps.Layer]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "데이터셋": layer.dataset["name"],
                "종류": kind_label(layer.dataset["kind"]),
                "전체 행": layer.points["total_rows"],
                "유효 좌표": layer.points["valid"],
                "잘못된 좌표": layer.points["invalid"],
                "좌표 없음": layer.points["missing"],
                "지도에 표시": layer.points["returned"],
            }
            for layer in layers
        ]
    )


def choose_datasets(mappable: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The multiselect, preset from `?dataset=ID` (repeatable) on the first run of this page."""
    wanted = query_dataset_ids()
    if wanted:
        by_id = {d["id"]: d for d in mappable}
        linked = [by_id[i] for i in wanted if i in by_id]
        if linked and st.session_state.get("map_linked") != wanted:
            st.session_state[MAP_DATASETS] = linked
            st.session_state["map_linked"] = wanted
        if len(linked) < len(wanted):
            st.warning("링크의 데이터셋 중 일부는 찾을 수 없거나 좌표가 없어 뺐습니다.", icon="🔗")
    st.session_state.setdefault(MAP_DATASETS, mappable[:1])
    return st.multiselect("지도에 겹쳐 볼 데이터셋", mappable, format_func=dataset_label, key=MAP_DATASETS)


def choose_mode() -> maps.MapMode:
    return st.radio(
        "표시 방식",
        list(maps.MapMode),
        format_func=lambda m: maps.MODE_LABELS[m],
        horizontal=True,
        key="map_mode",
        help="열지도는 사고 데이터에만 적용되고, 다른 데이터셋은 자동 방식으로 그립니다.",
    )


def coordinate_metrics(layers: list[maps.Layer], budget: int) -> None:
    invalid = sum(layer.points["invalid"] for layer in layers)
    missing = sum(layer.points["missing"] for layer in layers)
    shown = sum(layer.points["returned"] for layer in layers)
    cols = st.columns(3)
    cols[0].metric("지도에 표시한 점", f"{shown:,}")
    cols[1].metric("잘못된 좌표", f"{invalid:,}", help="한국 범위(위도 33–39, 경도 124–132)를 벗어나거나 0인 좌표")
    cols[2].metric("좌표 없는 행", f"{missing:,}")
    if invalid:
        st.warning(f"잘못된 좌표 {invalid:,}개는 지도에서 뺐습니다.", icon="📍")
    if any(layer.points["sampled"] for layer in layers):
        st.caption(
            f"최대 점 수 {budget:,}개(사이드바에서 바꿀 수 있음)를 데이터셋마다 나누어 무작위로 골라 표시했습니다."
        )


def map_section(layers: list[maps.Layer], mode: maps.MapMode, *, key: str = "hab_map") -> None:
    st.dataframe(quality_table(layers), hide_index=True, width="stretch")
    maps.render(maps.build_map(layers, mode), key=key)


def main() -> None:
    client = get_client()
    st.title("지도")
    items = require(client.datasets)["items"]
    mappable = [d for d in items if is_mappable(d)]
    if not mappable:
        st.info("위도·경도 열이 있는 데이터셋이 없습니다. CCTV, 보안등, 어린이 보호구역, 주차장 CSV를 올려 보세요.")
        st.stop()
    chosen = choose_datasets(mappable)
    if not chosen:
        st.info("데이터셋을 하나 이상 골라 주세요.")
        st.stop()
    mode = choose_mode()
    budget = map_max_points()
    layers = load_layers(client, [(d, DatasetSource(dataset_id=d["id"])) for d in chosen], budget)
    if not layers:
        st.stop()
    coordinate_metrics(layers, budget)
    map_section(layers, mode)
    render_proximity_section(client, mappable)


if __name__ == "__main__":  # Streamlit runs a page as __main__; the share page imports the sections
    main()

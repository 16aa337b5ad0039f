"""인사이트: the server's Korean sentences about a dataset, and a comparison of two groups (explore page)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from frontend.client import DatasetSource, HabClient
from frontend.ui import fetch

KIND_ICONS = {
    "dominant_category": "📊",
    "missing_values": "🕳️",
    "busiest_hour": "🕒",
    "busiest_weekday": "📅",
    "eclo_by_group": "🚑",
}
MAX_GROUP_VALUES = 50


def render_insights_section(client: HabClient, source: DatasetSource, summary: dict[str, Any]) -> None:
    """The dataset's insights; for one's own or team datasets also a comparison of two groups."""
    st.subheader("인사이트")
    answer = fetch(client.insights, source, context="인사이트")
    if answer is None:
        return
    if not answer["items"]:
        st.caption("이 데이터셋에서 뽑을 만한 인사이트가 없습니다.")
    for item in answer["items"]:
        st.markdown(f"{KIND_ICONS.get(item['kind'], '•')} {item['text']}")
    if source.dataset_id is not None:
        _comparison(client, source.dataset_id, summary)


def _comparison(client: HabClient, dataset_id: int, summary: dict[str, Any]) -> None:
    columns = [c["name"] for c in summary["columns"]]
    texts = [c["name"] for c in summary["columns"] if c["dtype"] == "string"]
    if not texts:
        return
    with st.expander("두 그룹 비교"):
        key = f"compare_{dataset_id}"
        group = st.selectbox("그룹을 나눌 열", texts, key=f"{key}_group")
        dist = fetch(client.distribution, DatasetSource(dataset_id=dataset_id), group, context="그룹 값")
        values = [v["value"] for v in (dist or {}).get("values", [])][:MAX_GROUP_VALUES]
        if len(values) < 2:
            st.caption("이 열에는 비교할 값이 두 개 이상 없습니다.")
            return
        left, right = st.columns(2)
        first = left.selectbox("첫 번째 그룹", values, index=0, key=f"{key}_left")
        second = right.selectbox("두 번째 그룹", values, index=1, key=f"{key}_right")
        target = st.selectbox("비교할 열", [c for c in columns if c != group], key=f"{key}_column")
        if st.button("비교하기", key=f"{key}_go"):
            body = {
                "column": target,
                "left": {"dataset_id": dataset_id, "where": {"column": group, "value": first}},
                "right": {"dataset_id": dataset_id, "where": {"column": group, "value": second}},
            }
            result = fetch(client.compare, body, context="비교")
            if result is not None:
                st.success(result["text"])

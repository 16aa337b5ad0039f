"""데이터 탐색: one dataset (own/team, or opened through a share link): metrics, rows, column charts."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from frontend import charts
from frontend.client import DatasetSource, HabClient
from frontend.insights import render_insights_section
from frontend.session import get_anonymous_client, get_client
from frontend.tables import DTYPE_LABELS, blank_missing, column_info, describe_table
from frontend.ui import (
    MISSING_WARN_RATIO,
    dataset_label,
    fetch,
    kind_label,
    percent,
    query_dataset_ids,
    require,
    share_token_from,
)

PAGE_ROWS = 10
SCATTER_ROWS = 3_000  # a random sample of the whole dataset, drawn by the API


def choose_source(client: HabClient) -> tuple[DatasetSource, dict[str, Any]]:
    """The dataset to explore and its detail (profile included). `?share=TOKEN` (the share page) opens that
    link's dataset with no choice; `?dataset=ID` preselects one of the user's datasets."""
    linked_token = share_token_from(st.query_params.get("share", ""))
    if linked_token:
        return DatasetSource(share_token=linked_token), require(
            get_anonymous_client().shared, linked_token, context="공유 링크"
        )
    mode = st.radio("무엇을 볼까요?", ["내 데이터셋", "공유 링크 열기"], horizontal=True, key="explore_mode")
    if mode == "공유 링크 열기":
        pasted = st.text_input("공유 링크 주소 (또는 shr_ 토큰)", key="explore_share")
        token = share_token_from(pasted)
        if not token:
            if pasted:
                st.warning("주소에서 shr_로 시작하는 공유 토큰을 찾지 못했습니다.")
            st.info("공유받은 링크를 붙여 넣으면 계정 없이도 그 데이터셋을 볼 수 있습니다.")
            st.stop()
        detail = require(get_anonymous_client().shared, token, context="공유 링크")
        expires = str(detail.get("expires_at") or "")[:16].replace("T", " ")
        st.caption(
            f"공유 링크로 보는 중 · {detail['name']} v{detail['version']}" + (f" · 만료 {expires}" if expires else "")
        )
        return DatasetSource(share_token=token), detail
    items = require(client.datasets)["items"]
    if not items:
        st.info("아직 데이터셋이 없습니다. 개요 / 업로드 화면에서 CSV를 올려 보세요.")
        st.stop()
    wanted = query_dataset_ids()
    linked = next((d for d in items if wanted and d["id"] == wanted[0]), None)
    if linked is not None and st.session_state.get("explore_linked") != wanted[0]:
        st.session_state["explore_dataset"] = linked
        st.session_state["explore_linked"] = wanted[0]
    elif wanted and linked is None:
        st.warning(f"링크의 데이터셋 #{wanted[0]}을(를) 찾을 수 없습니다.", icon="🔗")
    choice = st.selectbox("데이터셋", items, format_func=dataset_label, key="explore_dataset")
    return DatasetSource(dataset_id=choice["id"]), require(client.dataset, choice["id"])


def overall_missing(summary: dict[str, Any]) -> float:
    cells = summary["rows"] * summary["column_count"]
    return sum(c["missing"] for c in summary["columns"]) / cells if cells else 0.0


def show_metrics(detail: dict[str, Any]) -> None:
    summary = detail["summary"]
    cols = st.columns(4)
    cols[0].metric("행 수", f"{summary['rows']:,}")
    cols[1].metric("열 수", f"{summary['column_count']:,}")
    cols[2].metric("결측 비율", percent(overall_missing(summary)))
    cols[3].metric("종류", kind_label(summary["kind"]))
    heavy = [c for c in summary["columns"] if c["missing_ratio"] >= MISSING_WARN_RATIO]
    if heavy:
        listed = ", ".join(f"{c['name']} ({percent(c['missing_ratio'])})" for c in heavy)
        st.warning(f"결측이 30% 이상인 열이 있습니다: {listed}", icon="🕳️")


def show_rows(client: HabClient, source: DatasetSource, total: int) -> None:
    st.subheader("미리 보기")
    pages = max(1, math.ceil(total / PAGE_ROWS))
    key = f"explore_page_{source.path}"
    number = st.number_input(f"페이지 (모두 {pages:,}쪽)", min_value=1, max_value=pages, value=1, step=1, key=key)
    offset = (int(number) - 1) * PAGE_ROWS
    rows = fetch(client.rows, source, offset=offset, limit=PAGE_ROWS, context="행 읽기")
    if rows is None:
        return
    frame = pd.DataFrame(rows["items"], columns=rows["columns"])
    st.dataframe(blank_missing(frame), hide_index=True, width="stretch")
    shown = len(rows["items"])
    st.caption(f"{offset + 1:,}–{offset + shown:,}행 / 전체 {rows['total']:,}행" if shown else "행이 없습니다.")


def show_column(client: HabClient, source: DatasetSource, summary: dict[str, Any]) -> None:
    st.subheader("열 분포")
    profiles = {c["name"]: c for c in summary["columns"]}
    name = st.selectbox(
        "열",
        list(profiles),
        format_func=lambda n: f"{n} · {DTYPE_LABELS.get(profiles[n]['dtype'], profiles[n]['dtype'])}",
        key=f"explore_column_{source.path}",
    )
    profile = profiles[name]
    if profile["missing_ratio"] >= MISSING_WARN_RATIO:
        st.warning(f"'{name}' 열은 {percent(profile['missing_ratio'])}가 비어 있습니다. 분포 해석에 주의하세요.")
    dist = fetch(client.distribution, source, name, context="열 분포")
    if dist is None:
        return
    if dist.get("narration"):
        st.caption(dist["narration"])
    cols = st.columns(3)
    cols[0].metric("값이 있는 행", f"{dist['count']:,}")
    cols[1].metric("빈 행", f"{dist['missing']:,}")
    cols[2].metric("서로 다른 값", f"{profile['unique']:,}")
    if dist["type"] == "numeric":
        numeric_charts(dist, summary)
    elif dist["type"] == "datetime":
        tabs = st.tabs(["월별", "시각별", "요일별"])
        for tab, which in zip(tabs, ("by_month", "by_hour", "by_weekday"), strict=True):
            with tab:
                st.plotly_chart(charts.by_period(dist, which), width="stretch")
    elif dist["values"]:
        st.plotly_chart(charts.categories(dist), width="stretch")
        if dist["other_count"]:
            st.caption(f"상위 {len(dist['values'])}개 값만 따로 보이고 나머지 {dist['other_count']:,}행은 묶었습니다.")
    else:
        st.info("값이 없는 열입니다.")


def numeric_charts(dist: dict[str, Any], summary: dict[str, Any]) -> None:
    if not dist["count"]:
        st.info("값이 없는 열입니다.")
        return
    stats = next((n for n in summary["numeric"] if n["column"] == dist["column"]), None)
    if stats:
        shown = {k: stats.get(k) for k in ("mean", "std", "min", "max") if k in stats}
        labels = {"mean": "평균", "std": "표준편차", "min": "최솟값", "max": "최댓값"}
        cols = st.columns(len(shown))
        for col, (key, value) in zip(cols, shown.items(), strict=True):
            col.metric(labels[key], "-" if value is None else f"{value:,.4g}")
    tabs = st.tabs(["히스토그램", "상자 그림", "밀도(KDE)"])
    with tabs[0]:
        st.plotly_chart(charts.histogram(dist), width="stretch")
    with tabs[1]:
        if dist["box"]:
            st.plotly_chart(charts.box(dist), width="stretch")
    with tabs[2]:
        if dist["kde"]:
            st.plotly_chart(charts.kde(dist), width="stretch")
        else:
            st.info("값이 한 가지뿐이라 밀도를 그릴 수 없습니다.")


def show_profile_tables(summary: dict[str, Any]) -> None:
    """The column information and describe() tables v1.2.5 showed, from the profile computed at upload."""
    st.subheader("열 정보")
    st.dataframe(column_info(summary), hide_index=True, width="stretch")
    described = describe_table(summary)
    if not described.empty:
        st.subheader("기술 통계 (describe)")
        st.dataframe(blank_missing(described), width="stretch")


def show_scatter(client: HabClient, source: DatasetSource, summary: dict[str, Any]) -> None:
    numeric = [c["name"] for c in summary["columns"] if c["dtype"] in ("integer", "float")]
    st.subheader("두 수치 열의 산점도")
    if len(numeric) < 2:
        st.caption("수치 열이 두 개 이상 있어야 산점도를 그릴 수 있습니다.")
        return
    left, right = st.columns(2)
    x = left.selectbox("가로축", numeric, index=0, key=f"explore_x_{source.path}")
    y = right.selectbox("세로축", numeric, index=1, key=f"explore_y_{source.path}")
    sample = fetch(client.sample, source, x=x, y=y, n=SCATTER_ROWS, context="산점도 표본")
    if sample is None:
        return
    st.plotly_chart(charts.scatter(sample["xs"], sample["ys"], x, y), width="stretch")
    if sample["sampled"]:
        st.caption(
            f"두 값이 모두 있는 {sample['eligible']:,}행 중 무작위로 고른 {sample['returned']:,}행입니다"
            f" (전체 {sample['total_rows']:,}행, 데이터 전체에서 추출)."
        )
    else:
        st.caption(f"두 값이 모두 있는 {sample['returned']:,}행을 모두 그렸습니다 (전체 {sample['total_rows']:,}행).")


client = get_client()
if not st.query_params.get("share"):  # the share page has its own title
    st.title("데이터 탐색")
source, detail = choose_source(client)
if source.share_token:  # a share link's reads go without this user's token
    client = get_anonymous_client()
summary = detail["summary"]
show_metrics(detail)
# ---- insight text ----
render_insights_section(client, source, summary)
show_rows(client, source, summary["rows"])
show_profile_tables(summary)
show_column(client, source, summary)
show_scatter(client, source, summary)

"""개요 / 업로드: the user's datasets, uploads, deletion and share links."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend.client import ApiError, HabClient
from frontend.session import get_client
from frontend.ui import dataset_label, kind_label, require, share_token_from, show_error

SHARE_LINKS = "share_links"  # links made in this session: [{token, url, dataset, expires_at, revoked}]
FLASH = "overview_flash"
EXPIRY_CHOICES = {"1일": 24 * 3600, "7일": 7 * 24 * 3600, "30일": 30 * 24 * 3600}


def upload_section(client: HabClient) -> None:
    with st.expander("CSV 올리기", expanded=False):
        files = st.file_uploader(
            "CSV 파일 (여러 개 가능, UTF-8·CP949 모두 가능)",
            type=["csv"],
            accept_multiple_files=True,
            key="upload_files",
        )
        visibility = st.radio(
            "공개 범위",
            ["private", "team"],
            horizontal=True,
            format_func=lambda v: "나만 보기" if v == "private" else "팀 공개",
            key="upload_visibility",
        )
        if st.button("올리기", type="primary", disabled=not files, key="upload_button"):
            progress = st.progress(0.0, text="업로드 준비 중…")
            for i, file in enumerate(files, start=1):
                progress.progress((i - 1) / len(files), text=f"{file.name} 올리는 중… ({i}/{len(files)})")
                try:
                    result = client.upload(file.name, file.getvalue(), visibility=visibility)
                    st.success(
                        f"{result['name']} (v{result['version']}): {result['rows']:,}행, {kind_label(result['kind'])}"
                    )
                except ApiError as error:
                    show_error(error, file.name)
            progress.progress(1.0, text=f"{len(files)}개 파일 처리 완료")


def dataset_table(items: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "ID": d["id"],
                "이름": d["name"],
                "데모": "🧪 데모" if d["is_demo"] else "",
                "버전": d["version"],
                "종류": kind_label(d["kind"]),
                "행 수": d["rows"],
                "열 수": len(d["columns"]),
                "소유자": d["owner"],
                "공개": "팀" if d["visibility"] == "team" else "나만",
                "만든 때": d["created_at"][:16].replace("T", " "),
            }
            for d in items
        ]
    )


LINK_STATUS = {"active": "🟢 사용 중", "expired": "⌛ 만료됨", "revoked": "⛔ 취소됨"}


def _when(value: str | None) -> str:
    return str(value)[:16].replace("T", " ") if value else "없음"


def share_section(client: HabClient, choice: dict[str, Any]) -> None:
    links: list[dict[str, Any]] = st.session_state.setdefault(SHARE_LINKS, [])
    expiry = st.selectbox("링크 유효 기간", list(EXPIRY_CHOICES), index=1, key="share_expiry")
    if st.button("공유 링크 만들기", key="share_create"):
        try:
            link = client.share(choice["id"], EXPIRY_CHOICES[expiry])
            links.insert(0, {**link, "dataset": choice["name"], "revoked": False})
        except ApiError as error:
            show_error(error, "공유 링크")
    # A link's address is shown only right after it is made: the server keeps its token hashed.
    for link in links:
        if link["revoked"] or link["dataset_id"] != choice["id"]:
            continue
        st.markdown(f"**새 공유 링크** · 만료 {_when(link['expires_at'])}")
        st.code(link["url"], language=None)  # the code block has a copy button
    listed_links(client, choice)
    with st.popover("다른 공유 링크 취소"):
        pasted = st.text_input("공유 링크 주소나 토큰", key="share_revoke_text")
        if st.button("취소하기", key="share_revoke_pasted"):
            token = share_token_from(pasted)
            if token is None:
                st.warning("공유 링크 주소에서 shr_로 시작하는 토큰을 찾지 못했습니다.")
            elif revoke(client, token):
                st.success("공유 링크를 취소했습니다.")


def listed_links(client: HabClient, choice: dict[str, Any]) -> None:
    """Every link of this dataset the user may manage, with a cancel button for those still in use."""
    try:
        items = client.shares(choice["id"])["items"]
    except ApiError as error:  # the rest of the page (deletion) still works
        show_error(error, "공유 링크 목록")
        return
    if not items:
        st.caption("이 데이터셋에는 아직 공유 링크가 없습니다.")
        return
    st.markdown("**이 데이터셋의 공유 링크**")
    for item in items:
        left, right = st.columns([4, 1])
        left.markdown(
            f"{LINK_STATUS[item['status']]} · 만든 사람 {item['created_by']} · 만든 때 {_when(item['created_at'])}"
            f" · 만료 {_when(item['expires_at'])}"
        )
        if item["status"] == "active" and right.button("취소", key=f"share_revoke_id_{item['id']}"):
            try:
                client.revoke_share_by_id(choice["id"], item["id"])
            except ApiError as error:
                show_error(error, "공유 링크 취소")
                return
            for link in links_made_here(item["id"]):
                link["revoked"] = True
            st.session_state[FLASH] = "공유 링크를 취소했습니다. 이제 그 주소로는 볼 수 없습니다."
            st.rerun()


def links_made_here(share_id: int) -> list[dict[str, Any]]:
    return [link for link in st.session_state.get(SHARE_LINKS, []) if link.get("id") == share_id]


def revoke(client: HabClient, token: str) -> bool:
    try:
        client.revoke_share(token)
        return True
    except ApiError as error:
        show_error(error, "공유 링크 취소")
        return False


def delete_section(client: HabClient, choice: dict[str, Any]) -> None:
    # The confirmation belongs to one dataset: choosing another one asks again.
    confirm_key = f"delete_confirm_{choice['id']}"
    sure = st.checkbox(f"'{choice['name']}' v{choice['version']}을(를) 지웁니다", key=confirm_key)
    if st.button("삭제", type="secondary", disabled=not sure, key="delete_button"):
        try:
            client.delete_dataset(choice["id"])
        except ApiError as error:
            show_error(error, "삭제")
            return
        st.session_state[FLASH] = f"'{choice['name']}'을(를) 삭제했습니다."
        st.session_state.pop(confirm_key, None)
        st.rerun()


client = get_client()
st.title("데이터셋")
if flash := st.session_state.pop(FLASH, None):
    st.success(flash)
upload_section(client)

page = require(client.datasets)
items = page["items"]
if not items:
    st.info("아직 데이터셋이 없습니다. CSV를 올려 보세요.")
    st.stop()

total_rows = sum(d["rows"] for d in items)
left, middle, right = st.columns(3)
left.metric("데이터셋", f"{page['total']:,}개")
middle.metric("전체 행 수", f"{total_rows:,}")
right.metric("데모 데이터셋", f"{sum(d['is_demo'] for d in items):,}개")
st.caption("🧪 데모 표시는 합성(가짜) 데이터입니다. 실제 통계가 아닙니다.")
st.dataframe(
    dataset_table(items),
    hide_index=True,
    width="stretch",
    column_config={"행 수": st.column_config.NumberColumn(format="localized")},
)

st.subheader("공유와 삭제")
choice = st.selectbox("데이터셋", items, format_func=dataset_label, key="overview_dataset")
share_tab, delete_tab = st.tabs(["🔗 공유 링크", "🗑️ 삭제"])
with share_tab:
    share_section(client, choice)
with delete_tab:
    delete_section(client, choice)

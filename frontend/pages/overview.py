"""개요 / 업로드: the user's datasets, uploads, deletion and share links."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.client import ApiError
from frontend.session import get_client

KIND_LABELS = {
    "accident": "교통사고",
    "accident_test": "교통사고(평가)",
    "cctv": "CCTV",
    "lights": "보안등",
    "zones": "어린이 보호구역",
    "parking": "주차장",
    "generic": "일반",
}

client = get_client()
st.title("데이터셋")

with st.expander("CSV 올리기", expanded=False):
    files = st.file_uploader("CSV 파일 (UTF-8, CP949 모두 가능)", type=["csv"], accept_multiple_files=True)
    visibility = st.radio(
        "공개 범위",
        ["private", "team"],
        horizontal=True,
        format_func=lambda v: "나만 보기" if v == "private" else "팀 공개",
    )
    if files and st.button("올리기", type="primary"):
        progress = st.progress(0.0, text="업로드 중…")
        for i, file in enumerate(files, start=1):
            try:
                result = client.upload(file.name, file.getvalue(), visibility=visibility)
                kind = KIND_LABELS.get(result["kind"], result["kind"])
                st.success(f"{result['name']} (v{result['version']}): {result['rows']:,}행, {kind}")
            except ApiError as error:
                st.error(f"{file.name}: {error}")
            progress.progress(i / len(files), text=f"{i}/{len(files)} 완료")

try:
    page = client.datasets()
except ApiError as error:
    st.warning(str(error))
    st.stop()

if not page["items"]:
    st.info("아직 데이터셋이 없습니다. CSV를 올려 보세요.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "ID": d["id"],
            "이름": ("🧪 " if d["is_demo"] else "") + d["name"],
            "버전": d["version"],
            "종류": KIND_LABELS.get(d["kind"], d["kind"]),
            "행 수": d["rows"],
            "열 수": len(d["columns"]),
            "소유자": d["owner"],
            "공개": "팀" if d["visibility"] == "team" else "나만",
            "만든 때": d["created_at"][:16],
        }
        for d in page["items"]
    ]
)
st.caption(f"모두 {page['total']}개 · 🧪 표시는 합성(가짜) 데모 데이터입니다.")
st.dataframe(table, hide_index=True, use_container_width=True)

st.subheader("공유와 삭제")
choice = st.selectbox("데이터셋", page["items"], format_func=lambda d: f"#{d['id']} {d['name']} v{d['version']}")
left, right = st.columns(2)
with left:
    if st.button("공유 링크 만들기"):
        try:
            link = client.share(choice["id"])
            st.code(link["url"], language=None)
            st.caption(f"만료: {link['expires_at'][:16]}")
        except ApiError as error:
            st.error(str(error))
with right:
    if st.button("삭제", type="secondary"):
        try:
            client.delete_dataset(choice["id"])
            st.success("삭제했습니다.")
            st.rerun()
        except ApiError as error:
            st.error(str(error))

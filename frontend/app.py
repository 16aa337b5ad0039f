"""hab frontend entry point: `streamlit run frontend/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this file's folder on sys.path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frontend.client import HabClient
from frontend.session import get_client

st.set_page_config(page_title="hab · 대구 교통안전 데이터", page_icon="🚦", layout="wide")


def sidebar(client: HabClient) -> None:
    with st.sidebar:
        st.header("hab")
        status = client.ready()
        if status.get("status") == "ok":
            st.success("백엔드 연결됨")
        else:
            failed = ", ".join(status.get("failed", [])) or "API"
            st.error(f"백엔드에 연결할 수 없습니다 ({failed}). `make run`으로 서버를 시작해 주세요.")


client = get_client()
sidebar(client)
page = st.navigation([st.Page("pages/overview.py", title="개요 / 업로드", icon="📂", default=True)])
page.run()

"""hab frontend entry point: `streamlit run frontend/app.py` (what `make run` starts)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this file's folder on sys.path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frontend.client import ApiError
from frontend.session import get_anonymous_client, get_client, init_session
from frontend.sidebar import backend_problem, render_sidebar
from frontend.ui import show_error

logger = logging.getLogger("hab.frontend")

st.set_page_config(page_title="hab · 대구 교통안전 데이터", page_icon="🚦", layout="wide")

# The page scripts live in views/, not pages/: a pages/ folder next to this file switches Streamlit to its
# older folder-based navigation on a process's first run (a deep link would then run the page without
# this script: no sidebar, no sys.path set-up) and in AppTest. views/chat.py is the chat page's slot.
PAGES = [
    st.Page("views/overview.py", title="개요 / 업로드", icon="📂", default=True),
    st.Page("views/explore.py", title="데이터 탐색", icon="🔎"),
    st.Page("views/map.py", title="지도", icon="🗺️"),
    st.Page("views/chat.py", title="질의응답", icon="💬"),
    st.Page("views/predict.py", title="ECLO 예측", icon="🎯"),
    st.Page("views/jobs.py", title="작업", icon="⚙️"),
    st.Page("views/models.py", title="모델", icon="🧠"),
    st.Page("views/about.py", title="소개", icon="ℹ️"),
]

init_session()
shared = bool(st.query_params.get("share"))
client = get_anonymous_client() if shared else get_client()  # a share page never sends the viewer's token
status = client.ready()
if shared:
    # A share link (`/?share=shr_…`): one read-only page for someone without an account; no sidebar.
    page = st.navigation([st.Page("views/shared.py", title="공유된 데이터셋", icon="🔗")], position="hidden")
else:
    render_sidebar(client, status)
    page = st.navigation(PAGES)

problem = backend_problem(status)
if problem:
    st.error(f"**백엔드 연결 끊김** — {problem} 연결되면 화면을 새로 고쳐 주세요.", icon="🚨")

try:
    page.run()
except ApiError as error:  # a call a page did not guard: still a readable message
    show_error(error)
except Exception:  # never a traceback in the browser; the log keeps it
    logger.exception("page %s failed", page.title)
    st.error("화면을 그리는 중 예상하지 못한 문제가 생겼습니다. 새로 고친 뒤에도 계속되면 관리자에게 알려 주세요.")

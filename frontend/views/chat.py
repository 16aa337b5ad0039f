"""질의응답: placeholder until the chat page lands (another change replaces this file)."""

from __future__ import annotations

import streamlit as st

st.title("질의응답")
st.info("AI 질의응답 화면은 곧 추가됩니다. 그동안 데이터 탐색과 지도 화면을 이용해 주세요.", icon="💬")

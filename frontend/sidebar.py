"""The sidebar every page shares: backend status, the Anthropic key, model choice, tokens, map size."""

from __future__ import annotations

from typing import Any

import streamlit as st

from frontend.client import ApiError, HabClient
from frontend.config import MAX_MAP_POINTS, MODEL_CHOICES, load_config
from frontend.session import CLAUDE_KEY, CLAUDE_MODEL, MAP_MAX_POINTS, TOKENS_USED

_FAILED_NAMES = {"api": "API 서버", "postgres": "PostgreSQL", "redis": "Redis"}


def backend_problem(status: dict[str, Any]) -> str | None:
    """None when /ready says ok; otherwise a Korean sentence naming what is down."""
    if status.get("status") == "ok":
        return None
    failed = [_FAILED_NAMES.get(name, name) for name in status.get("failed", [])] or ["API 서버"]
    return f"백엔드에 연결할 수 없습니다 ({', '.join(failed)}). `make run`으로 서버를 시작했는지 확인해 주세요."


def _model_choices(client: HabClient, backend_up: bool) -> list[str]:
    """The server's configured models (default first); the built-in list when the backend is down."""
    if backend_up:
        try:
            models = client.chat_models()
            return [models["default"], *(m for m in models["models"] if m != models["default"])]
        except ApiError:
            pass
    return list(MODEL_CHOICES)


def render_sidebar(client: HabClient, status: dict[str, Any]) -> None:
    with st.sidebar:
        st.header("🚦 hab")
        problem = backend_problem(status)
        if problem:
            st.error(problem, icon="🔌")
        else:
            st.success("백엔드 연결됨", icon="✅")
            try:
                me = client.me()
                role = "관리자" if me["role"] == "admin" else "사용자"
                st.caption(f"로그인: {me['name']} ({role})")
            except ApiError as error:
                st.warning(error.message)

        st.divider()
        st.subheader("AI 설정")
        config = load_config()
        file_key = config.claude_api_key
        st.text_input(
            "Anthropic API 키",
            key=CLAUDE_KEY,
            type="password",
            help="이 브라우저 세션에만 보관되며 서버나 파일에 저장하지 않습니다.",
        )
        if file_key and st.session_state.get(CLAUDE_KEY) == file_key:
            if config.claude_api_key_source == "env":
                st.caption("env 파일의 claude_api_key를 불러왔습니다.")
            else:  # a v1.2.x user's file; the caption names the file, never the key
                st.caption(f"프로젝트의 {config.claude_api_key_source}에서 API 키를 불러왔습니다.")
        elif not st.session_state.get(CLAUDE_KEY):
            st.caption("질의응답을 쓰려면 키를 입력해 주세요. 이 세션에만 보관됩니다.")
        choices = _model_choices(client, problem is None)
        if st.session_state.get(CLAUDE_MODEL) not in choices:
            st.session_state[CLAUDE_MODEL] = choices[0]
        st.selectbox("Claude 모델", choices, key=CLAUDE_MODEL, help="서버에 설정된 모델 목록입니다 (첫 번째가 기본).")
        st.metric("이번 세션 사용 토큰", f"{int(st.session_state.get(TOKENS_USED, 0)):,}")

        st.divider()
        st.subheader("지도 설정")
        st.number_input(
            "지도 최대 점 수",
            min_value=100,
            max_value=MAX_MAP_POINTS,
            step=1_000,
            key=MAP_MAX_POINTS,
            help="여러 데이터셋을 겹치면 이 수를 나누어 씁니다. 많을수록 지도가 느려집니다.",
        )

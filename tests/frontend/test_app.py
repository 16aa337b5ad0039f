"""The shell every page shares: navigation, the sidebar, and failure behaviour (backend down, bad token)."""

from __future__ import annotations

import pytest

from tests.frontend.conftest import assert_clean, free_port, metrics, open_page, texts

PAGES = {
    "views/overview.py": "데이터셋",
    "views/explore.py": "데이터 탐색",
    "views/map.py": "지도",
    "views/chat.py": "질의응답",
    "views/predict.py": "ECLO 예측",
    "views/jobs.py": "작업",
    "views/models.py": "모델",
    "views/about.py": "소개",
}


def test_every_page_renders_against_the_live_api(frontend_env):
    for page, title in PAGES.items():
        at = open_page(page)
        assert [t.value for t in at.title] == [title], page
        assert not at.error, (page, texts(at.error))
        assert "백엔드 연결됨" in texts(at.sidebar.success)


def test_sidebar_settings(frontend_env):
    frontend_env.env_file.write_text("claude_api_key=sk-ant-from-env-file\n", encoding="utf-8")
    try:
        at = open_page()
    finally:
        frontend_env.env_file.write_text("", encoding="utf-8")
    sidebar = at.sidebar
    assert "로그인: 관리자 (관리자)" in texts(sidebar.caption)
    key = sidebar.text_input(key="claude_api_key")
    assert key.value == "sk-ant-from-env-file"
    assert "env 파일의 claude_api_key를 불러왔습니다." in texts(sidebar.caption)
    model = sidebar.selectbox(key="claude_model")
    served = frontend_env.get("/api/chat/models").json()
    assert model.options[0] == served["default"] == "claude-sonnet-5-5"
    assert set(model.options) == set(served["models"]) and "claude-sonnet-4-5" not in model.options
    assert model.value == "claude-sonnet-5-5"
    assert metrics(at)["이번 세션 사용 토큰"] == "0"
    assert sidebar.number_input(key="map_max_points").value == 5000

    # A typed key and the other settings stay for the session.
    key.set_value("sk-ant-typed")
    model.select("claude-haiku-5-5")
    at.session_state["tokens_used"] = 1234
    at.run()
    assert_clean(at)
    assert at.session_state["claude_api_key"] == "sk-ant-typed"
    assert at.session_state["claude_model"] == "claude-haiku-5-5"
    assert metrics(at)["이번 세션 사용 토큰"] == "1,234"


def test_a_v12_secrets_file_fills_the_key_and_the_page_names_the_file_not_the_key(frontend_env):
    secrets = frontend_env.root / "project" / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir(parents=True, exist_ok=True)
    secrets.write_text('claude_api_key = "sk-ant-from-secrets-toml"\n', encoding="utf-8")
    try:
        at = open_page()
    finally:
        secrets.unlink()
    assert at.sidebar.text_input(key="claude_api_key").value == "sk-ant-from-secrets-toml"
    captions = texts(at.sidebar.caption)
    assert "프로젝트의 .streamlit/secrets.toml에서 API 키를 불러왔습니다." in captions
    shown = [*texts(at.markdown), *texts(at.caption), *captions, *texts(at.sidebar.markdown)]
    assert not any("sk-ant-from-secrets-toml" in t for t in shown)


def test_without_a_key_file_the_key_is_typed(frontend_env):
    at = open_page()
    assert at.sidebar.text_input(key="claude_api_key").value == ""
    assert any("키를 입력해 주세요" in t for t in texts(at.sidebar.caption))


@pytest.mark.parametrize("page", list(PAGES))
def test_backend_down_every_page_still_renders(page, frontend_env, monkeypatch):
    monkeypatch.setenv("HAB_API_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    at = open_page(page)
    assert [t.value for t in at.title] == [PAGES[page]]
    errors = texts(at.error)
    assert any(e.startswith("**백엔드 연결 끊김**") for e in errors), errors
    assert any("백엔드에 연결할 수 없습니다 (API 서버)" in e for e in texts(at.sidebar.error))
    if page != "views/chat.py":  # every page that calls the API says why it shows nothing
        assert any("백엔드 서버에 연결할 수 없습니다" in e for e in errors), errors
    assert not any("Traceback" in e for e in errors)


def test_a_wrong_token_gives_the_apis_korean_message(frontend_env, monkeypatch):
    monkeypatch.setenv("HAB_API_TOKEN", "hab_not-a-real-token")
    at = open_page()
    assert "백엔드 연결됨" in texts(at.sidebar.success)  # /ready needs no token
    assert any("인증이 필요합니다" in e for e in texts(at.error)), texts(at.error)

"""질의응답 against the live API and worker, with the fake Anthropic server behind them."""

from __future__ import annotations

import secrets

import pytest

from tests.fakes.anthropic_server import tool_use
from tests.frontend.conftest import assert_clean, metrics, open_page, texts

PAGE = "views/chat.py"
KEY = "sk-ant-frontend-" + "f" * 16


@pytest.fixture
def fake(frontend_env):
    frontend_env.anthropic.reset()
    yield frontend_env.anthropic
    frontend_env.anthropic.reset()


def _train_id(stack) -> int:
    items = stack.get("/api/datasets", limit=200).json()["items"]
    return next(d["id"] for d in items if d["kind"] == "accident" and d["is_demo"])


def unique(text: str) -> str:
    """A question never asked before (the answer cache in Redis outlives a test run)."""
    return f"{text} ({secrets.token_hex(3)})"


def _markdown(at) -> str:
    return "\n".join(texts(at.markdown))


def test_without_a_key_the_page_asks_for_one(frontend_env, fake):
    at = open_page(PAGE, state={"claude_api_key": ""})
    assert any("API 키" in w for w in texts(at.warning))
    assert at.chat_input[0].disabled
    assert fake.call_count == 0


def test_key_check_says_whether_the_key_works(frontend_env, fake):
    fake.reply("p", output_tokens=1)
    at = open_page(PAGE, state={"claude_api_key": KEY})
    at.button(key="chat_verify").click().run()
    assert_clean(at)
    assert "API 키가 확인되었습니다." in texts(at.success)
    fake.invalid_keys.add("sk-ant-bad")
    at = open_page(PAGE, state={"claude_api_key": "sk-ant-bad"})
    at.button(key="chat_verify").click().run()
    assert any("올바르지 않" in e for e in texts(at.error))


def test_streamed_answer_with_tool_calls_is_stored_and_shown(frontend_env, fake):
    train_id = _train_id(frontend_env)
    weather = frontend_env.get(f"/api/datasets/{train_id}/columns/기상상태/distribution").json()
    fake.reply("기상상태를 세어 보겠습니다.", tool_use("get_value_counts", {"column": "기상상태"}),
               input_tokens=300, output_tokens=30)  # fmt: skip
    fake.reply("맑음인 날의 사고가 가장 많습니다.", input_tokens=400, output_tokens=50)

    at = open_page(PAGE, state={"claude_api_key": KEY})
    at.checkbox(key=f"chat_ds_{train_id}").check().run()
    question = unique("날씨별 사고 건수를 알려줘")
    at.chat_input[0].set_value(question).run()
    assert_clean(at)

    markdown = _markdown(at)
    assert question in markdown and "맑음인 날의 사고가 가장 많습니다." in markdown
    assert any("도구 호출 1개" in e.label for e in at.expander)
    assert any("get_value_counts" in m for m in texts(at.markdown))
    assert any("value_counts" in c.value for c in at.code)
    assert metrics(at)["이번 세션 사용 토큰"] == f"{300 + 30 + 400 + 50:,}"
    # The tool really ran on the dataset the user ticked: its counts reached Claude.
    tool_result = fake.calls[1].body["messages"][-1]["content"][0]["content"]
    top = weather["values"][0]
    assert top["value"] in tool_result and (str(top["count"]) in tool_result or f"{top['count']:,}" in tool_result)
    conversations = frontend_env.get("/api/conversations").json()["items"]
    assert conversations[0]["title"].startswith("날씨별 사고 건수") and conversations[0]["message_count"] == 2
    assert at.selectbox(key="chat_picker").value == conversations[0]["id"]  # the new conversation is selected
    assert fake.calls[0].api_key == KEY


def test_background_answer_runs_as_a_job(frontend_env, fake):
    train_id = _train_id(frontend_env)
    fake.reply(tool_use("get_missing_values", {}))
    fake.reply("백그라운드 분석 결과입니다.")
    at = open_page(PAGE, state={"claude_api_key": KEY})
    at.checkbox(key=f"chat_ds_{train_id}").check().run()
    at.toggle(key="chat_background").set_value(True).run()
    at.chat_input[0].set_value(unique("결측치를 분석해 줘")).run()
    assert_clean(at)
    assert "백그라운드 분석 결과입니다." in _markdown(at)
    jobs = frontend_env.get("/api/jobs", kind="chat").json()["items"]
    assert jobs[0]["status"] == "succeeded" and jobs[0]["progress"] == 1


def test_anthropic_errors_show_korean_messages_and_store_nothing(frontend_env, fake):
    train_id = _train_id(frontend_env)
    before = frontend_env.get("/api/conversations").json()["total"]
    fake.fail(429, "rate_limit_error", headers={"retry-after": "9"})
    at = open_page(PAGE, state={"claude_api_key": KEY})
    at.checkbox(key=f"chat_ds_{train_id}").check().run()
    at.chat_input[0].set_value(unique("한도 초과 질문")).run()
    assert_clean(at)
    assert any("사용 한도" in e for e in texts(at.error))
    assert frontend_env.get("/api/conversations").json()["total"] == before


def test_resume_and_delete_a_conversation(frontend_env, fake):
    train_id = _train_id(frontend_env)
    fake.reply("첫 답변입니다.")
    at = open_page(PAGE, state={"claude_api_key": KEY})
    at.checkbox(key=f"chat_ds_{train_id}").check().run()
    at.chat_input[0].set_value(unique("이어 갈 대화")).run()
    conversation_id = at.session_state["chat_conversation_id"]

    reopened = open_page(PAGE, state={"claude_api_key": KEY})
    reopened.selectbox(key="chat_picker").select(conversation_id).run()
    assert "첫 답변입니다." in _markdown(reopened)
    reopened.button(key="chat_delete").click().run()
    assert_clean(reopened)
    assert frontend_env.get(f"/api/conversations/{conversation_id}").status_code == 404

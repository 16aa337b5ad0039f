"""The chat API against the fake Anthropic server, through the real SDK, PostgreSQL, Redis and arq."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select, text

from api.analysis import TOOL_NAMES
from api.chat import keybox
from api.chat.prompt import LIMIT_NOTE
from api.db.tables import ChatMessage, Conversation, Job
from api.resources import close_resources, open_resources
from tests.fakes.anthropic_server import Reply, tool_use
from tests.fakes.anthropic_server import text as text_block
from tests.integration.conftest import closed_port, run_worker
from tests.waiting import async_wait_until

KEY = "sk-ant-test-" + "k" * 20


def key_headers(account, key: str = KEY) -> dict[str, str]:
    return {**account.headers, "X-Anthropic-API-Key": key}


def unique(text: str) -> str:
    """A question no other test (or earlier run on the same Redis) asked: no accidental cache hits."""
    return f"{text} [{secrets.token_hex(4)}]"


@dataclass(frozen=True)
class ChatCounts:
    conversations: int
    messages: int


async def chat_counts(resources) -> ChatCounts:
    async with resources.sessions() as session:
        return ChatCounts(
            conversations=await session.scalar(select(func.count()).select_from(Conversation)) or 0,
            messages=await session.scalar(select(func.count()).select_from(ChatMessage)) or 0,
        )


async def chat_job_count(resources) -> int:
    async with resources.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Job).where(Job.kind == "chat")) or 0


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in chunk.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if name:
            events.append((name, json.loads("\n".join(data))))
    return events


async def frame_of(resources, dataset: dict) -> pd.DataFrame:
    from api.datasets.repository import DatasetRepository

    async with resources.sessions() as session:
        table = await resources.tables.load(dataset["content_sha256"], DatasetRepository(session=session).fetch_parquet)
    return table.to_pandas()


# ---- requests refused before any LLM call ---------------------------------------------------------------


async def test_missing_key_and_bad_requests_store_nothing(client, alice, bob, resources, fake_anthropic, chat_datasets):
    train = chat_datasets["train"]
    before, jobs_before = await chat_counts(resources), await chat_job_count(resources)
    body = {"dataset_ids": [train["id"]], "message": "안녕"}
    for path in ("/api/chat/message", "/api/chat/stream", "/api/chat/jobs", "/api/chat/verify-key"):
        response = await client.post(path, json=body, headers=alice.headers)
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "anthropic_key_missing" and "API 키" in error["message"]

    cases = [
        ({"dataset_ids": [train["id"]], "message": "x", "model": "claude-sonnet-4-5"}, alice, 422),
        ({"dataset_ids": [987654], "message": "x"}, alice, 404),
        ({"dataset_ids": [train["id"]], "message": "x"}, bob, 404),  # alice's private dataset
        ({"dataset_ids": [train["id"]], "message": ""}, alice, 400),
        ({"dataset_ids": [train["id"]], "message": "   "}, alice, 400),
        ({"dataset_ids": [train["id"]], "message": "x", "conversation_id": 99999}, alice, 404),
        ({"dataset_ids": [train["id"]], "message": "x", "unknown": 1}, alice, 400),
        ({"dataset_ids": list(range(1, 8)), "message": "x"}, alice, 422),
    ]
    for body, account, status in cases:
        for path in ("/api/chat/message", "/api/chat/stream", "/api/chat/jobs"):
            response = await client.post(path, json=body, headers=key_headers(account))
            assert response.status_code == status, (path, body, response.text)
            assert response.json()["error"]["message"]
    assert await chat_counts(resources) == before
    assert await chat_job_count(resources) == jobs_before
    assert fake_anthropic.call_count == 0


# ---- the agent loop -----------------------------------------------------------------------------------------


async def test_tool_loop_over_one_dataset_stores_the_turn(client, alice, resources, fake_anthropic, chat_datasets):
    train = chat_datasets["train"]
    frame = await frame_of(resources, train)
    top_weather, top_count = frame["기상상태"].value_counts().index[0], int(frame["기상상태"].value_counts().iloc[0])
    fake_anthropic.reply("기상상태를 확인하겠습니다.", tool_use("get_value_counts", {"column": "기상상태"}),
                         input_tokens=1200, output_tokens=40)  # fmt: skip
    fake_anthropic.reply(f"{top_weather}이(가) 가장 많습니다.", input_tokens=1500, output_tokens=60)
    before = await chat_counts(resources)

    response = await client.post(
        "/api/chat/message",
        json={"dataset_ids": [train["id"]], "message": unique("날씨별 사고 건수는?")},
        headers=key_headers(alice),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cache_hit"] is False
    assert body["response"].endswith(f"{top_weather}이(가) 가장 많습니다.")
    assert body["token_usage"]["input"] == 2700 and body["token_usage"]["output"] == 100
    expected_usd = (2700 * 3.0 + 100 * 15.0) / 1_000_000
    assert body["token_usage"]["cost_usd"] == pytest.approx(expected_usd)
    assert body["token_usage"]["cost_krw"] == pytest.approx(expected_usd * 1400, abs=0.01)
    [call] = body["tool_calls"]
    assert call["tool"] == "get_value_counts" and call["ok"] and call["dataset"] == "사고 채팅"
    assert call["rows_touched"] == len(frame) and "value_counts" in call["snippet"]

    # What Claude was sent: the key, the Korean system prompt with the dataset, every tool, then the tool result.
    first, second = fake_anthropic.calls
    assert first.api_key == KEY and second.api_key == KEY
    assert "사고 채팅" in first.body["system"] and "ECLO" in first.body["system"]
    assert len(first.body["tools"]) == len(TOOL_NAMES) == 24
    tool_result = second.body["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and not tool_result["is_error"]
    assert top_weather in tool_result["content"]
    assert str(top_count) in tool_result["content"] or f"{top_count:,}" in tool_result["content"]

    after = await chat_counts(resources)
    assert after.conversations == before.conversations + 1 and after.messages == before.messages + 2
    detail = await client.get(f"/api/conversations/{body['conversation_id']}", headers=alice.headers)
    assert detail.status_code == 200
    conversation = detail.json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["tool_calls"][0]["snippet"] == call["snippet"]
    assert conversation["totals"]["input_tokens"] == 2700 and conversation["message_count"] == 2


async def test_several_datasets_and_several_tools_in_one_step(client, alice, resources, fake_anthropic, chat_datasets):
    train, cctv = chat_datasets["train"], chat_datasets["cctv"]
    fake_anthropic.reply(
        tool_use("get_dataframe_info", {"dataset": "사고 채팅"}),
        tool_use("get_dataframe_info", {"dataset": "CCTV 채팅"}),
        tool_use("get_value_counts", {"dataset": "없는 데이터", "column": "x"}),
    )
    fake_anthropic.reply("두 데이터셋을 비교했습니다.")
    response = await client.post(
        "/api/chat/message",
        json={"dataset_ids": [train["id"], cctv["id"]], "message": unique("두 데이터를 비교해 줘")},
        headers=key_headers(alice),
    )
    assert response.status_code == 200, response.text
    calls = response.json()["tool_calls"]
    assert [c["dataset"] for c in calls[:2]] == ["사고 채팅", "CCTV 채팅"]
    assert [c["rows_touched"] for c in calls[:2]] == [train["rows"], cctv["rows"]]
    assert calls[2]["ok"] is False  # an unknown dataset is a message to Claude, not a failure of the turn
    schema = fake_anthropic.calls[0].body["tools"][0]["input_schema"]
    assert set(schema["properties"]["dataset"]["enum"]) == {"사고 채팅", "CCTV 채팅"}
    assert "dataset" in schema["required"]
    results = fake_anthropic.calls[1].body["messages"][-1]["content"]
    assert [r["is_error"] for r in results] == [False, False, True]
    assert "CCTV 채팅" in results[2]["content"] or "사고 채팅" in results[2]["content"]


async def test_iteration_limit_ends_in_a_tool_free_answer(client, alice, settings, fake_anthropic, chat_datasets):
    limit = settings.chat_max_iterations
    for _ in range(limit):
        fake_anthropic.reply(tool_use("get_missing_values", {}))
    fake_anthropic.reply("지금까지 확인한 결과로 정리합니다.")
    response = await client.post(
        "/api/chat/message",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("끝없이 분석해 줘")},
        headers=key_headers(alice),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["hit_iteration_limit"] is True and body["response"] == "지금까지 확인한 결과로 정리합니다."
    assert len(body["tool_calls"]) == limit and fake_anthropic.call_count == limit + 1
    last = fake_anthropic.calls[-1].body
    assert last["tool_choice"] == {"type": "none"} and LIMIT_NOTE in last["system"]
    assert all("tool_choice" not in c.body for c in fake_anthropic.calls[:-1])


async def test_stream_sends_deltas_tool_events_and_done(client, alice, resources, fake_anthropic, chat_datasets):
    fake_anthropic.reply("잠시만요, 통계를 봅니다.", tool_use("get_column_statistics", {"column": "ECLO"}))
    fake_anthropic.reply("ECLO 평균은 데이터에서 계산한 값과 같습니다. 끝.")
    before = await chat_counts(resources)
    response = await client.post(
        "/api/chat/stream",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("ECLO 통계")},
        headers=key_headers(alice),
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [n for n, _ in events]
    assert names.count("tool_start") == 1 and names.count("tool_end") == 1 and names[-1] == "done"
    assert names.index("tool_start") < names.index("tool_end") < names.index("done")
    deltas = [d["delta"] for n, d in events if n == "text"]
    assert len(deltas) > 2  # really streamed, not one block
    done = events[-1][1]
    assert "".join(deltas) == done["response"] and done["cache_hit"] is False and done["message_id"] > 0
    assert done["token_usage"]["input"] == 200
    tool_end = next(d for n, d in events if n == "tool_end")
    assert tool_end["tool"] == "get_column_statistics" and tool_end["ok"] and tool_end["snippet"]
    assert all(c.body.get("stream") is True for c in fake_anthropic.calls)
    assert (await chat_counts(resources)).messages == before.messages + 2


async def test_stream_reports_anthropic_errors_as_an_event(client, alice, resources, fake_anthropic, chat_datasets):
    fake_anthropic.fail(529, "overloaded_error")
    before = await chat_counts(resources)
    response = await client.post(
        "/api/chat/stream",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("과부하")},
        headers=key_headers(alice),
    )
    events = parse_sse(response.text)
    assert [n for n, _ in events] == ["error"]
    assert events[0][1]["status"] == 503 and "과부하" in events[0][1]["message"]
    assert await chat_counts(resources) == before


# ---- caching -------------------------------------------------------------------------------------------------


async def test_cache_hit_still_stores_the_turn_and_misses_on_history_or_dataset_change(
    client, alice, resources, fake_anthropic, chat_datasets
):
    train, cctv = chat_datasets["train"], chat_datasets["cctv"]
    fake_anthropic.responder = lambda body: Reply([text_block(f"답변 {len(body['messages'])}")])
    question = unique("캐시 질문")
    ask = {"dataset_ids": [train["id"]], "message": question}

    first = (await client.post("/api/chat/message", json=ask, headers=key_headers(alice))).json()
    before = await chat_counts(resources)
    second = (await client.post("/api/chat/message", json=ask, headers=key_headers(alice))).json()
    assert fake_anthropic.call_count == 1
    assert second["cache_hit"] is True and second["response"] == first["response"]
    assert second["token_usage"] == {"input": 0, "output": 0, "cost_usd": 0.0, "cost_krw": 0.0}
    assert second["conversation_id"] != first["conversation_id"]
    assert await chat_counts(resources) == ChatCounts(before.conversations + 1, before.messages + 2)
    stored = (await client.get(f"/api/conversations/{second['conversation_id']}", headers=alice.headers)).json()
    assert stored["messages"][1]["cache_hit"] is True and stored["messages"][1]["content"] == first["response"]

    # The same question later in a conversation has a different history: a miss.
    follow = await client.post(
        "/api/chat/message", json={**ask, "conversation_id": first["conversation_id"]}, headers=key_headers(alice)
    )
    assert follow.json()["cache_hit"] is False and fake_anthropic.call_count == 2
    assert len(fake_anthropic.calls[-1].body["messages"]) == 3  # question, answer, the same question again

    # Another dataset selection: a miss too.
    other = await client.post(
        "/api/chat/message", json={**ask, "dataset_ids": [cctv["id"]]}, headers=key_headers(alice)
    )
    assert other.json()["cache_hit"] is False and fake_anthropic.call_count == 3


async def test_single_flight_runs_twenty_identical_cold_requests_once(client, alice, fake_anthropic, chat_datasets):
    fake_anthropic.reply("한 번만 계산한 답입니다.", delay=0.5)
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("동시에 묻기")}
    responses = await asyncio.gather(
        *(client.post("/api/chat/message", json=ask, headers=key_headers(alice)) for _ in range(20))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:2]
    bodies = [r.json() for r in responses]
    assert fake_anthropic.call_count == 1
    assert {b["response"] for b in bodies} == {"한 번만 계산한 답입니다."}
    assert sorted(b["cache_hit"] for b in bodies) == [False] + [True] * 19
    assert len({b["conversation_id"] for b in bodies}) == 20


async def test_tool_results_are_cached_by_dataset_tool_and_arguments(client, alice, fake_anthropic, chat_datasets):
    args = {"column": "노면상태", "limit": 5}
    for _ in range(2):
        fake_anthropic.reply(tool_use("get_value_counts", dict(reversed(list(args.items())))))
        fake_anthropic.reply("노면상태 요약.")
    records = []
    for _ in range(2):
        response = await client.post(
            "/api/chat/message",
            json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("노면상태")},
            headers=key_headers(alice),
        )
        records.append(response.json()["tool_calls"][0])
    assert records[1]["cached"] is True and records[1]["snippet"] == records[0]["snippet"]
    results = [c.body["messages"][-1]["content"][0]["content"] for c in fake_anthropic.calls[1::2]]
    assert results[0] == results[1]


async def test_chat_works_uncached_when_redis_is_down(settings, alice, fake_anthropic, chat_datasets):
    from api.app import create_app

    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    app = create_app(down)
    app.state.resources = await open_resources(down)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            fake_anthropic.reply("첫 답").reply("둘째 답")
            ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("레디스 없음")}
            first = await c.post("/api/chat/message", json=ask, headers=key_headers(alice))
            second = await c.post("/api/chat/message", json=ask, headers=key_headers(alice))
    finally:
        await close_resources(app.state.resources)
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert first.json()["response"] == "첫 답" and second.json()["response"] == "둘째 답"
    assert not first.json()["cache_hit"] and not second.json()["cache_hit"]
    assert fake_anthropic.call_count == 2


# ---- Anthropic errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "headers", "expected", "code"),
    [
        (401, "authentication_error", {}, 401, "anthropic_key_invalid"),
        (403, "permission_error", {}, 403, "anthropic_forbidden"),
        (429, "rate_limit_error", {"retry-after": "17"}, 429, "anthropic_rate_limited"),
        (529, "overloaded_error", {}, 503, "anthropic_unavailable"),
        (500, "api_error", {}, 503, "anthropic_unavailable"),
        (400, "invalid_request_error", {}, 502, "anthropic_rejected"),
    ],
)
async def test_anthropic_errors_become_clear_statuses(
    client, alice, resources, fake_anthropic, chat_datasets, status, error_type, headers, expected, code
):
    fake_anthropic.fail(status, error_type, headers=headers)
    before = await chat_counts(resources)
    response = await client.post(
        "/api/chat/message",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("오류")},
        headers=key_headers(alice),
    )
    assert response.status_code == expected, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and KEY not in response.text
    if status == 429:
        assert response.headers["retry-after"] == "17" and error["detail"]["retry_after"] == 17
    assert await chat_counts(resources) == before


async def test_invalid_key_and_unreachable_api(client, settings, alice, resources, fake_anthropic, chat_datasets):
    fake_anthropic.invalid_keys.add("sk-ant-wrong")
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("키")}
    wrong = await client.post("/api/chat/message", json=ask, headers=key_headers(alice, "sk-ant-wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "anthropic_key_invalid"
    assert "sk-ant-wrong" not in wrong.text

    fake_anthropic.reply("p", output_tokens=1)
    verify_ok = await client.post("/api/chat/verify-key", headers=key_headers(alice))
    verify_bad = await client.post("/api/chat/verify-key", headers=key_headers(alice, "sk-ant-wrong"))
    assert verify_ok.json()["valid"] is True and verify_bad.json()["valid"] is False
    assert fake_anthropic.calls[-2].body["max_tokens"] == 1

    from api.app import create_app

    offline = settings.model_copy(update={"anthropic_base_url": f"http://127.0.0.1:{closed_port()}"})
    app = create_app(offline)
    app.state.resources = await open_resources(offline)
    before = await chat_counts(resources)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            response = await c.post("/api/chat/message", json=ask, headers=key_headers(alice))
    finally:
        await close_resources(app.state.resources)
    assert response.status_code == 502 and response.json()["error"]["code"] == "anthropic_unreachable"
    assert await chat_counts(resources) == before


# ---- conversations ----------------------------------------------------------------------------------------------


async def test_conversations_list_resume_and_delete(client, alice, bob, resources, fake_anthropic, chat_datasets):
    fake_anthropic.reply("첫 번째 답").reply("두 번째 답")
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("대화 시작")}
    first = (await client.post("/api/chat/message", json=ask, headers=key_headers(alice))).json()
    conversation_id = first["conversation_id"]
    second = await client.post(
        "/api/chat/message",
        json={**ask, "message": "이어서 질문", "conversation_id": conversation_id},
        headers=key_headers(alice),
    )
    assert second.json()["conversation_id"] == conversation_id
    sent = fake_anthropic.calls[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"] and sent[1]["content"] == "첫 번째 답"

    listed = (await client.get("/api/conversations", headers=alice.headers)).json()
    mine = next(c for c in listed["items"] if c["id"] == conversation_id)
    assert (
        mine["message_count"] == 4 and mine["totals"]["input_tokens"] == 200 and mine["title"].startswith("대화 시작")
    )
    assert all(
        c["id"] != conversation_id
        for c in (await client.get("/api/conversations", headers=bob.headers)).json()["items"]
    )

    for method in ("get", "delete"):
        response = await getattr(client, method)(f"/api/conversations/{conversation_id}", headers=bob.headers)
        assert response.status_code == 404 and response.json()["error"]["message"]
    resumed_by_bob = await client.post(
        "/api/chat/message", json={**ask, "conversation_id": conversation_id}, headers=key_headers(bob)
    )
    assert resumed_by_bob.status_code == 404

    assert (await client.delete(f"/api/conversations/{conversation_id}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/api/conversations/{conversation_id}", headers=alice.headers)).status_code == 404
    async with resources.sessions() as session:
        left = await session.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
        )
    assert left == 0


# ---- chat jobs (a real arq worker) ----------------------------------------------------------------------------


async def test_chat_job_runs_in_a_worker_with_progress_and_forgets_the_key(
    client, alice, settings, resources, fake_anthropic, chat_datasets
):
    fake_anthropic.reply(tool_use("get_dataframe_info", {}), tool_use("get_missing_values", {}))
    fake_anthropic.reply(tool_use("get_value_counts", {"column": "요일"}))
    fake_anthropic.reply("백그라운드에서 정리한 답입니다.")
    response = await client.post(
        "/api/chat/jobs",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("오래 걸리는 분석")},
        headers=key_headers(alice),
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    sealed = await resources.redis.get(keybox.redis_key(job_id))
    assert sealed is not None and KEY.encode() not in sealed
    assert keybox.unseal(settings.secret_key, job_id, sealed) == KEY

    await run_worker(settings)

    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "succeeded", job
    assert job["kind"] == "chat" and job["progress"] == 3
    assert [s["tool"] for s in job["summary"]["steps"]] == [
        "get_dataframe_info",
        "get_missing_values",
        "get_value_counts",
    ]
    assert job["summary"]["response"] == "백그라운드에서 정리한 답입니다."
    assert set(job["params"]) == {"dataset_ids", "message", "conversation_id", "model"}
    assert KEY not in json.dumps(job, ensure_ascii=False)
    assert await resources.redis.get(keybox.redis_key(job_id)) is None
    assert all(c.api_key == KEY for c in fake_anthropic.calls)
    stored = (await client.get(f"/api/conversations/{job['summary']['conversation_id']}", headers=alice.headers)).json()
    assert stored["messages"][-1]["content"] == "백그라운드에서 정리한 답입니다."


async def test_chat_job_whose_sealed_key_expired_fails_clearly(client, alice, settings, resources, chat_datasets):
    response = await client.post(
        "/api/chat/jobs",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("만료")},
        headers=key_headers(alice),
    )
    job_id = response.json()["job_id"]
    await resources.redis.delete(keybox.redis_key(job_id))
    await run_worker(settings)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "failed" and "다시" in job["error"]


def test_sealed_keys_are_bound_to_their_job_and_secret():
    sealed = keybox.seal("s" * 40, 7, KEY)
    assert keybox.unseal("s" * 40, 7, sealed) == KEY
    for secret, job_id in (("s" * 40, 8), ("t" * 40, 7)):
        with pytest.raises(keybox.SealedKeyError):
            keybox.unseal(secret, job_id, sealed)


async def test_errors_inside_a_stream_keep_their_meaning(client, alice, resources, fake_anthropic, chat_datasets):
    """Anthropic reports overload or rate limits mid-answer as an SSE `error` event on a 200 response."""
    before = await chat_counts(resources)
    for error_type, status in (("overloaded_error", 503), ("rate_limit_error", 429), ("api_error", 503)):
        fake_anthropic.fail_mid_stream(error_type)
        response = await client.post(
            "/api/chat/stream",
            json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("중간 오류")},
            headers=key_headers(alice),
        )
        events = parse_sse(response.text)
        assert events[-1][0] == "error" and events[-1][1]["status"] == status, (error_type, events)
    assert await chat_counts(resources) == before


async def test_no_database_connection_is_held_while_claude_thinks(
    client, alice, resources, fake_anthropic, chat_datasets
):
    fake_anthropic.reply("천천히 온 답", delay=1.0)
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("느린 답")}
    pending = asyncio.create_task(client.post("/api/chat/message", json=ask, headers=key_headers(alice)))
    await async_wait_until(lambda: fake_anthropic.call_count == 1, what="the question reached the fake Claude")
    assert not pending.done()  # Claude is still thinking (a 1 s delay): this is the moment to look
    async with resources.sessions() as session:
        idle_in_transaction = await session.scalar(
            text(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and state like 'idle in transaction%' and pid <> pg_backend_pid()"
            )
        )
    response = await pending
    assert response.status_code == 200 and idle_in_transaction == 0


async def test_a_finished_chat_job_delivered_again_does_not_run_again(
    client, alice, settings, resources, fake_anthropic, chat_datasets
):
    from api.jobs.services import enqueue

    fake_anthropic.reply("한 번만 실행된 답")
    response = await client.post(
        "/api/chat/jobs",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("중복 배달")},
        headers=key_headers(alice),
    )
    job_id = response.json()["job_id"]
    await run_worker(settings)
    before = await chat_counts(resources)
    async with resources.sessions() as session:
        job = await session.get(Job, job_id)
    await enqueue(resources, job, attempt=1)  # arq delivers at least once
    await run_worker(settings)
    assert fake_anthropic.call_count == 1 and await chat_counts(resources) == before
    assert (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()["status"] == "succeeded"


async def test_cancelling_a_queued_chat_job_drops_its_sealed_key_at_once(
    client, alice, resources, fake_anthropic, chat_datasets
):
    response = await client.post(
        "/api/chat/jobs",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("곧 취소할 질문")},
        headers=key_headers(alice),
    )
    job_id = response.json()["job_id"]
    assert await resources.redis.get(keybox.redis_key(job_id)) is not None
    cancel = await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert await resources.redis.get(keybox.redis_key(job_id)) is None  # no worker has run
    assert fake_anthropic.calls == []


async def test_cancelling_a_running_chat_job_stops_it(
    client, alice, settings, resources, fake_anthropic, chat_datasets, monkeypatch
):
    from api.chat import jobs as chat_jobs

    monkeypatch.setattr(chat_jobs, "CANCEL_CHECK_SECONDS", 0.1)
    fake_anthropic.reply("너무 늦은 답", delay=3.0)
    before = await chat_counts(resources)
    response = await client.post(
        "/api/chat/jobs",
        json={"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("취소할 질문")},
        headers=key_headers(alice),
    )
    job_id = response.json()["job_id"]
    worker = asyncio.create_task(run_worker(settings))
    # Cancel only once the run is waiting on Claude: a job cancelled while still queued never runs, and
    # the test would pass without stopping anything.
    await async_wait_until(lambda: fake_anthropic.call_count == 1, seconds=30, what="the job's call reached Claude")
    running = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert running["status"] == "running" and running["attempts"] == 1, running
    cancel = await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
    assert cancel.status_code == 200
    await asyncio.wait_for(worker, timeout=30)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "cancelled" and job["finished_at"] is not None
    assert await chat_counts(resources) == before
    assert await resources.redis.get(keybox.redis_key(job_id)) is None

"""What a chat answer from the Redis cache does: no LLM call, no dataset table read, one stored turn (also in a
later turn of a conversation); what it still refuses (a dataset or a conversation the caller may not see); and
the one-statement turn store (new conversation, later turn, a conversation that is not the caller's)."""

from __future__ import annotations

import secrets
import time

import asyncpg
import pytest
from sqlalchemy import event, func, select, text

from api.chat.repository import ConversationRepository, StoredTurn
from api.db.tables import ChatMessage, Conversation
from api.observability.metrics import CACHE_REQUESTS

KEY = "sk-ant-test-" + "h" * 20
LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


def key_headers(account) -> dict[str, str]:
    return {**account.headers, "X-Anthropic-API-Key": KEY}


def unique(text: str) -> str:
    return f"{text} [{secrets.token_hex(4)}]"


def answer_hits() -> float:
    return CACHE_REQUESTS.labels(cache="answer", result="hit")._value.get()


async def message_count(resources) -> int:
    async with resources.sessions() as session:
        return await session.scalar(select(func.count()).select_from(ChatMessage)) or 0


async def stored_rows(resources) -> tuple[int, int]:
    """(conversations, messages) in the database."""
    async with resources.sessions() as session:
        conversations = await session.scalar(select(func.count()).select_from(Conversation)) or 0
    return conversations, await message_count(resources)


async def test_a_hit_makes_no_llm_call_reads_no_table_and_stores_one_new_conversation(
    client, alice, resources, fake_anthropic, chat_datasets
):
    fake_anthropic.reply("캐시에서 온 답입니다.", input_tokens=321, output_tokens=45)
    train = chat_datasets["train"]
    ask = {"dataset_ids": [train["id"]], "message": unique("  캐시   적중  ")}
    miss = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))
    assert miss.status_code == 200 and miss.json()["cache_hit"] is False
    resources.tables.discard(train["content_sha256"])  # a hit that read the dataset would load it again
    hits_before, calls_before = answer_hits(), fake_anthropic.call_count
    rows_before = await stored_rows(resources)

    hit = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))

    assert hit.status_code == 200
    assert await stored_rows(resources) == (rows_before[0] + 1, rows_before[1] + 2)
    body = hit.json()
    assert fake_anthropic.call_count == calls_before
    assert resources.tables.get(train["content_sha256"]) is None
    assert answer_hits() == hits_before + 1
    assert body["cache_hit"] is True and body["response"] == miss.json()["response"] == "캐시에서 온 답입니다."
    assert body["conversation_id"] != miss.json()["conversation_id"]
    detail = (await client.get(f"/api/conversations/{body['conversation_id']}", headers=alice.headers)).json()
    question, reply = detail["messages"]
    assert detail["title"] == " ".join(ask["message"].split())
    assert (detail["message_count"], detail["dataset_ids"], detail["totals"]["input_tokens"]) == (2, [train["id"]], 0)
    assert question["id"] < reply["id"] == body["message_id"]
    assert (question["role"], question["content"], question["cache_hit"]) == ("user", ask["message"].strip(), False)
    assert (reply["role"], reply["content"], reply["cache_hit"]) == ("assistant", body["response"], True)
    assert reply["model"] == body["model"] and reply["token_usage"]["input"] == 0


async def test_a_later_turn_adds_to_the_totals_and_a_foreign_conversation_stores_nothing(
    client, alice, bob, resources, fake_anthropic, chat_datasets
):
    fake_anthropic.reply("첫 답", input_tokens=100, output_tokens=10)
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("합계 질문")}
    first = (await client.post("/api/chat/message", json=ask, headers=key_headers(alice))).json()
    fake_anthropic.reply("둘째 답", input_tokens=200, output_tokens=20)
    follow = {"dataset_ids": [], "message": "이어서", "conversation_id": first["conversation_id"]}
    second = (await client.post("/api/chat/message", json=follow, headers=key_headers(alice))).json()
    assert second["conversation_id"] == first["conversation_id"] and second["message_id"] > first["message_id"]
    detail = (await client.get(f"/api/conversations/{first['conversation_id']}", headers=alice.headers)).json()
    assert detail["message_count"] == 4 and detail["dataset_ids"] == []
    assert (detail["totals"]["input_tokens"], detail["totals"]["output_tokens"]) == (300, 30)
    assert [m["content"] for m in detail["messages"]] == [ask["message"], "첫 답", "이어서", "둘째 답"]

    before = await message_count(resources)
    turn = StoredTurn(
        owner_id=bob.id,
        conversation_id=first["conversation_id"],
        title="-",
        model=first["model"],
        dataset_ids=[],
        question="남의 대화",
        answer="-",
        tool_calls=[],
        input_tokens=1,
        output_tokens=1,
        cost_usd=0.5,
        cache_hit=False,
    )
    async with resources.sessions() as session:
        assert await ConversationRepository(session=session).store_turn(turn) is None
        await session.commit()
    assert await message_count(resources) == before
    async with resources.sessions() as session:
        row = await session.get(Conversation, first["conversation_id"])
        assert row is not None and (row.message_count, row.input_tokens) == (4, 300)


async def test_a_hit_in_a_later_turn_is_stored_in_that_conversation_with_zero_tokens(
    client, alice, resources, fake_anthropic, chat_datasets
):
    ids = [chat_datasets["train"]["id"]]
    first, then = unique("첫 질문"), unique("이어지는 질문")
    fake_anthropic.reply("첫 답", input_tokens=100, output_tokens=10)
    a = (
        await client.post("/api/chat/message", json={"dataset_ids": ids, "message": first}, headers=key_headers(alice))
    ).json()
    b = (
        await client.post("/api/chat/message", json={"dataset_ids": ids, "message": first}, headers=key_headers(alice))
    ).json()
    assert (a["cache_hit"], b["cache_hit"]) == (False, True) and a["conversation_id"] != b["conversation_id"]
    fake_anthropic.reply("이어진 답", input_tokens=200, output_tokens=20)
    follow = {"dataset_ids": ids, "message": then, "conversation_id": a["conversation_id"]}
    miss = await client.post("/api/chat/message", json=follow, headers=key_headers(alice))
    assert miss.status_code == 200 and miss.json()["cache_hit"] is False
    calls_before, rows_before = fake_anthropic.call_count, await stored_rows(resources)

    # The same history and question in the other conversation: answered from the cache, stored there.
    hit = await client.post(
        "/api/chat/message", json={**follow, "conversation_id": b["conversation_id"]}, headers=key_headers(alice)
    )

    assert hit.status_code == 200
    body = hit.json()
    assert body["cache_hit"] is True and body["response"] == "이어진 답"
    assert body["conversation_id"] == b["conversation_id"] and body["token_usage"]["input"] == 0
    assert fake_anthropic.call_count == calls_before
    assert await stored_rows(resources) == (rows_before[0], rows_before[1] + 2)
    detail = (await client.get(f"/api/conversations/{b['conversation_id']}", headers=alice.headers)).json()
    assert [m["content"] for m in detail["messages"]] == [first, "첫 답", then, "이어진 답"]
    assert [m["cache_hit"] for m in detail["messages"]] == [False, True, False, True]
    assert detail["message_count"] == 4 and detail["totals"]["input_tokens"] == 0
    assert detail["messages"][-1]["id"] == body["message_id"]


async def test_a_cached_answer_is_refused_for_a_dataset_or_conversation_the_caller_may_not_see(
    client, alice, bob, resources, fake_anthropic, chat_datasets
):
    private = chat_datasets["train"]  # alice's, private
    first, then = unique("남의 데이터셋"), unique("남의 대화")
    ask = {"dataset_ids": [private["id"]], "message": first}
    fake_anthropic.reply("앨리스의 답")
    a = (await client.post("/api/chat/message", json=ask, headers=key_headers(alice))).json()
    b = (await client.post("/api/chat/message", json=ask, headers=key_headers(alice))).json()
    assert b["cache_hit"] is True  # the answer to `first` is in the cache
    # The answer to `then` after `first` is cached too (asked in a), so b's next turn would be a hit.
    follow = {"dataset_ids": [], "message": then, "conversation_id": a["conversation_id"]}
    fake_anthropic.reply("앨리스의 이어진 답")
    assert (await client.post("/api/chat/message", json=follow, headers=key_headers(alice))).status_code == 200
    hits_before, calls_before = answer_hits(), fake_anthropic.call_count
    rows_before = await stored_rows(resources)

    foreign_dataset = await client.post("/api/chat/message", json=ask, headers=key_headers(bob))
    foreign_conversation = await client.post(
        "/api/chat/message", json={**follow, "conversation_id": b["conversation_id"]}, headers=key_headers(bob)
    )

    for response, field in ((foreign_dataset, "dataset_id"), (foreign_conversation, "conversation_id")):
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["message"].endswith("찾을 수 없습니다.") and field in error["detail"]
    assert answer_hits() == hits_before and fake_anthropic.call_count == calls_before
    assert await stored_rows(resources) == rows_before
    # The same follow-up from alice herself is the hit it was kept from being.
    own = await client.post(
        "/api/chat/message", json={**follow, "conversation_id": b["conversation_id"]}, headers=key_headers(alice)
    )
    assert own.status_code == 200 and own.json()["cache_hit"] is True


async def test_a_bare_connection_found_lost_is_invalidated_not_returned_to_the_pool(resources):
    invalidated: list[object] = []
    pool = resources.engine.sync_engine.pool

    def record(_dbapi_connection, connection_record, _exception):
        invalidated.append(connection_record)

    event.listen(pool, "invalidate", record)
    try:
        with pytest.raises(LOST):
            async with resources.bare_connections.driver() as driver:
                async with resources.sessions() as session:  # another connection: this one is checked out
                    await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": driver.get_server_pid()})
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # until the backend's end reaches this client
                    await driver.fetchval("SELECT 1")
        assert len(invalidated) == 1
        async with resources.bare_connections.driver() as driver:
            assert await driver.fetchval("SELECT 1") == 1
    finally:
        event.remove(pool, "invalidate", record)

"""What a chat answer from the Redis cache does: no LLM call, no dataset table read, one stored turn; and the
one-statement turn store (new conversation, later turn, a conversation that is not the caller's)."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from api.chat.repository import ConversationRepository, StoredTurn
from api.db.tables import ChatMessage, Conversation
from api.observability.metrics import CACHE_REQUESTS

KEY = "sk-ant-test-" + "h" * 20


def key_headers(account) -> dict[str, str]:
    return {**account.headers, "X-Anthropic-API-Key": KEY}


def unique(text: str) -> str:
    return f"{text} [{secrets.token_hex(4)}]"


def answer_hits() -> float:
    return CACHE_REQUESTS.labels(cache="answer", result="hit")._value.get()


async def message_count(resources) -> int:
    async with resources.sessions() as session:
        return await session.scalar(select(func.count()).select_from(ChatMessage)) or 0


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

    hit = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))

    assert hit.status_code == 200
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

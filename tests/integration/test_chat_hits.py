"""What a chat answer from the Redis cache does: no LLM call, no dataset table read, one stored turn (also in a
later turn of a conversation); what it still refuses (a dataset or a conversation the caller may not see); and
the one-statement turn store (new conversation, later turn, a conversation that is not the caller's)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

import asyncpg
import pytest
from sqlalchemy import event, func, select, text

from api.chat.repository import ConversationRepository, StoredTurn
from api.db.tables import ChatMessage, Conversation
from api.demo.generate import generate_demo_datasets
from api.observability.metrics import CACHE_REQUESTS
from api.users.services import Principal, Role

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


def principal_of(account) -> Principal:
    return Principal(id=account.id, name=account.name, role=Role.MEMBER)


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


@pytest.fixture
async def team_dataset(client, alice):
    """A fresh team dataset of alice's (each test may delete or change its own)."""
    seed = secrets.randbelow(10**9)  # its own bytes: deleting it touches no other dataset's blob
    demo = next(d for d in generate_demo_datasets(seed=seed, scale=0.02) if d.key == "train")
    response = await client.post(
        "/api/datasets/upload/csv",
        params={"name": unique("팀 사고"), "visibility": "team"},
        content=demo.csv_bytes,
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def ask_until_cached(client, account, ask) -> None:
    """Ask twice: a miss that caches the answer (and remembers the briefs), then a hit."""
    for expected_hit in (False, True):
        response = await client.post("/api/chat/message", json=ask, headers=key_headers(account))
        assert response.status_code == 200 and response.json()["cache_hit"] is expected_hit


async def edit_by_hand(resources, dataset_id: int, **columns: str) -> None:
    """Change a dataset row in SQL, as an operator would fix one by hand (no API does this)."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    async with resources.sessions() as session:
        await session.execute(text(f"UPDATE datasets SET {assignments} WHERE id = :id"), {**columns, "id": dataset_id})
        await session.commit()


@contextlib.contextmanager
def checkouts_by_this_task(resources):
    """The pool checkouts made by the running task (the ASGI client runs the app in it)."""
    task = asyncio.current_task()
    made: list[object] = []

    def record(_dbapi_connection, connection_record, _proxy):
        if asyncio.current_task() is task:
            made.append(connection_record)

    pool = resources.engine.sync_engine.pool
    event.listen(pool, "checkout", record)
    try:
        yield made
    finally:
        event.remove(pool, "checkout", record)


async def test_a_hit_on_remembered_datasets_reads_nothing_before_redis_and_stores_with_one_checkout(
    client, alice, resources, fake_anthropic, team_dataset
):
    fake_anthropic.reply("기억된 데이터셋의 답")
    ask = {"dataset_ids": [team_dataset["id"]], "message": unique("기억")}
    with checkouts_by_this_task(resources) as first:
        miss = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))
    assert miss.status_code == 200 and miss.json()["cache_hit"] is False
    assert len(first) >= 2  # the briefs read on a bare connection, then the miss's session
    rows_before = await stored_rows(resources)

    with checkouts_by_this_task(resources) as made:
        hit = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))

    assert hit.status_code == 200 and hit.json()["cache_hit"] is True
    assert len(made) == 1  # the store; the briefs came from memory
    assert await stored_rows(resources) == (rows_before[0] + 1, rows_before[1] + 2)


async def test_a_remembered_dataset_deleted_since_answers_404_and_stores_nothing(
    client, alice, resources, fake_anthropic, team_dataset
):
    fake_anthropic.reply("지워질 데이터셋의 답")
    ask = {"dataset_ids": [team_dataset["id"]], "message": unique("삭제 뒤")}
    await ask_until_cached(client, alice, ask)
    deleted = await client.delete(f"/api/datasets/{team_dataset['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    hits_before, calls_before, rows_before = answer_hits(), fake_anthropic.call_count, await stored_rows(resources)

    again = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))

    assert again.status_code == 404, again.text
    error = again.json()["error"]
    assert error["message"] == "데이터셋을 찾을 수 없습니다." and error["detail"]["dataset_id"] == team_dataset["id"]
    assert await stored_rows(resources) == rows_before
    assert fake_anthropic.call_count == calls_before
    assert answer_hits() == hits_before  # found in Redis but refused by the store's re-check: not a hit
    assert resources.dataset_briefs.get(principal_of(alice), [team_dataset["id"]]) is None


async def test_a_dataset_made_private_since_is_refused_to_another_user_on_a_hit_and_on_a_miss(
    client, alice, bob, resources, fake_anthropic, team_dataset
):
    fake_anthropic.reply("팀 데이터셋의 답")
    ids = [team_dataset["id"]]
    ask = {"dataset_ids": ids, "message": unique("팀 질문")}
    await ask_until_cached(client, bob, ask)
    assert resources.dataset_briefs.get(principal_of(bob), ids) is not None
    await edit_by_hand(resources, ids[0], visibility="private")
    calls_before, rows_before = fake_anthropic.call_count, await stored_rows(resources)

    hit = await client.post("/api/chat/message", json=ask, headers=key_headers(bob))
    assert resources.dataset_briefs.get(principal_of(bob), ids) is None
    await client.post("/api/chat/message", json=ask, headers=key_headers(alice))  # alice may: remembered again
    resources.dataset_briefs.put(principal_of(bob), ids, resources.dataset_briefs.get(principal_of(alice), ids))
    miss = await client.post("/api/chat/message", json={**ask, "message": unique("새 질문")}, headers=key_headers(bob))

    for response in (hit, miss):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["detail"]["dataset_id"] == ids[0]
    assert fake_anthropic.call_count == calls_before  # the miss ran no LLM on the remembered briefs
    conversations, messages = await stored_rows(resources)
    assert (conversations, messages) == (rows_before[0] + 1, rows_before[1] + 2)  # alice's hit only


async def test_a_dataset_renamed_since_makes_a_remembered_hit_start_over_with_the_new_name(
    client, alice, resources, fake_anthropic, team_dataset
):
    fake_anthropic.reply("옛 이름의 답")
    ask = {"dataset_ids": [team_dataset["id"]], "message": unique("이름")}
    await ask_until_cached(client, alice, ask)
    renamed = unique("새 이름")
    await edit_by_hand(resources, team_dataset["id"], name=renamed)
    fake_anthropic.reply("새 이름의 답")
    calls_before, rows_before = fake_anthropic.call_count, await stored_rows(resources)

    again = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))

    assert again.status_code == 200, again.text
    body = again.json()
    # The label is part of the key: the old answer is not the answer about the renamed dataset.
    assert body["cache_hit"] is False and body["response"] == "새 이름의 답"
    assert fake_anthropic.call_count == calls_before + 1
    assert await stored_rows(resources) == (rows_before[0] + 1, rows_before[1] + 2)  # stored once, not twice
    remembered = resources.dataset_briefs.get(principal_of(alice), [team_dataset["id"]])
    assert remembered is not None and remembered[0].name == renamed


async def test_a_later_turn_on_a_dataset_made_private_since_is_refused_and_stores_nothing(
    client, alice, bob, resources, fake_anthropic, team_dataset
):
    """The later-turn statement re-checks the datasets too: bob's two conversations share a history, the
    follow-up is cached from the first, and the dataset turns private before he asks it in the second."""
    ids = [team_dataset["id"]]
    opening = {"dataset_ids": ids, "message": unique("팀 첫 질문")}
    fake_anthropic.reply("팀 첫 답")
    first = (await client.post("/api/chat/message", json=opening, headers=key_headers(bob))).json()
    second = (await client.post("/api/chat/message", json=opening, headers=key_headers(bob))).json()
    assert second["cache_hit"] is True
    follow = {"dataset_ids": ids, "message": unique("팀 후속"), "conversation_id": first["conversation_id"]}
    fake_anthropic.reply("팀 후속 답")
    assert (await client.post("/api/chat/message", json=follow, headers=key_headers(bob))).json()["cache_hit"] is False
    await edit_by_hand(resources, ids[0], visibility="private")
    hits_before, calls_before, rows_before = answer_hits(), fake_anthropic.call_count, await stored_rows(resources)

    refused = await client.post(
        "/api/chat/message", json={**follow, "conversation_id": second["conversation_id"]}, headers=key_headers(bob)
    )

    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["detail"]["dataset_id"] == ids[0]
    assert await stored_rows(resources) == rows_before
    assert (answer_hits(), fake_anthropic.call_count) == (hits_before, calls_before)


async def test_a_dataset_whose_content_changed_since_is_not_answered_from_the_old_content(
    client, alice, resources, fake_anthropic, team_dataset, chat_datasets
):
    """Same name, other bytes (an operator re-pointing the row by hand): the remembered hit is refused and the
    question is asked about the content the dataset has now."""
    fake_anthropic.reply("옛 내용의 답")
    ask = {"dataset_ids": [team_dataset["id"]], "message": unique("내용")}
    await ask_until_cached(client, alice, ask)
    other = chat_datasets["train"]["content_sha256"]
    assert other != team_dataset["content_sha256"]
    await edit_by_hand(resources, team_dataset["id"], content_sha256=other)
    fake_anthropic.reply("새 내용의 답")
    calls_before, rows_before = fake_anthropic.call_count, await stored_rows(resources)

    again = await client.post("/api/chat/message", json=ask, headers=key_headers(alice))

    assert again.status_code == 200, again.text
    assert again.json()["cache_hit"] is False and again.json()["response"] == "새 내용의 답"
    assert fake_anthropic.call_count == calls_before + 1
    assert await stored_rows(resources) == (rows_before[0] + 1, rows_before[1] + 2)


async def test_an_admin_hit_on_another_users_private_dataset_is_stored_by_the_hit_path(
    client, alice, admin, resources, fake_anthropic, chat_datasets
):
    """Admins see every dataset: the re-check lets their remembered hit through instead of starting over."""
    fake_anthropic.reply("관리자의 답")
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("관리자")}  # alice's, private
    assert (await client.post("/api/chat/message", json=ask, headers=key_headers(admin))).status_code == 200
    hits_before = answer_hits()

    with checkouts_by_this_task(resources) as made:
        hit = await client.post("/api/chat/message", json=ask, headers=key_headers(admin))

    assert hit.status_code == 200 and hit.json()["cache_hit"] is True
    assert len(made) == 1 and answer_hits() == hits_before + 1

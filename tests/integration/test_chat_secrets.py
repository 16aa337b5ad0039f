"""A canary Anthropic key goes through every chat path; afterwards it is nowhere: not in a log line,
a database row, a Redis key or value, or a response body."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import text

from tests.fakes.anthropic_server import tool_use
from tests.integration.conftest import run_worker
from tests.integration.test_chat_api import unique


async def _database_dump(resources) -> str:
    """Every row of every table in the public schema, as text."""
    parts = []
    async with resources.sessions() as session:
        tables = (await session.execute(text("select tablename from pg_tables where schemaname = 'public'"))).scalars()
        for table in list(tables):
            rows = await session.execute(text(f'select t::text from "{table}" t'))
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


async def _redis_dump(redis) -> bytes:
    """Every key and value in the suite's Redis database, whatever the type."""
    parts: list[bytes] = []
    async for key in redis.scan_iter(count=1000):
        parts.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(await redis.get(key) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                parts += [field, value]
        elif kind == "list":
            parts += await redis.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(await redis.smembers(key))
        elif kind == "zset":
            parts += [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                for field, value in fields.items():
                    parts += [field, value]
    return b"\n".join(parts)


async def test_canary_key_is_never_stored_or_logged(
    client, alice, settings, resources, fake_anthropic, chat_datasets, caplog
):
    canary = "sk-ant-canary-" + secrets.token_hex(16)
    headers = {**alice.headers, "X-Anthropic-API-Key": canary}
    caplog.set_level(logging.DEBUG)
    dataset_id = chat_datasets["train"]["id"]
    bodies: list[str] = []

    # A tool loop, a stream, a cache hit, a background job through a real worker.
    fake_anthropic.reply(tool_use("get_sample_rows", {"n": 2}), input_tokens=10, output_tokens=5)
    fake_anthropic.reply("카나리아 답")
    ask = {"dataset_ids": [dataset_id], "message": unique("카나리아")}
    bodies.append((await client.post("/api/chat/message", json=ask, headers=headers)).text)
    bodies.append((await client.post("/api/chat/message", json=ask, headers=headers)).text)  # cache hit
    fake_anthropic.reply(tool_use("get_missing_values", {})).reply("스트림 답")
    bodies.append((await client.post("/api/chat/stream", json={**ask, "message": unique("s")}, headers=headers)).text)
    fake_anthropic.reply(tool_use("get_dataframe_info", {})).reply("작업 답")
    job = await client.post("/api/chat/jobs", json={**ask, "message": unique("j")}, headers=headers)
    bodies.append(job.text)
    sealed_while_queued = await _redis_dump(resources.redis)
    await run_worker(settings)
    bodies.append((await client.get(f"/api/jobs/{job.json()['job_id']}", headers=alice.headers)).text)
    bodies.append((await client.post("/api/chat/verify-key", headers=headers)).text)

    # Failures: rate limit, overload, then the canary itself rejected as invalid.
    fake_anthropic.fail(429, "rate_limit_error", headers={"retry-after": "3"}).fail(529, "overloaded_error")
    for word in ("한도", "과부하"):
        bodies.append(
            (await client.post("/api/chat/message", json={**ask, "message": unique(word)}, headers=headers)).text
        )
    fake_anthropic.invalid_keys.add(canary)
    bodies.append((await client.post("/api/chat/message", json={**ask, "message": unique("x")}, headers=headers)).text)
    bodies.append((await client.post("/api/chat/stream", json={**ask, "message": unique("y")}, headers=headers)).text)
    bodies.append((await client.post("/api/chat/verify-key", headers=headers)).text)

    # The paths really ran: the fake saw the canary on every call, the job finished.
    assert fake_anthropic.call_count >= 9 and all(c.api_key == canary for c in fake_anthropic.calls)
    assert '"status":"succeeded"' in bodies[4].replace(" ", "")

    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    # The SDK's and the HTTP stack's own DEBUG records were captured (so the search below means something).
    assert any(r.name.startswith("anthropic") and r.levelno == logging.DEBUG for r in caplog.records)
    assert any(r.name.startswith("httpx") or r.name.startswith("httpcore") for r in caplog.records)
    assert canary not in logs
    assert canary not in "\n".join(bodies)
    assert canary not in await _database_dump(resources)
    assert canary.encode() not in await _redis_dump(resources.redis)
    assert canary.encode() not in sealed_while_queued  # sealed, not in clear, even while the job waited

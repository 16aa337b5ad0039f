"""ChatCache's single flight across processes (two caches, two Redis clients) and its failure rules, on real Redis."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from api.chat.cache import LOCK_PREFIX, CachedAnswer, ChatCache
from api.chat.llm import AnthropicKeyInvalid, AnthropicUnavailable
from api.resources import redis_client

SHARED = (AnthropicUnavailable,)


@pytest.fixture
async def caches(settings):
    """Two caches as two API processes would have them: separate Redis connections, one Redis."""
    clients = [redis_client(settings.redis_url) for _ in range(2)]
    yield [ChatCache(c, ttl_seconds=60, lock_seconds=1.0, shared_errors=SHARED) for c in clients]
    for client in clients:
        await client.aclose()


def answer(text: str) -> CachedAnswer:
    return CachedAnswer(response=text, tool_calls=[], model="m")


def counting(
    text: str,
    calls: list[str],
    *,
    delay: float = 0.3,
    error: Exception | None = None,
    started: asyncio.Event | None = None,
):
    """A compute that records its call; `started` is set once it runs (the caller then holds the lock)."""

    async def compute() -> CachedAnswer:
        calls.append(text)
        if started is not None:
            started.set()
        await asyncio.sleep(delay)  # the work itself (an LLM call), not synchronisation
        if error is not None:
            raise error
        return answer(text)

    return compute


async def test_identical_requests_in_two_processes_run_once(caches):
    key, calls = secrets.token_hex(8), []
    results = await asyncio.gather(
        *(cache.single_flight(key, counting(f"p{i}", calls), wait_seconds=10) for i, cache in enumerate(caches * 3))
    )
    assert len(calls) == 1
    assert {r[0].response for r in results} == {calls[0]}
    assert sorted(hit for _, hit in results) == [False] + [True] * 5


async def test_a_dead_leaders_lock_expires_and_a_follower_takes_over(caches):
    key, calls = secrets.token_hex(8), []
    # A leader that died without releasing: its lock is there, nobody renews it, no answer will come.
    await caches[0].redis.set(LOCK_PREFIX + key, "dead-leader", px=500)
    result, hit = await caches[1].single_flight(key, counting("survivor", calls, delay=0), wait_seconds=10)
    assert (result.response, hit, calls) == ("survivor", False, ["survivor"])


async def test_a_live_leader_keeps_its_lock_beyond_the_lock_time(settings):
    # A 2 s lock renewed every 0.67 s, and a leader busy for 4.5 s: without renewal the follower would run
    # too. (With a 1 s lock renewed every 0.33 s, this test failed once on a loaded CI machine: a renewal
    # came too late. The production lock is 30 s.)
    clients = [redis_client(settings.redis_url) for _ in range(2)]
    caches = [ChatCache(c, ttl_seconds=60, lock_seconds=2.0, shared_errors=SHARED) for c in clients]
    try:
        key, calls, started = secrets.token_hex(8), [], asyncio.Event()
        slow = counting("slow", calls, delay=4.5, started=started)
        leader = asyncio.create_task(caches[0].single_flight(key, slow, wait_seconds=15))
        await asyncio.wait_for(started.wait(), 10)  # the leader holds the lock
        follower = await caches[1].single_flight(key, counting("second", calls, delay=0), wait_seconds=15)
        assert (await leader)[0].response == "slow" and follower == (answer("slow"), True)
        assert calls == ["slow"]
    finally:
        for client in clients:
            await client.aclose()


async def test_a_leaders_key_problem_is_not_passed_to_followers(caches):
    key, calls, started = secrets.token_hex(8), [], asyncio.Event()
    cache = caches[0]
    bad_key = counting("bad key", calls, error=AnthropicKeyInvalid(), started=started)
    leader = asyncio.create_task(cache.single_flight(key, bad_key, wait_seconds=10))
    await asyncio.wait_for(started.wait(), 10)  # the leader holds the lock and is computing
    follower = await cache.single_flight(key, counting("good key", calls, delay=0.05), wait_seconds=10)
    with pytest.raises(AnthropicKeyInvalid):
        await leader
    assert follower == (answer("good key"), False) and calls == ["bad key", "good key"]


async def test_an_upstream_outage_is_shared_with_followers(caches):
    key, calls = secrets.token_hex(8), []
    cache = caches[0]
    computes = [counting(f"c{i}", calls, error=AnthropicUnavailable()) for i in range(5)]
    results = await asyncio.gather(
        *(cache.single_flight(key, c, wait_seconds=10) for c in computes), return_exceptions=True
    )
    assert len(calls) == 1 and all(isinstance(r, AnthropicUnavailable) for r in results)


async def test_fallback_answers_are_not_cached(caches):
    key = secrets.token_hex(8)
    empty = CachedAnswer(response="(답 없음)", tool_calls=[], model="m", cacheable=False)

    async def compute() -> CachedAnswer:
        return empty

    assert (await caches[0].single_flight(key, compute, wait_seconds=5))[1] is False
    assert await caches[0].get_answer(key) is None

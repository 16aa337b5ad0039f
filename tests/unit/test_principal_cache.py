"""PrincipalCache: requests that miss together share one lookup."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from api.users.services import Principal, PrincipalCache


async def test_concurrent_misses_share_one_lookup_and_the_answer_is_cached():
    cache = PrincipalCache()
    calls: list[str] = []
    release = asyncio.Event()

    async def load(token: str) -> Principal | None:
        calls.append(token)
        await release.wait()
        return Principal(id=7, name="alice", role="member")

    waiting = [asyncio.create_task(cache.get_or_load("hab_token", load)) for _ in range(32)]
    await asyncio.sleep(0)  # every waiter has missed before the lookup answers
    release.set()
    principals = await asyncio.gather(*waiting)
    assert calls == ["hab_token"]
    assert {p.id for p in principals} == {7}
    assert cache.get("hab_token") == Principal(id=7, name="alice", role="member")
    assert await cache.get_or_load("hab_token", load) == principals[0]
    assert calls == ["hab_token"] and cache.lookups == 1


async def test_an_unknown_token_is_not_cached_and_a_failed_lookup_reaches_every_waiter():
    cache = PrincipalCache()
    calls = 0

    async def unknown(token: str) -> Principal | None:
        nonlocal calls
        calls += 1
        return None

    assert await cache.get_or_load("hab_nobody", unknown) is None
    assert await cache.get_or_load("hab_nobody", unknown) is None
    assert calls == 2  # refused tokens are looked up again: a new user's token works at once

    async def broken(token: str) -> Principal | None:
        await asyncio.sleep(0)
        raise ConnectionError("database down")

    results = await asyncio.gather(*(cache.get_or_load("hab_x", broken) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert cache.lookups == 3  # the two unknown-token lookups and one shared failing one


@pytest.mark.parametrize("ttl", [0.0])
async def test_an_expired_entry_is_looked_up_again(ttl):
    cache = PrincipalCache(ttl_seconds=ttl)

    async def load(token: str) -> Principal | None:
        return Principal(id=1, name="a", role="member")

    await cache.get_or_load("hab_t", load)
    await asyncio.sleep(0.001)
    await cache.get_or_load("hab_t", load)
    assert cache.lookups == 2


async def test_a_failed_lookup_whose_waiters_all_left_is_not_reported_as_unretrieved():
    cache = PrincipalCache()
    started, release = asyncio.Event(), asyncio.Event()
    reported: list[dict] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def load(token: str) -> Principal | None:
        started.set()
        await release.wait()
        raise ConnectionResetError("database gone")

    try:
        waiter = asyncio.create_task(cache.get_or_load("hab_token", load))
        await started.wait()
        waiter.cancel()  # the request went away; the shared lookup goes on without anyone awaiting it
        with pytest.raises(asyncio.CancelledError):
            await waiter
        lookup = next(iter(cache._loading.values()))
        release.set()
        deadline = time.monotonic() + 10
        while not lookup.done():  # watched, not awaited: awaiting would retrieve the failure on the cache's behalf
            assert time.monotonic() < deadline
            await asyncio.sleep(0)
        assert not lookup.cancelled() and not cache._loading  # failed (asking how would retrieve it)
        del lookup, waiter
        gc.collect()  # a task whose failure nobody retrieved reports it to the loop when collected
    finally:
        loop.set_exception_handler(previous)
    assert reported == []

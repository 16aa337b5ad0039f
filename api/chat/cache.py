"""Redis caches for chat: whole answers (with a single-flight lock) and tool results.

Every Redis failure degrades to "no cache": chat keeps working uncached when Redis is down. Keys are
SHA-256 digests of canonical JSON, so nothing a user typed (and never the API key) appears in a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("hab.chat.cache")

T = TypeVar("T")

ANSWER_PREFIX = "hab:chat:answer:"
LOCK_PREFIX = "hab:chat:lock:"
TOOL_PREFIX = "hab:chat:tool:"
TOOL_TTL_SECONDS = 24 * 3600
POLL_SECONDS = 0.05

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def digest(parts: Any) -> str:
    """A stable hash of JSON-able parts (keys sorted, so argument order never matters)."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()


class CachedAnswer(msgspec.Struct, kw_only=True):
    response: str
    tool_calls: list[dict[str, Any]]
    model: str


class ChatCache:
    def __init__(self, redis: Redis, *, ttl_seconds: int, lock_seconds: float) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self.lock_ms = int(lock_seconds * 1000)
        # In-process single flight: identical requests in this process share one future.
        self._inflight: dict[str, asyncio.Future[CachedAnswer]] = {}

    async def _safely(self, op: Callable[[], Awaitable[T]], what: str) -> T | None:
        try:
            return await op()
        except (RedisError, OSError) as exc:
            logger.warning("chat cache %s skipped: Redis unavailable (%s)", what, type(exc).__name__)
            return None

    # -- answers -----------------------------------------------------------------------------------

    async def get_answer(self, key: str) -> CachedAnswer | None:
        if self.ttl <= 0:
            return None
        raw = await self._safely(lambda: self.redis.get(ANSWER_PREFIX + key), "read")
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=CachedAnswer)
        except msgspec.DecodeError:
            return None

    async def put_answer(self, key: str, answer: CachedAnswer) -> None:
        if self.ttl > 0:
            data = msgspec.json.encode(answer)
            await self._safely(lambda: self.redis.set(ANSWER_PREFIX + key, data, ex=self.ttl), "write")

    async def single_flight(
        self, key: str, compute: Callable[[], Awaitable[CachedAnswer]], *, wait_seconds: float
    ) -> tuple[CachedAnswer, bool]:
        """(answer, cache_hit): a cached answer, or the answer of the one run that computes it.

        Identical concurrent requests wait for that run instead of starting their own: in this process
        through a shared future, across processes through a Redis lock and polling the answer key.
        """
        shared = self._inflight.get(key)
        if shared is not None:
            return await asyncio.shield(shared), True
        # Registered before the first await, so a request arriving meanwhile joins instead of racing.
        future: asyncio.Future[CachedAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            cached = await self.get_answer(key)
            if cached is not None:
                answer, hit = cached, True
            else:
                answer, hit = await self._lead_or_follow(key, compute, wait_seconds)
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                    future.exception()  # mark retrieved: there may be no followers
                else:
                    future.cancel()
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(answer)
        return answer, hit

    async def _lead_or_follow(
        self, key: str, compute: Callable[[], Awaitable[CachedAnswer]], wait_seconds: float
    ) -> tuple[CachedAnswer, bool]:
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait_seconds
        while True:
            acquired = await self._safely(
                lambda: self.redis.set(LOCK_PREFIX + key, token, nx=True, px=self.lock_ms), "lock"
            )
            if acquired is None or acquired:
                # We hold the lock (or Redis is down and we run uncached).
                try:
                    answer = await compute()
                    await self.put_answer(key, answer)
                    return answer, False
                finally:
                    if acquired:
                        await self._safely(lambda: self.redis.eval(_RELEASE, 1, LOCK_PREFIX + key, token), "unlock")
            # Another process is computing this answer: wait for it, or take over if its lock goes away.
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_SECONDS)
                cached = await self.get_answer(key)
                if cached is not None:
                    return cached, True
                holder = await self._safely(lambda: self.redis.exists(LOCK_PREFIX + key), "lock check")
                if not holder:
                    break
            else:
                answer = await compute()
                await self.put_answer(key, answer)
                return answer, False

    # -- tool results ------------------------------------------------------------------------------

    async def get_tool(self, key: str) -> bytes | None:
        return await self._safely(lambda: self.redis.get(TOOL_PREFIX + key), "tool read")

    async def put_tool(self, key: str, value: bytes) -> None:
        await self._safely(lambda: self.redis.set(TOOL_PREFIX + key, value, ex=TOOL_TTL_SECONDS), "tool write")

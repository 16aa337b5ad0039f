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
from typing import Any, TypeVar, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.cancellation import being_cancelled

logger = logging.getLogger("hab.chat.cache")

T = TypeVar("T")

ANSWER_PREFIX = "hab:chat:answer:"
LOCK_PREFIX = "hab:chat:lock:"
TOOL_PREFIX = "hab:chat:tool:"
TOOL_TTL_SECONDS = 24 * 3600
POLL_SECONDS = 0.05

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def digest(parts: Any) -> str:
    """A stable hash of JSON-able parts (keys sorted, so argument order never matters)."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()


class CachedAnswer(msgspec.Struct, kw_only=True):
    response: str
    tool_calls: list[dict[str, Any]]
    model: str
    hit_limit: bool = False
    # Fallback answers (nothing came back) are returned but never cached.
    cacheable: bool = True


class _RedisFailed:
    """What `_safely` returns when Redis could not be reached (distinct from a None reply)."""


REDIS_FAILED = _RedisFailed()


class ChatCache:
    """Answer cache with single flight, and the tool-result cache.

    Single flight: identical requests in this process share one future; across processes the leader holds a
    short Redis lock (`lock_seconds`) that it renews while it computes, so followers notice a dead leader
    within seconds and one of them takes over. A leader's failure is shared with its followers only when it
    is not about the leader's own key (an invalid key or its rate limit); otherwise a follower retries.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        lock_seconds: float = 30.0,
        shared_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self.lock_ms = int(lock_seconds * 1000)
        self.shared_errors = shared_errors
        self._inflight: dict[str, asyncio.Future[CachedAnswer]] = {}

    async def _safely(self, op: Callable[[], Awaitable[T]], what: str) -> T | _RedisFailed:
        try:
            return await op()
        except (RedisError, OSError) as exc:
            logger.warning("chat cache %s skipped: Redis unavailable (%s)", what, type(exc).__name__)
            return REDIS_FAILED

    # -- answers -----------------------------------------------------------------------------------

    async def get_answer(self, key: str) -> CachedAnswer | None:
        if self.ttl <= 0:
            return None
        raw = await self._safely(lambda: self.redis.get(ANSWER_PREFIX + key), "read")
        if raw is None or isinstance(raw, _RedisFailed):
            return None
        try:
            return msgspec.json.decode(raw, type=CachedAnswer)
        except msgspec.DecodeError:
            return None

    async def put_answer(self, key: str, answer: CachedAnswer) -> None:
        if self.ttl > 0 and answer.cacheable:
            data = msgspec.json.encode(answer)
            await self._safely(lambda: self.redis.set(ANSWER_PREFIX + key, data, ex=self.ttl), "write")

    async def single_flight(
        self, key: str, compute: Callable[[], Awaitable[CachedAnswer]], *, wait_seconds: float
    ) -> tuple[CachedAnswer, bool]:
        """(answer, cache_hit): a cached answer, or the answer of the one run that computes it."""
        deadline = time.monotonic() + wait_seconds
        while True:
            shared = self._inflight.get(key)
            if shared is None:
                return await self._lead_in_process(key, compute, deadline)
            try:
                return await asyncio.shield(shared), True
            except self.shared_errors:
                raise
            except (Exception, asyncio.CancelledError):
                # The leader failed for a reason of its own (its key, its cancellation): try again ourselves.
                if being_cancelled():
                    raise
                continue

    async def _lead_in_process(
        self, key: str, compute: Callable[[], Awaitable[CachedAnswer]], deadline: float
    ) -> tuple[CachedAnswer, bool]:
        # Registered before the first await, so a request arriving meanwhile joins instead of racing.
        future: asyncio.Future[CachedAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            cached = await self.get_answer(key)
            if cached is not None:
                answer, hit = cached, True
            else:
                answer, hit = await self._lead_or_follow(key, compute, deadline)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # mark retrieved: there may be no followers
            else:
                future.cancel()
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        future.set_result(answer)
        return answer, hit

    async def _lead_or_follow(
        self, key: str, compute: Callable[[], Awaitable[CachedAnswer]], deadline: float
    ) -> tuple[CachedAnswer, bool]:
        lock, token = LOCK_PREFIX + key, secrets.token_hex(8)
        while True:
            acquired = await self._safely(lambda: self.redis.set(lock, token, nx=True, px=self.lock_ms), "lock")
            if acquired is True or acquired is REDIS_FAILED:
                # We lead (or Redis is down and we run uncached).
                return await self._compute(key, compute, lock, token if acquired is True else None), False
            # Another process holds the lock: wait for its answer, or take over once its lock is gone.
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_SECONDS)
                cached = await self.get_answer(key)
                if cached is not None:
                    return cached, True
                holder = await self._safely(lambda: self.redis.exists(lock), "lock check")
                if holder is REDIS_FAILED or not holder:
                    break
            else:
                return await self._compute(key, compute, None, None), False

    async def _compute(
        self, key: str, compute: Callable[[], Awaitable[CachedAnswer]], lock: str | None, token: str | None
    ) -> CachedAnswer:
        renewer = asyncio.create_task(self._renew(lock, token)) if lock and token else None
        try:
            answer = await compute()
            await self.put_answer(key, answer)
            return answer
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
            if lock and token:
                await self._safely(lambda: self._eval(_RELEASE, lock, token), "unlock")

    async def _renew(self, lock: str, token: str) -> None:
        """Keep our lock alive while we compute (a dead leader's lock expires within lock_seconds)."""
        while True:
            await asyncio.sleep(self.lock_ms / 3000)
            await self._safely(lambda: self._eval(_RENEW, lock, token, str(self.lock_ms)), "lock renew")

    async def _eval(self, script: str, key: str, *args: str) -> Any:
        # redis-py types its commands for the sync and the asyncio client at once (`Awaitable[str] | str`);
        # on the asyncio client eval always returns an awaitable.
        return await cast(Awaitable[Any], self.redis.eval(script, 1, key, *args))

    # -- tool results ------------------------------------------------------------------------------

    async def get_tool(self, key: str) -> bytes | None:
        raw = await self._safely(lambda: self.redis.get(TOOL_PREFIX + key), "tool read")
        return None if isinstance(raw, _RedisFailed) else raw

    async def put_tool(self, key: str, value: bytes) -> None:
        await self._safely(lambda: self.redis.set(TOOL_PREFIX + key, value, ex=TOOL_TTL_SECONDS), "tool write")

"""Keeps this process's served model equal to the active version in PostgreSQL.

Activation is announced on a Redis channel; every API and worker process listens and swaps. Redis is
only the fast path: each process also re-checks PostgreSQL periodically, so a lost message (or Redis
being down) only delays the swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.observability.metrics import set_active_model
from api.registry.repository import ModelVersionRepository
from models.holder import ModelHolder

logger = logging.getLogger("hab.registry.sync")

MODEL_CHANNEL = "hab:model-activated"


class ModelSync:
    def __init__(
        self,
        holder: ModelHolder,
        sessions: async_sessionmaker[AsyncSession],
        redis_url: str,
        *,
        recheck_seconds: float = 30.0,
    ) -> None:
        self.holder = holder
        self.sessions = sessions
        self.redis_url = redis_url
        self.recheck_seconds = recheck_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()

    async def _fetch(self, version: int) -> tuple[bytes, str]:
        async with self.sessions() as session:
            found = await ModelVersionRepository(session=session).bundle(version)
        if found is None:
            raise LookupError(f"model version {version} vanished")
        return found

    async def refresh(self) -> None:
        """Load the active version from PostgreSQL if it is not the one being served."""
        async with self._refresh_lock:
            async with self.sessions() as session:
                active = await ModelVersionRepository(session=session).active_version()
            if await self.holder.ensure(active, self._fetch):
                logger.info("serving model version %s", active)
            set_active_model(self.holder.version)

    async def announce(self, version: int) -> None:
        try:
            async with Redis.from_url(self.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0) as redis:
                await redis.publish(MODEL_CHANNEL, str(version))
        except Exception as exc:  # Redis down: the periodic re-check still carries the change
            logger.warning(
                "could not announce model %s on Redis (%s); peers will pick it up on re-check",
                version,
                type(exc).__name__,
            )

    async def start(self) -> None:
        try:
            await self.refresh()
        except Exception:
            logger.exception("could not load the active model at start; will retry")
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._recheck())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self.refresh()
            except Exception as exc:
                logger.warning("model re-check failed (%s)", type(exc).__name__)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with Redis.from_url(self.redis_url, socket_connect_timeout=2.0) as redis:
                    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                        await pubsub.subscribe(MODEL_CHANNEL)
                        backoff = 0.5
                        async for _message in pubsub.listen():
                            await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("model channel unavailable (%s); retrying in %.1fs", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

"""Bare pooled connections: the driver of a pooled connection, outside any transaction, for the few hot
statements that need neither a session nor a transaction (a chat cache hit, api/chat/hits.py).

Each statement on one commits by itself, and returning it to the pool costs no round trip (the pool's reset
rolls back only a transaction SQLAlchemy began). At most the pool's size are checked out at once: past it,
every checkout opened (and on return closed) an overflow connection, whose connect, type introspection and
statement preparation cost more CPU than the statements it ran; a caller waits for a kept one instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine


class BareConnections:
    def __init__(self, engine: AsyncEngine, *, limit: int) -> None:
        self.engine = engine
        self._gate = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._gate, self.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            yield driver

"""Bare pooled connections: the driver of a pooled connection, outside any transaction, for the few hot
statements that need neither a session nor a transaction (a chat cache hit, api/chat/hits.py).

Each statement on one commits by itself, and returning it to the pool costs no round trip (the pool's reset
rolls back only a transaction SQLAlchemy began). At most the pool's size are checked out at once: past it,
every checkout opened (and on return closed) an overflow connection, whose connect, type introspection and
statement preparation cost more CPU than the statements it ran; a caller waits for a kept one instead.

Statements on the driver bypass SQLAlchemy's disconnect detection, so a connection found lost here is
invalidated explicitly: the pool replaces it instead of handing the dead one to the next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

# What a dead or dying connection raises: class 08, class 57P (the server shut the backend down), the client
# side's closed socket or connection, and a protocol left mid-operation by the server's goodbye.
CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (raised by the driver, or wrapped by SQLAlchemy) means the connection is gone."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc.orig, CONNECTION_LOST)
    return isinstance(exc, CONNECTION_LOST)


class BareConnections:
    def __init__(self, engine: AsyncEngine, *, limit: int) -> None:
        self.engine = engine
        self._gate = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._gate, self.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                yield driver
            except BaseException as exc:
                if driver.is_closed() or isinstance(exc, CONNECTION_LOST):
                    await connection.invalidate()
                raise

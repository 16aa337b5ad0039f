"""The engine pings a pooled connection before use only when it was last known alive a while ago: a
connection PostgreSQL closed meanwhile is replaced without the request noticing, and one known alive a moment
ago is trusted."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.db import engine as engine_module
from api.db.engine import create_engine


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("select pg_backend_pid()")))


async def _terminate(services, pid: int) -> None:
    admin = create_engine(services.database_url, pool_size=1)
    try:
        async with admin.connect() as conn:
            assert await conn.scalar(text("select pg_terminate_backend(:pid)"), {"pid": pid})
            # Gone once PostgreSQL lists it no more (terminate only signals the backend).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                alive = await conn.scalar(text("select count(*) from pg_stat_activity where pid = :pid"), {"pid": pid})
                if not alive:
                    return
                await asyncio.sleep(0.02)  # poll interval, bounded by the deadline
            raise AssertionError(f"backend {pid} still listed after pg_terminate_backend")
    finally:
        await admin.dispose()


async def test_an_idle_connection_closed_by_postgres_is_replaced(services, monkeypatch):
    monkeypatch.setattr(engine_module, "PING_INTERVAL_S", 0.0)  # every checkout pings
    engine = create_engine(services.database_url, pool_size=1)
    try:
        first = await _backend_pid(engine)
        await _terminate(services, first)
        second = await _backend_pid(engine)  # the ping found it dead: a new connection answers
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_known_alive_a_moment_ago_is_not_pinged(services, monkeypatch):
    monkeypatch.setattr(engine_module, "PING_INTERVAL_S", 3600.0)  # no checkout pings
    engine = create_engine(services.database_url, pool_size=1)
    try:
        first = await _backend_pid(engine)
        await _terminate(services, first)
        # Without a ping the dead connection is used, so this request fails (as a request in flight would)...
        with pytest.raises(DBAPIError) as caught:
            await _backend_pid(engine)
        assert caught.value.connection_invalidated
        # ...and the pool has let it go: the next request gets a new connection.
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()

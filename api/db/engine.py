"""Engine and session factory. Created in the app lifespan / worker startup, never at import."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# A pooled connection is pinged before use only when it was last known alive (connected or pinged) this long
# ago. SQLAlchemy's pool_pre_ping pings on every checkout, and asyncpg's ping is three round trips (BEGIN,
# ";", ROLLBACK): ~18 % of a cached chat answer's server time. So under load a connection is pinged about
# once a second instead of once a request; if PostgreSQL dies, requests within that second fail as requests
# in flight do, and once it is back every old connection is pinged (and replaced) before it is used again.
PING_INTERVAL_S = 1.0


def to_asyncpg_url(url: str) -> str:
    """Accept the usual postgres:// and postgresql:// spellings and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def to_libpq_url(url: str) -> str:
    """The plain postgresql:// form (for asyncpg.connect and psql)."""
    return "postgresql://" + to_asyncpg_url(url)[len("postgresql+asyncpg://") :]


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # Big Parquet blobs pass through this engine; statement caching helps the small hot queries.
        connect_args={"server_settings": {"application_name": "hab"}},
    )
    _ping_now_and_then(engine)
    return engine


def _ping_now_and_then(engine: AsyncEngine) -> None:
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    def connected(_dbapi_connection: Any, record: Any) -> None:
        record.info["alive_at"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        now = time.monotonic()
        if now - record.info.get("alive_at", float("-inf")) < PING_INTERVAL_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and checks out another
            raise DisconnectionError() from exc
        record.info["alive_at"] = now

    event.listen(pool, "connect", connected)
    event.listen(pool, "checkout", checkout)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)

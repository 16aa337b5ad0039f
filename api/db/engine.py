"""Engine and session factory. Created in the app lifespan / worker startup, never at import."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


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
    return create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Big Parquet blobs pass through this engine; statement caching helps the small hot queries.
        connect_args={"server_settings": {"application_name": "hab"}},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """One session per request. Services own their transactions and commit explicitly."""
    async with state.resources.sessions() as session:
        yield session

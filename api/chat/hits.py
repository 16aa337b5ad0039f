"""POST /api/chat/message without a database session: an answer from the cache costs a Redis read and the
turn's one storing statement (docs/decisions/0011, 0013).

The dataset briefs the cache key is made of come from this process's memory when the caller asked about the
same datasets before (api/chat/briefs.py); the storing statement then re-checks them and stores nothing when
one no longer holds, and the question starts over on fresh reads through TurnService. A first turn with
remembered briefs therefore reads nothing before Redis; a later turn still reads its conversation.

Statements run alone on a bare pooled connection (api/db/bare.py: no BEGIN/COMMIT round trips, no ORM
session): a read needs no transaction, and the store is one statement, which PostgreSQL commits by itself
before it answers, so the turn is durable before the response leaves. No connection is held during the Redis
read. A miss goes the usual way (turns.py: a session, single flight, the LLM run, the store in its
transaction), on briefs read for it, never on remembered ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from api.chat import schemas as s
from api.chat.cache import CachedAnswer
from api.chat.repository import store_turn_sql, stored_ids
from api.chat.turn_parts import PreparedTurn, chat_response, prepare_turn, stored_turn, token_usage
from api.chat.turns import TurnService
from api.observability.metrics import count_cache
from api.resources import Resources
from api.users.services import Principal


class ChatAsk:
    """A question answered as JSON: from the cache on a bare connection, otherwise through TurnService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def ask(self, user: Principal, request: s.ChatRequest, api_key: str) -> s.ChatResponse:
        turn, cached = await self.cached(user, request)
        if cached is not None:
            answer = await self.store_hit(turn, cached)
            if answer is not None:
                return answer
            # Nothing stored: a dataset changed or went away, or the conversation did. Start over on fresh reads
            # (which also refresh the memory), answering the right Korean error (or, after a rename, a new key).
        async with self.resources.sessions() as session:
            service = TurnService(session, self.resources)
            if cached is None and not turn.briefs_remembered:
                return await service.answer(turn, api_key, peek=False)
            fresh = await service.prepare(user, request)
            # Redis was just asked for the old key: ask again only when there is something new to ask.
            peek = cached is not None or fresh.cache_key != turn.cache_key
            return await service.answer(fresh, api_key, peek=peek)

    async def cached(self, user: Principal, request: s.ChatRequest) -> tuple[PreparedTurn, CachedAnswer | None]:
        """The turn and its answer in the cache, if any. Reads only."""
        turn = await self._prepare(user, request)
        return turn, await self.resources.chat_cache.get_answer(turn.cache_key)

    async def store_hit(self, turn: PreparedTurn, cached: CachedAnswer) -> s.ChatResponse | None:
        """Store the turn answered from the cache, in one statement that re-checks the briefs it was built on;
        None (nothing stored) when one no longer holds."""
        usage = token_usage(self.resources.settings, turn.model, 0, 0)
        sql, args = store_turn_sql(stored_turn(turn, cached, usage, cache_hit=True), recheck=turn.datasets_as_read())
        async with self.resources.bare_connections.driver() as driver:
            stored = stored_ids(await driver.fetch(sql, *args))
        if stored is None:
            return None
        count_cache("answer", True)
        return chat_response(turn, cached, stored, usage, cache_hit=True)

    async def _prepare(self, user: Principal, request: s.ChatRequest) -> PreparedTurn:
        """The turn from remembered briefs where it can; a bare connection is checked out only for a read."""
        async with contextlib.AsyncExitStack() as stack:
            driver: asyncpg.Connection | None = None

            async def fetch(sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
                nonlocal driver
                if driver is None:
                    driver = await stack.enter_async_context(self.resources.bare_connections.driver())
                connection: asyncpg.Connection = driver
                return await connection.fetch(sql, *args)

            return await prepare_turn(self.resources, fetch, user, request, remembered=True)

"""POST /api/chat/message without a database session: an answer from the cache costs a dataset read, a Redis
read and the turn's one storing statement (docs/decisions/0011).

Both statements run alone on a bare pooled connection (api/db/bare.py: no BEGIN/COMMIT round trips, no ORM
session): the read needs no transaction, and the store is one statement, which PostgreSQL commits by itself
before it answers, so the turn is durable before the response leaves. No connection is held during the Redis
read. A miss goes the usual way (turns.py: a session, single flight, the LLM run, the store in its transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.chat import schemas as s
from api.chat.repository import store_turn_sql, stored_ids
from api.chat.turn_parts import chat_response, prepare_turn, stored_turn, token_usage
from api.chat.turns import TurnService
from api.observability.metrics import count_cache
from api.resources import Resources
from api.users.services import Principal


class ChatAsk:
    """A question answered as JSON: from the cache on a bare connection, otherwise through TurnService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def ask(self, user: Principal, request: s.ChatRequest, api_key: str) -> s.ChatResponse:
        resources = self.resources
        async with resources.bare_connections.driver() as driver:

            async def fetch(sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
                return await driver.fetch(sql, *args)

            turn = await prepare_turn(resources, fetch, user, request)
        cached = await resources.chat_cache.get_answer(turn.cache_key)
        if cached is None:
            async with resources.sessions() as session:
                return await TurnService(session, resources).answer(turn, api_key, peek=False)
        count_cache("answer", True)
        usage = token_usage(resources.settings, turn.model, 0, 0)
        sql, args = store_turn_sql(stored_turn(turn, cached, usage, cache_hit=True))
        async with resources.bare_connections.driver() as driver:
            stored = stored_ids(await driver.fetch(sql, *args))
        return chat_response(turn, cached, stored, usage, cache_hit=True)

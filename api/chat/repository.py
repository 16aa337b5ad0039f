"""SQL for conversations and their messages."""

from __future__ import annotations

from typing import Any

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import JSONB

from api.db.tables import ChatMessage, Conversation

# A turn is stored by one textual statement, prepared once: built as a Core statement per call, its
# construction and cache key cost more CPU than PostgreSQL spends running it (a cache hit is mostly this).
# `target` is the conversation row (inserted or updated); without it (not found) nothing is inserted.
_STORE_MESSAGES = """
INSERT INTO chat_messages
    (conversation_id, role, content, model, tool_calls, input_tokens, output_tokens, cost_usd, cache_hit, dataset_ids)
SELECT target.id, turn.role, turn.content, turn.model, turn.tool_calls, turn.input_tokens, turn.output_tokens,
       turn.cost_usd, turn.cache_hit, CAST(:dataset_ids AS jsonb)
FROM target, (VALUES
    (0, 'user', CAST(:question AS text), CAST(NULL AS varchar), CAST('[]' AS jsonb), CAST(0 AS bigint),
     CAST(0 AS bigint), CAST(0 AS double precision), false),
    (1, 'assistant', :answer, :model, CAST(:tool_calls AS jsonb), :input_tokens, :output_tokens, :cost_usd,
     :cache_hit)
) AS turn (ord, role, content, model, tool_calls, input_tokens, output_tokens, cost_usd, cache_hit)
ORDER BY turn.ord
RETURNING id, conversation_id
"""
_TURN_PARAMS = (bindparam("dataset_ids", type_=JSONB), bindparam("tool_calls", type_=JSONB))
_START_TURN = text(
    """
WITH target AS (
    INSERT INTO conversations
        (owner_id, title, model, dataset_ids, message_count, input_tokens, output_tokens, cost_usd)
    VALUES (:owner_id, :title, :model, CAST(:dataset_ids AS jsonb), 2, :input_tokens, :output_tokens, :cost_usd)
    RETURNING id
)"""
    + _STORE_MESSAGES
).bindparams(*_TURN_PARAMS)
_NEXT_TURN = text(
    """
WITH target AS (
    UPDATE conversations SET
        model = :model,
        dataset_ids = CAST(:dataset_ids AS jsonb),
        message_count = message_count + 2,
        input_tokens = input_tokens + :input_tokens,
        output_tokens = output_tokens + :output_tokens,
        cost_usd = cost_usd + :cost_usd,
        updated_at = now()
    WHERE id = :conversation_id AND owner_id = :owner_id
    RETURNING id
)"""
    + _STORE_MESSAGES
).bindparams(*_TURN_PARAMS)


class StoredTurn(msgspec.Struct, kw_only=True):
    """A question and its answer as they are stored (a cache hit's tokens and cost are zero)."""

    owner_id: int
    conversation_id: int | None  # None: the first turn, which creates the conversation
    title: str  # the new conversation's title (unused for a later turn)
    model: str
    dataset_ids: list[int]
    question: str
    answer: str
    tool_calls: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hit: bool


class ConversationRepository(SQLAlchemyAsyncRepository[Conversation]):
    model_type = Conversation

    async def owned(self, conversation_id: int, owner_id: int) -> Conversation | None:
        return await self.session.scalar(
            select(Conversation).where(Conversation.id == conversation_id, Conversation.owner_id == owner_id)
        )

    async def page_for(self, owner_id: int, *, offset: int, limit: int) -> tuple[list[Conversation], int]:
        total = await self.session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.owner_id == owner_id)
        )
        rows = await self.session.scalars(
            select(Conversation)
            .where(Conversation.owner_id == owner_id)
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total or 0)

    async def messages(self, conversation_id: int) -> list[ChatMessage]:
        rows = await self.session.scalars(
            select(ChatMessage).where(ChatMessage.conversation_id == conversation_id).order_by(ChatMessage.id)
        )
        return list(rows)

    async def history(self, conversation_id: int, *, limit: int) -> list[tuple[str, str]]:
        """The latest `limit` messages as (role, content), oldest first."""
        rows = (
            await self.session.execute(
                select(ChatMessage.role, ChatMessage.content)
                .where(ChatMessage.conversation_id == conversation_id)
                .order_by(ChatMessage.id.desc())
                .limit(limit)
            )
        ).all()
        return [(r[0], r[1]) for r in reversed(rows)]

    async def remove(self, conversation: Conversation) -> None:
        await self.session.execute(delete(Conversation).where(Conversation.id == conversation.id))

    async def store_turn(self, turn: StoredTurn) -> tuple[int, int] | None:
        """Store a question and its answer in one statement: (conversation id, the answer's message id).

        The first turn creates the conversation (`conversation_id` None); a later one adds its tokens and cost
        to the conversation's totals in SQL (column + value, so two turns finishing at once both count), and
        stores nothing when the conversation is gone or not the owner's (None). The question is inserted
        before the answer, so it gets the smaller id (messages are read in id order).
        """
        params: dict[str, Any] = {
            "owner_id": turn.owner_id,
            "model": turn.model,
            "dataset_ids": turn.dataset_ids,
            "question": turn.question,
            "answer": turn.answer,
            "tool_calls": turn.tool_calls,
            "input_tokens": turn.input_tokens,
            "output_tokens": turn.output_tokens,
            "cost_usd": turn.cost_usd,
            "cache_hit": turn.cache_hit,
        }
        if turn.conversation_id is None:
            stmt, params["title"] = _START_TURN, turn.title
        else:
            stmt, params["conversation_id"] = _NEXT_TURN, turn.conversation_id
        rows = (await self.session.execute(stmt, params)).all()
        if not rows:
            return None
        return int(rows[0][1]), max(int(r[0]) for r in rows)

"""SQL for conversations and their messages."""

from __future__ import annotations

from typing import Any

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import BigInteger, Float, Select, String, delete, func, insert, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import JSONB

from api.db.tables import ChatMessage, Conversation

_MESSAGE_COLUMNS = [
    "conversation_id",
    "role",
    "content",
    "model",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_hit",
    "dataset_ids",
]


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
        totals: dict[str, Any] = {"model": turn.model, "dataset_ids": turn.dataset_ids, "updated_at": func.now()}
        conversation: Any
        if turn.conversation_id is None:
            conversation = insert(Conversation).values(
                owner_id=turn.owner_id,
                title=turn.title,
                message_count=2,
                input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens,
                cost_usd=turn.cost_usd,
                **totals,
            )
        else:
            conversation = (
                update(Conversation)
                .where(Conversation.id == turn.conversation_id, Conversation.owner_id == turn.owner_id)
                .values(
                    message_count=Conversation.message_count + 2,
                    input_tokens=Conversation.input_tokens + turn.input_tokens,
                    output_tokens=Conversation.output_tokens + turn.output_tokens,
                    cost_usd=Conversation.cost_usd + turn.cost_usd,
                    **totals,
                )
            )
        target = conversation.returning(Conversation.id).cte("target")
        dataset_ids = literal(turn.dataset_ids, JSONB)

        def message(order: int, role: str, content: str, **fields: Any) -> Select[Any]:
            values = {
                "model": None,
                "tool_calls": [],
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
                "cache_hit": False,
                **fields,
            }
            return select(
                literal(order).label("ord"),
                target.c.id,
                literal(role),
                literal(content),
                literal(values["model"], String),
                literal(values["tool_calls"], JSONB),
                literal(values["input_tokens"], BigInteger),
                literal(values["output_tokens"], BigInteger),
                literal(values["cost_usd"], Float),
                literal(values["cache_hit"]),
                dataset_ids,
            )

        both = union_all(
            message(0, "user", turn.question),
            message(
                1,
                "assistant",
                turn.answer,
                model=turn.model,
                tool_calls=turn.tool_calls,
                input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens,
                cost_usd=turn.cost_usd,
                cache_hit=turn.cache_hit,
            ),
        ).subquery("turn")
        columns = [c for c in both.c if c.name != "ord"]
        stmt = (
            insert(ChatMessage)
            .from_select(_MESSAGE_COLUMNS, select(*columns).order_by(both.c.ord))
            .returning(ChatMessage.id, ChatMessage.conversation_id)
        )
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return None
        conversation_id, answer_id = rows[-1][1], max(r[0] for r in rows)
        return int(conversation_id), int(answer_id)

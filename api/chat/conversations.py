"""Conversations: list, read and delete a user's stored chats. Asking (a turn) lives in turns.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat import schemas as s
from api.chat.llm import usd_to_krw
from api.chat.repository import ConversationRepository
from api.db.tables import Conversation
from api.errors import InvalidInput, NotFound
from api.resources import Resources
from api.schemas import Page
from api.settings import Settings
from api.users.services import Principal


def tool_calls_out(records: list[dict[str, Any]]) -> list[s.ToolCall]:
    """Stored tool-call records (JSONB) as response Structs."""
    return [msgspec.convert(r, s.ToolCall) for r in records]


@dataclass
class ConversationService:
    session: AsyncSession
    resources: Resources
    conversations: ConversationRepository = field(init=False)

    def __post_init__(self) -> None:
        self.conversations = ConversationRepository(session=self.session)

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    def _totals(self, c: Conversation) -> s.ConversationTotals:
        return s.ConversationTotals(
            input_tokens=c.input_tokens,
            output_tokens=c.output_tokens,
            cost_usd=round(c.cost_usd, 6),
            cost_krw=usd_to_krw(self.settings, c.cost_usd),
        )

    def _summary(self, c: Conversation) -> dict[str, Any]:
        return {
            "id": c.id,
            "title": c.title,
            "model": c.model,
            "dataset_ids": list(c.dataset_ids),
            "message_count": c.message_count,
            "totals": self._totals(c),
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }

    async def list_conversations(self, user: Principal, *, offset: int, limit: int) -> Page[s.ConversationSummary]:
        if offset < 0 or not 1 <= limit <= 200:
            raise InvalidInput(
                "offset은 0 이상, limit은 1~200이어야 합니다.", detail={"offset": offset, "limit": limit}
            )
        rows, total = await self.conversations.page_for(user.id, offset=offset, limit=limit)
        return Page(
            items=[s.ConversationSummary(**self._summary(c)) for c in rows], total=total, offset=offset, limit=limit
        )

    async def _owned(self, user: Principal, conversation_id: int) -> Conversation:
        conversation = await self.conversations.owned(conversation_id, user.id)
        if conversation is None:
            raise NotFound("대화를 찾을 수 없습니다.", detail={"conversation_id": conversation_id})
        return conversation

    async def conversation(self, user: Principal, conversation_id: int) -> s.ConversationDetail:
        c = await self._owned(user, conversation_id)
        messages = [
            s.MessageOut(
                id=m.id,
                role=m.role,
                content=m.content,
                model=m.model,
                tool_calls=tool_calls_out(m.tool_calls),
                token_usage=s.TokenUsage(
                    input=m.input_tokens,
                    output=m.output_tokens,
                    cost_usd=round(m.cost_usd, 6),
                    cost_krw=usd_to_krw(self.settings, m.cost_usd),
                ),
                cache_hit=m.cache_hit,
                dataset_ids=list(m.dataset_ids),
                created_at=m.created_at,
            )
            for m in await self.conversations.messages(c.id)
        ]
        return s.ConversationDetail(**self._summary(c), messages=messages)

    async def delete_conversation(self, user: Principal, conversation_id: int) -> None:
        c = await self._owned(user, conversation_id)
        await self.conversations.remove(c)
        await self.session.commit()

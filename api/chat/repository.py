"""SQL for conversations and their messages."""

from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, func, select

from api.db.tables import ChatMessage, Conversation


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

    async def start(self, *, owner_id: int, title: str, model: str, dataset_ids: list[int]) -> Conversation:
        """A new conversation (flushed, so it has its id)."""
        conversation = Conversation(owner_id=owner_id, title=title, model=model, dataset_ids=dataset_ids)
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def append_turn(
        self,
        conversation: Conversation,
        question: ChatMessage,
        reply: ChatMessage,
        *,
        model: str,
        dataset_ids: list[int],
    ) -> None:
        """Add a question and its reply, and add the reply's tokens and cost to the conversation's totals.

        The totals are updated in SQL (column + value), so two turns finishing at once both count.
        """
        self.session.add_all([question, reply])
        conversation.model = model
        conversation.dataset_ids = dataset_ids
        conversation.message_count = Conversation.message_count + 2
        conversation.input_tokens = Conversation.input_tokens + reply.input_tokens
        conversation.output_tokens = Conversation.output_tokens + reply.output_tokens
        conversation.cost_usd = Conversation.cost_usd + reply.cost_usd
        conversation.updated_at = func.now()
        await self.session.flush()

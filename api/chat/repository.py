"""SQL for conversations and their messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, func, select

from api.datasets.kinds import Visibility
from api.datasets.repository import visible_sql
from api.db.tables import ChatMessage, Conversation

# A turn is stored by one statement in the driver's own form ($n parameters), prepared once: built as a Core
# statement per call, its construction and cache key cost more CPU than PostgreSQL spends running it (a cache
# hit is mostly this). It runs on a session's connection (in its transaction) or, for a cache hit, alone on a
# bare pooled connection, where it commits by itself (api/chat/hits.py). `target` is the conversation row
# (inserted or updated); without it (not found, or `guard` false) nothing is inserted. $1 owner, $2 title
# (first turn) or conversation id (later turn), $3 model, $4 dataset ids (JSON), $5-$7 tokens and cost,
# $8 question, $9 answer, $10 tool calls (JSON), $11 cache hit.
_STORE_MESSAGES = """
INSERT INTO chat_messages
    (conversation_id, role, content, model, tool_calls, input_tokens, output_tokens, cost_usd, cache_hit, dataset_ids)
SELECT target.id, turn.role, turn.content, turn.model, turn.tool_calls, turn.input_tokens, turn.output_tokens,
       turn.cost_usd, turn.cache_hit, CAST($4 AS jsonb)
FROM target, (VALUES
    (0, 'user', CAST($8 AS text), CAST(NULL AS varchar), CAST('[]' AS jsonb), CAST(0 AS bigint),
     CAST(0 AS bigint), CAST(0 AS double precision), false),
    (1, 'assistant', $9, $3, CAST($10 AS jsonb), $5, $6, $7, $11)
) AS turn (ord, role, content, model, tool_calls, input_tokens, output_tokens, cost_usd, cache_hit)
ORDER BY turn.ord
RETURNING id, conversation_id
"""
_START_TURN = (
    """
WITH target AS (
    INSERT INTO conversations
        (owner_id, title, model, dataset_ids, message_count, input_tokens, output_tokens, cost_usd)
    SELECT CAST($1 AS bigint), CAST($2 AS text), CAST($3 AS varchar), CAST($4 AS jsonb), 2, CAST($5 AS bigint),
           CAST($6 AS bigint), CAST($7 AS double precision)
    WHERE {guard}
    RETURNING id
)"""
    + _STORE_MESSAGES
)
_NEXT_TURN = (
    """
WITH target AS (
    UPDATE conversations SET
        model = CAST($3 AS varchar),
        dataset_ids = CAST($4 AS jsonb),
        message_count = message_count + 2,
        input_tokens = input_tokens + CAST($5 AS bigint),
        output_tokens = output_tokens + CAST($6 AS bigint),
        cost_usd = cost_usd + CAST($7 AS double precision),
        updated_at = now()
    WHERE id = CAST($2 AS bigint) AND owner_id = $1 AND {guard}
    RETURNING id
)"""
    + _STORE_MESSAGES
)
# A cache hit's re-check of the datasets its key was made of (api/chat/briefs.py): every one still there, with
# the content and name it had, and still visible to the caller ($12 ids, $13 content hashes, $14 names, $15 the
# caller is an admin, $16 the team visibility). Counted in the statement that stores, on its snapshot: a change
# committed before the statement began is seen (one committing while it runs is not, as with any read).
# Sessions store with the guard `true` (they read the datasets themselves).
_DATASETS_AS_READ = (
    "(SELECT count(*) FROM datasets JOIN unnest(CAST($12 AS bigint[]), CAST($13 AS text[]), CAST($14 AS text[]))"
    " AS seen (id, sha, name) ON datasets.id = seen.id AND datasets.content_sha256 = seen.sha"
    " AND datasets.name = seen.name WHERE " + visible_sql("$15", "$1", "$16") + ") = cardinality(CAST($12 AS bigint[]))"
)
_STORE_SQL = {
    (first, guarded): (_START_TURN if first else _NEXT_TURN).format(guard=_DATASETS_AS_READ if guarded else "true")
    for first in (True, False)
    for guarded in (True, False)
}
# The caller's conversation and its latest messages in one round trip: no row when it is not the caller's,
# one row of NULLs when it has no messages.
HISTORY_SQL = """
SELECT m.role, m.content FROM conversations c
LEFT JOIN LATERAL (
    SELECT id, role, content FROM chat_messages WHERE conversation_id = c.id ORDER BY id DESC LIMIT $3
) m ON true
WHERE c.id = $1 AND c.owner_id = $2
ORDER BY m.id
"""

_json = msgspec.json.Encoder()


class DatasetsAsRead(msgspec.Struct, frozen=True, kw_only=True):
    """The datasets a turn was prepared with, as read, for the store statement to re-check."""

    ids: list[int]
    shas: list[str]
    names: list[str]
    viewer_is_admin: bool


def store_turn_sql(turn: StoredTurn, *, recheck: DatasetsAsRead | None = None) -> tuple[str, tuple[Any, ...]]:
    """The statement storing this turn and its arguments (JSON values as text: the driver's jsonb codec).

    With `recheck`, it stores nothing (no rows) unless those datasets are still as read and visible."""
    args: tuple[Any, ...] = (
        turn.owner_id,
        turn.title if turn.conversation_id is None else turn.conversation_id,
        turn.model,
        _json.encode(turn.dataset_ids).decode(),
        turn.input_tokens,
        turn.output_tokens,
        turn.cost_usd,
        turn.question,
        turn.answer,
        _json.encode(turn.tool_calls).decode(),
        turn.cache_hit,
    )
    if recheck is not None:
        args += (recheck.ids, recheck.shas, recheck.names, recheck.viewer_is_admin, Visibility.TEAM.value)
    return _STORE_SQL[turn.conversation_id is None, recheck is not None], args


def stored_ids(rows: Sequence[Sequence[Any]]) -> tuple[int, int] | None:
    """(conversation id, the answer's message id) from the store statement's rows; None when nothing was stored."""
    if not rows:
        return None
    return int(rows[0][1]), max(int(r[0]) for r in rows)


def history_of(rows: Sequence[Sequence[Any]]) -> list[tuple[str, str]] | None:
    """HISTORY_SQL's rows as (role, content), oldest first; None when the conversation is not the caller's."""
    if not rows:
        return None
    return [(r[0], r[1]) for r in rows if r[0] is not None]


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

    async def remove(self, conversation: Conversation) -> None:
        await self.session.execute(delete(Conversation).where(Conversation.id == conversation.id))

    async def store_turn(self, turn: StoredTurn) -> tuple[int, int] | None:
        """Store a question and its answer in one statement: (conversation id, the answer's message id).

        The first turn creates the conversation (`conversation_id` None); a later one adds its tokens and cost
        to the conversation's totals in SQL (column + value, so two turns finishing at once both count), and
        stores nothing when the conversation is gone or not the owner's (None). The question is inserted
        before the answer, so it gets the smaller id (messages are read in id order).
        """
        connection = await self.session.connection()
        result = await connection.exec_driver_sql(*store_turn_sql(turn))
        return stored_ids(result.all())

"""Request and response bodies of the chat and conversation routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from api.analysis import ToolRecord
from api.schemas import BIG_ID_SCHEMA, BigId, Input, Output

MAX_MESSAGE_CHARS = 8000
MAX_DATASETS = 5


class ChatRequest(Input):
    """`dataset_ids` (up to MAX_DATASETS), or the guide's shape with one `dataset_id`; not both.

    The count is checked by the service (TurnService.selected_ids), so that more than five answers a Korean
    explanation rather than a generic validation error."""

    # Not only whitespace, and no NUL (PostgreSQL text cannot hold it; a streamed answer would fail to be stored).
    message: Annotated[
        str, msgspec.Meta(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
    ]
    dataset_ids: Annotated[
        list[BigId],
        msgspec.Meta(
            description=f"질문할 데이터셋 ID (최대 {MAX_DATASETS}개)", extra_json_schema={"items": BIG_ID_SCHEMA}
        ),
    ] = msgspec.field(default_factory=list)
    dataset_id: Annotated[
        BigId | None, msgspec.Meta(description="데이터셋 하나만 고를 때 dataset_ids 대신 (v1.2 가이드의 형식)")
    ] = None
    conversation_id: BigId | None = None
    model: str | None = None


class TokenUsage(Output):
    input: int
    output: int
    cost_usd: float
    cost_krw: float


class ToolCall(ToolRecord, kw_only=True):
    """One tool call of an answer: the analysis record plus Claude's tool_use id."""

    id: str | None = None


class ChatResponse(Output):
    conversation_id: int
    message_id: int
    response: str
    tool_calls: list[ToolCall]
    token_usage: TokenUsage
    cache_hit: bool
    model: str
    hit_iteration_limit: bool = False


class VerifyKeyResult(Output):
    valid: bool
    model: str
    message: str


class ConversationTotals(Output):
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_krw: float


class ConversationSummary(Output):
    id: int
    title: str
    model: str
    dataset_ids: list[int]
    message_count: int
    totals: ConversationTotals
    created_at: dt.datetime
    updated_at: dt.datetime


class MessageOut(Output):
    id: int
    role: str
    content: str
    model: str | None
    tool_calls: list[ToolCall]
    token_usage: TokenUsage
    cache_hit: bool
    dataset_ids: list[int]
    created_at: dt.datetime


class ConversationDetail(ConversationSummary):
    messages: list[MessageOut]


class ChatModels(Output):
    default: str
    models: list[str]

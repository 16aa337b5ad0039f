"""Chat and conversation routes. The Anthropic key comes in the X-Anthropic-API-Key header, per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.response.base import ASGIResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.answers import json_answer, ok_response
from api.chat import schemas as s
from api.chat.conversations import ConversationService
from api.chat.hits import ChatAsk
from api.chat.llm import KEY_HEADER, KEY_PATTERN, require_key
from api.chat.turns import TurnService
from api.jobs.schemas import JobAccepted
from api.schemas import Offset, Page, PageLimit, RowId
from api.users.services import Principal

AuthedRequest = Request[Principal, Any, Any]
ApiKeyHeader = Annotated[
    str | None,
    # Documented as required (the routes answer 400 without it); `| None` keeps Litestar from refusing a missing
    # header itself, so the caller gets require_key's Korean message.
    HeaderParameter(
        name=KEY_HEADER,
        required=True,
        pattern=KEY_PATTERN,
        description="사용자의 Anthropic API 키 (저장되지 않음)",
    ),
]
Chat = NamedDependency[TurnService]
# POST /message takes no database session: a cache hit runs on bare pooled connections (api/chat/hits.py).
Conversations = NamedDependency[ConversationService]


def provide_turn_service(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> TurnService:
    return TurnService(db_session, request.app.state.resources)


def provide_conversation_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> ConversationService:
    return ConversationService(db_session, request.app.state.resources)


async def _sse(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[ServerSentEventMessage]:
    async for name, payload in events:
        yield ServerSentEventMessage(event=name, data=msgspec.json.encode(payload).decode())


class ChatController(Controller):
    path = "/api/chat"
    tags = ["chat"]
    dependencies = {
        "chat": Provide(provide_turn_service, sync_to_thread=False),
    }

    @get("/models", summary="사용할 수 있는 Claude 모델")
    async def models(self, chat: Chat) -> s.ChatModels:
        return chat.models()

    @post("/message", status_code=200, summary="질문하고 답 받기", responses=ok_response(s.ChatResponse))
    async def message(
        self, request: AuthedRequest, data: JSONBody[s.ChatRequest], api_key: ApiKeyHeader = None
    ) -> ASGIResponse:
        """A cache hit's hot path: no dependency to resolve, the answer encoded once (api/answers.py)."""
        answer = await ChatAsk(request.app.state.resources).ask(request.user, data, require_key(api_key))
        return json_answer(answer)

    @post("/stream", status_code=200, summary="질문하고 답을 스트리밍으로 받기 (SSE)", media_type="text/event-stream")
    async def stream(
        self, request: AuthedRequest, chat: Chat, data: JSONBody[s.ChatRequest], api_key: ApiKeyHeader = None
    ) -> ServerSentEvent:
        key = require_key(api_key)
        turn = await chat.prepare(request.user, data)  # bad requests fail here, as plain JSON errors
        events = await chat.stream(turn, key)
        return ServerSentEvent(_sse(events), headers={"Cache-Control": "no-cache"})

    @post("/jobs", status_code=202, summary="긴 질문을 백그라운드 작업으로 실행")
    async def job(
        self, request: AuthedRequest, chat: Chat, data: JSONBody[s.ChatRequest], api_key: ApiKeyHeader = None
    ) -> JobAccepted:
        return await chat.submit_job(request.user, data, require_key(api_key))

    @post("/verify-key", status_code=200, summary="Anthropic API 키 확인")
    async def verify_key(
        self, chat: Chat, api_key: ApiKeyHeader = None, model: Annotated[str | None, QueryParameter()] = None
    ) -> s.VerifyKeyResult:
        return await chat.verify_key(require_key(api_key), model)


class ConversationController(Controller):
    path = "/api/conversations"
    tags = ["chat"]
    dependencies = {"conversations": Provide(provide_conversation_service, sync_to_thread=False)}

    @get("/", summary="내 대화 목록")
    async def list_conversations(
        self,
        request: AuthedRequest,
        conversations: Conversations,
        offset: Offset = 0,
        limit: PageLimit = 50,
    ) -> Page[s.ConversationSummary]:
        return await conversations.list_conversations(request.user, offset=offset, limit=limit)

    @get("/{conversation_id:int}", summary="대화 내용")
    async def detail(
        self, request: AuthedRequest, conversations: Conversations, conversation_id: RowId
    ) -> s.ConversationDetail:
        return await conversations.conversation(request.user, conversation_id)

    @delete("/{conversation_id:int}", status_code=204, summary="대화 삭제")
    async def remove(self, request: AuthedRequest, conversations: Conversations, conversation_id: RowId) -> None:
        await conversations.delete_conversation(request.user, conversation_id)

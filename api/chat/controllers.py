"""Chat and conversation routes. The Anthropic key comes in the X-Anthropic-API-Key header, per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat import schemas as s
from api.chat.jobs import submit_chat_job
from api.chat.llm import KEY_HEADER, require_key
from api.chat.services import ChatService, PreparedTurn
from api.errors import DomainError
from api.jobs.schemas import JobAccepted
from api.resources import Resources
from api.schemas import Page
from api.users.services import Principal

logger = logging.getLogger("hab.chat.api")

AuthedRequest = Request[Principal, Any, Any]
ApiKeyHeader = Annotated[
    str | None,
    HeaderParameter(name=KEY_HEADER, required=False, description="사용자의 Anthropic API 키 (저장되지 않음)"),
]
Chat = NamedDependency[ChatService]

# Streams keep running after a client disconnects so the turn is still stored; keep them referenced.
_background: set[asyncio.Task[None]] = set()


def provide_chat_service(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> ChatService:
    return ChatService(db_session, request.app.state.resources)


def _event(name: str, payload: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=name, data=msgspec.json.encode(payload).decode())


async def _stream_turn(resources: Resources, turn: PreparedTurn, api_key: str) -> AsyncIterator[ServerSentEventMessage]:
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    async def emit(name: str, payload: dict[str, Any]) -> None:
        await queue.put((name, payload))

    async def run() -> None:
        try:
            # Its own session: the request's session closes when the handler returns, before the body streams.
            async with resources.sessions() as session:
                result = await ChatService(session, resources).answer(turn, api_key, emit=emit)
            await queue.put(("done", msgspec.to_builtins(result)))
        except DomainError as exc:
            await queue.put(("error", {"status": exc.status_code, "code": exc.code, "message": exc.message}))
        except Exception as exc:
            logger.error("chat stream failed: %s", type(exc).__name__)
            message = "서버 내부 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."
            await queue.put(("error", {"status": 500, "code": "internal_error", "message": message}))
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
    while (item := await queue.get()) is not None:
        yield _event(*item)


class ChatController(Controller):
    path = "/api/chat"
    tags = ["chat"]
    dependencies = {"chat": Provide(provide_chat_service, sync_to_thread=False)}

    @get("/models", summary="사용할 수 있는 Claude 모델")
    async def models(self, chat: Chat) -> s.ChatModels:
        return chat.models()

    @post("/message", status_code=200, summary="질문하고 답 받기")
    async def message(
        self, request: AuthedRequest, chat: Chat, data: JSONBody[s.ChatRequest], api_key: ApiKeyHeader = None
    ) -> s.ChatResponse:
        key = require_key(api_key)
        turn = await chat.prepare(request.user, data)
        return await chat.answer(turn, key)

    @post("/stream", status_code=200, summary="질문하고 답을 스트리밍으로 받기 (SSE)")
    async def stream(
        self, request: AuthedRequest, chat: Chat, data: JSONBody[s.ChatRequest], api_key: ApiKeyHeader = None
    ) -> ServerSentEvent:
        key = require_key(api_key)
        turn = await chat.prepare(request.user, data)  # bad requests fail here, as plain JSON errors
        return ServerSentEvent(
            _stream_turn(request.app.state.resources, turn, key), headers={"Cache-Control": "no-cache"}
        )

    @post("/jobs", status_code=202, summary="긴 질문을 백그라운드 작업으로 실행")
    async def job(
        self,
        request: AuthedRequest,
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[s.ChatRequest],
        api_key: ApiKeyHeader = None,
    ) -> JobAccepted:
        key = require_key(api_key)
        return await submit_chat_job(db_session, request.app.state.resources, request.user, data, key)

    @post("/verify-key", status_code=200, summary="Anthropic API 키 확인")
    async def verify_key(
        self, chat: Chat, api_key: ApiKeyHeader = None, model: Annotated[str | None, QueryParameter()] = None
    ) -> s.VerifyKeyResult:
        return await chat.verify_key(require_key(api_key), model)


class ConversationController(Controller):
    path = "/api/conversations"
    tags = ["chat"]
    dependencies = {"chat": Provide(provide_chat_service, sync_to_thread=False)}

    @get("/", summary="내 대화 목록")
    async def list_conversations(
        self,
        request: AuthedRequest,
        chat: Chat,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> Page[s.ConversationSummary]:
        return await chat.list_conversations(request.user, offset=offset, limit=limit)

    @get("/{conversation_id:int}", summary="대화 내용")
    async def detail(self, request: AuthedRequest, chat: Chat, conversation_id: FromPath[int]) -> s.ConversationDetail:
        return await chat.conversation(request.user, conversation_id)

    @delete("/{conversation_id:int}", status_code=204, summary="대화 삭제")
    async def remove(self, request: AuthedRequest, chat: Chat, conversation_id: FromPath[int]) -> None:
        await chat.delete_conversation(request.user, conversation_id)

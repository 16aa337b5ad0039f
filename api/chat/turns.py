"""Chat turns: validation, the cached and single-flight LLM run (answered, streamed or queued as a job),
storing the turn in its conversation, and the key check. Reading and deleting conversations: conversations.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from api.analysis import tool_schemas, tool_uses_dataset
from api.chat import keybox
from api.chat import schemas as s
from api.chat.agent import EventSink, TurnDeps, run_turn
from api.chat.cache import CachedAnswer, ChatCache
from api.chat.llm import map_anthropic_error
from api.chat.prompt import SAMPLE_ROWS, DatasetContext, system_prompt
from api.chat.repository import ConversationRepository
from api.chat.tools import TurnDataset, TurnTools
from api.chat.turn_parts import (
    PreparedTurn,
    chat_response,
    chosen_model,
    prepare_turn,
    session_fetch,
    stored_turn,
    token_usage,
)
from api.datasets.repository import DatasetRepository
from api.db.tables import Job
from api.errors import DomainError, NotFound
from api.jobs.schemas import JobAccepted
from api.jobs.services import JobService
from api.observability.metrics import count_cache
from api.resources import Resources
from api.settings import Settings
from api.users.services import Principal

logger = logging.getLogger("hab.chat")

EMPTY_ANSWER = "죄송합니다. 이번 질문에는 답변을 만들지 못했습니다. 질문을 조금 바꿔 다시 물어봐 주세요."


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


# Called inside store()'s transaction with the stored response (e.g. a chat job recording its result).
Finalize = Callable[[AsyncSession, s.ChatResponse], Awaitable[None]]
INTERNAL_ERROR = "답변을 만드는 중 서버 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."


async def _drain(queue: asyncio.Queue[tuple[str, dict[str, Any]] | None]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    while (item := await queue.get()) is not None:
        yield item


@dataclass
class TurnService:
    session: AsyncSession
    resources: Resources
    conversations: ConversationRepository = field(init=False)

    def __post_init__(self) -> None:
        self.conversations = ConversationRepository(session=self.session)

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    @property
    def cache(self) -> ChatCache:
        return self.resources.chat_cache

    def models(self) -> s.ChatModels:
        return s.ChatModels(default=self.settings.chat_default_model, models=list(self.settings.chat_models))

    def usage(self, model: str, input_tokens: int, output_tokens: int) -> s.TokenUsage:
        return token_usage(self.settings, model, input_tokens, output_tokens)

    # -- preparing a turn --------------------------------------------------------------------------

    async def prepare(self, user: Principal, request: s.ChatRequest) -> PreparedTurn:
        """Validate the request (model, datasets, conversation) and compute its cache key. Stores nothing."""
        return await prepare_turn(self.resources, session_fetch(self.session), user, request)

    # -- answering ---------------------------------------------------------------------------------

    async def answer(
        self,
        turn: PreparedTurn,
        api_key: str,
        *,
        emit: EventSink | None = None,
        finalize: Finalize | None = None,
        peek: bool = True,
    ) -> s.ChatResponse:
        """Answer from the cache or one LLM run (shared by identical concurrent requests), then store the turn.

        `finalize` runs inside the storing transaction (a chat job marks itself done there, atomically).
        `peek=False`: the caller has just found no cached answer (hits.py), so single flight starts at once.
        """
        usage = Usage()
        # A cached answer is stored in prepare()'s transaction: one connection and one commit per hit.
        peeked = await self.cache.get_answer(turn.cache_key) if peek else None
        if peeked is not None:
            cached, hit = peeked, True
        else:
            # No database connection is held while Claude thinks: end prepare()'s transaction now.
            await self.session.commit()

            async def compute() -> CachedAnswer:
                return await self._run_llm(turn, api_key, usage, emit)

            wait = self.settings.anthropic_timeout * (self.settings.chat_max_iterations + 1)
            cached, hit = await self.cache.single_flight(turn.cache_key, compute, wait_seconds=wait)
        count_cache("answer", hit)
        if hit and emit is not None:
            await emit("text", {"delta": cached.response})
        tokens = (0, 0) if hit else (usage.input_tokens, usage.output_tokens)
        return await self.store(turn, cached, tokens=tokens, cache_hit=hit, finalize=finalize)

    async def stream(self, turn: PreparedTurn, api_key: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The turn's events (text, tool_start, tool_end, then done or error) as it runs.

        The turn runs as a background task with its own session, so a client that disconnects does not stop
        it: the answer is still stored and cached.
        """
        resources = self.resources
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

        async def emit(name: str, payload: dict[str, Any]) -> None:
            await queue.put((name, payload))

        async def run() -> None:
            try:
                async with resources.sessions() as session:
                    result = await TurnService(session, resources).answer(turn, api_key, emit=emit)
                await queue.put(("done", msgspec.to_builtins(result)))
            except DomainError as exc:
                await queue.put(("error", {"status": exc.status_code, "code": exc.code, "message": exc.message}))
            except Exception as exc:
                logger.error("chat stream failed: %s", type(exc).__name__)
                await queue.put(("error", {"status": 500, "code": "internal_error", "message": INTERNAL_ERROR}))
            finally:
                await queue.put(None)

        await self.session.commit()  # the request's transaction ends before the stream begins
        resources.run_in_background(run())
        return _drain(queue)

    async def submit_job(self, user: Principal, request: s.ChatRequest, api_key: str) -> JobAccepted:
        """Queue the turn for a worker. The key is sealed under the job id and parked in Redis, never in params."""
        turn = await self.prepare(user, request)  # validate now, not in the worker
        job = Job(
            kind="chat",
            owner_id=user.id,
            status="queued",
            params={
                "dataset_ids": [d.id for d in turn.datasets],
                "message": turn.message,
                "conversation_id": turn.conversation_id,
                "model": turn.model,
            },
        )
        resources = self.resources

        async def park_key(stored: Job) -> None:
            sealed = keybox.seal(resources.settings.sealing_secret(), stored.id, api_key)
            await resources.redis.set(keybox.redis_key(stored.id), sealed, ex=keybox.SEALED_KEY_TTL_SECONDS)

        return await JobService(self.session, resources).submit(job, before_enqueue=park_key)

    async def _run_llm(self, turn: PreparedTurn, api_key: str, usage: Usage, emit: EventSink | None) -> CachedAnswer:
        datasets, contexts = [], []
        repository = DatasetRepository(session=self.session)
        summaries = await repository.summaries([d.id for d in turn.datasets])
        for d in turn.datasets:
            summary = summaries.get(d.id)
            table = None if summary is None else await self.resources.tables.load(d.sha, repository.fetch_parquet)
            if summary is None or table is None:
                raise NotFound("데이터셋을 찾을 수 없습니다.", detail={"dataset_id": d.id})
            datasets.append(TurnDataset(label=d.label, sha=d.sha, table=table))
            contexts.append(
                DatasetContext(
                    label=d.label,
                    dataset_id=d.id,
                    name=d.name,
                    kind=d.kind,
                    rows=d.rows,
                    summary=summary,
                    sample=table.slice(0, SAMPLE_ROWS),
                )
            )
        labels = [d.label for d in datasets]
        schemas = tool_schemas(labels)
        if not labels:
            schemas = [t for t in schemas if not tool_uses_dataset(t["name"])]
        messages: list[dict[str, Any]] = [{"role": role, "content": content} for role, content in turn.history]
        messages.append({"role": "user", "content": turn.message})
        deps = TurnDeps(
            client=self.resources.llm.client(api_key),
            model=turn.model,
            max_tokens=self.settings.chat_max_tokens,
            system=system_prompt(contexts),
            tools=schemas,
            max_iterations=self.settings.chat_max_iterations,
            run_tool=TurnTools(datasets, self.resources.frames, self.resources.models.current, self.cache),
            emit=emit,
        )
        await self.session.commit()  # tables loaded: release the connection for the LLM run
        failure: DomainError | None = None
        try:
            outcome = await run_turn(deps, messages)
        except anthropic.AnthropicError as exc:
            failure = map_anthropic_error(exc)
        if failure is not None:
            # Raised outside the except block: the SDK error (its request carries the key) is not chained.
            raise failure
        usage.input_tokens, usage.output_tokens = outcome.input_tokens, outcome.output_tokens
        return CachedAnswer(
            response=outcome.response or EMPTY_ANSWER,
            tool_calls=outcome.tool_calls,
            model=turn.model,
            hit_limit=outcome.hit_limit,
            cacheable=bool(outcome.response),
        )

    async def store(
        self,
        turn: PreparedTurn,
        answer: CachedAnswer,
        *,
        tokens: tuple[int, int],
        cache_hit: bool,
        finalize: Finalize | None = None,
    ) -> s.ChatResponse:
        """Append the question and the answer to the conversation (created on the first turn): one statement,
        in the session's transaction, committed here (with `finalize`'s writes)."""
        usage = self.usage(turn.model, *tokens)
        stored = await self.conversations.store_turn(stored_turn(turn, answer, usage, cache_hit=cache_hit))
        response = chat_response(turn, answer, stored, usage, cache_hit=cache_hit)
        if finalize is not None:
            await finalize(self.session, response)
        await self.session.commit()
        return response

    # -- the key check -----------------------------------------------------------------------------

    async def verify_key(self, api_key: str, model: str | None) -> s.VerifyKeyResult:
        chosen = chosen_model(self.settings, model)
        client = self.resources.llm.client(api_key)
        try:
            await client.messages.create(model=chosen, max_tokens=1, messages=[{"role": "user", "content": "ping"}])
        except anthropic.AuthenticationError:
            return s.VerifyKeyResult(valid=False, model=chosen, message="API 키가 올바르지 않거나 만료되었습니다.")
        except anthropic.AnthropicError as exc:
            raise map_anthropic_error(exc) from None
        return s.VerifyKeyResult(valid=True, model=chosen, message="API 키가 확인되었습니다.")

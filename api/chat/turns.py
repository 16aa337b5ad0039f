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

from api.analysis import TOOL_SCHEMA_VERSION, tool_schemas, tool_uses_dataset
from api.chat import keybox
from api.chat import schemas as s
from api.chat.agent import EventSink, TurnDeps, run_turn
from api.chat.cache import CachedAnswer, ChatCache, digest
from api.chat.conversations import tool_calls_out
from api.chat.llm import map_anthropic_error, price_usd, usd_to_krw
from api.chat.prompt import PROMPT_VERSION, SAMPLE_ROWS, DatasetContext, system_prompt
from api.chat.repository import ConversationRepository, StoredTurn
from api.chat.tools import TurnDataset, TurnTools
from api.datasets.repository import DatasetRepository
from api.db.tables import Job
from api.errors import DomainError, InvalidInput, NotFound
from api.jobs.schemas import JobAccepted
from api.jobs.services import JobService
from api.observability.metrics import count_cache
from api.resources import Resources
from api.settings import Settings
from api.users.services import Principal

logger = logging.getLogger("hab.chat")

# Prior messages sent back to Claude (and hashed into the cache key) per turn.
HISTORY_MESSAGES = 40
TITLE_CHARS = 60
EMPTY_ANSWER = "죄송합니다. 이번 질문에는 답변을 만들지 못했습니다. 질문을 조금 바꿔 다시 물어봐 주세요."


@dataclass(frozen=True)
class SelectedDataset:
    id: int
    label: str
    name: str
    kind: str
    rows: int
    sha: str


@dataclass(frozen=True)
class PreparedTurn:
    """Everything a turn needs, as plain values (it outlives the request's database session when streaming)."""

    owner_id: int
    message: str
    model: str
    conversation_id: int | None
    datasets: list[SelectedDataset]
    history: list[tuple[str, str]]
    cache_key: str


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


def selected_ids(request: s.ChatRequest) -> list[int]:
    """The request's datasets, in order without repeats: `dataset_ids`, or the guide's single `dataset_id`."""
    if request.dataset_id is not None and request.dataset_ids:
        raise InvalidInput(
            "dataset_id와 dataset_ids 중 하나만 보내 주세요.",
            detail={"fields": ["dataset_id", "dataset_ids"]},
        )
    ids = list(dict.fromkeys(request.dataset_ids if request.dataset_id is None else [request.dataset_id]))
    if len(ids) > s.MAX_DATASETS:
        raise InvalidInput(
            f"한 번에 질문할 수 있는 데이터셋은 최대 {s.MAX_DATASETS}개입니다 ({len(ids)}개를 골랐습니다). "
            "데이터셋이 많을수록 Claude가 읽어야 할 설명이 길어져 답이 느리고 비싸지므로, "
            f"질문과 관련된 데이터셋을 {s.MAX_DATASETS}개 이하로 골라 주세요.",
            detail={"field": "dataset_ids", "count": len(ids), "limit": s.MAX_DATASETS},
        )
    return ids


def _labels(rows: list[Any]) -> list[str]:
    """Tool-facing dataset names: the dataset's name, made unique with its id when two share one."""
    names = [r.name for r in rows]
    return [r.name if names.count(r.name) == 1 else f"{r.name} #{r.id}" for r in rows]


def _title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


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

    def _model(self, requested: str | None) -> str:
        model = self.settings.chat_default_model if requested is None else requested  # "" is no model name
        if model not in self.settings.chat_models:
            raise InvalidInput(
                "사용할 수 없는 모델입니다.",
                detail={"field": "model", "value": model, "valid": list(self.settings.chat_models)},
            )
        return model

    def usage(self, model: str, input_tokens: int, output_tokens: int) -> s.TokenUsage:
        usd = price_usd(self.settings, model, input_tokens, output_tokens)
        return s.TokenUsage(
            input=input_tokens, output=output_tokens, cost_usd=usd, cost_krw=usd_to_krw(self.settings, usd)
        )

    # -- preparing a turn --------------------------------------------------------------------------

    async def prepare(self, user: Principal, request: s.ChatRequest) -> PreparedTurn:
        """Validate the request (model, datasets, conversation) and compute its cache key. Stores nothing."""
        model = self._model(request.model)
        message = request.message.strip()
        if not message:
            raise DomainError("질문 내용이 비어 있습니다.", detail={"field": "message"})
        ids = selected_ids(request)
        visible = await DatasetRepository(session=self.session).visible_briefs(ids, user)
        missing = [dataset_id for dataset_id in ids if dataset_id not in visible]
        if missing:
            raise NotFound("데이터셋을 찾을 수 없습니다.", detail={"dataset_id": missing[0]})
        rows = [visible[dataset_id] for dataset_id in ids]
        history: list[tuple[str, str]] = []
        if request.conversation_id is not None:
            conversation = await self.conversations.owned(request.conversation_id, user.id)
            if conversation is None:
                raise NotFound("대화를 찾을 수 없습니다.", detail={"conversation_id": request.conversation_id})
            history = await self.conversations.history(conversation.id, limit=HISTORY_MESSAGES)
            while history and history[0][0] != "user":
                history.pop(0)
        datasets = [
            SelectedDataset(id=r.id, label=label, name=r.name, kind=r.kind, rows=r.rows, sha=r.sha)
            for r, label in zip(rows, _labels(rows), strict=True)
        ]
        active = self.resources.models.current
        key = digest(
            {
                "model": model,
                "params": {
                    "max_tokens": self.settings.chat_max_tokens,
                    "iterations": self.settings.chat_max_iterations,
                },
                "prompt": PROMPT_VERSION,
                "tools": TOOL_SCHEMA_VERSION,
                "datasets": [[d.label, d.sha] for d in datasets],
                "eclo_model": active.version if active is not None else None,
                "history": history,
                "message": message,
            }
        )
        return PreparedTurn(
            owner_id=user.id,
            message=message,
            model=model,
            conversation_id=request.conversation_id,
            datasets=datasets,
            history=history,
            cache_key=key,
        )

    # -- answering ---------------------------------------------------------------------------------

    async def answer(
        self,
        turn: PreparedTurn,
        api_key: str,
        *,
        emit: EventSink | None = None,
        finalize: Finalize | None = None,
    ) -> s.ChatResponse:
        """Answer from the cache or one LLM run (shared by identical concurrent requests), then store the turn.

        `finalize` runs inside the storing transaction (a chat job marks itself done there, atomically).
        """
        usage = Usage()
        # A cached answer is stored in prepare()'s transaction: one connection and one commit per hit.
        peeked = await self.cache.get_answer(turn.cache_key)
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
        stored = await self.conversations.store_turn(
            StoredTurn(
                owner_id=turn.owner_id,
                conversation_id=turn.conversation_id,
                title=_title(turn.message),
                model=turn.model,
                dataset_ids=[d.id for d in turn.datasets],
                question=turn.message,
                answer=answer.response,
                tool_calls=answer.tool_calls,
                input_tokens=usage.input,
                output_tokens=usage.output,
                cost_usd=usage.cost_usd,
                cache_hit=cache_hit,
            )
        )
        if stored is None:  # the conversation was deleted while the answer was being made
            raise NotFound("대화를 찾을 수 없습니다.", detail={"conversation_id": turn.conversation_id})
        conversation_id, message_id = stored
        response = s.ChatResponse(
            conversation_id=conversation_id,
            message_id=message_id,
            response=answer.response,
            tool_calls=tool_calls_out(answer.tool_calls),
            token_usage=usage,
            cache_hit=cache_hit,
            model=turn.model,
            hit_iteration_limit=answer.hit_limit,
        )
        if finalize is not None:
            await finalize(self.session, response)
        await self.session.commit()
        return response

    # -- the key check -----------------------------------------------------------------------------

    async def verify_key(self, api_key: str, model: str | None) -> s.VerifyKeyResult:
        chosen = self._model(model)
        client = self.resources.llm.client(api_key)
        try:
            await client.messages.create(model=chosen, max_tokens=1, messages=[{"role": "user", "content": "ping"}])
        except anthropic.AuthenticationError:
            return s.VerifyKeyResult(valid=False, model=chosen, message="API 키가 올바르지 않거나 만료되었습니다.")
        except anthropic.AnthropicError as exc:
            raise map_anthropic_error(exc) from None
        return s.VerifyKeyResult(valid=True, model=chosen, message="API 키가 확인되었습니다.")

"""What every chat turn computes the same way, whichever path answers it (a session's transaction in turns.py,
a cache hit on bare pooled connections in hits.py): validating the request, its cache key, the stored rows and
the response. The database reads take a `Fetch` (a statement in the driver's $n form and its arguments → rows),
so both paths run the same SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.analysis import TOOL_SCHEMA_VERSION
from api.chat import schemas as s
from api.chat.cache import CachedAnswer, digest
from api.chat.conversations import tool_calls_out
from api.chat.llm import price_usd, usd_to_krw
from api.chat.prompt import PROMPT_VERSION
from api.chat.repository import HISTORY_SQL, DatasetsAsRead, StoredTurn, history_of
from api.datasets.repository import VISIBLE_BRIEFS_SQL, DatasetBrief, briefs_by_id, visible_briefs_args
from api.errors import DomainError, InvalidInput, NotFound
from api.resources import Resources
from api.settings import Settings
from api.users.services import Principal

# Prior messages sent back to Claude (and hashed into the cache key) per turn.
HISTORY_MESSAGES = 40
TITLE_CHARS = 60

Fetch = Callable[[str, tuple[Any, ...]], Awaitable[Sequence[Sequence[Any]]]]


def session_fetch(session: AsyncSession) -> Fetch:
    """Statements on the session's connection, in its transaction."""

    async def fetch(sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        connection = await session.connection()
        return (await connection.exec_driver_sql(sql, args)).all()

    return fetch


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
    viewer_is_admin: bool = False
    # The briefs came from this process's memory (api/chat/briefs.py), not from a read for this request: good for
    # a cache hit whose store re-checks them, never for running the LLM.
    briefs_remembered: bool = False

    def datasets_as_read(self) -> DatasetsAsRead:
        return DatasetsAsRead(
            ids=[d.id for d in self.datasets],
            shas=[d.sha for d in self.datasets],
            names=[d.name for d in self.datasets],
            viewer_is_admin=self.viewer_is_admin,
        )


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


def _labels(rows: Sequence[DatasetBrief]) -> list[str]:
    """Tool-facing dataset names: the dataset's name, made unique with its id when two share one."""
    names = [r.name for r in rows]
    return [r.name if names.count(r.name) == 1 else f"{r.name} #{r.id}" for r in rows]


def title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def chosen_model(settings: Settings, requested: str | None) -> str:
    model = settings.chat_default_model if requested is None else requested  # "" is no model name
    if model not in settings.chat_models:
        raise InvalidInput(
            "사용할 수 없는 모델입니다.",
            detail={"field": "model", "value": model, "valid": list(settings.chat_models)},
        )
    return model


async def _visible_briefs(
    resources: Resources, fetch: Fetch, user: Principal, ids: list[int], *, remembered: bool
) -> tuple[tuple[DatasetBrief, ...], bool]:
    """The requested datasets' briefs in request order (the Korean 404 for one the caller may not see), and
    whether they came from memory. Every read refreshes the memory."""
    if remembered and (known := resources.dataset_briefs.get(user, ids)) is not None:
        return known, True
    visible = briefs_by_id(await fetch(VISIBLE_BRIEFS_SQL, visible_briefs_args(ids, user)))
    missing = [dataset_id for dataset_id in ids if dataset_id not in visible]
    if missing:
        resources.dataset_briefs.forget(user, ids)
        raise NotFound("데이터셋을 찾을 수 없습니다.", detail={"dataset_id": missing[0]})
    rows = tuple(visible[dataset_id] for dataset_id in ids)
    resources.dataset_briefs.put(user, ids, rows)
    return rows, False


async def prepare_turn(
    resources: Resources, fetch: Fetch, user: Principal, request: s.ChatRequest, *, remembered: bool = False
) -> PreparedTurn:
    """Validate the request (model, datasets, conversation) and compute its cache key. Stores nothing.

    `remembered`: the dataset briefs may come from this process's memory (a cache hit re-checks them as it
    stores, api/chat/hits.py); otherwise they are read.
    """
    settings = resources.settings
    model = chosen_model(settings, request.model)
    message = request.message.strip()
    if not message:
        raise DomainError("질문 내용이 비어 있습니다.", detail={"field": "message"})
    ids = selected_ids(request)
    rows, from_memory = await _visible_briefs(resources, fetch, user, ids, remembered=remembered)
    history: list[tuple[str, str]] = []
    if request.conversation_id is not None:
        owned = history_of(await fetch(HISTORY_SQL, (request.conversation_id, user.id, HISTORY_MESSAGES)))
        if owned is None:
            raise NotFound("대화를 찾을 수 없습니다.", detail={"conversation_id": request.conversation_id})
        history = owned
        while history and history[0][0] != "user":
            history.pop(0)
    datasets = [
        SelectedDataset(id=r.id, label=label, name=r.name, kind=r.kind, rows=r.rows, sha=r.sha)
        for r, label in zip(rows, _labels(rows), strict=True)
    ]
    active = resources.models.current
    key = digest(
        {
            "model": model,
            "params": {"max_tokens": settings.chat_max_tokens, "iterations": settings.chat_max_iterations},
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
        viewer_is_admin=user.is_admin,
        briefs_remembered=from_memory,
    )


def token_usage(settings: Settings, model: str, input_tokens: int, output_tokens: int) -> s.TokenUsage:
    usd = price_usd(settings, model, input_tokens, output_tokens)
    return s.TokenUsage(input=input_tokens, output=output_tokens, cost_usd=usd, cost_krw=usd_to_krw(settings, usd))


def stored_turn(turn: PreparedTurn, answer: CachedAnswer, usage: s.TokenUsage, *, cache_hit: bool) -> StoredTurn:
    return StoredTurn(
        owner_id=turn.owner_id,
        conversation_id=turn.conversation_id,
        title=title(turn.message),
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


def chat_response(
    turn: PreparedTurn,
    answer: CachedAnswer,
    stored: tuple[int, int] | None,
    usage: s.TokenUsage,
    *,
    cache_hit: bool,
) -> s.ChatResponse:
    """The response of a stored turn; the Korean 404 when nothing was stored (the conversation was deleted
    while the answer was being made, or is not the caller's)."""
    if stored is None:
        raise NotFound("대화를 찾을 수 없습니다.", detail={"conversation_id": turn.conversation_id})
    conversation_id, message_id = stored
    return s.ChatResponse(
        conversation_id=conversation_id,
        message_id=message_id,
        response=answer.response,
        tool_calls=tool_calls_out(answer.tool_calls),
        token_usage=usage,
        cache_hit=cache_hit,
        model=turn.model,
        hit_iteration_limit=answer.hit_limit,
    )

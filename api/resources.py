"""Process-wide resources, created in the lifespan (API) or on_startup (worker) and closed there."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.chat.briefs import BriefCache
from api.chat.cache import ChatCache
from api.chat.llm import AnthropicGateway, AnthropicUnavailable, AnthropicUnreachable
from api.chat.tools import FrameCache
from api.datasets.store import TableCache
from api.db.bare import BareConnections
from api.db.engine import create_engine, create_session_factory
from api.jobs.payloads import deserialize_job, serialize_job
from api.local.services import resolve_services
from api.observability.metrics import set_model_compiled
from api.predictions.writer import PredictionWriter
from api.registry.sync import ModelSync
from api.runtime import tune_memory
from api.settings import Settings
from api.users.services import PrincipalCache
from models.compiled import ModelCompiler, PredictorBackend
from models.holder import ModelHolder
from models.loaded import LoadedModel

logger = logging.getLogger("hab.resources")


@dataclass
class Resources:
    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    arq: ArqRedis
    tables: TableCache
    principals: PrincipalCache
    models: ModelHolder
    model_sync: ModelSync
    prediction_writer: PredictionWriter
    llm: AnthropicGateway
    chat_cache: ChatCache
    frames: FrameCache
    bare_connections: BareConnections
    # The datasets a caller's chat questions were about, for cache hits that re-check them as they store.
    dataset_briefs: BriefCache = field(default_factory=BriefCache)
    # Work that outlives its request (streamed chat turns keep going after a client leaves); drained at close.
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # Feature importance per model artifact (artifacts are content-addressed, so an entry never goes stale).
    model_importance: dict[str, dict[str, float]] = field(default_factory=dict)
    # Scoring jobs whose parts this process is scoring now (a helper delivery for one of them goes elsewhere).
    scoring_jobs: set[int] = field(default_factory=set)

    def run_in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task


def redis_client(url: str) -> Redis:
    # Short timeouts: when Redis is down, callers degrade (no cache) instead of hanging.
    return Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30)


def arq_client(url: str, queue_name: str = "arq:queue") -> ArqRedis:
    """An arq pool that does not connect (or fail) until first used, so the API starts without Redis."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=1.0, socket_timeout=5.0)
    return ArqRedis(
        connection_pool=pool,
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
        default_queue_name=queue_name,
    )


async def open_resources(settings: Settings, *, follow_models: bool = False) -> Resources:
    """Open every shared client. `follow_models` also loads the active model and keeps it current."""
    tuned = tune_memory(settings.arrow_memory_pool, settings.memory_reuse_seconds)
    logger.debug("memory settings: %s", tuned)
    database_url, redis_url = settings.database_url, settings.redis_url
    if not database_url or not redis_url:
        urls = await asyncio.to_thread(resolve_services, settings)
        database_url, redis_url = urls.database_url, urls.redis_url
    engine = create_engine(database_url, pool_size=settings.db_pool_size)
    redis = redis_client(redis_url)
    sessions = create_session_factory(engine)
    compiler = ModelCompiler(
        settings.model_compile_dir or settings.data_dir / "compiled-models",
        enabled=settings.model_compile == "auto",
        threads=settings.model_compile_threads,
    )

    def accelerate(model: LoadedModel) -> None:
        set_model_compiled(False)  # a new version serves on LightGBM until its library is attached
        set_model_compiled(compiler.accelerate(model) is PredictorBackend.COMPILED)

    holder = ModelHolder(accelerate=accelerate)
    resources = Resources(
        settings=settings,
        database_url=database_url,
        redis_url=redis_url,
        engine=engine,
        sessions=sessions,
        redis=redis,
        arq=arq_client(redis_url, settings.queue_name),
        tables=TableCache(settings.dataset_cache_bytes),
        principals=PrincipalCache(),
        models=holder,
        model_sync=ModelSync(holder, sessions, redis_url, recheck_seconds=settings.model_recheck_seconds),
        prediction_writer=PredictionWriter(engine),
        llm=AnthropicGateway(settings),
        chat_cache=ChatCache(
            redis, ttl_seconds=settings.cache_ttl, shared_errors=(AnthropicUnavailable, AnthropicUnreachable)
        ),
        frames=FrameCache(),
        bare_connections=BareConnections(engine, limit=settings.db_pool_size),
    )
    if follow_models:
        await resources.model_sync.start()
    return resources


BACKGROUND_DRAIN_SECONDS = 30.0


async def close_resources(resources: Resources) -> None:
    if resources.background:
        # Let streamed chat turns finish storing before the engine goes away (bounded).
        await asyncio.wait(set(resources.background), timeout=BACKGROUND_DRAIN_SECONDS)
    await resources.llm.aclose()
    await resources.model_sync.stop()
    await resources.prediction_writer.close()
    await resources.arq.aclose()
    await resources.redis.aclose()
    await resources.engine.dispose()


def freeze_startup_objects() -> None:
    """Move everything allocated at start-up (modules, model, tables) out of the garbage collector's view.

    Without this, each full collection walks every long-lived object and stalls every in-flight request,
    which dominated p99 under load (see docs/decisions/0005-gc-freeze-after-startup.md).
    """
    gc.collect()
    gc.freeze()

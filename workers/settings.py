"""arq worker: settings, startup/shutdown of shared resources, and maintenance cron jobs."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker, get_kwargs

from api.settings import Settings, get_settings
from workers.chat import chat_job
from workers.maintenance import expire_share_links, prune_arq_results, purge_unreferenced_blobs
from workers.scoring import score_job, sweep_stale_jobs
from workers.serialization import deserialize_job, serialize_job

logger = logging.getLogger("hab.worker")


async def startup(ctx: dict[str, Any]) -> None:
    from api.resources import freeze_startup_objects, open_resources

    settings = ctx.get("settings") or get_settings()
    settings.sealing_secret()  # chat jobs open sealed keys with it: refuse to start without a real one
    # follow_models: this worker serves the active model and hot-swaps it like the API does.
    ctx["resources"] = await open_resources(settings, follow_models=True)
    freeze_startup_objects()


async def shutdown(ctx: dict[str, Any]) -> None:
    from api.resources import close_resources

    if "resources" in ctx:
        await close_resources(ctx["resources"])


class WorkerSettings:
    functions = [
        # Scoring resumes from its last committed chunk, so retries are cheap and safe.
        func(score_job, timeout=3600, max_tries=5, keep_result=3600),
        # A chat turn is a few LLM calls; a retry re-runs the turn (nothing is stored until it ends).
        func(chat_job, timeout=1800, max_tries=3, keep_result=3600),
        func(purge_unreferenced_blobs, timeout=300, max_tries=2),
        func(expire_share_links, timeout=60, max_tries=2),
    ]
    cron_jobs = [
        cron(sweep_stale_jobs, second={0, 30}, run_at_startup=True, unique=True, timeout=60),
        cron(purge_unreferenced_blobs, minute={7, 37}, unique=True, timeout=300),
        cron(expire_share_links, minute={12}, unique=True, timeout=60),
        cron(prune_arq_results, minute={23}, unique=True, timeout=120),
    ]
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = staticmethod(serialize_job)
    job_deserializer = staticmethod(deserialize_job)
    max_jobs = 4
    job_timeout = 600
    health_check_interval = 30


class GracefulWorker(Worker):
    """arq's worker with a shutdown that cannot abandon a job half-way through putting itself back in line.

    arq's own `close()` waits for its tasks with a bare `gather`: if any task ends cancelled (a job caught
    in arq's Redis calls, a cron run), the wait raises at once, `on_shutdown` is skipped and the event loop
    stops with a job's re-queue still in flight. And a second signal cancels the jobs again, cutting that
    re-queue short. Here repeated signals are ignored and every task is waited for.
    """

    _stopping = False

    def handle_sig(self, signum: signal.Signals) -> None:
        if self._stopping:
            logger.info("already stopping; signal %s ignored", signal.Signals(signum).name)
            return
        self._stopping = True
        super().handle_sig(signum)

    async def close(self) -> None:
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None


def create_worker(settings: Settings, *, burst: bool = False, **overrides: Any) -> GracefulWorker:
    options: dict[str, Any] = {
        **get_kwargs(WorkerSettings),  # type: ignore[arg-type]
        "redis_settings": RedisSettings.from_dsn(settings.redis_url or ""),
        "ctx": {"settings": settings},
        "burst": burst,
        "queue_name": settings.queue_name,
    }
    return GracefulWorker(**{**options, **overrides})


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker in the foreground (SIGINT/SIGTERM stop it gracefully)."""
    create_worker(settings, burst=burst).run()

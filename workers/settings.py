"""arq worker: settings, startup/shutdown of shared resources, and maintenance cron jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker, get_kwargs
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.jobs.kinds import JobKind
from api.jobs.payloads import deserialize_job, serialize_job
from api.settings import Settings, get_settings
from workers.jobs import FUNCTIONS, score_job_part, sweep_forever
from workers.maintenance import (
    expire_share_links,
    prune_arq_results,
    purge_unreferenced_blobs,
    refresh_stale_profiles,
)
from workers.presence import Presence

logger = logging.getLogger("hab.worker")


async def startup(ctx: dict[str, Any]) -> None:
    from api.resources import freeze_startup_objects, open_resources

    settings = ctx.get("settings") or get_settings()
    settings.sealing_secret()  # chat jobs open sealed keys with it: refuse to start without a real one
    # follow_models: this worker serves the active model and hot-swaps it like the API does.
    ctx["resources"] = resources = await open_resources(settings, follow_models=True)
    if ctx.get("sweep", True):
        ctx["sweeper"] = asyncio.create_task(sweep_forever(resources))
    ctx["presence"] = Presence(resources)
    ctx["presence_task"] = asyncio.create_task(ctx["presence"].report_forever())
    freeze_startup_objects()


async def shutdown(ctx: dict[str, Any]) -> None:
    from api.resources import close_resources

    for name in ("sweeper", "presence_task"):
        task = ctx.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if "presence" in ctx:
        await ctx.pop("presence").withdraw()
    if "resources" in ctx:
        await close_resources(ctx["resources"])


class WorkerSettings:
    functions = [
        # Scoring resumes from its unfinished parts, so retries are cheap and safe.
        func(FUNCTIONS[JobKind.SCORE], timeout=3600, max_tries=5, keep_result=3600),
        # Helpers of a scoring job: never retried (the run scores whatever they leave), results not kept.
        func(score_job_part, timeout=3600, max_tries=1, keep_result=0),
        # A chat turn is a few LLM calls; a retry re-runs the turn (nothing is stored until it ends).
        func(FUNCTIONS[JobKind.CHAT], timeout=1800, max_tries=3, keep_result=3600),
        func(purge_unreferenced_blobs, timeout=300, max_tries=2),
        func(expire_share_links, timeout=60, max_tries=2),
        func(refresh_stale_profiles, timeout=1800, max_tries=2),
    ]
    cron_jobs = [
        cron(purge_unreferenced_blobs, minute={7, 37}, unique=True, timeout=300),
        cron(expire_share_links, minute={12}, unique=True, timeout=60),
        cron(prune_arq_results, minute={23}, unique=True, timeout=120),
        # At start too: after an upgrade that bumps PROFILE_VERSION, listings catch up within seconds.
        cron(refresh_stale_profiles, minute={47}, unique=True, timeout=1800, run_at_startup=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = staticmethod(serialize_job)
    job_deserializer = staticmethod(deserialize_job)
    max_jobs = 4
    job_timeout = 600
    # arq finds new jobs by polling the queue (a ZRANGEBYSCORE): at arq's default 0.5 s a job or a scoring
    # helper part waited 0.25 s on average before a worker looked, a tenth of a 300k-row job's run.
    poll_delay = 0.05
    health_check_interval = 30


# What a lost Redis looks like to redis-py: refused or reset connections, timeouts, socket errors.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
RECONNECT_MAX_SECONDS = 10.0


class GracefulWorker(Worker):
    """arq's worker, made to survive Redis outages and to shut down without abandoning a job.

    Redis: arq's poll loop raises on the first failed Redis call and the worker exits. Here a failed poll
    is logged once per outage and retried with backoff; jobs already running go on (they need only
    PostgreSQL), and what Redis lost meanwhile is put back by the stale-job sweeper from PostgreSQL.

    Shutdown: arq's own `close()` waits for its tasks with a bare `gather`: if any task ends cancelled (a
    job caught in arq's Redis calls, a cron run), the wait raises at once, `on_shutdown` is skipped and the
    event loop stops with a job's re-queue still in flight. And a second signal cancels the jobs again,
    cutting that re-queue short. Here repeated signals are ignored and every task is waited for.
    """

    _stopping = False
    _redis_down_since: float | None = None
    _reconnect_delay = 0.5

    def handle_sig(self, signum: signal.Signals) -> None:
        if self._stopping:
            logger.info("already stopping; signal %s ignored", signal.Signals(signum).name)
            return
        self._stopping = True
        super().handle_sig(signum)

    async def main(self) -> None:
        while self._pool is None:
            redis_settings = self.redis_settings
            assert redis_settings is not None  # arq sets it whenever it was given no pool to use
            try:
                self._pool = await create_pool(
                    redis_settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                    retry=redis_settings.conn_retries,  # no waiting inside arq: retried here
                )
            except REDIS_DOWN as exc:
                await self._wait_for_redis(exc)
        self._redis_back()
        await super().main()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            await self._wait_for_redis(exc)
            return
        self._redis_back()

    async def _wait_for_redis(self, exc: BaseException) -> None:
        loop = asyncio.get_running_loop()
        if self._redis_down_since is None:
            self._redis_down_since = loop.time()
            logger.warning(
                "Redis에 연결할 수 없습니다 (%s). 실행 중인 작업은 계속하고, 다시 연결될 때까지 재시도합니다.",
                type(exc).__name__,
            )
        await asyncio.sleep(self._reconnect_delay)
        self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_SECONDS)

    def _redis_back(self) -> None:
        if self._redis_down_since is not None:
            down = asyncio.get_running_loop().time() - self._redis_down_since
            logger.warning("Redis에 다시 연결되었습니다 (%.1f초 동안 끊김).", down)
        self._redis_down_since = None
        self._reconnect_delay = 0.5

    async def close(self) -> None:
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            if self.on_shutdown and "resources" in self.ctx:
                await self.on_shutdown(self.ctx)
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):  # a worker stopped during an outage still closes its resources
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(*REDIS_DOWN):
            await self.pool.aclose(close_connection_pool=True)
        self._pool = None


def create_worker(settings: Settings, *, burst: bool = False, sweep: bool = True, **overrides: Any) -> GracefulWorker:
    """`sweep`: run the stale-job sweeper in this worker (tests that sweep by hand turn it off)."""
    options: dict[str, Any] = {
        # arq reads the class's __dict__ but types it as type[a Protocol], which function-valued class attributes
        # (on_startup, ...) cannot satisfy: on an instance they would be bound methods.
        **get_kwargs(WorkerSettings),  # type: ignore[arg-type]
        "redis_settings": RedisSettings.from_dsn(settings.redis_url or ""),
        "ctx": {"settings": settings, "sweep": sweep and not burst},
        "burst": burst,
        "queue_name": settings.queue_name,
    }
    return GracefulWorker(**{**options, **overrides})


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker in the foreground (SIGINT/SIGTERM stop it gracefully)."""
    create_worker(settings, burst=burst).run()

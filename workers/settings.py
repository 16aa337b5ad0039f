"""arq worker: settings, startup/shutdown of shared resources, and maintenance cron jobs."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import run_worker as arq_run_worker

from api.settings import Settings, get_settings
from workers.maintenance import expire_share_links, purge_unreferenced_blobs
from workers.serialization import deserialize_job, serialize_job

logger = logging.getLogger("hab.worker")


async def startup(ctx: dict[str, Any]) -> None:
    from api.resources import open_resources

    ctx["resources"] = await open_resources(ctx.get("settings") or get_settings())


async def shutdown(ctx: dict[str, Any]) -> None:
    from api.resources import close_resources

    if "resources" in ctx:
        await close_resources(ctx["resources"])


class WorkerSettings:
    functions = [purge_unreferenced_blobs, expire_share_links]
    cron_jobs = [
        cron(purge_unreferenced_blobs, minute={7, 37}, run_at_startup=False, unique=True),
        cron(expire_share_links, minute={12}, run_at_startup=False, unique=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = staticmethod(serialize_job)
    job_deserializer = staticmethod(deserialize_job)
    max_jobs = 4
    job_timeout = 600
    health_check_interval = 30


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker in the foreground (SIGINT/SIGTERM stop it gracefully; arq handles the signals)."""
    arq_run_worker(
        WorkerSettings,  # type: ignore[arg-type]
        redis_settings=RedisSettings.from_dsn(settings.redis_url or ""),
        ctx={"settings": settings},
        burst=burst,
    )

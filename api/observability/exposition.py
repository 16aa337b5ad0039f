"""Serving the metrics: `GET /metrics` on the API (aggregated over its uvicorn processes), a small HTTP
server in each worker process, and the arq queue depth the workers sample."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from arq.constants import in_progress_key_prefix
from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, start_http_server

from api.observability.metrics import QUEUE_DEPTH

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
logger = logging.getLogger("hab.metrics")


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics_endpoint() -> Response[bytes]:
    """Prometheus text format; public like /health (nginx does not pass /metrics from outside)."""
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


@contextlib.contextmanager
def multiprocess_dir(workers: int) -> Iterator[None]:
    """With several uvicorn processes, each writes its figures to files in one fresh folder that /metrics
    of any of them sums up. The folder is per start (a stale one would resurrect old counts) and removed
    at exit; it lives in the temporary folder (TMPDIR), which the container's non-root user can write. Set
    before uvicorn spawns its processes: prometheus-client reads it at import."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="hab-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def start_worker_metrics(host: str, port: int) -> Any | None:
    """The worker's /metrics server (a daemon thread); None when turned off (port 0)."""
    if port <= 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:  # a second worker on one host with the same port: it still runs jobs
        logger.error(
            "worker metrics not served: %s:%d is unavailable (%s); see HAB_WORKER_METRICS_PORT",
            host,
            port,
            type(exc).__name__,
        )
        return None
    logger.info("worker metrics on http://%s:%d/metrics", host, port)
    return server


async def sample_queue_depth(redis: Any, queue_name: str) -> None:
    """Jobs due on the arq queue that no worker has picked up yet (arq keeps running jobs in the queue)."""
    now_ms = int(time.time() * 1000)
    job_ids = await redis.zrangebyscore(queue_name, "-inf", now_ms, start=0, num=10_000)
    running = 0
    if job_ids:
        keys = [in_progress_key_prefix + (j.decode() if isinstance(j, bytes) else j) for j in job_ids]
        running = await redis.exists(*keys)
    QUEUE_DEPTH.set(len(job_ids) - running)

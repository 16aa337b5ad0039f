"""The batch-scoring job and the sweeper that puts silent jobs back on the queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from api.jobs.repository import JobRepository
from api.jobs.services import enqueue
from api.predictions.scoring import ScoringRun, requeue_stale_jobs

logger = logging.getLogger("hab.worker.scoring")


async def score_job(ctx: dict[str, Any], job_id: int) -> str:
    """Score a job's input chunk by chunk (idempotent: a re-delivery resumes or returns the final status)."""
    resources = ctx["resources"]
    try:
        return await ScoringRun(resources, job_id).run()
    except asyncio.CancelledError:
        # Shutdown (SIGTERM): the open chunk transaction has rolled back. Put the job back in line now
        # instead of waiting for arq's lease to expire; the advisory lock keeps the two from overlapping.
        await asyncio.shield(_requeue(resources, job_id))
        raise


async def _requeue(resources: Any, job_id: int) -> None:
    async with resources.sessions() as session:
        repository = JobRepository(session=session)
        job = await repository.get_one_or_none(id=job_id)
        if job is None or job.status != "running":
            return
        await repository.set_fields(job_id, status="queued")
        await session.commit()
        try:
            await enqueue(resources, job, attempt=job.attempts + 1)
        except Exception as exc:  # Redis gone too: the sweeper re-queues it later
            logger.warning("could not re-queue job %s at shutdown (%s)", job_id, type(exc).__name__)


async def sweep_stale_jobs(ctx: dict[str, Any]) -> int:
    resources = ctx["resources"]
    count = await requeue_stale_jobs(resources, stale_seconds=resources.settings.job_stale_seconds)
    if count:
        logger.info("re-queued %d stale jobs", count)
    return count

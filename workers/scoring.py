"""The batch-scoring job and the sweeper that puts silent jobs back on the queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from api.jobs.services import enqueue, locked_running_job, requeue_stale_jobs, update_job
from api.predictions.scoring import ScoringRun

logger = logging.getLogger("hab.worker.scoring")


async def score_job(ctx: dict[str, Any], job_id: int) -> str:
    """Score a job's input chunk by chunk (idempotent: a re-delivery resumes or returns the final status)."""
    resources = ctx["resources"]
    try:
        return await ScoringRun(resources, job_id).run()
    except BaseException:
        # Shutdown (SIGTERM) cancels this task; the open chunk transaction has rolled back. Put the job back
        # in line now instead of waiting for the sweeper. Checked on the task rather than the exception
        # type: a driver interrupted mid-query may report the cancellation as its own error. Run as
        # background work so that closing the resources waits for it even if this task is abandoned.
        if _being_cancelled():
            await asyncio.shield(resources.run_in_background(_requeue_at_shutdown(resources, job_id)))
        raise


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


REQUEUE_TRIES = 3
REQUEUE_TRY_SECONDS = 5.0  # well inside the usual 10-30 s a process manager waits after SIGTERM


async def _requeue_at_shutdown(resources: Any, job_id: int) -> None:
    """Mark the job queued and enqueue it again; failures are logged (the sweeper is the fallback)."""
    for attempt in range(1, REQUEUE_TRIES + 1):
        try:
            async with asyncio.timeout(REQUEUE_TRY_SECONDS):
                await _requeue(resources, job_id)
            return
        except Exception as exc:  # e.g. a pooled connection broken by the cancelled query: try a fresh one
            logger.warning("re-queue of job %s at shutdown failed (%s, try %d)", job_id, type(exc).__name__, attempt)
            if attempt < REQUEUE_TRIES:
                await asyncio.sleep(0.2 * attempt)


async def _requeue(resources: Any, job_id: int) -> None:
    async with locked_running_job(resources, job_id) as job:
        if job is None:  # another worker's live run holds it, or it ended
            return
        await update_job(resources, job_id, status="queued")
        logger.info("job %s re-queued at shutdown (progress %s)", job_id, job.progress)
    try:  # after the lock is released, so that the worker taking the delivery can hold it
        await enqueue(resources, job, attempt=job.attempts + 1)
    except Exception as exc:  # Redis gone too: the sweeper re-queues it later
        logger.warning("could not re-queue job %s at shutdown (%s)", job_id, type(exc).__name__)


SWEEP_SECONDS = 5.0  # with the lease (HAB_JOB_STALE_SECONDS, 10 s) a crashed run resumes within ~15 s


async def sweep_forever(resources: Any) -> None:
    """Every few seconds, put silent jobs back in line (a task of each worker, not an arq cron job: at this
    rate arq would log every run, and sweeps are idempotent, so each worker sweeping is harmless)."""
    settings = resources.settings
    while True:
        try:
            count = await requeue_stale_jobs(
                resources, stale_seconds=settings.job_stale_seconds, max_attempts=settings.job_max_attempts
            )
            if count:
                logger.info("re-queued %d stale jobs", count)
        except Exception as exc:  # PostgreSQL away for a moment: the next sweep tries again
            logger.warning("stale-job sweep failed (%s)", type(exc).__name__)
        await asyncio.sleep(SWEEP_SECONDS)

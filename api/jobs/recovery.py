"""Bringing jobs back: the stale-job sweeper, and the re-queue of a run its worker's shutdown interrupted.

Both change a running job they do not run only while holding its lock (`locked_running_job`): a live run
elsewhere holds it, so a slow run is never taken from its worker. Each job kind may add what giving up
on it means (`GiveUpHooks`, e.g. dropping a chat job's sealed key); the workers pass them in, so this layer
knows no kind's details.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import msgspec
from arq.constants import in_progress_key_prefix
from redis.exceptions import RedisError

from api.db.tables import Job
from api.jobs.kinds import JobKind, JobStatus
from api.jobs.locks import job_lock
from api.jobs.repository import JobRepository
from api.jobs.schemas import JobError
from api.jobs.services import enqueue, finish_job, job_of_delivery, update_job
from api.observability.metrics import count_job
from api.resources import Resources

logger = logging.getLogger("hab.jobs")

GAVE_UP = "작업자가 {attempts}번의 시도 모두 도중에 멈춰 작업을 중단했습니다. 관리자에게 문의하세요."
GiveUpHooks = Mapping[JobKind, Callable[[Resources, Job], Awaitable[None]]]

REQUEUE_TRIES = 3
REQUEUE_TRY_SECONDS = 5.0  # well inside the usual 10-30 s a process manager waits after SIGTERM
LOCK_RELEASE_WAIT_SECONDS = 3.0  # within one try: how long the interrupted run's own lock may take to go


@asynccontextmanager
async def locked_running_job(
    resources: Resources, job_id: int, *, wait_seconds: float = 0.0
) -> AsyncIterator[Job | None]:
    """The job as it is now, read while holding its lock, if it is still running; None when a live run
    holds the lock (that run owns the job) or the job ended. Workers and the sweeper change a running job
    they do not run only inside this. `wait_seconds`: how long to keep trying for the lock."""
    async with job_lock(resources.engine, job_id, wait_seconds=wait_seconds) as held:
        job = None
        if held:
            async with resources.sessions() as session:
                job = await JobRepository(session=session).get_one_or_none(id=job_id)
        yield job if job is not None and job.status == JobStatus.RUNNING else None


# ---- the sweeper -------------------------------------------------------------------------------------


async def requeue_stale_jobs(
    resources: Resources, *, stale_seconds: float, max_attempts: int, give_up: GiveUpHooks | None = None
) -> int:
    """Running jobs whose lease lapsed with no live run holding them, and queued jobs that nothing on the
    queue will deliver (lost enqueue, Redis restarted empty), go back on the queue.

    A running job that has already started `max_attempts` times fails instead: a job that kills its
    worker every time (out of memory, a crash in native code) must not take the workers down forever.
    Returns how many jobs were queued again.
    """
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=stale_seconds)
    async with resources.sessions() as session:
        stale = await JobRepository(session=session).stale(running_before=cutoff, queued_before=cutoff)
    if not stale:
        return 0
    try:
        waiting = await _waiting_on_queue(resources)
    except (RedisError, OSError) as exc:  # nothing can be queued now; the next sweep tries again
        logger.warning("stale-job sweep skipped: Redis unavailable (%s)", type(exc).__name__)
        return 0
    requeued = 0
    for job in stale:
        try:
            if job.id in waiting:
                continue
            if job.status == JobStatus.RUNNING:
                if job.attempts >= max_attempts:
                    await _give_up(resources, job, give_up or {})
                    continue
                async with locked_running_job(resources, job.id) as now:
                    if now is None:  # a live run holds it (slow, not dead), or it just ended
                        continue
                    job = now
            await enqueue(resources, job, attempt=job.attempts + 1)  # outside the lock, so a run can take it
            requeued += 1
        except Exception as exc:  # one job's trouble must not stop the sweep; the next sweep retries it
            logger.warning("sweeping job %s failed (%s)", job.id, type(exc).__name__)
    return requeued


async def _waiting_on_queue(resources: Resources) -> set[int]:
    """Ids of jobs with a delivery on the arq queue that no worker has picked up yet.

    A picked delivery stays in the queue with an in-progress key until its run ends; one whose worker died
    keeps both until arq's own timeout, so only unpicked deliveries count as "will be delivered".
    """
    members = [
        m.decode() if isinstance(m, bytes) else m
        for m in await resources.arq.zrange(resources.settings.queue_name, 0, -1)
    ]
    ours = [(member, job_id) for member in members if (job_id := job_of_delivery(member)) is not None]
    if not ours:
        return set()
    async with resources.arq.pipeline(transaction=False) as pipe:
        for member, _ in ours:
            pipe.exists(in_progress_key_prefix + member)
        picked = await pipe.execute()
    return {job_id for (_, job_id), busy in zip(ours, picked, strict=True) if not busy}


async def _give_up(resources: Resources, job: Job, hooks: GiveUpHooks) -> None:
    async with locked_running_job(resources, job.id) as now:
        if now is None or now.attempts != job.attempts:  # a run started since the sweep read it
            return
        logger.warning("job %s failed: its worker stopped during each of %d attempts", job.id, job.attempts)
        message = GAVE_UP.format(attempts=job.attempts)
        error = JobError(code="worker_lost", message=message)
        summary = {**(now.summary or {}), "error": msgspec.to_builtins(error)}
        await finish_job(resources, job.id, JobStatus.FAILED, error=message, summary=summary)
    count_job(job.kind, JobStatus.FAILED, None)
    hook = hooks.get(JobKind(job.kind))
    if hook is not None:
        await hook(resources, job)


# ---- a run interrupted by its worker's shutdown ---------------------------------------------------------


async def requeue_at_shutdown(resources: Resources, job_id: int, *, ours: bool = False) -> None:
    """Mark the job queued and enqueue it again; failures are logged (the sweeper is the fallback).

    `ours`: the interrupted run held the job's lock. Its connection may still be letting go of it (an
    unlock in flight, a closed connection whose server session has not ended yet), so the re-queue waits
    for it a while instead of taking it for another live run's.
    """
    wait = LOCK_RELEASE_WAIT_SECONDS if ours else 0.0
    for attempt in range(1, REQUEUE_TRIES + 1):
        try:
            async with asyncio.timeout(REQUEUE_TRY_SECONDS):
                await requeue_one(resources, job_id, lock_wait_seconds=wait)
            return
        except Exception as exc:  # e.g. a pooled connection broken by the cancelled query: try a fresh one
            logger.warning("re-queue of job %s at shutdown failed (%s, try %d)", job_id, type(exc).__name__, attempt)
            if attempt < REQUEUE_TRIES:
                await asyncio.sleep(0.2 * attempt)
        except asyncio.CancelledError:
            logger.warning("re-queue of job %s at shutdown was cancelled (try %d)", job_id, attempt)
            raise


async def requeue_one(resources: Resources, job_id: int, *, lock_wait_seconds: float = 0.0) -> None:
    marked: Job | None = None
    try:
        async with locked_running_job(resources, job_id, wait_seconds=lock_wait_seconds) as job:
            if job is None:  # another worker's live run holds it, or it ended
                await _log_not_requeued(resources, job_id)
                return
            await update_job(resources, job_id, status=JobStatus.QUEUED)
            marked = job
            logger.info("job %s re-queued at shutdown (progress %s)", job_id, job.progress)
    finally:
        # After the lock is released, so that the worker taking the delivery can hold it; and even when
        # releasing it failed, since a retry would find the job queued and enqueue nothing.
        if marked is not None:
            try:
                await enqueue(resources, marked, attempt=marked.attempts + 1)
            except Exception as exc:  # Redis gone too: the sweeper re-queues it later
                logger.warning("could not re-queue job %s at shutdown (%s)", job_id, type(exc).__name__)


async def _log_not_requeued(resources: Resources, job_id: int) -> None:
    async with resources.sessions() as session:
        job = await JobRepository(session=session).get_one_or_none(id=job_id)
    status = "gone" if job is None else job.status
    if status == JobStatus.RUNNING:  # a run holds its lock: another worker's, or this one's that never let go
        logger.warning("job %s not re-queued at shutdown: a run still holds its lock", job_id)
    else:
        logger.info("job %s not re-queued at shutdown: it is %s", job_id, status)

"""Reading and cancelling jobs (the durable PostgreSQL records), and putting them on the arq queue."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat import keybox
from api.db.tables import Job
from api.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from api.jobs import schemas as s
from api.jobs.locks import job_lock
from api.jobs.repository import TERMINAL, JobRepository
from api.resources import Resources
from api.schemas import Page
from api.users.services import Principal

logger = logging.getLogger("hab.jobs")

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
KINDS = ("score", "chat")
# arq function per job kind; the job itself carries only the job id.
JOB_FUNCTIONS = {"score": "score_job", "chat": "chat_job"}
RETRY_AFTER_SECONDS = 5
GAVE_UP = "작업자가 {attempts}번의 시도 모두 도중에 멈춰 작업을 중단했습니다. 관리자에게 문의하세요."


def to_info(job: Job) -> s.JobInfo:
    duration = None
    if job.started_at is not None:
        end = job.finished_at or dt.datetime.now(dt.UTC)
        duration = round((end - job.started_at).total_seconds(), 3)
    return s.JobInfo(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        total=job.total,
        error=job.error,
        summary=job.summary,
        params=job.params,
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=duration,
    )


async def enqueue(resources: Resources, job: Job, *, attempt: int = 0) -> None:
    """Put the job on the arq queue.

    arq drops an enqueue whose id it has seen (until the old result expires), so every delivery gets a
    fresh arq id; duplicates are harmless anyway: runs take an advisory lock and resume from progress.
    """
    arq_id = f"{job.kind}-{job.id}-{attempt}-{secrets.token_hex(4)}"
    if await resources.arq.enqueue_job(JOB_FUNCTIONS[job.kind], job.id, _job_id=arq_id) is None:
        raise RuntimeError(f"arq refused job id {arq_id}")


async def requeue_stale_jobs(resources: Resources, *, stale_seconds: float, max_attempts: int) -> int:
    """Running jobs whose worker went silent, and queued jobs never picked up, go back on the queue.

    A running job that has already started `max_attempts` times fails instead: a job that kills its
    worker every time (out of memory, a crash in native code) must not take the workers down forever.
    Returns how many jobs were queued again.
    """
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=stale_seconds)
    async with resources.sessions() as session:
        stale = await JobRepository(session=session).stale(running_before=cutoff, queued_before=cutoff)
    requeued = 0
    for job in stale:
        try:
            if job.status == "running" and job.attempts >= max_attempts:
                await _give_up(resources, job)
            else:
                await enqueue(resources, job, attempt=job.attempts + 1)
                requeued += 1
        except Exception as exc:  # one job's trouble must not stop the sweep; the next sweep retries it
            logger.warning("sweeping job %s failed (%s)", job.id, type(exc).__name__)
    return requeued


@asynccontextmanager
async def locked_running_job(resources: Resources, job_id: int) -> AsyncIterator[Job | None]:
    """The job as it is now, read while holding its lock, if it is still running; None when a live run
    holds the lock (that run owns the job) or the job ended. Workers and the sweeper change a running job
    they do not run only inside this."""
    async with job_lock(resources.engine, job_id) as held:
        job = None
        if held:
            async with resources.sessions() as session:
                job = await JobRepository(session=session).get_one_or_none(id=job_id)
        yield job if job is not None and job.status == "running" else None


async def _give_up(resources: Resources, job: Job) -> None:
    async with locked_running_job(resources, job.id) as now:
        if now is None or now.attempts != job.attempts:  # a run started since the sweep read it
            return
        logger.warning("job %s failed: its worker stopped during each of %d attempts", job.id, job.attempts)
        message = GAVE_UP.format(attempts=job.attempts)
        summary = {**(now.summary or {}), "error": {"code": "worker_lost", "message": message}}
        await finish_job(resources, job.id, "failed", error=message, summary=summary)
    if job.kind == "chat":  # the sealed API key would otherwise wait for its TTL
        await resources.redis.delete(keybox.redis_key(job.id))


async def update_job(resources: Resources, job_id: int, **values: Any) -> None:
    """Write a job's fields in a transaction of their own (how workers report progress and outcomes)."""
    async with resources.sessions() as session:
        await JobRepository(session=session).set_fields(job_id, **values)
        await session.commit()


async def finish_job(
    resources: Resources, job_id: int, status: str, *, error: str | None = None, summary: dict[str, Any] | None = None
) -> None:
    """Record a job's end; `summary` None keeps the summary it has."""
    values: dict[str, Any] = {"status": status, "finished_at": dt.datetime.now(dt.UTC), "error": error}
    if summary is not None:
        values["summary"] = summary
    await update_job(resources, job_id, **values)


class JobService:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources
        self.jobs = JobRepository(session=session)

    async def submit(
        self,
        job: Job,
        *,
        input_parquet: bytes | None = None,
        before_enqueue: Callable[[Job], Awaitable[None]] | None = None,
    ) -> s.JobAccepted:
        """Record the job in PostgreSQL, then queue it; if Redis is unreachable, undo and answer 503.

        `before_enqueue` runs once the job has its id (e.g. to hand a sealed secret to the worker via Redis).
        """
        self.session.add(job)
        await self.session.flush()
        if input_parquet is not None:
            await self.jobs.store_input(job.id, input_parquet)
        await self.session.commit()
        try:
            if before_enqueue is not None:
                await before_enqueue(job)
            await enqueue(self.resources, job)
        except (RedisError, OSError) as exc:
            logger.warning("could not queue job %s (%s); removing it", job.id, type(exc).__name__)
            await self.session.delete(job)
            await self.session.commit()
            raise ServiceUnavailable(
                "작업 대기열(Redis)에 연결할 수 없어 작업을 시작하지 못했습니다. 잠시 후 다시 시도해 주세요.",
                detail={"reason": "queue_unavailable"},
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        return s.JobAccepted(job_id=job.id, status=job.status)

    async def get(self, user: Principal, job_id: int) -> Job:
        job = await self.jobs.for_owner(job_id, user.id, admin=user.is_admin)
        if job is None:
            raise NotFound("작업을 찾을 수 없습니다.", detail={"job_id": job_id})
        return job

    async def info(self, user: Principal, job_id: int) -> s.JobInfo:
        return to_info(await self.get(user, job_id))

    async def list(
        self, user: Principal, *, offset: int, limit: int, status: str | None, kind: str | None
    ) -> Page[s.JobInfo]:
        if status is not None and status not in STATUSES:
            raise InvalidInput(
                "알 수 없는 상태입니다.", detail={"field": "status", "value": status, "valid": list(STATUSES)}
            )
        if kind is not None and kind not in KINDS:
            raise InvalidInput(
                "알 수 없는 작업 종류입니다.", detail={"field": "kind", "value": kind, "valid": list(KINDS)}
            )
        rows, total = await self.jobs.page_for(user.id, offset=offset, limit=limit, status=status, kind=kind)
        return Page(items=[to_info(j) for j in rows], total=total, offset=offset, limit=limit)

    async def cancel(self, user: Principal, job_id: int) -> s.JobInfo:
        job = await self.get(user, job_id)
        if job.status in TERMINAL:
            raise Conflict("이미 끝난 작업은 취소할 수 없습니다.", detail={"status": job.status})
        cancelled_in_queue = job.status == "queued"
        if cancelled_in_queue:
            # Not started: cancel outright (a worker that picks it up later sees the final status and stops).
            job.status, job.finished_at = "cancelled", dt.datetime.now(dt.UTC)
        job.cancel_requested = True
        await self.session.commit()
        if cancelled_in_queue and job.kind == "chat":
            # No run will ever open the sealed key: drop it now rather than when a worker reaches the job.
            await self.resources.redis.delete(keybox.redis_key(job.id))
        await self.session.refresh(job)
        return to_info(job)

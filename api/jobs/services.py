"""Submitting, reading and cancelling jobs (the durable PostgreSQL records), and putting them on the arq queue.

What brings a job back after a crash or a shutdown is in recovery.py; the run every kind shares is run.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.tables import Job
from api.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from api.jobs import schemas as s
from api.jobs import sealed
from api.jobs.kinds import KIND_LABELS, STATUS_LABELS, TERMINAL, JobKind, JobStatus, function_name
from api.jobs.repository import JobRepository
from api.resources import Resources
from api.schemas import Page
from api.users.services import Principal

logger = logging.getLogger("hab.jobs")

RETRY_AFTER_SECONDS = 5


def to_info(job: Job) -> s.JobInfo:
    duration = None
    if job.started_at is not None:
        end = job.finished_at or dt.datetime.now(dt.UTC)
        duration = round((end - job.started_at).total_seconds(), 3)
    kind, status = JobKind(job.kind), JobStatus(job.status)
    return s.JobInfo(
        id=job.id,
        kind=kind,
        kind_label=KIND_LABELS[kind],
        status=status,
        status_label=STATUS_LABELS[status],
        finished=status in TERMINAL,
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


def delivery_id(kind: JobKind, job_id: int, attempt: int) -> str:
    """arq's id for one delivery of a job: `<kind>-<job id>-<attempt>-<random>` (recovery.py reads it back)."""
    return f"{kind.value}-{job_id}-{attempt}-{secrets.token_hex(4)}"


def job_of_delivery(arq_id: str) -> int | None:
    kind, _, rest = arq_id.partition("-")
    number = rest.split("-", 1)[0]
    return int(number) if kind in set(JobKind) and number.isdigit() else None


async def enqueue(resources: Resources, job: Job, *, attempt: int = 0) -> None:
    """Put the job on the arq queue.

    arq drops an enqueue whose id it has seen (until the old result expires), so every delivery gets a
    fresh arq id; duplicates are harmless anyway: runs take an advisory lock and resume from progress.
    """
    arq_id = delivery_id(JobKind(job.kind), job.id, attempt)
    if await resources.arq.enqueue_job(function_name(JobKind(job.kind)), job.id, _job_id=arq_id) is None:
        raise RuntimeError(f"arq refused job id {arq_id}")


async def update_job(resources: Resources, job_id: int, **values: Any) -> None:
    """Write a job's fields in a transaction of their own (how workers report progress and outcomes)."""
    async with resources.sessions() as session:
        await JobRepository(session=session).set_fields(job_id, **values)
        await session.commit()


async def finish_job(
    resources: Resources,
    job_id: int,
    status: JobStatus,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
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
        return s.JobAccepted(job_id=job.id, status=JobStatus(job.status))

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
        if status is not None and status not in set(JobStatus):
            raise InvalidInput(
                "알 수 없는 상태입니다.",
                detail={"field": "status", "value": status, "valid": [str(v) for v in JobStatus]},
            )
        if kind is not None and kind not in set(JobKind):
            raise InvalidInput(
                "알 수 없는 작업 종류입니다.",
                detail={"field": "kind", "value": kind, "valid": [str(v) for v in JobKind]},
            )
        rows, total = await self.jobs.page_for(user.id, offset=offset, limit=limit, status=status, kind=kind)
        return Page(items=[to_info(j) for j in rows], total=total, offset=offset, limit=limit)

    async def cancel(self, user: Principal, job_id: int) -> s.JobInfo:
        job = await self.get(user, job_id)
        if job.status in TERMINAL:
            raise Conflict("이미 끝난 작업은 취소할 수 없습니다.", detail={"status": job.status})
        cancelled_in_queue = job.status == JobStatus.QUEUED
        if cancelled_in_queue:
            # Not started: cancel outright (a worker that picks it up later sees the final status and stops).
            job.status, job.finished_at = JobStatus.CANCELLED, dt.datetime.now(dt.UTC)
        job.cancel_requested = True
        await self.session.commit()
        if cancelled_in_queue:
            # No run will ever open a sealed secret (a chat job's key): drop it now, not when a worker gets there.
            await sealed.forget(self.resources.redis, job.id)
        await self.session.refresh(job)
        return to_info(job)

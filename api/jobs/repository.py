"""SQL for the durable job records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, or_, select, update

from api.db.tables import Job, JobInput
from api.jobs.kinds import JobStatus


class JobRepository(SQLAlchemyAsyncRepository[Job]):
    model_type = Job

    async def for_owner(self, job_id: int, owner_id: int, *, admin: bool = False) -> Job | None:
        stmt = select(Job).where(Job.id == job_id)
        if not admin:
            stmt = stmt.where(Job.owner_id == owner_id)
        return await self.session.scalar(stmt)

    async def page_for(
        self, owner_id: int, *, offset: int, limit: int, status: str | None, kind: str | None
    ) -> tuple[list[Job], int]:
        stmt = select(Job).where(Job.owner_id == owner_id)
        if status:
            stmt = stmt.where(Job.status == status)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(Job.created_at.desc(), Job.id.desc()).offset(offset).limit(limit)
        )
        return list(rows), int(total or 0)

    async def store_input(self, job_id: int, parquet: bytes) -> None:
        self.session.add(JobInput(job_id=job_id, parquet=parquet))
        await self.session.flush()

    async def input_parquet(self, job_id: int) -> bytes | None:
        return await self.session.scalar(select(JobInput.parquet).where(JobInput.job_id == job_id))

    async def stale(self, *, running_before: dt.datetime, queued_before: dt.datetime) -> list[Job]:
        """Jobs whose worker went silent, and queued jobs nobody picked up (lost enqueue, Redis flush)."""
        stmt = select(Job).where(
            or_(
                (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < running_before),
                (Job.status == JobStatus.QUEUED) & (Job.created_at < queued_before),
            )
        )
        return list(await self.session.scalars(stmt))

    async def set_fields(self, job_id: int, **values: Any) -> None:
        await self.session.execute(update(Job).where(Job.id == job_id).values(**values))

    async def status_counts(self, owner_id: int | None, *, finished_since: dt.datetime) -> dict[str, int]:
        """Jobs finished since then, by final status, plus those queued or running now (`owner_id` None: all)."""
        ended = (Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])) & (
            Job.finished_at >= finished_since
        )
        live = Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
        stmt = select(Job.status, func.count()).where(ended | live).group_by(Job.status)
        if owner_id is not None:
            stmt = stmt.where(Job.owner_id == owner_id)
        return {str(status): int(n) for status, n in await self.session.execute(stmt)}

    async def owned_among(self, job_ids: list[int], owner_id: int) -> set[int]:
        if not job_ids:
            return set()
        stmt = select(Job.id).where(Job.id.in_(job_ids), Job.owner_id == owner_id)
        return set(await self.session.scalars(stmt))

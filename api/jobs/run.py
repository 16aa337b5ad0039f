"""The life of one delivery of a job, shared by every kind; each kind supplies only what differs.

lock + lease (a second delivery returns "busy" at once) → load → already finished? → cancelled before it
started? → the kind's own checks (`prepare`) → counted as an attempt and marked running (before any heavy
loading, so the sweeper gives up on a job that kills its worker wherever it dies) → the kind's work
(`execute`) → finished. `release` frees what a run holds outside PostgreSQL (a chat job's sealed key),
and `give_up` is what the sweeper calls when it fails a job whose workers kept dying.
"""

from __future__ import annotations

import abc
import logging
import time
from typing import Any, ClassVar

from sqlalchemy import func

from api.db.tables import Job
from api.jobs.kinds import TERMINAL, JobKind, JobStatus
from api.jobs.locks import job_lease
from api.jobs.repository import JobRepository
from api.jobs.services import finish_job, update_job
from api.observability.logs import job_context
from api.observability.metrics import count_job
from api.resources import Resources

BUSY = "busy"  # another delivery of the same job is running
MISSING = "missing"  # the job was deleted (its owner was)

logger = logging.getLogger("hab.jobs")


class JobRun(abc.ABC):
    kind: ClassVar[JobKind]

    def __init__(self, resources: Resources, job_id: int) -> None:
        self.resources = resources
        self.job_id = job_id
        self._started = time.monotonic()
        self.held = False  # whether this run took the job's lock (so, after a shutdown, the re-queue waits for it)

    async def run(self) -> str:
        """Run the job unless it is finished or another delivery holds it. Returns its status (or busy/missing)."""
        self._started = time.monotonic()
        beat = self.resources.settings.job_heartbeat_seconds
        with job_context(self.job_id, self.kind):
            async with job_lease(self.resources.engine, self.job_id, heartbeat_seconds=beat) as held:
                self.held = held
                return await self._run() if held else BUSY

    async def _run(self) -> str:
        job = await self.load()
        if job is None:
            await self.release()
            return MISSING
        if job.status in TERMINAL:
            await self.release()
            return job.status
        if job.cancel_requested:
            return await self.finish(JobStatus.CANCELLED)
        stopped = await self.prepare(job)
        if stopped is not None:
            return stopped
        await self.set(
            status=JobStatus.RUNNING,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, func.now()),
            heartbeat_at=func.now(),
            **self.running_fields(),
        )
        return await self.execute(job)

    # ---- what each kind may supply -------------------------------------------------------------------

    async def load(self) -> Job | None:
        async with self.resources.sessions() as session:
            return await JobRepository(session=session).get_one_or_none(id=self.job_id)

    async def prepare(self, job: Job) -> str | None:
        """Checks before the attempt counts; returns a status when the job was finished here instead."""
        return None

    def running_fields(self) -> dict[str, Any]:
        """Fields reset when a run starts (e.g. a chat turn's progress starts again)."""
        return {}

    @abc.abstractmethod
    async def execute(self, job: Job) -> str:
        """The kind's work; ends with `finish` (or leaves the job running when interrupted)."""

    async def release(self) -> None:  # noqa: B027 (optional hook: most kinds hold nothing outside PostgreSQL)
        """Free what the run holds outside PostgreSQL once the job has ended."""

    @classmethod
    async def give_up(cls, resources: Resources, job: Job) -> None:
        """After the sweeper failed this job: by default, what `release` frees."""
        await cls(resources, job.id).release()

    # ---- shared steps --------------------------------------------------------------------------------

    async def set(self, **values: Any) -> None:
        await update_job(self.resources, self.job_id, **values)

    async def finish(
        self, status: JobStatus, *, error: str | None = None, summary: dict[str, Any] | None = None
    ) -> str:
        await finish_job(self.resources, self.job_id, status, error=error, summary=summary)
        seconds = time.monotonic() - self._started
        count_job(self.kind, status, seconds)
        logger.info("job finished: %s in %.1f s", status, seconds)  # job_id and job_kind come from the context
        await self.release()
        return status

"""The job dashboard (what Flower gives Celery users): live workers, queue depth, the last hour's outcomes.

Who sees what: admins see every worker with every job it runs and counts over all jobs. Members see the
same live workers (host, pid, since when, last report: how busy the service is, nothing personal) but
only their own job ids; other users' running jobs are a count (`other_jobs`). Their counts are of their
own jobs. Queue depth is the arq queue's length (everyone's deliveries; ids are not shown).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from api.jobs import presence
from api.jobs import schemas as s
from api.jobs.kinds import JobStatus
from api.jobs.repository import JobRepository
from api.resources import Resources
from api.users.services import Principal

WINDOW = dt.timedelta(hours=1)
SCOPE_LABELS = {"all": "모든 사용자의 작업", "mine": "내 작업"}


def _moment(unix_seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_seconds, dt.UTC)


class JobOverviewService:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.resources = resources
        self.jobs = JobRepository(session=session)

    async def overview(self, user: Principal) -> s.JobsOverview:
        redis, queue = self.resources.redis, self.resources.settings.queue_name
        reports = await presence.live_workers(redis, queue)
        depth = int(await redis.zcard(queue))
        visible = None if user.is_admin else await self.jobs.owned_among(_all_jobs(reports), user.id)
        since = dt.datetime.now(dt.UTC) - WINDOW
        counts = await self.jobs.status_counts(None if user.is_admin else user.id, finished_since=since)
        scope = "all" if user.is_admin else "mine"
        return s.JobsOverview(
            scope=scope,
            scope_label=SCOPE_LABELS[scope],
            workers=[_worker_info(r, visible) for r in reports],
            queue_depth=depth,
            window_seconds=int(WINDOW.total_seconds()),
            succeeded=counts.get(JobStatus.SUCCEEDED, 0),
            failed=counts.get(JobStatus.FAILED, 0),
            cancelled=counts.get(JobStatus.CANCELLED, 0),
            running=counts.get(JobStatus.RUNNING, 0),
            queued=counts.get(JobStatus.QUEUED, 0),
        )


def _all_jobs(reports: list[presence.WorkerPresence]) -> list[int]:
    return sorted({job_id for r in reports for job_id in r.job_ids})


def _worker_info(report: presence.WorkerPresence, visible: set[int] | None) -> s.WorkerInfo:
    shown = report.job_ids if visible is None else [j for j in report.job_ids if j in visible]
    return s.WorkerInfo(
        host=report.host,
        pid=report.pid,
        started_at=_moment(report.started_at),
        heartbeat_at=_moment(report.heartbeat_at),
        job_ids=shown,
        other_jobs=len(report.job_ids) - len(shown),
    )

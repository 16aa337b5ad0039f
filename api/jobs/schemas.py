from __future__ import annotations

import datetime as dt
from typing import Any

from api.jobs.kinds import JobKind, JobStatus
from api.schemas import Output


class JobInfo(Output):
    id: int
    kind: JobKind
    kind_label: str
    status: JobStatus
    status_label: str
    finished: bool  # the status is final (succeeded, failed or cancelled): clients stop polling
    progress: int
    total: int | None
    error: str | None
    summary: dict[str, Any] | None
    params: dict[str, Any]
    attempts: int
    cancel_requested: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_seconds: float | None


class JobAccepted(Output):
    job_id: int
    status: JobStatus


class JobError(Output):
    """Why a job failed, as its summary's `error` (a code for programs, a Korean message for people)."""

    code: str
    message: str


class WorkerInfo(Output):
    """A live worker, as it reported itself (api/jobs/presence.py)."""

    host: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    job_ids: list[int]  # the jobs it is running that the caller may see
    other_jobs: int  # jobs it is running that belong to other users (members only; 0 for admins)


class JobsOverview(Output):
    """The 작업 page's dashboard: live workers, the queue, and the last hour's outcomes."""

    scope: str  # "all" (admins: every job) or "mine" (members: the caller's jobs)
    scope_label: str
    workers: list[WorkerInfo]
    queue_depth: int  # deliveries waiting on the arq queue (everyone's)
    window_seconds: int
    succeeded: int  # jobs of the scope finished in the window, by outcome
    failed: int
    cancelled: int
    running: int  # jobs of the scope running now
    queued: int  # jobs of the scope waiting now

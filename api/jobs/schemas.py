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

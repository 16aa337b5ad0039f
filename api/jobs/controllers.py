from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from api.jobs import schemas as s
from api.jobs.kinds import JobKind, JobStatus
from api.jobs.overview import JobOverviewService
from api.jobs.services import JobService
from api.schemas import Offset, Page, PageLimit, RowId
from api.users.services import Principal


def provide_job_service(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> JobService:
    return JobService(db_session, request.app.state.resources)


def provide_overview_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> JobOverviewService:
    return JobOverviewService(db_session, request.app.state.resources)


Jobs = NamedDependency[JobService]
Overview = NamedDependency[JobOverviewService]
AuthedRequest = Request[Principal, Any, Any]


class JobController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]
    dependencies = {
        "jobs": Provide(provide_job_service, sync_to_thread=False),
        "overview": Provide(provide_overview_service, sync_to_thread=False),
    }

    @get("/", summary="내 작업 목록")
    async def list_jobs(
        self,
        request: AuthedRequest,
        jobs: Jobs,
        offset: Offset = 0,
        limit: PageLimit = 50,
        status: FromQuery[JobStatus | None] = None,
        kind: FromQuery[JobKind | None] = None,
    ) -> Page[s.JobInfo]:
        return await jobs.list(request.user, offset=offset, limit=limit, status=status, kind=kind)

    @get("/overview", summary="작업 현황 (살아 있는 워커, 대기열, 최근 1시간)")
    async def overview(self, request: AuthedRequest, overview: Overview) -> s.JobsOverview:
        return await overview.overview(request.user)

    @get("/{job_id:int}", summary="작업 상태")
    async def get_job(self, request: AuthedRequest, jobs: Jobs, job_id: RowId) -> s.JobInfo:
        return await jobs.info(request.user, job_id)

    @post("/{job_id:int}/cancel", status_code=200, summary="작업 취소")
    async def cancel(self, request: AuthedRequest, jobs: Jobs, job_id: RowId) -> s.JobInfo:
        return await jobs.cancel(request.user, job_id)

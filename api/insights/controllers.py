"""Routes of the insights: a dataset's sentences and comparisons. Each handler calls one service method."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets.services import DatasetService
from api.insights import schemas as s
from api.insights.services import InsightService
from api.users.services import Principal


def provide_insight_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> InsightService:
    return InsightService(DatasetService(db_session, request.app.state.resources))


Insights = NamedDependency[InsightService]
AuthedRequest = Request[Principal, Any, Any]


_service = {"insights": Provide(provide_insight_service, sync_to_thread=False)}


class InsightController(Controller):
    path = "/api/datasets"
    tags = ["insights"]
    dependencies = _service

    @get("/{dataset_id:int}/insights", summary="데이터셋 인사이트 문장")
    async def dataset_insights(
        self, request: AuthedRequest, insights: Insights, dataset_id: FromPath[int]
    ) -> s.Insights:
        return await insights.insights(request.user, dataset_id)

    @post("/compare", status_code=200, summary="두 그룹 또는 두 데이터셋 비교")
    async def compare(
        self, request: AuthedRequest, insights: Insights, data: JSONBody[s.ComparisonRequest]
    ) -> s.Comparison:
        return await insights.compare(request.user, data)


class SharedInsightController(Controller):
    """The insights of a dataset opened through a share link: the token is the permission."""

    path = "/api/shared"
    tags = ["shared"]
    dependencies = _service

    @get("/{token:str}/insights", summary="공유된 데이터셋의 인사이트 문장", exclude_from_auth=True)
    async def shared_insights(self, insights: Insights, token: FromPath[str]) -> s.Insights:
        return await insights.shared_insights(token)

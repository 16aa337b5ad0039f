"""The proximity route. The handler calls one service method."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets.services import MAX_ROWS_PAGE, DatasetService
from api.proximity import schemas as s
from api.proximity.services import ProximityService
from api.users.services import Principal


def provide_proximity_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> ProximityService:
    return ProximityService(DatasetService(db_session, request.app.state.resources))


AuthedRequest = Request[Principal, Any, Any]
Offset = Annotated[int, QueryParameter(description="건너뛸 원본 지점 수")]
Limit = Annotated[int, QueryParameter(description=f"한 번에 받을 원본 지점 수 (1~{MAX_ROWS_PAGE})")]


class ProximityController(Controller):
    path = "/api/analysis"
    tags = ["analysis"]
    dependencies = {"proximity": Provide(provide_proximity_service, sync_to_thread=False)}

    @post("/proximity", status_code=200, summary="근접 분석 (반경 안의 지점 수와 최근접 거리)")
    async def proximity(
        self,
        request: AuthedRequest,
        proximity: NamedDependency[ProximityService],
        data: JSONBody[s.ProximityRequest],
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> s.ProximityPage:
        return await proximity.analyse(request.user, data, offset=offset, limit=limit)

"""HTTP routes of the dataset store. Each handler calls one service method."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets import schemas as s
from api.datasets.services import MAX_MAP_POINTS, MAX_ROWS_PAGE, DatasetService
from api.errors import PayloadTooLarge
from api.schemas import Page
from api.users.services import Principal


@dataclass
class DatasetUpload:
    """Multipart form of an upload (a dataclass: msgspec Structs cannot hold an UploadFile)."""

    file: UploadFile
    name: str | None = None
    visibility: str = "private"


def self_limit(datasets: DatasetService) -> int:
    return datasets.resources.settings.upload_max_bytes


async def receive_hashed(request: Request[Any, Any, Any], limit: int) -> tuple[bytes, str]:
    """Read the body chunk by chunk into one buffer, hashing as it arrives; stop early past the limit."""
    digest = hashlib.sha256()
    buffer = bytearray()
    async for chunk in request.stream():
        digest.update(chunk)
        buffer += chunk
        if len(buffer) > limit:
            raise PayloadTooLarge(
                f"파일이 너무 큽니다. 최대 {limit // (1024 * 1024)} MB까지 올릴 수 있습니다.",
                detail={"size_bytes_at_least": len(buffer), "limit_bytes": limit},
            )
    return bytes(buffer), digest.hexdigest()


def provide_dataset_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> DatasetService:
    return DatasetService(db_session, request.app.state.resources)


Datasets = NamedDependency[DatasetService]
AuthedRequest = Request[Principal, Any, Any]
Offset = Annotated[int, QueryParameter(ge=0, description="건너뛸 항목 수")]
# Range checks for rows/points live in the service so that both routes answer the same Korean message.
RowLimit = Annotated[int, QueryParameter(description=f"한 번에 받을 행 수 (1~{MAX_ROWS_PAGE})")]
Columns = Annotated[str | None, QueryParameter(description="쉼표로 구분한 열 이름")]
MaxPoints = Annotated[int, QueryParameter(description=f"최대 지점 수 (1~{MAX_MAP_POINTS})")]
_service = {"datasets": Provide(provide_dataset_service, sync_to_thread=False)}


class DatasetController(Controller):
    path = "/api/datasets"
    tags = ["datasets"]
    dependencies = _service

    @post("/upload", status_code=201, summary="CSV 업로드")
    async def upload(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        data: Annotated[DatasetUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> s.Dataset:
        content = await data.file.read()
        return await datasets.upload(
            request.user, content, filename=data.file.filename, name=data.name, visibility=data.visibility
        )

    @post("/upload/csv", status_code=201, summary="CSV 업로드 (본문 그대로)")
    async def upload_csv_body(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        name: FromQuery[str | None] = None,
        visibility: FromQuery[str] = "private",
        filename: FromQuery[str | None] = None,
    ) -> s.Dataset:
        """The CSV file as the request body (Content-Type text/csv): no multipart framing, no temp file,
        hashed while it arrives. For scripts, `hab score` and the frontend; same checks as /upload."""
        content, sha = await receive_hashed(request, self_limit(datasets))
        return await datasets.upload(
            request.user, content, filename=filename, name=name, visibility=visibility, content_sha256=sha
        )

    @get("/", summary="데이터셋 목록")
    async def list_datasets(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        offset: Offset = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        kind: FromQuery[str | None] = None,
        name: FromQuery[str | None] = None,
    ) -> Page[s.Dataset]:
        return await datasets.list(request.user, offset=offset, limit=limit, kind=kind, name=name)

    @get("/{dataset_id:int}", summary="데이터셋 요약")
    async def get_dataset(
        self, request: AuthedRequest, datasets: Datasets, dataset_id: FromPath[int]
    ) -> s.DatasetDetail:
        return await datasets.detail(request.user, dataset_id)

    @get("/{dataset_id:int}/rows", summary="행 페이지")
    async def rows(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        dataset_id: FromPath[int],
        offset: Offset = 0,
        limit: RowLimit = 50,
        columns: Columns = None,
    ) -> s.RowsPage:
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.rows(row, offset=offset, limit=limit, columns=columns)

    @get("/{dataset_id:int}/columns/{column:str}/distribution", summary="열 분포")
    async def distribution(
        self, request: AuthedRequest, datasets: Datasets, dataset_id: FromPath[int], column: FromPath[str]
    ) -> s.ColumnDistribution:
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.distribution(row, column)

    @get("/{dataset_id:int}/points", summary="지도용 좌표")
    async def points(
        self, request: AuthedRequest, datasets: Datasets, dataset_id: FromPath[int], max_points: MaxPoints = 5000
    ) -> s.MapPoints:
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.points(row, max_points=max_points)

    @delete("/{dataset_id:int}", status_code=204, summary="데이터셋 삭제")
    async def delete_dataset(self, request: AuthedRequest, datasets: Datasets, dataset_id: FromPath[int]) -> None:
        await datasets.delete(request.user, dataset_id)

    @post("/{dataset_id:int}/share", status_code=201, summary="공유 링크 만들기")
    async def share(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        dataset_id: FromPath[int],
        data: JSONBody[s.ShareLinkCreate | None] = None,
    ) -> s.ShareLink:
        return await datasets.create_share(request.user, dataset_id, data.expires_in if data else None)


class SharedDatasetController(Controller):
    """Read-only views through a share link need no bearer token; revoking one does."""

    path = "/api/shared"
    tags = ["shared"]
    dependencies = _service

    @get("/{token:str}", summary="공유된 데이터셋", exclude_from_auth=True)
    async def shared(self, datasets: Datasets, token: FromPath[str]) -> s.SharedDataset:
        return await datasets.shared_detail(token)

    @get("/{token:str}/rows", summary="공유된 데이터셋의 행", exclude_from_auth=True)
    async def rows(
        self,
        datasets: Datasets,
        token: FromPath[str],
        offset: Offset = 0,
        limit: RowLimit = 50,
        columns: Columns = None,
    ) -> s.RowsPage:
        row, _ = await datasets.shared(token)
        return await datasets.rows(row, offset=offset, limit=limit, columns=columns)

    @get("/{token:str}/columns/{column:str}/distribution", summary="공유된 데이터셋의 열 분포", exclude_from_auth=True)
    async def distribution(
        self, datasets: Datasets, token: FromPath[str], column: FromPath[str]
    ) -> s.ColumnDistribution:
        row, _ = await datasets.shared(token)
        return await datasets.distribution(row, column)

    @get("/{token:str}/points", summary="공유된 데이터셋의 지도 좌표", exclude_from_auth=True)
    async def points(self, datasets: Datasets, token: FromPath[str], max_points: MaxPoints = 5000) -> s.MapPoints:
        row, _ = await datasets.shared(token)
        return await datasets.points(row, max_points=max_points)

    @delete("/{token:str}", status_code=204, summary="공유 링크 취소")
    async def revoke(self, request: AuthedRequest, datasets: Datasets, token: FromPath[str]) -> None:
        await datasets.revoke_share(request.user, token)

"""HTTP routes of the dataset store. Each handler calls one service method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Operation, Reference
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets import schemas as s
from api.datasets.kinds import DatasetKind
from api.datasets.receive import (
    CsvBodyUploadOperation,
    MultipartUploadOperation,
    receive_body,
    receive_form,
    upload_slots,
)
from api.datasets.sampling import DEFAULT_SAMPLE_ROWS, DEFAULT_SEED, MAX_SAMPLE_ROWS, PairSample
from api.datasets.services import MAX_MAP_POINTS, MAX_ROWS_PAGE, DatasetService
from api.schemas import Offset, Page, PageLimit, RowId
from api.users.services import Principal


def self_limit(datasets: DatasetService) -> int:
    return datasets.resources.settings.upload_max_bytes


def provide_dataset_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> DatasetService:
    return DatasetService(db_session, request.app.state.resources)


Datasets = NamedDependency[DatasetService]
AuthedRequest = Request[Principal, Any, Any]
# The service checks these ranges too (for callers other than these routes).
RowLimit = Annotated[int, QueryParameter(ge=1, le=MAX_ROWS_PAGE, description=f"한 번에 받을 행 수 (1~{MAX_ROWS_PAGE})")]
Columns = Annotated[str | None, QueryParameter(description="쉼표로 구분한 열 이름")]
MaxPoints = Annotated[int, QueryParameter(ge=1, le=MAX_MAP_POINTS, description=f"최대 지점 수 (1~{MAX_MAP_POINTS})")]
SampleX = Annotated[str, QueryParameter(description="가로축 열 이름")]
SampleY = Annotated[str, QueryParameter(description="세로축 열 이름")]
SampleSize = Annotated[int, QueryParameter(description=f"표본 행 수 (1~{MAX_SAMPLE_ROWS:,})")]
SampleSeed = Annotated[int, QueryParameter(description="난수 시드: 같은 시드는 같은 표본")]
_service = {"datasets": Provide(provide_dataset_service, sync_to_thread=False)}


@dataclass
class OptionalBodyOperation(Operation):
    """Litestar documents every `data` as required; this route's body may be left out (default expiry)."""

    def __post_init__(self) -> None:
        if self.request_body is not None and not isinstance(self.request_body, Reference):
            self.request_body.required = False


class DatasetController(Controller):
    path = "/api/datasets"
    tags = ["datasets"]
    dependencies = _service

    @post("/upload", status_code=201, summary="CSV 업로드", operation_class=MultipartUploadOperation)
    async def upload(self, request: AuthedRequest, datasets: Datasets) -> s.Dataset:
        """Multipart form: `file` (the CSV), optional `name` and `visibility` (private|team)."""

        async with upload_slots(request).hold():
            received = await receive_form(request, self_limit(datasets))
            return await datasets.upload(
                request.user,
                received.upload,
                filename=received.filename,
                name=received.fields.get("name"),
                visibility=received.fields.get("visibility", "private"),
            )

    @post("/upload/csv", status_code=201, summary="CSV 업로드 (본문 그대로)", operation_class=CsvBodyUploadOperation)
    async def upload_csv_body(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        name: FromQuery[str | None] = None,
        visibility: FromQuery[str] = "private",
        filename: FromQuery[str | None] = None,
    ) -> s.Dataset:
        """The CSV file as the request body (Content-Type text/csv): no multipart framing.
        For scripts, `hab score` and the frontend; same checks as /upload."""
        async with upload_slots(request).hold():
            received = await receive_body(request, self_limit(datasets))
            return await datasets.upload(
                request.user, received.upload, filename=filename, name=name, visibility=visibility
            )

    @get("/", summary="데이터셋 목록")
    async def list_datasets(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        offset: Offset = 0,
        limit: PageLimit = 50,
        kind: FromQuery[DatasetKind | None] = None,
        name: FromQuery[str | None] = None,
    ) -> Page[s.Dataset]:
        return await datasets.list(request.user, offset=offset, limit=limit, kind=kind, name=name)

    @get("/{dataset_id:int}", summary="데이터셋 요약")
    async def get_dataset(self, request: AuthedRequest, datasets: Datasets, dataset_id: RowId) -> s.DatasetDetail:
        return await datasets.detail(request.user, dataset_id)

    @get("/{dataset_id:int}/rows", summary="행 페이지")
    async def rows(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        dataset_id: RowId,
        offset: Offset = 0,
        limit: RowLimit = 50,
        columns: Columns = None,
    ) -> s.RowsPage:
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.rows(row, offset=offset, limit=limit, columns=columns)

    @get("/{dataset_id:int}/columns/{column:str}/distribution", summary="열 분포")
    async def distribution(
        self, request: AuthedRequest, datasets: Datasets, dataset_id: RowId, column: FromPath[str]
    ) -> s.ColumnDistribution:
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.distribution(row, column)

    @get("/{dataset_id:int}/points", summary="지도용 좌표")
    async def points(
        self, request: AuthedRequest, datasets: Datasets, dataset_id: RowId, max_points: MaxPoints = 5000
    ) -> s.MapPoints:
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.points(row, max_points=max_points)

    @get("/{dataset_id:int}/sample", summary="두 열의 무작위 표본 (산점도용)")
    async def sample(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        dataset_id: RowId,
        x: SampleX,
        y: SampleY,
        n: SampleSize = DEFAULT_SAMPLE_ROWS,
        seed: SampleSeed = DEFAULT_SEED,
    ) -> PairSample:
        """Rows drawn at random from the whole dataset (both values present), in dataset order."""
        row, _ = await datasets.visible(request.user, dataset_id)
        return await datasets.sample(row, x=x, y=y, size=n, seed=seed)

    @delete("/{dataset_id:int}", status_code=204, summary="데이터셋 삭제")
    async def delete_dataset(self, request: AuthedRequest, datasets: Datasets, dataset_id: RowId) -> None:
        await datasets.delete(request.user, dataset_id)

    @post("/{dataset_id:int}/share", status_code=201, summary="공유 링크 만들기", operation_class=OptionalBodyOperation)
    async def share(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        dataset_id: RowId,
        data: JSONBody[s.ShareLinkCreate | None] = None,
    ) -> s.ShareLink:
        return await datasets.create_share(request.user, dataset_id, data.expires_in if data else None)

    @get("/{dataset_id:int}/shares", summary="데이터셋의 공유 링크 목록")
    async def shares(
        self,
        request: AuthedRequest,
        datasets: Datasets,
        dataset_id: RowId,
        offset: Offset = 0,
        limit: PageLimit = 50,
    ) -> Page[s.ShareLinkInfo]:
        return await datasets.list_shares(request.user, dataset_id, offset=offset, limit=limit)

    @delete("/{dataset_id:int}/shares/{share_id:int}", status_code=204, summary="공유 링크 취소 (ID로)")
    async def revoke_share(
        self, request: AuthedRequest, datasets: Datasets, dataset_id: RowId, share_id: RowId
    ) -> None:
        await datasets.revoke_share_by_id(request.user, dataset_id, share_id)


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

    @get("/{token:str}/sample", summary="공유된 데이터셋의 두 열 무작위 표본", exclude_from_auth=True)
    async def sample(
        self,
        datasets: Datasets,
        token: FromPath[str],
        x: SampleX,
        y: SampleY,
        n: SampleSize = DEFAULT_SAMPLE_ROWS,
        seed: SampleSeed = DEFAULT_SEED,
    ) -> PairSample:
        row, _ = await datasets.shared(token)
        return await datasets.sample(row, x=x, y=y, size=n, seed=seed)

    @delete("/{token:str}", status_code=204, summary="공유 링크 취소")
    async def revoke(self, request: AuthedRequest, datasets: Datasets, token: FromPath[str]) -> None:
        await datasets.revoke_share(request.user, token)

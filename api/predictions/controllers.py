"""ECLO prediction routes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, ValidationException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response.base import ASGIResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.answers import json_answer, ok_response
from api.jobs.schemas import JobAccepted
from api.predictions import schemas as s
from api.predictions.batch_rows import BatchRows, decode_batch_body
from api.predictions.scoring.results import scoring_results
from api.predictions.scoring.submit import ScoringJobRequest, submit_scoring_job
from api.predictions.services import PredictionService
from api.predictions.single import SinglePredictionService
from api.predictions.single_http import ObjectBodyOperation, read_object_body
from api.schemas import Offset, Page, RowId, VersionFilter
from api.users.services import Principal
from models.features import ALIASES, LEGACY_ALIASES


def provide_prediction_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> PredictionService:
    return PredictionService(db_session, request.app.state.resources)


def single_predictions(request: Request[Any, Any, Any]) -> SinglePredictionService:
    """The single-prediction routes take no database session (the writer stores the row) and no dependency:
    they build their service themselves, as resolving a dependency costs a measurable share of a request on
    this hot path (docs/decisions/0010)."""
    return SinglePredictionService(request.app.state.resources)


Predictions = NamedDependency[PredictionService]
AuthedRequest = Request[Principal, Any, Any]
ResultLimit = Annotated[int | None, QueryParameter(ge=1, le=10_000, description="한 번에 받을 행 수 (1~10,000)")]
_ERROR_AT = re.compile(r" - at `\$\.(.+)`$")
PREDICT_DESCRIPTION = (
    "본문: 11개 특성(한글 이름) 또는 사고 원자료 한 행(사고일시 + 범주 열), 선택 `explain`(기여도). "
    "영문 별칭: "
    + ", ".join(f"`{a}`→{k}" for a, k in ALIASES.items())
    + ". v1.2.5 코드가 쓰던 이름도 받습니다: "
    + ", ".join(f"`{a}`→{k}" for a, k in LEGACY_ALIASES.items())
    + "."
)


async def read_batch_rows(request: Request[Any, Any, Any]) -> BatchRows:
    """The batch body, read by hand rather than as `data` (see api/predictions/batch_rows.py: Litestar's
    decoding costs more than the predictions). Envelope errors answer as Litestar's own decoding would."""
    body = await request.body()
    try:
        return decode_batch_body(body)
    except msgspec.ValidationError as exc:
        message, _, _ = str(exc).partition(" - ")
        at = _ERROR_AT.search(str(exc))
        error = {"message": message, "key": at.group(1) if at else "data", "source": "body"}
        raise ValidationException(f"Validation failed for POST {request.url.path}", extra=[error]) from None
    except msgspec.DecodeError:
        raise ClientException("Malformed JSON body") from None


@dataclass
class _BatchOperation(Operation):
    """OpenAPI for the batch route, whose body is read by hand (so Litestar cannot describe it)."""

    def __post_init__(self) -> None:
        schema = Schema(
            type=OpenAPIType.OBJECT,
            required=["rows"],
            additional_properties=False,  # BatchPredictionRequest is an Input: unknown fields are refused
            properties={
                "rows": Schema(
                    type=OpenAPIType.ARRAY,
                    items=Schema(type=OpenAPIType.OBJECT, additional_properties=True),
                    max_items=s.MAX_SYNC_BATCH,
                    description="행마다 11개 특성(한글 이름 또는 영문 별칭) 또는 사고 원자료 한 행",
                )
            },
        )
        self.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


class PredictionController(Controller):
    path = "/api"
    tags = ["predictions"]
    dependencies = {
        "predictions": Provide(provide_prediction_service, sync_to_thread=False),
    }

    @get("/predict/schema", summary="예측 입력 스키마")
    async def schema(self, request: AuthedRequest) -> s.PredictSchema:
        return single_predictions(request).schema()

    @post(
        "/predict/eclo",
        status_code=200,
        summary="ECLO 예측 (한 건)",
        description=PREDICT_DESCRIPTION,
        operation_class=ObjectBodyOperation,
        responses=ok_response(s.Prediction),
    )
    async def predict(self, request: AuthedRequest) -> ASGIResponse:
        """Body and answer bypass Litestar's generic handling on this hot path (api/predictions/single_http.py)."""
        body = await read_object_body(request)
        return json_answer(await single_predictions(request).predict_one(request.user, body))

    @post("/predict/eclo/batch", status_code=200, summary="ECLO 예측 (최대 10,000행)", operation_class=_BatchOperation)
    async def predict_batch(self, request: AuthedRequest, predictions: Predictions) -> s.BatchPrediction:
        return await predictions.predict_batch(request.user, await read_batch_rows(request))

    @get("/predictions", summary="내 예측 기록")
    async def history(
        self,
        request: AuthedRequest,
        predictions: Predictions,
        offset: Offset = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="한 번에 받을 기록 수 (1~1000)")] = 50,
        model_version: VersionFilter = None,
    ) -> Page[s.PredictionRecord]:
        return await predictions.history(request.user, offset=offset, limit=limit, model_version=model_version)


class ScoringJobController(Controller):
    """Batch scoring as background jobs (any accident-shaped dataset, or inline rows)."""

    path = "/api/predict/jobs"
    tags = ["predictions", "jobs"]

    @post("/", status_code=202, summary="배치 예측 작업 만들기")
    async def submit(
        self, request: AuthedRequest, db_session: NamedDependency[AsyncSession], data: JSONBody[ScoringJobRequest]
    ) -> JobAccepted:
        return await submit_scoring_job(db_session, request.app.state.resources, request.user, data)

    @get("/{job_id:int}/results", summary="배치 예측 결과 (json 또는 csv)")
    async def results(
        self,
        request: AuthedRequest,
        db_session: NamedDependency[AsyncSession],
        job_id: RowId,
        format: Annotated[Literal["json", "csv"], QueryParameter()] = "json",
        offset: Offset = 0,
        limit: Annotated[
            int | None, QueryParameter(ge=1, le=10_000, description="한 번에 받을 행 수 (1~10,000)")
        ] = None,
        keep_columns: FromQuery[bool] = False,
    ) -> Response[Any]:
        """`keep_columns=true` (CSV only): every column of each input row beside its prediction."""
        results = await scoring_results(
            db_session,
            request.app.state.resources,
            request.user,
            job_id,
            output=format,
            offset=offset,
            limit=limit,
            keep_columns=keep_columns,
        )
        if results.csv is not None:
            return Response(
                results.csv,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{results.filename}"'},
            )
        return Response(results.page)

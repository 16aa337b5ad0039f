"""Submitting a batch-scoring job (API side): a stored accident dataset, or inline rows kept as Parquet."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, KIND_LABELS, DatasetKind
from api.datasets.parquet import to_parquet
from api.datasets.services import DatasetService
from api.db.tables import Job
from api.errors import InvalidInput
from api.jobs import schemas as js
from api.jobs.kinds import JobKind, JobStatus
from api.jobs.services import JobService
from api.resources import Resources
from api.schemas import BigId, Input
from api.users.services import Principal

MAX_INLINE_ROWS = 100_000


class ScoringJobRequest(Input):
    dataset_id: BigId | None = None
    rows: list[dict[str, Any]] | None = None


async def submit_scoring_job(
    session: AsyncSession, resources: Resources, user: Principal, request: ScoringJobRequest
) -> js.JobAccepted:
    if (request.dataset_id is None) == (request.rows is None):
        raise InvalidInput("dataset_id 또는 rows 중 하나만 보내 주세요.", detail={"fields": ["dataset_id", "rows"]})
    jobs = JobService(session, resources)
    if request.dataset_id is not None:
        row, _ = await DatasetService(session, resources).visible(user, request.dataset_id)
        if DatasetKind(row.kind) not in ACCIDENT_SHAPED_KINDS:
            raise InvalidInput(
                "ECLO 예측은 교통사고 형식(사고일시, 기상상태 등) 데이터셋에만 할 수 있습니다.",
                detail={
                    "dataset_id": row.id,
                    "kind": row.kind,
                    "kind_label": KIND_LABELS[DatasetKind(row.kind)],
                    "valid_kinds": sorted(k.value for k in ACCIDENT_SHAPED_KINDS),
                },
            )
        job = Job(
            kind=JobKind.SCORE,
            owner_id=user.id,
            status=JobStatus.QUEUED,
            total=row.rows,
            params={"dataset_id": row.id, "dataset_name": row.name},
        )
        return await jobs.submit(job)
    rows = request.rows or []
    if not rows:
        raise InvalidInput("rows가 비어 있습니다.", detail={"field": "rows"})
    if len(rows) > MAX_INLINE_ROWS:
        raise InvalidInput(
            f"rows로는 {MAX_INLINE_ROWS:,}행까지 보낼 수 있습니다."
            " 더 큰 데이터는 CSV로 올린 뒤 dataset_id로 요청해 주세요.",
            detail={"rows": len(rows), "limit": MAX_INLINE_ROWS},
        )
    try:
        table = await asyncio.to_thread(lambda: pa.Table.from_pylist(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise InvalidInput("rows의 각 항목은 같은 형식의 객체여야 합니다.", detail={"reason": str(exc)[:200]}) from None
    try:
        parquet = await asyncio.to_thread(to_parquet, table)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # e.g. an empty object as a value
        raise InvalidInput(
            "rows의 값은 숫자, 문자열, 참/거짓 또는 null이어야 합니다.", detail={"reason": str(exc)[:200]}
        ) from None
    job = Job(
        kind=JobKind.SCORE,
        owner_id=user.id,
        status=JobStatus.QUEUED,
        total=len(rows),
        params={"inline_rows": len(rows)},
    )
    return await jobs.submit(job, input_parquet=parquet)

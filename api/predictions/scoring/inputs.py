"""A scoring job's input: its stored dataset (through the table cache) or the rows sent with it."""

from __future__ import annotations

import asyncio
import time

import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets.parquet import from_parquet
from api.datasets.repository import DatasetRepository
from api.db.tables import Job
from api.errors import NotFound
from api.jobs.repository import JobRepository
from api.observability.metrics import ScoringStage, count_scoring_stage
from api.resources import Resources


async def load_job_input(session: AsyncSession, resources: Resources, job: Job) -> pa.Table:
    """A scoring job's input: its stored dataset (through the table cache) or its inline rows."""
    started = time.perf_counter()
    try:
        return await _load(session, resources, job)
    finally:
        count_scoring_stage(ScoringStage.LOAD_INPUT, time.perf_counter() - started)


async def _load(session: AsyncSession, resources: Resources, job: Job) -> pa.Table:
    dataset_id = job.params.get("dataset_id")
    if dataset_id is None:
        data = await JobRepository(session=session).input_parquet(job.id)
        if data is None:
            raise NotFound("작업 입력이 없습니다.")
        return await asyncio.to_thread(from_parquet, data)
    repository = DatasetRepository(session=session)
    row = await repository.get_one_or_none(id=dataset_id)
    table = None if row is None else await resources.tables.load(row.content_sha256, repository.fetch_parquet)
    if table is None:
        raise NotFound("작업 대상 데이터셋이 삭제되었습니다.")
    return table

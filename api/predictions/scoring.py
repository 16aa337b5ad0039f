"""Batch scoring jobs: submission (API side), the chunked scoring run (worker side), and results.

A run holds a PostgreSQL advisory lock on its job for its whole life, so two deliveries of the same
job (arq delivers at least once) never score side by side. Each chunk's rows, the job's progress and
its running summary are written in ONE transaction: after a crash the job resumes from the last
committed chunk, and a chunk is never half-written. (job_id, row_index) is unique besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from litestar import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, DatasetKind
from api.datasets.parquet import from_parquet, to_parquet
from api.datasets.repository import DatasetRepository
from api.datasets.services import DatasetService
from api.db.tables import Job, ModelVersion, Prediction
from api.errors import InvalidInput, NotFound
from api.jobs import schemas as js
from api.jobs.locks import job_lease
from api.jobs.repository import TERMINAL, JobRepository
from api.jobs.services import JobService, finish_job
from api.resources import Resources
from api.schemas import Input, Output
from api.users.services import Principal
from models.features import FeatureError, encode_frame
from models.interpret import labels_for
from models.loaded import LoadedModel
from models.metadata import InterpretationBand

logger = logging.getLogger("hab.scoring")

CHUNK_ROWS = 100_000
MAX_INLINE_ROWS = 100_000
MAX_ERRORS_KEPT = 100
TOP_DISTRICTS = 10
_FORMULA_START = r"^[=+\-@\t\r]"


class ScoringJobRequest(Input):
    dataset_id: int | None = None
    rows: list[dict[str, Any]] | None = None


class ScoredRow(Output):
    row_index: int
    id: str | None
    eclo: float
    interpretation: str


class ScoredRowsPage(Output):
    items: list[ScoredRow]
    total: int
    offset: int
    limit: int
    model_version: int | None


# ---- submission (API) ---------------------------------------------------------------------------------


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
                    "valid_kinds": sorted(k.value for k in ACCIDENT_SHAPED_KINDS),
                },
            )
        job = Job(
            kind="score",
            owner_id=user.id,
            status="queued",
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
    parquet = await asyncio.to_thread(to_parquet, table)
    job = Job(kind="score", owner_id=user.id, status="queued", total=len(rows), params={"inline_rows": len(rows)})
    return await jobs.submit(job, input_parquet=parquet)


# ---- the run (worker) --------------------------------------------------------------------------------


@dataclass
class ChunkResult:
    row_index: np.ndarray
    eclo: np.ndarray
    errors: list[tuple[int, FeatureError]]
    districts: list[str] | None


def score_chunk(chunk: pa.Table, model: LoadedModel, start: int) -> ChunkResult:
    """Encode and predict one chunk (CPU work: runs in a thread so the worker's loop stays responsive)."""
    batch = encode_frame(chunk, model.metadata, ignore_unknown=True)
    eclo = model.predict(batch.matrix) if len(batch.row_index) else np.empty(0)
    districts = None
    if "시군구" in chunk.column_names and len(batch.row_index):
        districts = chunk.column("시군구").take(pa.array(batch.row_index)).to_pylist()
    return ChunkResult(
        row_index=batch.row_index + start,
        eclo=eclo,
        errors=[(start + i, e) for i, e in batch.errors],
        districts=districts,
    )


def _empty_summary() -> dict[str, Any]:
    return {"count": 0, "eclo_sum": 0.0, "eclo_max": None, "bands": {}, "districts": {}, "error_count": 0, "errors": []}


def merge_chunk(summary: dict[str, Any], result: ChunkResult, model: LoadedModel) -> dict[str, Any]:
    """Fold one chunk into the running summary (stored with the chunk, so a resumed job's summary is exact)."""
    if len(result.eclo):
        summary["count"] += len(result.eclo)
        summary["eclo_sum"] += float(result.eclo.sum())
        chunk_max = float(result.eclo.max())
        summary["eclo_max"] = chunk_max if summary["eclo_max"] is None else max(summary["eclo_max"], chunk_max)
        labels, counts = np.unique(np.asarray(model.labels(result.eclo), dtype=object), return_counts=True)
        for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
            summary["bands"][label] = summary["bands"].get(label, 0) + int(count)
        if result.districts is not None:
            per = summary["districts"]
            for district, value in zip(result.districts, result.eclo.tolist(), strict=True):
                entry = per.setdefault(district, [0, 0.0])
                entry[0] += 1
                entry[1] += value
    summary["error_count"] += len(result.errors)
    room = MAX_ERRORS_KEPT - len(summary["errors"])
    for index, error in result.errors[: max(room, 0)]:
        summary["errors"].append({"row_index": index, "message": error.message, **error.to_detail()})
    return summary


def final_summary(summary: dict[str, Any]) -> dict[str, Any]:
    count = summary["count"]
    top = sorted(
        ({"시군구": d, "count": c, "mean_eclo": round(s / c, 4)} for d, (c, s) in summary["districts"].items()),
        key=lambda item: (-item["mean_eclo"], item["시군구"]),
    )[:TOP_DISTRICTS]
    return {
        "count": count,
        "mean_eclo": round(summary["eclo_sum"] / count, 4) if count else None,
        "max_eclo": summary["eclo_max"],
        "bands": summary["bands"],
        "top_districts": top,
        "error_count": summary["error_count"],
        "errors": summary["errors"],
    }


async def load_job_input(session: AsyncSession, resources: Resources, job: Job) -> pa.Table:
    """A scoring job's input: its stored dataset (through the table cache) or its inline rows."""
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


class ScoringRun:
    def __init__(self, resources: Resources, job_id: int) -> None:
        self.resources = resources
        self.job_id = job_id

    async def run(self) -> str:
        """Score the job unless it is finished or another worker holds it. Returns the job's final status."""
        beat = self.resources.settings.job_heartbeat_seconds
        async with job_lease(self.resources.engine, self.job_id, heartbeat_seconds=beat) as held:
            return await self._run() if held else "busy"

    async def _load(self, session: AsyncSession) -> Job:
        job = await JobRepository(session=session).get_one_or_none(id=self.job_id)
        if job is None:
            raise LookupError(f"job {self.job_id} does not exist")
        return job

    async def _finish(self, status: str, *, error: str | None = None, summary: dict[str, Any] | None = None) -> None:
        await finish_job(self.resources, self.job_id, status, error=error, summary=summary)

    async def _model(self) -> LoadedModel | None:
        model = self.resources.models.current
        if model is None:
            await self.resources.model_sync.refresh()
            model = self.resources.models.current
        return model

    async def _run(self) -> str:
        async with self.resources.sessions() as session:
            job = await self._load(session)
            if job.status in TERMINAL:
                return job.status
            if job.cancel_requested:
                await self._finish("cancelled")
                return "cancelled"
            # The attempt counts from here, before the input is loaded (the likeliest place to run out of
            # memory): the sweeper gives up on a job whose worker keeps dying, wherever it dies.
            jobs = JobRepository(session=session)
            await jobs.set_fields(
                self.job_id,
                status="running",
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, func.now()),
                heartbeat_at=func.now(),
            )
            await session.commit()
            model = await self._model()
            if model is None:
                await self._finish("failed", error="활성화된 ECLO 모델이 없습니다.")
                return "failed"
            try:
                table = await load_job_input(session, self.resources, job)
            except NotFound as exc:
                await self._finish("failed", error=exc.message)
                return "failed"
            summary = job.summary if job.summary and "eclo_sum" in job.summary else _empty_summary()
            start = int(job.progress)
            await jobs.set_fields(
                self.job_id, total=table.num_rows, params={**job.params, "model_version": model.version}
            )
            await session.commit()
        chunk_rows = self.resources.settings.score_chunk_rows or CHUNK_ROWS
        starts = list(range(start, table.num_rows, chunk_rows))

        def scoring(index: int) -> asyncio.Task[ChunkResult]:
            chunk = table.slice(starts[index], chunk_rows)
            return asyncio.create_task(asyncio.to_thread(score_chunk, chunk, model, starts[index]))

        # Pipelined: chunk k+1 is scored (worker thread, LightGBM) while chunk k is COPYed (PostgreSQL), so
        # both cores work; commits stay one per chunk and in order, so resuming is unchanged.
        upcoming = scoring(0) if starts else None
        try:
            for index, chunk_start in enumerate(starts):
                assert upcoming is not None
                try:
                    result = await upcoming
                except FeatureError as exc:  # a column-level problem: no row of this input can be scored
                    await self._finish("failed", error=exc.message, summary=final_summary(summary))
                    return "failed"
                upcoming = scoring(index + 1) if index + 1 < len(starts) else None
                merged = merge_chunk(copy.deepcopy(summary), result, model)
                end = min(chunk_start + chunk_rows, table.num_rows)
                status = await self._commit_chunk(result, model, merged, end)
                if status == "cancelled":  # this chunk was not written: the summary stays at the last one that was
                    await self._finish("cancelled", summary=final_summary(summary))
                    return "cancelled"
                summary = merged
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upcoming
        await self._finish("succeeded", summary=final_summary(summary))
        return "succeeded"

    async def _commit_chunk(
        self, result: ChunkResult, model: LoadedModel, summary: dict[str, Any], progress: int
    ) -> str:
        """Write the chunk's predictions, progress and summary atomically; honour a cancel request first."""
        async with self.resources.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.transaction():
                cancel = await driver.fetchval(
                    "select cancel_requested from jobs where id = $1 for update", self.job_id
                )
                if cancel:
                    return "cancelled"
                if len(result.row_index):
                    await driver.copy_to_table(
                        "predictions",
                        source=_copy_csv(self.job_id, result, model.version),
                        columns=["job_id", "row_index", "model_version", "eclo", "source"],
                        format="csv",
                    )
                await driver.execute(
                    "update jobs set progress = $2, heartbeat_at = now(), summary = $3::jsonb where id = $1",
                    self.job_id,
                    progress,
                    msgspec.json.encode(summary).decode(),
                )
        return "running"


def _copy_csv(job_id: int, result: ChunkResult, model_version: int) -> io.BytesIO:
    """The chunk as CSV for COPY: built by Arrow in C, far cheaper than Python tuples per row."""
    n = len(result.row_index)
    table = pa.table(
        {
            "job_id": pa.array(np.full(n, job_id, dtype=np.int64)),
            "row_index": pa.array(result.row_index.astype(np.int64)),
            "model_version": pa.array(np.full(n, model_version, dtype=np.int64)),
            "eclo": pa.array(result.eclo.astype(np.float64)),
            "source": pa.repeat(pa.scalar("job"), n),
        }
    )
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    sink.seek(0)
    return sink


# ---- results (API) -----------------------------------------------------------------------------------


async def _bands_of(session: AsyncSession, version: int) -> list[InterpretationBand]:
    meta = await session.scalar(select(ModelVersion.model_metadata).where(ModelVersion.version == version))
    return msgspec.convert(meta["bands"], list[InterpretationBand]) if meta else []


async def scored_rows(
    session: AsyncSession, resources: Resources, job: Job, *, offset: int, limit: int
) -> tuple[pa.Table, int]:
    """(row_index, ID, eclo, interpretation) of a scoring job, ordered by row."""
    total = int(
        await session.scalar(select(func.count()).select_from(Prediction).where(Prediction.job_id == job.id)) or 0
    )
    rows = (
        await session.execute(
            select(Prediction.row_index, Prediction.eclo)
            .where(Prediction.job_id == job.id)
            .order_by(Prediction.row_index)
            .offset(offset)
            .limit(limit)
        )
    ).all()
    row_index = np.asarray([r[0] for r in rows], dtype=np.int64)
    eclo = np.asarray([r[1] for r in rows], dtype=np.float64)
    version = job.params.get("model_version")
    bands = await _bands_of(session, version) if version is not None else []
    labels = labels_for(eclo, bands) if bands else [""] * len(eclo)
    ids: list[Any] = [None] * len(row_index)
    if len(row_index):
        table = await load_job_input(session, resources, job)
        id_column = next((c for c in ("ID", "id", "Id") if c in table.column_names), None)
        if id_column is not None:
            ids = table.column(id_column).take(pa.array(row_index)).cast(pa.string()).to_pylist()
    return pa.table(
        {
            "row_index": row_index,
            "ID": pa.array(ids, type=pa.string()),
            "eclo": eclo,
            "interpretation": pa.array(labels, type=pa.string()),
        }
    ), total


def escape_formulas(table: pa.Table) -> pa.Table:
    """Spreadsheet formula injection: text cells starting with = + - @ or a tab get a leading quote."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.fill_null(pc.match_substring_regex(column, _FORMULA_START), False)
            column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def to_csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    sink.write(b"\xef\xbb\xbf")  # BOM: Excel on Korean Windows then reads UTF-8 correctly
    pacsv.write_csv(escape_formulas(table), sink)
    return sink.getvalue()


async def scoring_results(
    session: AsyncSession,
    resources: Resources,
    user: Principal,
    job_id: int,
    *,
    output: str,
    offset: int,
    limit: int | None,
) -> Response[Any]:
    """A scoring job's rows joined with the input's ID column, as a JSON page or a CSV download."""
    if output not in ("json", "csv"):
        raise InvalidInput(
            "format은 json 또는 csv여야 합니다.", detail={"field": "format", "value": output, "valid": ["json", "csv"]}
        )
    job = await JobService(session, resources).get(user, job_id)
    if job.kind != "score":
        raise NotFound("배치 예측 작업이 아닙니다.", detail={"job_id": job_id})
    if output == "json":
        limit = 1000 if limit is None else limit
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit은 1~10,000 사이여야 합니다.", detail={"limit": limit})
    else:
        limit = limit or 10_000_000
    table, total = await scored_rows(session, resources, job, offset=offset, limit=limit)
    if output == "csv":
        body = await asyncio.to_thread(to_csv_bytes, table)
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="hab-job-{job.id}-eclo.csv"'},
        )
    items = [
        ScoredRow(row_index=r["row_index"], id=r["ID"], eclo=round(r["eclo"], 4), interpretation=r["interpretation"])
        for r in table.to_pylist()
    ]
    page = ScoredRowsPage(
        items=items, total=total, offset=offset, limit=limit, model_version=job.params.get("model_version")
    )
    return Response(page)

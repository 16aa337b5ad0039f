"""A finished (or running) scoring job's rows: a JSON page, or the whole table as a CSV that is safe to open.

No HTTP here: the controller turns `ScoringResults` into a response.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.tables import Job
from api.errors import InvalidInput, NotFound
from api.jobs.kinds import JobKind
from api.jobs.services import JobService
from api.predictions.repository import job_prediction_count, job_predictions, model_metadata
from api.predictions.scoring.inputs import load_job_input
from api.resources import Resources
from api.schemas import Output
from api.users.services import Principal
from models.interpret import labels_for
from models.metadata import InterpretationBand

_FORMULA_START = r"^[=+\-@\t\r]"


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


@dataclass(frozen=True)
class ScoringResults:
    """Either a JSON page or a CSV file (with the name to download it as)."""

    page: ScoredRowsPage | None = None
    csv: bytes | None = None
    filename: str = ""


async def _bands_of(session: AsyncSession, version: int) -> list[InterpretationBand]:
    meta = await model_metadata(session, version)
    return msgspec.convert(meta["bands"], list[InterpretationBand]) if meta else []


async def scored_rows(
    session: AsyncSession, resources: Resources, job: Job, *, offset: int, limit: int, keep_columns: bool = False
) -> tuple[pa.Table, int]:
    """(row_index, ID, eclo, interpretation) of a scoring job, ordered by row; with `keep_columns`,
    (row_index, every column of the input row, eclo, interpretation)."""
    total = await job_prediction_count(session, job.id)
    rows = await job_predictions(session, job.id, offset=offset, limit=limit)
    row_index = np.asarray([r[0] for r in rows], dtype=np.int64)
    eclo = np.asarray([r[1] for r in rows], dtype=np.float64)
    version = job.params.get("model_version")
    bands = await _bands_of(session, version) if version is not None else []
    labels = labels_for(eclo, bands) if bands else [""] * len(eclo)
    ids: list[Any] = [None] * len(row_index)
    source = await load_job_input(session, resources, job) if len(row_index) or keep_columns else None
    if keep_columns and source is not None:
        return _with_input_columns(source, row_index, eclo, labels), total
    if source is not None and len(row_index):
        id_column = next((c for c in ("ID", "id", "Id") if c in source.column_names), None)
        if id_column is not None:
            ids = source.column(id_column).take(pa.array(row_index)).cast(pa.string()).to_pylist()
    return pa.table(
        {
            "row_index": row_index,
            "ID": pa.array(ids, type=pa.string()),
            "eclo": eclo,
            "interpretation": pa.array(labels, type=pa.string()),
        }
    ), total


def _with_input_columns(source: pa.Table, row_index: np.ndarray, eclo: np.ndarray, labels: list[str]) -> pa.Table:
    """The input rows as they were, between the row number and the prediction (name clashes get a suffix)."""
    rows = source.take(pa.array(row_index, type=pa.int64()))
    taken = {"row_index", "eclo", "interpretation"}
    names = [f"{name} (입력)" if name in taken else name for name in rows.column_names]
    columns = [pa.array(row_index), *rows.columns, pa.array(eclo), pa.array(labels, type=pa.string())]
    return pa.table(columns, names=["row_index", *names, "eclo", "interpretation"])


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
    keep_columns: bool = False,
) -> ScoringResults:
    """A scoring job's rows joined with the input's ID column (or all its columns, CSV only), as a JSON page
    or a CSV download."""
    if output not in ("json", "csv"):
        raise InvalidInput(
            "format은 json 또는 csv여야 합니다.", detail={"field": "format", "value": output, "valid": ["json", "csv"]}
        )
    if keep_columns and output != "csv":
        raise InvalidInput(
            "입력 열 전체(keep_columns)는 CSV 결과(format=csv)에서만 받을 수 있습니다.",
            detail={"field": "keep_columns", "format": output},
        )
    job = await JobService(session, resources).get(user, job_id)
    if job.kind != JobKind.SCORE:
        raise NotFound("배치 예측 작업이 아닙니다.", detail={"job_id": job_id})
    if output == "json":
        limit = 1000 if limit is None else limit
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit은 1~10,000 사이여야 합니다.", detail={"limit": limit})
    else:
        limit = limit or 10_000_000
    table, total = await scored_rows(session, resources, job, offset=offset, limit=limit, keep_columns=keep_columns)
    if output == "csv":
        return ScoringResults(csv=await asyncio.to_thread(to_csv_bytes, table), filename=f"hab-job-{job.id}-eclo.csv")
    items = [
        ScoredRow(row_index=r["row_index"], id=r["ID"], eclo=round(r["eclo"], 4), interpretation=r["interpretation"])
        for r in table.to_pylist()
    ]
    page = ScoredRowsPage(
        items=items, total=total, offset=offset, limit=limit, model_version=job.params.get("model_version")
    )
    return ScoringResults(page=page)

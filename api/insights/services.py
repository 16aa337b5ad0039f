"""Insight use cases: a dataset's insights (cached by content) and comparisons of two sides."""

from __future__ import annotations

import asyncio

import pyarrow as pa

from api.datasets.kinds import DatasetKind
from api.datasets.services import DatasetService
from api.db.tables import Dataset
from api.errors import InvalidInput
from api.insights import cache
from api.insights import schemas as s
from api.insights.compute import (
    comparison_sentence,
    dataset_insights,
    is_numeric,
    select_rows,
    side_figures,
)
from api.users.services import Principal


def _kind(row: Dataset) -> DatasetKind:
    try:
        return DatasetKind(row.kind)
    except ValueError:
        return DatasetKind.GENERIC


class InsightService:
    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets
        self.redis = datasets.resources.redis

    async def insights(self, user: Principal, dataset_id: int) -> s.Insights:
        row, _ = await self.datasets.visible(user, dataset_id)
        return s.Insights(dataset_id=row.id, items=await self.for_dataset(row))

    async def shared_insights(self, token: str) -> s.Insights:
        row, _ = await self.datasets.shared(token)
        return s.Insights(dataset_id=row.id, items=await self.for_dataset(row))

    async def for_dataset(self, row: Dataset) -> list[s.Insight]:
        """The dataset's insights, from the cache or computed from its table (and cached)."""
        cached = await cache.read(self.redis, row.content_sha256)
        if cached is not None:
            return cached
        table = await self.datasets.table(row)
        items = await asyncio.to_thread(dataset_insights, table, _kind(row))
        await cache.write(self.redis, row.content_sha256, items)
        return items

    async def compare(self, user: Principal, request: s.ComparisonRequest) -> s.Comparison:
        left_row, _ = await self.datasets.visible(user, request.left.dataset_id)
        right_row, _ = await self.datasets.visible(user, request.right.dataset_id)
        left_table = await self.datasets.table(left_row)
        right_table = await self.datasets.table(right_row)
        column = request.column
        for name, row, table in (("left", left_row, left_table), ("right", right_row, right_table)):
            _require_column(table, column, name, row.id)
        numeric = is_numeric(left_table, column)
        if numeric != is_numeric(right_table, column):
            raise InvalidInput(
                f"'{column}' 열이 한쪽은 숫자, 다른 쪽은 문자라 비교할 수 없습니다.", detail={"column": column}
            )
        same_dataset = left_row.id == right_row.id
        if same_dataset and request.left.where is None and request.right.where is None:
            raise InvalidInput(
                "같은 데이터셋을 비교하려면 두 그룹의 조건(where)을 주세요.", detail={"dataset_id": left_row.id}
            )
        sides = []
        for name, side, row, table in (
            ("left", request.left, left_row, left_table),
            ("right", request.right, right_row, right_table),
        ):
            sides.append(await asyncio.to_thread(_side, name, side, row, table, column, numeric, same_dataset))
        left, right = sides
        kind = s.InsightKind.GROUP_COMPARISON if same_dataset else s.InsightKind.DATASET_COMPARISON
        return s.Comparison(
            kind=kind, column=column, text=comparison_sentence(column, left, right), left=left, right=right
        )


def _require_column(table: pa.Table, column: str, side: str, dataset_id: int) -> None:
    if column not in table.column_names:
        raise InvalidInput(
            f"{'왼쪽' if side == 'left' else '오른쪽'} 데이터셋에 '{column}' 열이 없습니다.",
            detail={"side": side, "dataset_id": dataset_id, "column": column, "valid_columns": table.column_names},
        )


def _side(
    name: str,
    side: s.ComparisonSide,
    row: Dataset,
    table: pa.Table,
    column: str,
    numeric: bool,
    same_dataset: bool,
) -> s.SideFigures:
    where = side.where
    if where is not None:
        _require_column(table, where.column, name, row.id)
    selected = select_rows(table, where.column if where else None, where.value if where else None)
    if where is not None and selected.num_rows == 0:
        raise InvalidInput(
            f"'{where.column}' = '{where.value}'인 행이 없습니다.",
            detail={"side": name, "column": where.column, "value": where.value},
        )
    label = f"'{where.value}'" if where is not None else f"'{row.name}'"
    if where is not None and not same_dataset:
        label = f"'{row.name}'의 '{where.value}'"
    return side_figures(selected, column, dataset_id=row.id, label=label, numeric=numeric)

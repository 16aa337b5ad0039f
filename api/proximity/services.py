"""The proximity use case: both datasets visible and with coordinates, the radius checked, one page.

The figures are cached by both datasets' content hashes and the radius (cache.py), so paging through an
answer or asking it again computes nothing but the page."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from api.datasets.column_values import coordinate_masks, find_table_coordinates
from api.datasets.narration import pct
from api.datasets.services import MAX_ROWS_PAGE, DatasetService
from api.db.tables import Dataset
from api.errors import BadRequest, InvalidInput
from api.proximity import cache
from api.proximity import schemas as s
from api.proximity.geo import proximity
from api.users.services import Principal

MIN_RADIUS_M = 1.0
MAX_RADIUS_M = 5_000.0


@dataclass(frozen=True)
class Points:
    rows: np.ndarray  # row indices with valid coordinates
    lat: np.ndarray
    lon: np.ndarray


def valid_points(table: pa.Table) -> Points | None:
    """The rows with valid coordinates (inside Korea, not zero), or None when there are no coordinate columns."""
    cols = find_table_coordinates(table)
    if cols is None:
        return None
    lat, lon, valid, _ = coordinate_masks(table, cols)
    rows = np.flatnonzero(valid)
    return Points(rows=rows, lat=lat[rows], lon=lon[rows])


def summary_text(summary: s.ProximitySummary, source_name: str, target_name: str) -> str:
    radius = f"{summary.radius_m:,.0f}m" if float(summary.radius_m).is_integer() else f"{summary.radius_m:,.1f}m"
    text = (
        f"'{source_name}' 지점 {summary.sources:,}곳 중 {summary.sources_with_target:,}곳"
        f"({pct(summary.sources_with_target, summary.sources)})의 반경 {radius} 안에 '{target_name}' 지점이 있습니다. "
        f"지점당 평균 {summary.mean_count:.2f}개, 최대 {summary.max_count:,}개"
    )
    if summary.median_nearest_m is not None:
        text += f"이며, 가장 가까운 지점까지의 거리 중앙값은 {summary.median_nearest_m:,.0f}m"
    return text + "입니다."


class ProximityService:
    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets

    async def _points(self, row: Dataset, role: str) -> Points:
        table = await self.datasets.table(row)
        points = await asyncio.to_thread(valid_points, table)
        if points is None:
            raise InvalidInput(
                f"'{row.name}' 데이터셋에는 위도/경도 열이 없어 근접 분석을 할 수 없습니다.",
                detail={"dataset_id": row.id, "role": role, "kind": row.kind},
            )
        if role == "target" and len(points.rows) == 0:
            raise InvalidInput(
                f"'{row.name}' 데이터셋에 올바른 좌표가 있는 행이 없습니다.",
                detail={"dataset_id": row.id, "role": role},
            )
        return points

    async def analyse(
        self, user: Principal, request: s.ProximityRequest, *, offset: int, limit: int
    ) -> s.ProximityPage:
        radius = request.radius_m
        if not MIN_RADIUS_M <= radius <= MAX_RADIUS_M:
            raise BadRequest(
                f"반경(radius_m)은 {MIN_RADIUS_M:,.0f}~{MAX_RADIUS_M:,.0f}m 사이여야 합니다.",
                detail={"radius_m": radius, "min": MIN_RADIUS_M, "max": MAX_RADIUS_M},
            )
        if offset < 0 or not 1 <= limit <= MAX_ROWS_PAGE:
            raise InvalidInput(
                f"offset은 0 이상, limit은 1~{MAX_ROWS_PAGE} 사이여야 합니다.",
                detail={"offset": offset, "limit": limit},
            )
        source_row, _ = await self.datasets.visible(user, request.source_dataset_id)
        target_row, _ = await self.datasets.visible(user, request.target_dataset_id)
        sources = await self._points(source_row, "source")
        redis = self.datasets.resources.redis
        key = cache.cache_key(source_row.content_sha256, target_row.content_sha256, radius)
        cached = await cache.read(redis, key, len(sources.rows))
        if cached is not None:
            found, target_count = cached.found, cached.targets
        else:
            targets = await self._points(target_row, "target")
            found = await asyncio.to_thread(proximity, sources.lat, sources.lon, targets.lat, targets.lon, radius)
            target_count = len(targets.rows)
            await cache.write(redis, key, target_count, found)
        n = len(sources.rows)
        summary = s.ProximitySummary(
            source_dataset_id=source_row.id,
            target_dataset_id=target_row.id,
            radius_m=radius,
            sources=n,
            targets=target_count,
            sources_with_target=int((found.counts > 0).sum()),
            share_with_target=round(100.0 * float((found.counts > 0).sum()) / n, 1) if n else 0.0,
            mean_count=float(found.counts.mean()) if n else 0.0,
            max_count=int(found.counts.max()) if n else 0,
            median_nearest_m=float(np.median(found.nearest_m)) if n else None,
            text="",
        )
        summary.text = summary_text(summary, source_row.name, target_row.name)
        page = slice(offset, offset + limit)
        items = [
            s.SourceProximity(row_index=r, lat=la, lon=lo, count=c, nearest_m=d)
            for r, la, lo, c, d in zip(
                sources.rows[page].tolist(),
                sources.lat[page].tolist(),
                sources.lon[page].tolist(),
                found.counts[page].tolist(),
                found.nearest_m[page].tolist(),
                strict=True,
            )
        ]
        return s.ProximityPage(items=items, total=n, offset=offset, limit=limit, summary=summary)

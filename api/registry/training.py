"""Training a model from a stored dataset or a CSV and registering it (the `hab train` use case)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from api.datasets.ingest import parse_csv
from api.datasets.kinds import DatasetKind
from api.datasets.repository import DatasetRepository
from api.errors import InvalidInput, NotFound
from api.registry import schemas as s
from api.registry.services import RegistryService
from api.resources import Resources
from models.metadata import SYNTHETIC_SOURCE
from models.train import train_eclo


async def _training_table(resources: Resources, dataset_id: int | None, csv_path: str | None) -> tuple[pa.Table, bool]:
    """The accident table to train on, and whether it is one of hab's synthetic demo datasets."""
    synthetic = False
    if csv_path is not None:
        data = await asyncio.to_thread(Path(csv_path).read_bytes)
        parsed = await asyncio.to_thread(parse_csv, data)
        kind = parsed.kind
        table = parsed.table
    else:
        async with resources.sessions() as session:
            repository = DatasetRepository(session=session)
            row = await repository.get_one_or_none(id=dataset_id)
            if row is None:
                raise NotFound(f"데이터셋 {dataset_id}이(가) 없습니다.")
            kind = DatasetKind(row.kind)
            synthetic = row.is_demo
            table = await resources.tables.load(row.content_sha256, repository.fetch_parquet)
            if table is None:
                raise NotFound(f"데이터셋 {dataset_id}의 내용이 없습니다.")
    if kind is not DatasetKind.ACCIDENT:
        raise InvalidInput(
            "학습에는 ECLO와 사상자 수가 있는 교통사고 데이터(train 형식)가 필요합니다.", detail={"kind": kind.value}
        )
    return table, synthetic


async def train_and_register(
    resources: Resources,
    *,
    dataset_id: int | None,
    csv_path: str | None,
    name: str = "eclo",
    activate: bool = False,
    echo: Callable[[str], object] = print,
) -> s.ModelVersionInfo:
    table, synthetic = await _training_table(resources, dataset_id, csv_path)
    echo(f"{table.num_rows:,}행으로 학습합니다…")
    started = time.monotonic()
    artifact = await asyncio.to_thread(train_eclo, table, name=name)
    if synthetic:  # its predictions then say they come from made-up data (models.loaded.LoadedModel.caveat)
        artifact = artifact.with_metadata(source=SYNTHETIC_SOURCE)
    m = artifact.metadata.metrics
    echo(
        f"학습 {time.monotonic() - started:.1f}초 · 검증 RMSLE {m['rmsle']:.4f}"
        f" (평균 예측 기준 {m['baseline_rmsle']:.4f}) · RMSE {m['rmse']:.3f} · MAE {m['mae']:.3f}"
    )
    async with resources.sessions() as session:
        registry = RegistryService(session, resources)
        info = await registry.register(artifact, created_by=None)
        if activate:
            info = await registry.activate(info.version)
    return info

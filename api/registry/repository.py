"""SQL for model versions."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import defer

from api.db.tables import ModelVersion


class ModelVersionRepository(SQLAlchemyAsyncRepository[ModelVersion]):
    model_type = ModelVersion
    id_attribute = "version"

    async def all_versions(self) -> list[ModelVersion]:
        stmt = select(ModelVersion).options(defer(ModelVersion.artifact)).order_by(ModelVersion.version.desc())
        return list(await self.session.scalars(stmt))

    async def by_version(self, version: int) -> ModelVersion | None:
        stmt = select(ModelVersion).options(defer(ModelVersion.artifact)).where(ModelVersion.version == version)
        return await self.session.scalar(stmt)

    async def active(self) -> ModelVersion | None:
        stmt = select(ModelVersion).options(defer(ModelVersion.artifact)).where(ModelVersion.status == "active")
        return await self.session.scalar(stmt)

    async def active_version(self) -> int | None:
        return await self.session.scalar(select(ModelVersion.version).where(ModelVersion.status == "active"))

    async def bundle(self, version: int) -> tuple[bytes, str] | None:
        row = (
            await self.session.execute(
                select(ModelVersion.artifact, ModelVersion.artifact_sha256).where(ModelVersion.version == version)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def lock_registry(self) -> None:
        """Serialise version numbering and activation across processes until the transaction ends."""
        await self.session.execute(text("select pg_advisory_xact_lock(727001)"))

    async def next_version(self) -> int:
        return int(await self.session.scalar(select(func.coalesce(func.max(ModelVersion.version), 0))) or 0) + 1

    async def set_active(self, version: int) -> None:
        await self.session.execute(
            update(ModelVersion).where(ModelVersion.status == "active").values(status="inactive")
        )
        await self.session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == version)
            .values(status="active", activated_at=dt.datetime.now(dt.UTC))
        )

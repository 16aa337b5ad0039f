"""The model registry: register bundles, list versions, activate (and roll back) with a hot swap everywhere."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.tables import ModelVersion
from api.errors import InvalidInput, NotFound
from api.registry import schemas as s
from api.registry.repository import ModelVersionRepository
from api.resources import Resources
from models.artifact import ArtifactError, ModelArtifact
from models.loaded import LoadedModel

logger = logging.getLogger("hab.registry")

IMPORTANCE_ENTRIES = 32  # artifacts whose feature importance is kept (Resources.model_importance)


def to_info(row: ModelVersion, cls: type[s.ModelVersionInfo] = s.ModelVersionInfo, **extra: Any) -> Any:
    meta = row.model_metadata
    return cls(
        version=row.version,
        name=row.name,
        status=row.status,
        source=row.source,
        created_at=row.created_at,
        activated_at=row.activated_at,
        metrics=row.metrics,
        target_transform=row.target_transform,
        artifact_sha256=row.artifact_sha256,
        training_rows=meta.get("training_rows"),
        notes=row.notes,
        **extra,
    )


def _artifact_importance(bundle: bytes, sha256: str) -> dict[str, float]:
    return LoadedModel(ModelArtifact.from_bundle(bundle, expected_sha256=sha256)).feature_importance()


class RegistryService:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources
        self.versions = ModelVersionRepository(session=session)

    async def list(self) -> list[s.ModelVersionInfo]:
        return [to_info(row) for row in await self.versions.all_versions()]

    async def detail(self, version: int) -> s.ModelVersionDetail:
        row = await self.versions.by_version(version)
        if row is None:
            raise NotFound(f"모델 버전 {version}이(가) 없습니다.", detail={"version": version})
        return await self._detail(row)

    async def active(self) -> s.ModelVersionDetail:
        row = await self.versions.active()
        if row is None:
            raise NotFound("활성화된 모델이 없습니다. 관리자가 모델을 등록하고 활성화해야 합니다.")
        return await self._detail(row)

    async def _importance(self, row: ModelVersion) -> dict[str, float] | None:
        """Gain importance per feature: from the served model when it is this version, else from the artifact."""
        known = self.resources.model_importance
        cached = known.get(row.artifact_sha256)
        if cached is not None:
            return cached
        current = self.resources.models.current
        if current is not None and self.resources.models.version == row.version:
            importance = current.feature_importance()
        else:
            bundle = await self.versions.bundle(row.version)
            if bundle is None:
                return None
            importance = await asyncio.to_thread(_artifact_importance, *bundle)
        if len(known) >= IMPORTANCE_ENTRIES:
            known.pop(next(iter(known)))
        known[row.artifact_sha256] = importance
        return importance

    async def _detail(self, row: ModelVersion) -> s.ModelVersionDetail:
        meta = row.model_metadata
        importance = await self._importance(row)
        return to_info(
            row,
            s.ModelVersionDetail,
            feature_order=meta["feature_order"],
            categories=meta["categories"],
            hour_bands=meta["hour_bands"],
            bands=meta["bands"],
            feature_importance=importance,
            predictor=self._predictor(row.version),
        )

    def _predictor(self, version: int) -> str | None:
        current = self.resources.models.current
        if current is None or self.resources.models.version != version:
            return None
        return current.backend.value

    async def register(self, artifact: ModelArtifact, *, created_by: int | None, notes: str = "") -> s.ModelVersionInfo:
        """Store a verified artifact as the next version (inactive until activated)."""
        await self.versions.lock_registry()
        version = await self.versions.next_version()
        artifact = artifact.with_version(version)
        bundle = artifact.to_bundle()
        meta = artifact.metadata
        row = await self.versions.add(
            ModelVersion(
                version=version,
                name=meta.name,
                status="inactive",
                source=meta.source,
                metrics=dict(meta.metrics),
                model_metadata=artifact.metadata_dict(),
                target_transform=meta.target_transform,
                artifact_sha256=artifact.bundle_sha256,
                artifact=bundle,
                notes=notes or meta.notes,
                created_by=created_by,
            )
        )
        await self.session.commit()
        return to_info(row)

    async def register_bundle(self, bundle: bytes, *, created_by: int | None, notes: str = "") -> s.ModelVersionInfo:
        """An uploaded bundle: verified and test-loaded before anything is stored."""
        try:
            artifact = ModelArtifact.from_bundle(bundle)
            # Test-load the verified artifact itself (no second serialise/verify round trip).
            await asyncio.to_thread(lambda: LoadedModel(artifact).warm())
        except ArtifactError as exc:
            raise InvalidInput(f"모델 번들이 올바르지 않습니다: {exc}", detail={"reason": str(exc)}) from None
        return await self.register(artifact, created_by=created_by, notes=notes)

    async def activate(self, version: int) -> s.ModelVersionInfo:
        """Make `version` the active one: written to PostgreSQL first, then announced on Redis."""
        await self.versions.lock_registry()
        row = await self.versions.by_version(version)
        if row is None:
            raise NotFound(f"모델 버전 {version}이(가) 없습니다.", detail={"version": version})
        await self.versions.set_active(version)
        await self.session.commit()
        await self.session.refresh(row)
        # This process swaps now; the others on the announcement (or on their periodic re-check).
        await self.resources.model_sync.refresh()
        await self.resources.model_sync.announce(version)
        return to_info(row)

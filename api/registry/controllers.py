"""Model registry routes; changing the registry is for admins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy.ext.asyncio import AsyncSession

from api.registry import schemas as s
from api.registry.services import RegistryService
from api.schemas import Page, VersionId
from api.users.auth import admin_only
from api.users.services import Principal


@dataclass
class ModelUpload:
    """Multipart: `file` is a bundle made by `hab` (model.txt + metadata.json, zipped)."""

    file: UploadFile
    notes: str = ""


def provide_registry(db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]) -> RegistryService:
    return RegistryService(db_session, request.app.state.resources)


Registry = NamedDependency[RegistryService]


class ModelController(Controller):
    path = "/api/models"
    tags = ["models"]
    dependencies = {"registry": Provide(provide_registry, sync_to_thread=False)}

    @get("/", summary="모델 버전 목록")
    async def list_models(self, registry: Registry) -> Page[s.ModelVersionInfo]:
        items = await registry.list()
        return Page(items=items, total=len(items), offset=0, limit=len(items))

    @get("/active", summary="활성 모델")
    async def active(self, registry: Registry) -> s.ModelVersionDetail:
        return await registry.active()

    @get("/{version:int}", summary="모델 버전 상세")
    async def detail(self, registry: Registry, version: VersionId) -> s.ModelVersionDetail:
        return await registry.detail(version)

    @post("/", status_code=201, guards=[admin_only], summary="모델 번들 등록 (관리자)")
    async def upload(
        self,
        request: Request[Principal, Any, Any],
        registry: Registry,
        data: Annotated[ModelUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> s.ModelVersionInfo:
        return await registry.register_bundle(await data.file.read(), created_by=request.user.id, notes=data.notes)

    @post("/{version:int}/activate", status_code=200, guards=[admin_only], summary="모델 활성화·롤백 (관리자)")
    async def activate(self, registry: Registry, version: VersionId) -> s.ModelVersionInfo:
        return await registry.activate(version)

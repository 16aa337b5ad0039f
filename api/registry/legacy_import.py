"""Registering a v1.2.5 `model/` folder (the `hab models import-legacy` use case), and doing it once by itself
when `hab run` finds such a folder (HAB_LEGACY_MODEL_DIR, or `model/` in the project).

"Once" is remembered in PostgreSQL: the version's notes carry the SHA-256 of the three files, so the same
files are never imported twice (even after someone activates another version), while changed files are.
"""

from __future__ import annotations

import asyncio
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from api.db.tables import ModelVersion
from api.registry import schemas as s
from api.registry.services import RegistryService
from api.resources import Resources
from api.settings import PROJECT_ROOT, Settings
from models.artifact import ModelArtifact

LEGACY_FILES = ("accident_lgbm_model.pkl", "label_encoders.pkl", "feature_config.json")
_MARKER = "v1.2.5 파일 지문 sha256 "


def files_digest(directory: Path) -> str:
    """SHA-256 over the three files' names and contents, in a fixed order."""
    digest = hashlib.sha256()
    for name in LEGACY_FILES:
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((directory / name).read_bytes()).digest())
    return digest.hexdigest()


def legacy_model_dir(settings: Settings) -> Path:
    """Where a v1.2.5 user keeps the model: HAB_LEGACY_MODEL_DIR, else `model/` beside the project's code."""
    return settings.legacy_model_dir or PROJECT_ROOT / "model"


def has_legacy_files(directory: Path) -> bool:
    return all((directory / name).is_file() for name in LEGACY_FILES)


async def import_legacy_folder(
    resources: Resources, directory: Path, *, target_transform: str = "log1p", activate: bool = False
) -> s.ModelVersionInfo:
    """Convert the folder's pickles into a safe bundle, register it (noting the files' digest), maybe activate."""
    from models.legacy import PickleSecurityWarning, import_legacy

    def convert() -> tuple[ModelArtifact, str]:
        with warnings.catch_warnings():  # the caller has told the user; the warning would only repeat it
            warnings.simplefilter("ignore", PickleSecurityWarning)
            return import_legacy(directory, target_transform=target_transform), files_digest(directory)

    artifact, digest = await asyncio.to_thread(convert)
    async with resources.sessions() as session:
        registry = RegistryService(session, resources)
        notes = f"{artifact.metadata.notes} {directory.name}/에서 가져옴. {_MARKER}{digest}."
        info = await registry.register(artifact, created_by=None, notes=notes)
        if activate:
            info = await registry.activate(info.version)
    return info


async def already_imported(resources: Resources, directory: Path) -> int | None:
    """The version these exact files were imported as, if any."""
    digest = await asyncio.to_thread(files_digest, directory)
    async with resources.sessions() as session:
        return await session.scalar(
            select(ModelVersion.version).where(ModelVersion.notes.contains(f"{_MARKER}{digest}")).limit(1)
        )


@dataclass(frozen=True)
class FirstRunImport:
    directory: Path
    version: int
    imported: bool  # False: these files were imported before (as `version`), nothing was done


async def import_legacy_on_first_run(resources: Resources, settings: Settings) -> FirstRunImport | None:
    """Import and activate the v1.2.5 files `hab run` finds, once per set of files. None when there are none."""
    directory = legacy_model_dir(settings)
    if not has_legacy_files(directory):
        return None
    known = await already_imported(resources, directory)
    if known is not None:
        return FirstRunImport(directory, known, imported=False)
    info = await import_legacy_folder(resources, directory, activate=True)
    return FirstRunImport(directory, info.version, imported=True)

"""`hab run`'s first-run import of a v1.2.5 `model/` folder (api/cli/stack/prepare.py), on the real PostgreSQL
and Redis of the suite: the files from ../shared/legacy-model-v1.2/ are copied to a temporary `model/`."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from api.cli.stack.prepare import _import_legacy_model
from api.db.tables import ModelVersion
from api.registry.legacy_import import LEGACY_FILES, legacy_model_dir
from api.registry.services import RegistryService
from api.settings import PROJECT_ROOT
from tests import legacy_model

pytestmark = pytest.mark.skipif(not legacy_model.available(), reason=legacy_model.SKIP_REASON)


async def _versions(resources) -> tuple[int, int | None]:
    async with resources.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(ModelVersion)) or 0
        active = await session.scalar(select(ModelVersion.version).where(ModelVersion.status == "active"))
    return count, active


def test_the_project_model_folder_is_the_default(settings):
    assert settings.legacy_model_dir is None
    assert legacy_model_dir(settings) == PROJECT_ROOT / "model"


async def test_first_run_imports_and_activates_the_files_once(
    tmp_path, settings, resources, client, alice, versions, capsys
):
    model = tmp_path / "model"
    model.mkdir()
    for name in LEGACY_FILES:
        shutil.copy(legacy_model.local_copy() / name, model / name)
    local = settings.model_copy(update={"legacy_model_dir": model})
    before, active_before = await _versions(resources)
    try:
        await _import_legacy_model(resources, local)
        said = capsys.readouterr().out
        count, active = await _versions(resources)
        assert count == before + 1 and active == before + 1 != active_before
        assert f"버전 {active}(으)로 가져와 활성화했습니다" in said
        served = (await client.get("/api/models/active", headers=alice.headers)).json()
        assert served["version"] == active and served["source"] == "legacy-v1.2.5"
        predicted = await client.get("/api/predict/schema", headers=alice.headers)
        assert predicted.json()["model_version"] == active and predicted.json()["synthetic_data"] is False

        # The next run finds the same files: nothing is imported again, even once another version is active.
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(versions[0])
        await _import_legacy_model(resources, local)
        assert "이미 버전" in capsys.readouterr().out
        assert await _versions(resources) == (count, versions[0])

        # Changed files are new files: imported (and activated) once more.
        with (model / "feature_config.json").open("a", encoding="utf-8") as config:
            config.write("\n")
        await _import_legacy_model(resources, local)
        assert "가져와 활성화했습니다" in capsys.readouterr().out
        assert await _versions(resources) == (count + 1, count + 1)
    finally:
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(versions[0])


async def test_no_folder_or_an_incomplete_one_changes_nothing(tmp_path, settings, resources, capsys):
    (tmp_path / "model").mkdir()
    shutil.copy(legacy_model.local_copy() / LEGACY_FILES[0], tmp_path / "model" / LEGACY_FILES[0])
    before = await _versions(resources)
    for folder in (tmp_path / "absent", tmp_path / "model"):
        await _import_legacy_model(resources, settings.model_copy(update={"legacy_model_dir": folder}))
    assert await _versions(resources) == before
    assert capsys.readouterr().out == ""


async def test_unreadable_files_are_reported_in_korean_and_nothing_is_stored(tmp_path, settings, resources, capsys):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(legacy_model.local_copy() / "feature_config.json", model / "feature_config.json")
    for name in ("accident_lgbm_model.pkl", "label_encoders.pkl"):
        (model / name).write_bytes(b"not a pickle")
    before = await _versions(resources)
    await _import_legacy_model(resources, settings.model_copy(update={"legacy_model_dir": model}))
    assert "v1.2.5 모델을 가져오지 못했습니다" in capsys.readouterr().out
    assert await _versions(resources) == before

"""`hab prepare-local` (the step `hab run` runs before the API starts) as a process of its own, on a fresh database:
a v1.2.5 `model/` folder (the files of ../shared/legacy-model-v1.2/ copied to a temporary `model/`) is imported
and activated on the first run, said in Korean, and left alone on the next."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from api.local.services import drop_database, ensure_database, with_database
from api.registry.legacy_import import LEGACY_FILES
from tests import legacy_model

HAB = str(Path(sys.executable).with_name("hab"))
pytestmark = pytest.mark.skipif(not legacy_model.available(), reason=legacy_model.SKIP_REASON)


@pytest.fixture
def database(services):
    server = with_database(services.database_url, "postgres")
    name = f"hab_legacy_{secrets.token_hex(4)}"
    asyncio.run(ensure_database(server, name))
    try:
        yield with_database(server, name)
    finally:
        asyncio.run(drop_database(server, name))


def _versions(database_url: str) -> list[tuple[int, str, str]]:
    async def read() -> list[tuple[int, str, str]]:
        connection = await asyncpg.connect(database_url)
        try:
            rows = await connection.fetch("select version, status, source from model_versions order by version")
        finally:
            await connection.close()
        return [(r["version"], r["status"], r["source"]) for r in rows]

    return asyncio.run(read())


def test_prepare_local_imports_the_model_folder_once(tmp_path, services, database):
    model = tmp_path / "project" / "model"
    model.mkdir(parents=True)
    for name in LEGACY_FILES:
        shutil.copy(legacy_model.local_copy() / name, model / name)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HAB_") or k == "HAB_MODEL_COMPILE"},
        "DATABASE_URL": database,
        "REDIS_URL": services.redis_url,
        "HAB_ENV_FILE": str(tmp_path / "env" / ".env"),
        "HAB_DATA_DIR": str(tmp_path / "data"),
        "HAB_DEMO_SCALE": "0.02",
        "HAB_LEGACY_MODEL_DIR": str(model),
    }
    first = subprocess.run([HAB, "prepare-local"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "v1.2.5 모델(accident_lgbm_model.pkl, label_encoders.pkl, feature_config.json)을 버전 1(으)로 가져와 " in (
        first.stdout
    )
    assert "데모 ECLO 모델을 학습합니다" not in first.stdout  # a model exists: no demo model is trained
    assert _versions(database) == [(1, "active", "legacy-v1.2.5")]

    second = subprocess.run([HAB, "prepare-local"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "이 v1.2.5 모델 파일은 이미 버전 1(으)로 가져왔습니다" in second.stdout
    assert _versions(database) == [(1, "active", "legacy-v1.2.5")]

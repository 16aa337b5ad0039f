"""`hab prepare-local`: what the local stack needs before the API starts, run once by `hab run`.

In a process of its own (it loads the whole application; the supervisor must not): the application
database, migrations, the local admin token in env/.env, the demo datasets, a v1.2.5 user's `model/` files
(imported and activated once) and, when no model exists, the demo model.
It reads DATABASE_URL / REDIS_URL that `hab run` sets for the servers it supervises.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from api.db.migrate import upgrade_head
from api.db.tables import Dataset
from api.local.envfile import read_env_file, update_env_file
from api.local.services import APP_DATABASE, ensure_database, with_database
from api.resources import Resources
from api.settings import Settings, env_file_path, get_settings

LOCAL_ADMIN = "local-admin"


def say(message: str) -> None:
    print(f"[hab] {message}", flush=True)


def prepare_local_stack(server_url: str | None) -> None:
    """`server_url`: the embedded server's maintenance URL, whose application database may not exist yet."""
    settings = get_settings()
    if server_url:
        asyncio.run(ensure_database(server_url, APP_DATABASE))
    database_url = settings.database_url or with_database(server_url or "", APP_DATABASE)
    say("데이터베이스 마이그레이션 적용 중…")
    upgrade_head(database_url)
    token = asyncio.run(_prepare_data(settings))
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    update_env_file(env_file_path(), {"HAB_API_URL": api_url, "HAB_API_TOKEN": token})


async def _prepare_data(settings: Settings) -> str:
    """Ensure the local admin (returning a working token) and the demo data."""
    from api.demo.loader import load_demo_datasets
    from api.resources import close_resources, open_resources
    from api.users.services import UserService

    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            users = UserService(session)
            token = read_env_file(env_file_path()).get("HAB_API_TOKEN", "")
            principal = await users.authenticate(token) if token else None
            if principal is None or not principal.is_admin:
                if await users.repository.by_name(LOCAL_ADMIN) is None:
                    _, token = await users.create(LOCAL_ADMIN, admin=True)
                else:
                    token = await users.rotate_token(LOCAL_ADMIN)
                await session.commit()
        started = time.monotonic()
        loaded = await load_demo_datasets(resources, scale=settings.demo_scale, echo=say)
        if loaded:
            say(f"데모 데이터셋 {len(loaded)}개 저장 ({time.monotonic() - started:.1f}초)")
        await _import_legacy_model(resources, settings)
        await _ensure_demo_model(resources)
        return token
    finally:
        await close_resources(resources)


async def _import_legacy_model(resources: Resources, settings: Settings) -> None:
    """A v1.2.5 user's `model/` files are imported and activated on the first run that finds them, once."""
    from api.registry.legacy_import import has_legacy_files, import_legacy_on_first_run, legacy_model_dir

    directory = legacy_model_dir(settings)
    if not has_legacy_files(directory):
        return
    from models.legacy import LegacyImportError  # only when there is something to import: it loads the unpickler

    say(f"v1.2.5 모델 파일을 확인합니다: {directory}")
    try:
        result = await import_legacy_on_first_run(resources, settings)
    except (LegacyImportError, OSError) as exc:
        say(f"v1.2.5 모델을 가져오지 못했습니다 ({exc}). 데모 모델이나 이미 등록된 모델로 계속합니다.")
        return
    if result is None:
        return
    if result.imported:
        say(
            f"v1.2.5 모델(accident_lgbm_model.pkl, label_encoders.pkl, feature_config.json)을 "
            f"버전 {result.version}(으)로 가져와 활성화했습니다. 같은 파일은 다음 실행부터 다시 가져오지 않습니다."
        )
    else:
        say(f"이 v1.2.5 모델 파일은 이미 버전 {result.version}(으)로 가져왔습니다. 다시 가져오지 않습니다.")


async def _ensure_demo_model(resources: Resources) -> None:
    """On a fresh install, train and activate a model from the demo train data so predictions work at once."""
    from api.demo.generate import DEMO_TRAIN_NAME
    from api.registry.repository import ModelVersionRepository
    from api.registry.training import train_and_register

    async with resources.sessions() as session:
        if await ModelVersionRepository(session=session).next_version() > 1:
            return  # some model exists already; never replace an admin's choice
        train_id = await session.scalar(
            select(Dataset.id).where(Dataset.is_demo.is_(True), Dataset.name == DEMO_TRAIN_NAME).order_by(Dataset.id)
        )
    if train_id is None:
        return
    say("데모 ECLO 모델을 학습합니다 (처음 한 번만)…")
    info = await train_and_register(
        resources,
        dataset_id=train_id,
        csv_path=None,
        name="eclo-demo",
        activate=True,
        echo=lambda line: say("  " + line),
    )
    say(f"데모 모델 버전 {info.version} 활성화")

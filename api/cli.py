"""The `hab` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import click

from api.infra.services import ServiceUrls, resolve_services
from api.settings import SecretKeyError, Settings, get_settings, settings_with_secret

T = TypeVar("T")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def services_for_cli() -> tuple[Settings, ServiceUrls]:
    """Settings with concrete service URLs, starting embedded servers when URLs are unset."""
    urls = resolve_services(get_settings())
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = urls.database_url, urls.redis_url
    get_settings.cache_clear()  # so that code reading settings later (the app factory) sees the URLs
    return get_settings(), urls


@asynccontextmanager
async def cli_resources(settings: Settings) -> AsyncIterator[object]:
    from api.resources import close_resources, open_resources

    resources = await open_resources(settings)
    try:
        yield resources
    finally:
        await close_resources(resources)


def require_secret_key() -> None:
    """The API and the worker seal and open chat jobs' API keys with HAB_SECRET_KEY (see settings_with_secret)."""
    try:
        settings_with_secret()
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None


def run_with_services(body: Callable[[Settings], Awaitable[T]]) -> T:
    settings, urls = services_for_cli()
    try:
        return asyncio.run(body(settings))
    finally:
        urls.stop_embedded()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """hab — 대구 교통안전 데이터 플랫폼 (API, workers, model, frontend)."""


@main.command()
@click.option("--host", default=None, help="Bind address (default HAB_API_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default HAB_API_PORT or 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the API server."""
    import uvicorn

    from api.server import serve_until_signalled

    require_secret_key()
    settings, urls = services_for_cli()
    _configure_logging(settings)
    options = {
        "factory": True,
        "host": host or settings.api_host,
        "port": port or settings.api_port,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    try:
        if workers > 1:
            uvicorn.run("api.app:create_app", workers=workers, **options)
        else:
            serve_until_signalled(uvicorn.Config("api.app:create_app", **options))
    finally:
        urls.stop_embedded()


@main.command()
@click.option("--burst", is_flag=True, help="Process queued jobs, then exit.")
def worker(burst: bool) -> None:
    """Run one arq worker."""
    from workers.settings import run_worker

    require_secret_key()
    settings, urls = services_for_cli()
    _configure_logging(settings)
    try:
        run_worker(settings, burst=burst)
    finally:
        urls.stop_embedded()


@main.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from api.db.migrate import upgrade_head

    settings, urls = services_for_cli()
    try:
        upgrade_head(settings.database_url or "")
        click.echo("데이터베이스 스키마가 최신입니다 (alembic head).")
    finally:
        urls.stop_embedded()


@main.command("demo-data")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Row-count multiplier.")
@click.option("--force", is_flag=True, help="Load again even if demo datasets exist.")
def demo_data(scale: float, force: bool) -> None:
    """Generate and store the synthetic demo datasets (team-visible, named 데모)."""
    from api.datasets.demo_loader import load_demo_datasets

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            loaded = await load_demo_datasets(resources, scale=scale, force=force, echo=click.echo)
        click.echo(f"데모 데이터셋 {len(loaded)}개를 저장했습니다." if loaded else "데모 데이터셋이 이미 있습니다.")

    run_with_services(body)


@main.group()
def users() -> None:
    """Manage users and their API tokens."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the admin role.")
def users_create(name: str, admin: bool) -> None:
    """Create a user and print its token (shown only once)."""
    from api.errors import DomainError
    from api.users.services import UserService

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            async with resources.sessions() as session:  # type: ignore[attr-defined]
                try:
                    user, token = await UserService(session).create(name, admin=admin)
                except DomainError as exc:
                    raise click.ClickException(exc.message) from None
                await session.commit()
        click.echo(f"사용자 '{user.name}' ({user.role}) 를 만들었습니다. 토큰은 지금 한 번만 표시됩니다:")
        click.echo(token)

    run_with_services(body)


@users.command("list")
def users_list() -> None:
    """List users (tokens are never shown)."""
    from api.users.services import UserService

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            async with resources.sessions() as session:  # type: ignore[attr-defined]
                rows = await UserService(session).list()
        click.echo(f"{'ID':>4}  {'ROLE':<7} {'CREATED':<20} NAME")
        for u in rows:
            click.echo(f"{u.id:>4}  {u.role:<7} {u.created_at:%Y-%m-%d %H:%M:%S}  {u.name}")

    run_with_services(body)


@main.command()
@click.option("--dataset", "dataset_id", type=int, help="ID of a stored accident dataset (with ECLO).")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False), help="An accident CSV file.")
@click.option("--name", default="eclo", show_default=True, help="Model name.")
@click.option("--activate", is_flag=True, help="Activate the new version at once.")
def train(dataset_id: int | None, csv_path: str | None, name: str, activate: bool) -> None:
    """Train an ECLO model (LightGBM, log1p target, fixed seed) and register it."""
    from api.registry.training import train_and_register

    if (dataset_id is None) == (csv_path is None):
        raise click.UsageError("--dataset 또는 --csv 중 하나만 지정해 주세요.")

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            info = await train_and_register(
                resources, dataset_id=dataset_id, csv_path=csv_path, name=name, activate=activate, echo=click.echo
            )
        click.echo(f"모델 버전 {info.version} 등록" + (" 및 활성화" if activate else "") + " 완료.")

    _run_domain(body)


@main.group()
def models() -> None:
    """The ECLO model registry."""


@models.command("list")
def models_list() -> None:
    """List model versions."""
    from api.registry.services import RegistryService

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources, resources.sessions() as session:  # type: ignore[attr-defined]
            rows = await RegistryService(session, resources).list()  # type: ignore[arg-type]
        click.echo(f"{'VER':>4}  {'STATUS':<8} {'SOURCE':<14} {'RMSLE':>7}  CREATED              NAME")
        for m in rows:
            rmsle = m.metrics.get("rmsle")
            rmsle_text = f"{rmsle:.4f}" if rmsle is not None else "-"
            click.echo(
                f"{m.version:>4}  {m.status:<8} {m.source:<14} {rmsle_text:>7}  "
                f"{m.created_at:%Y-%m-%d %H:%M:%S}  {m.name}"
            )

    _run_domain(body)


@models.command("activate")
@click.argument("version", type=int)
def models_activate(version: int) -> None:
    """Activate a version (rolling back is activating an older one)."""
    from api.registry.services import RegistryService

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources, resources.sessions() as session:  # type: ignore[attr-defined]
            info = await RegistryService(session, resources).activate(version)  # type: ignore[arg-type]
        click.echo(f"모델 버전 {info.version}을(를) 활성화했습니다.")

    _run_domain(body)


@models.command("import-legacy")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--target-transform", type=click.Choice(["log1p", "none"]), default="log1p", show_default=True)
@click.option("--activate", is_flag=True, help="Activate the imported version at once.")
def models_import_legacy(directory: str, target_transform: str, activate: bool) -> None:
    """Convert v1.2.5 pickles (model + LabelEncoders) into a safe registered version. Trusted files only."""
    from pathlib import Path

    from api.registry.services import RegistryService
    from models.legacy import import_legacy

    click.echo(
        "경고: pickle 파일은 읽는 순간 코드를 실행할 수 있습니다. 믿을 수 있는 출처의 파일만 가져오세요.", err=True
    )

    async def body(settings: Settings) -> None:
        artifact = await asyncio.to_thread(import_legacy, Path(directory), target_transform=target_transform)
        async with cli_resources(settings) as resources, resources.sessions() as session:  # type: ignore[attr-defined]
            registry = RegistryService(session, resources)  # type: ignore[arg-type]
            info = await registry.register(artifact, created_by=None, notes=f"imported from {Path(directory).name}")
            if activate:
                await registry.activate(info.version)
        click.echo(f"v1.2.5 모델을 버전 {info.version}(으)로 등록했습니다" + (" (활성화됨)." if activate else "."))

    _run_domain(body)


def _run_domain(body: Callable[[Settings], Awaitable[T]]) -> T:
    """run_with_services, with domain errors printed as the Korean message instead of a traceback."""
    from api.errors import DomainError

    try:
        return run_with_services(body)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None


@main.command()
@click.argument("input_csv", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--dataset", "dataset_id", type=int, help="Score a stored dataset by ID instead of a file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Result CSV (default INPUT_eclo.csv).")
@click.option("--server", default=None, help="API URL (default HAB_API_URL, env/.env, or http://127.0.0.1:8000).")
@click.option("--token", default=None, help="API token (default HAB_API_TOKEN or env/.env).")
@click.option("--visibility", type=click.Choice(["private", "team"]), default="private", show_default=True)
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True, help="Seconds.")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=3600, show_default=True, help="Overall seconds; 0 = none."
)
@click.pass_context
def score(
    ctx: click.Context,
    input_csv: str | None,
    dataset_id: int | None,
    output: str | None,
    server: str | None,
    token: str | None,
    visibility: str,
    poll_interval: float,
    timeout: float,
) -> None:
    """Batch ECLO scoring over the API: upload INPUT_CSV (or use --dataset), wait for the job, save the CSV."""
    from pathlib import Path

    from api.score_client import ScoreError, ScoreInterrupted, ScoreOptions, default_connection, run_score

    if (input_csv is None) == (dataset_id is None):
        raise click.UsageError("입력 CSV 파일 또는 --dataset ID 중 하나만 지정해 주세요.")
    default_server, default_token = default_connection()
    options = ScoreOptions(
        server=server or default_server,
        token=default_token if token is None else token,
        input_csv=Path(input_csv) if input_csv else None,
        dataset_id=dataset_id,
        output=Path(output) if output else None,
        visibility=visibility,
        poll_interval=poll_interval,
        timeout=timeout or None,
    )
    try:
        run_score(options)
    except ScoreInterrupted as exc:
        click.echo(exc.message, err=True)
        ctx.exit(exc.exit_code)
    except ScoreError as exc:
        raise click.ClickException(exc.message) from None


@main.command()
def run() -> None:
    """Everything for local use: services, migrations, demo data, API, worker and UI (what `make run` calls)."""
    from api.runner import run_stack

    sys.exit(run_stack())


if __name__ == "__main__":
    main()

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
from api.settings import Settings, get_settings

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
def run() -> None:
    """Everything for local use: services, migrations, demo data, API, worker and UI (what `make run` calls)."""
    from api.runner import run_stack

    sys.exit(run_stack())


if __name__ == "__main__":
    main()

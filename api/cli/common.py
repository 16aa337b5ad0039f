"""What every `hab` command shares: settings with concrete service URLs, resources, errors as Korean text.

Kept light at import (the application is imported inside the functions), so that `hab run`, the
supervisor, never loads it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from api.local.services import ServiceUrls
    from api.resources import Resources
    from api.settings import Settings

T = TypeVar("T")


def configure_logging(settings: Settings) -> None:
    from api.observability.logs import configure_logging as configure

    configure(settings)


def services_for_cli() -> tuple[Settings, ServiceUrls]:
    """Settings with concrete service URLs, starting embedded servers when URLs are unset."""
    from api.local.services import resolve_services
    from api.settings import get_settings

    urls = resolve_services(get_settings())
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = urls.database_url, urls.redis_url
    get_settings.cache_clear()  # so that code reading settings later (the app factory) sees the URLs
    return get_settings(), urls


@asynccontextmanager
async def cli_resources(settings: Settings) -> AsyncIterator[Resources]:
    from api.resources import close_resources, open_resources

    resources = await open_resources(settings)
    try:
        yield resources
    finally:
        await close_resources(resources)


def require_secret_key() -> None:
    """The API and the worker seal and open chat jobs' API keys with HAB_SECRET_KEY (see settings_with_secret)."""
    from api.settings import SecretKeyError, settings_with_secret

    try:
        settings_with_secret()
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None


def run_with_services(body: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings, urls = services_for_cli()
    try:
        return asyncio.run(body(settings))
    finally:
        urls.stop_embedded()


def run_domain(body: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """run_with_services, with domain errors printed as the Korean message instead of a traceback."""
    from api.errors import DomainError

    try:
        return run_with_services(body)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None

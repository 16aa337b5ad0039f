"""`hab users`: accounts and their API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from api.cli.common import cli_resources, run_with_services

if TYPE_CHECKING:
    from api.settings import Settings


@click.group()
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
            async with resources.sessions() as session:
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
            async with resources.sessions() as session:
                rows = await UserService(session).list()
        click.echo(f"{'ID':>4}  {'ROLE':<7} {'CREATED':<20} NAME")
        for u in rows:
            click.echo(f"{u.id:>4}  {u.role:<7} {u.created_at:%Y-%m-%d %H:%M:%S}  {u.name}")

    run_with_services(body)

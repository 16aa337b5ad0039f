"""`hab migrate` and `hab demo-data`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from api.cli.common import cli_resources, run_with_services, services_for_cli

if TYPE_CHECKING:
    from api.settings import Settings


@click.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from api.db.migrate import upgrade_head

    settings, urls = services_for_cli()
    try:
        upgrade_head(settings.database_url or "")
        click.echo("데이터베이스 스키마가 최신입니다 (alembic head).")
    finally:
        urls.stop_embedded()


@click.command("demo-data")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Row-count multiplier.")
@click.option("--force", is_flag=True, help="Load again even if demo datasets exist.")
def demo_data(scale: float, force: bool) -> None:
    """Generate and store the synthetic demo datasets (team-visible, named 데모)."""
    from api.demo.loader import load_demo_datasets

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            loaded = await load_demo_datasets(resources, scale=scale, force=force, echo=click.echo)
        click.echo(f"데모 데이터셋 {len(loaded)}개를 저장했습니다." if loaded else "데모 데이터셋이 이미 있습니다.")

    run_with_services(body)

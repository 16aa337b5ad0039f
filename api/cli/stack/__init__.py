"""`hab run`: the whole local stack, supervised (run.py); `hab prepare-local`, its one-shot setup step."""

from __future__ import annotations

import sys

import click


@click.command()
def run() -> None:
    """Everything for local use: services, migrations, demo data, API, worker and UI (what `make run` calls)."""
    from api.cli.stack.run import run_stack

    sys.exit(run_stack())


@click.command("prepare-local", hidden=True)
@click.option("--server-url", default=None, help="The embedded PostgreSQL's maintenance URL.")
def prepare_local(server_url: str | None) -> None:
    """Migrations, the local admin token, demo data and model (run by `hab run` before the API starts)."""
    from api.cli.stack.prepare import prepare_local_stack

    prepare_local_stack(server_url)

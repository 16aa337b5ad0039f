"""The `hab` command: one module per command group.

Every module imports the application only inside its commands, so that `hab run` — the supervisor of the
local stack — stays a small process.
"""

from __future__ import annotations

import click

from api.cli import database, models, score, serve, stack, users, worker
from api.runtime import prepare_process


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """hab — 대구 교통안전 데이터 플랫폼 (API, workers, model, frontend)."""
    prepare_process()


for command in (
    serve.serve,
    worker.worker,
    database.migrate,
    database.demo_data,
    users.users,
    models.train,
    models.models,
    score.score,
    stack.run,
    stack.prepare_local,
):
    main.add_command(command)

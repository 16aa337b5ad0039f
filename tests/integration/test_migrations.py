"""Migrations are the only way the schema changes: they must match the models and run both ways."""

from __future__ import annotations

import asyncio
import secrets

from alembic import command

from api.db.migrate import alembic_config, downgrade_base, upgrade_head
from api.local.services import drop_database, ensure_database, with_database


def test_migrations_match_models_and_run_both_ways(services):
    name = f"hab_migrations_{secrets.token_hex(3)}"
    server = with_database(services.database_url, "postgres")
    asyncio.run(ensure_database(server, name))
    url = with_database(services.database_url, name)
    try:
        upgrade_head(url)
        command.check(alembic_config(url))  # raises if the models need a migration nobody wrote
        downgrade_base(url)
        upgrade_head(url)
    finally:
        asyncio.run(drop_database(server, name))

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


def test_datasets_stored_before_profile_versions_count_as_stale(services):
    """Rows that exist when 0008 runs were profiled by the old code: version 1, which the app recomputes."""
    import asyncpg

    from api.db.engine import to_libpq_url

    name = f"hab_migrations_{secrets.token_hex(3)}"
    server = with_database(services.database_url, "postgres")
    asyncio.run(ensure_database(server, name))
    url = with_database(services.database_url, name)

    async def sql(query: str):
        connection = await asyncpg.connect(to_libpq_url(url))
        try:
            return await connection.fetch(query)
        finally:
            await connection.close()

    try:
        command.upgrade(alembic_config(url), "0007")
        asyncio.run(sql("insert into users (name, role, token_hash) values ('old', 'member', 'h')"))
        asyncio.run(sql("insert into dataset_blobs (content_sha256, parquet, parquet_bytes) values ('a', 'x', 1)"))
        asyncio.run(
            sql(
                "insert into datasets (owner_id, name, version, kind, visibility, rows, columns, content_sha256,"
                " size_bytes, encoding, summary) select id, 'old', 1, 'generic', 'private', 1, '[]', 'a', 1,"
                " 'utf-8', '{\"coordinates\": null}' from users"
            )
        )
        upgrade_head(url)
        assert [r["profile_version"] for r in asyncio.run(sql("select profile_version from datasets"))] == [1]
    finally:
        asyncio.run(drop_database(server, name))

"""Where PostgreSQL and Redis come from: the configured URLs, or embedded servers under the data folder."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from api.local.embedded import EmbeddedPostgres, EmbeddedRedis

if TYPE_CHECKING:
    from api.settings import Settings

logger = logging.getLogger("hab.services")

APP_DATABASE = "hab"


@dataclass
class ServiceUrls:
    database_url: str
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    def stop_embedded(self, *, force: bool = False) -> None:
        """Stop the embedded servers this process started (or all of them with `force`)."""
        for server in self.embedded:
            if server.started_here or force:
                server.stop()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (query string such as ?host= kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def ensure_database(server_url: str, database: str) -> None:
    """CREATE DATABASE unless it exists (PostgreSQL has no IF NOT EXISTS for databases)."""
    import asyncpg

    from api.db.engine import to_libpq_url

    conn = await asyncpg.connect(to_libpq_url(with_database(server_url, "postgres")))
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", database)
        if not exists:
            await conn.execute(f'create database "{database}"')
    finally:
        await conn.close()


async def drop_database(server_url: str, database: str) -> None:
    import asyncpg

    from api.db.engine import to_libpq_url

    conn = await asyncpg.connect(to_libpq_url(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'drop database if exists "{database}" with (force)')
    finally:
        await conn.close()


def resolve_services(settings: Settings, *, data_dir: Path | None = None) -> ServiceUrls:
    """URLs from settings, starting embedded servers for whichever is unset."""
    base = data_dir or settings.data_dir
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = []
    database_url = settings.database_url
    if not database_url:
        pg = EmbeddedPostgres(base / "postgres")
        server_url = pg.start()
        embedded.append(pg)
        asyncio.run(ensure_database(server_url, APP_DATABASE))
        database_url = with_database(server_url, APP_DATABASE)
        logger.info("embedded PostgreSQL under %s", pg.data_dir)
    redis_url = settings.redis_url
    if not redis_url:
        rd = EmbeddedRedis(base / "redis")
        redis_url = rd.start()
        embedded.append(rd)
        logger.info("embedded Redis at %s", redis_url)
    return ServiceUrls(database_url=database_url, redis_url=redis_url, embedded=embedded)

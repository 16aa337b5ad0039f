"""Folders and files only their owner can read: the data folder (.data/) and env/.

The data folder holds the embedded PostgreSQL and Redis; env/.env holds HAB_SECRET_KEY and the local admin
token. Neither may be readable by other accounts on the machine.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
# Owner-only, but other accounts may pass through (not list): for a folder that holds the data folder of a
# server running as another system user (the embedded PostgreSQL when hab runs as root).
TRAVERSABLE_DIR_MODE = 0o711
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077


def make_private_dir(path: Path, *, others_may_traverse: bool = False) -> Path:
    """Create `path` (and missing parents) and make it owner-only (0700, or 0711 with `others_may_traverse`).

    An existing folder owned by someone else is left as it is (we could not change it anyway unless root),
    and a shared sticky folder such as /tmp is refused: making it private would break the machine.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    info = path.stat()
    if info.st_mode & stat.S_ISVTX:
        raise ValueError(f"{path} is a shared folder (like /tmp); give hab a folder of its own")
    if info.st_uid == os.geteuid():
        os.chmod(path, TRAVERSABLE_DIR_MODE if others_may_traverse else PRIVATE_DIR_MODE)
    return path


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created inside (by this process or the servers it starts) are owner-only.

    The umask is process-wide: use this around start-up steps, not around code running in other threads.
    """
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)

"""Reading and updating env/.env without losing keys someone else put there (e.g. claude_api_key).

The file holds HAB_SECRET_KEY and the local admin token, so it is always written owner-only (0600), in
one piece (a temporary file renamed over it) and under an exclusive lock on a sidecar file, so that two
processes starting together (`hab serve` and `hab worker`) never lose each other's update or make two
different secrets.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from api.local.private import PRIVATE_FILE_MODE, make_private_dir
from api.secret_key import is_placeholder_secret

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first starts are then the user's care
    fcntl = None  # type: ignore[assignment]

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
SECRET_KEY_NAME = "HAB_SECRET_KEY"


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2).strip().strip("'\"")
    return values


def lock_path(path: Path) -> Path:
    """The sidecar lock file (kept, never deleted: deleting it would let two lockers hold different files)."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    if not path.parent.exists():
        make_private_dir(path.parent)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file; point HAB_ENV_FILE at a file hab may write")
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _merged(path: Path, updates: dict[str, str]) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    remaining = dict(updates)
    out: list[str] = []
    for line in lines:
        match = _LINE.match(line)
        if match and match.group(1) in remaining:
            out.append(f"{match.group(1)}={remaining.pop(match.group(1))}")
        else:
            out.append(line)
    out.extend(f"{key}={value}" for key, value in remaining.items())
    return out


def _write_private(path: Path, lines: list[str]) -> None:
    """Replace `path` atomically; the new file is 0600 from its first byte (mkstemp creates it so)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, PRIVATE_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def update_env_file(path: Path, updates: dict[str, str]) -> None:
    """Set `updates` in place: existing lines (and comments) for other keys stay as they are."""
    with _locked(path):
        _write_private(path, _merged(path, updates))


def ensure_secret_key(path: Path) -> str:
    """HAB_SECRET_KEY from the env file, generated (and written there, 0600) when it has no real one.

    A placeholder copied from env/*.example is replaced; every other line is kept. Two processes calling
    this at once get the same value: the second one reads what the first wrote, under the lock.
    """
    with _locked(path):
        current = read_env_file(path).get(SECRET_KEY_NAME)
        if current is not None and not is_placeholder_secret(current):
            if path.stat().st_mode & 0o077:
                os.chmod(path, PRIVATE_FILE_MODE)  # an older install wrote it 0644
            return current.strip()
        secret = secrets.token_urlsafe(48)
        _write_private(path, _merged(path, {SECRET_KEY_NAME: secret}))
        return secret

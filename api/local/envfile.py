"""Reading and updating env/.env without losing keys someone else put there (e.g. claude_api_key)."""

from __future__ import annotations

import os
import re
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2).strip().strip("'\"")
    return values


def update_env_file(path: Path, updates: dict[str, str]) -> None:
    """Set `updates` in place: existing lines (and comments) for other keys stay as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)  # it holds tokens (and maybe the user's Anthropic key)
    tmp.replace(path)


def ensure_secret_key(path: Path) -> str:
    """TEMPORARY until the secrets branch lands."""
    values = read_env_file(path)
    key = values.get("HAB_SECRET_KEY", "")
    if len(key) < 32:
        import secrets

        key = secrets.token_urlsafe(48)
        update_env_file(path, {"HAB_SECRET_KEY": key})
    return key

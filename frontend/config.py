"""Frontend configuration: the API URL and token (and the user's Anthropic key) from env/ files.

The frontend never imports the backend packages, so this reads the files itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ENV_DIR = Path(__file__).resolve().parent.parent / "env"
# Claude models offered in the sidebar (the first is the default).
MODEL_CHOICES = ("claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5")
DEFAULT_MAP_POINTS = 5_000
MAX_MAP_POINTS = 50_000  # the API's own limit per request
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def _read(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # missing or unreadable: as if absent
        return {}
    values = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2).strip().strip("'\"")
    return values


@dataclass(frozen=True)
class FrontendConfig:
    api_url: str
    api_token: str
    claude_api_key: str
    # Base-map tiles: "osm" (default), "cartodb", a URL template, or "off" for a plain background.
    map_tiles: str = "osm"
    request_timeout: float = 30.0
    upload_timeout: float = 300.0


def load_config() -> FrontendConfig:
    """Environment variables win over env/.env, which wins over env/config.env.

    HAB_ENV_FILE replaces env/.env (as for the backend), so tests never read a developer's file.
    """
    files = _read(ENV_DIR / "config.env")
    files.update(_read(Path(os.environ.get("HAB_ENV_FILE") or ENV_DIR / ".env")))

    def pick(key: str, default: str = "") -> str:
        return os.environ.get(key) or files.get(key) or default

    return FrontendConfig(
        api_url=pick("HAB_API_URL", "http://127.0.0.1:8000").rstrip("/"),
        api_token=pick("HAB_API_TOKEN"),
        claude_api_key=pick("claude_api_key") or pick("CLAUDE_API_KEY"),
        map_tiles=os.environ.get("HAB_MAP_TILES", files.get("HAB_MAP_TILES", "osm")),
    )

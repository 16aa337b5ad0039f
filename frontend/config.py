"""Frontend configuration: the API URL and token (and the user's Anthropic key) from env/ files, and the key
also from the files v1.2.x users kept it in.

The frontend never imports the backend packages, so this reads the files itself.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_DIR = PROJECT_ROOT / "env"
# Where v1.2.x users keep their Anthropic key, below the project folder (read after env/, in this order).
LEGACY_KEY_FILES = (".env", ".streamlit/secrets.toml")
KEY_NAMES = ("claude_api_key", "CLAUDE_API_KEY", "ANTHROPIC_API_KEY")
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


def _read_toml(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):  # missing or unreadable: as if absent
        return {}
    return {k: v.strip() for k, v in data.items() if isinstance(v, str)}


def project_root() -> Path:
    """The project folder (HAB_PROJECT_DIR replaces it, so tests never read a developer's files)."""
    return Path(os.environ.get("HAB_PROJECT_DIR") or PROJECT_ROOT)


def legacy_key() -> tuple[str, str]:
    """(key, file it came from) from the project's `.env` or `.streamlit/secrets.toml`; ("", "") if neither has one."""
    root = project_root()
    for name in LEGACY_KEY_FILES:
        path = root / name
        values = _read_toml(path) if path.suffix == ".toml" else _read(path)
        key = next((values[k] for k in KEY_NAMES if values.get(k)), "")
        if key:
            return key, name
    return "", ""


@dataclass(frozen=True)
class FrontendConfig:
    api_url: str
    api_token: str
    claude_api_key: str
    claude_api_key_source: str = ""  # the file the key was read from (never the key itself), "" if none
    # Base-map tiles: "osm" (default), "cartodb", a URL template, or "off" for a plain background.
    map_tiles: str = "osm"
    request_timeout: float = 30.0
    upload_timeout: float = 300.0


def load_config() -> FrontendConfig:
    """Environment variables win over env/.env, which wins over env/config.env. The Anthropic key is then also
    looked for where v1.2.x kept it: the project's `.env`, then `.streamlit/secrets.toml`
    (claude_api_key or ANTHROPIC_API_KEY).

    HAB_ENV_FILE replaces env/.env (as for the backend), so tests never read a developer's file.
    """
    files = _read(ENV_DIR / "config.env")
    files.update(_read(Path(os.environ.get("HAB_ENV_FILE") or ENV_DIR / ".env")))

    def pick(key: str, default: str = "") -> str:
        return os.environ.get(key) or files.get(key) or default

    key, source = pick("claude_api_key") or pick("CLAUDE_API_KEY"), "env"
    if not key:
        key, source = legacy_key()
    return FrontendConfig(
        api_url=pick("HAB_API_URL", "http://127.0.0.1:8000").rstrip("/"),
        api_token=pick("HAB_API_TOKEN"),
        claude_api_key=key,
        claude_api_key_source=source if key else "",
        map_tiles=os.environ.get("HAB_MAP_TILES", files.get("HAB_MAP_TILES", "osm")),
    )

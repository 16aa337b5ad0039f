from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.local.envfile import read_env_file, update_env_file
from api.settings import Settings


def test_development_accepts_the_placeholder_secret():
    assert Settings(_env_file=None).environment == "development"


@pytest.mark.parametrize("environment", ["test", "production"])
@pytest.mark.parametrize("secret", ["dev-secret-change-me", "change-me", "short"])
def test_placeholder_secrets_are_refused_outside_development(environment, secret):
    with pytest.raises(ValidationError, match="HAB_SECRET_KEY"):
        Settings(
            _env_file=None,
            HAB_ENV=environment,
            HAB_SECRET_KEY=secret,
            database_url="postgresql://x/y",
            redis_url="redis://x",
        )


def test_production_needs_explicit_service_urls():
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, HAB_ENV="production", HAB_SECRET_KEY="x" * 40)


def test_settings_read_the_env_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text("HAB_API_PORT=9123\nclaude_api_key=sk-ant-ignored\n", encoding="utf-8")
    settings = Settings(_env_file=env)
    assert settings.api_port == 9123 and not hasattr(settings, "claude_api_key")


def test_update_env_file_keeps_other_keys_and_comments(tmp_path):
    env = tmp_path / "env" / ".env"
    env.parent.mkdir()
    env.write_text("# my settings\nclaude_api_key=sk-ant-mine\nHAB_API_TOKEN=old\n", encoding="utf-8")
    update_env_file(env, {"HAB_API_TOKEN": "new", "HAB_API_URL": "http://127.0.0.1:8000"})
    text = env.read_text(encoding="utf-8")
    assert text.startswith("# my settings\n")
    assert read_env_file(env) == {
        "claude_api_key": "sk-ant-mine",
        "HAB_API_TOKEN": "new",
        "HAB_API_URL": "http://127.0.0.1:8000",
    }
    assert env.stat().st_mode & 0o077 == 0  # tokens inside: owner-only

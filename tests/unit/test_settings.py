from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from api.local.envfile import read_env_file, update_env_file
from api.settings import SecretKeyError, Settings


@pytest.fixture(autouse=True)
def _no_secret_from_the_shell(monkeypatch):
    """A developer's exported HAB_SECRET_KEY / HAB_ENV must not decide these tests."""
    for name in ("HAB_SECRET_KEY", "HAB_ENV", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_there_is_no_default_secret():
    settings = Settings(_env_file=None)
    assert settings.environment == "development" and settings.secret_key is None
    with pytest.raises(SecretKeyError, match="make run"):
        settings.sealing_secret()


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize("secret", ["dev-secret-change-me", "change-me", "CHANGE-ME", "short", " " * 40, "x" * 31])
def test_placeholder_secrets_are_refused_outside_tests(environment, secret):
    settings = Settings(
        _env_file=None,
        HAB_ENV=environment,
        HAB_SECRET_KEY=secret,
        database_url="postgresql://x/y",
        redis_url="redis://x",
    )
    with pytest.raises(SecretKeyError, match="HAB_SECRET_KEY"):
        settings.sealing_secret()


def test_the_test_environment_accepts_a_placeholder_but_not_nothing():
    assert Settings(_env_file=None, HAB_ENV="test", HAB_SECRET_KEY="dev-secret-change-me").sealing_secret() == (
        "dev-secret-change-me"
    )
    with pytest.raises(SecretKeyError):
        Settings(_env_file=None, HAB_ENV="test").sealing_secret()


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_a_random_secret_is_accepted(environment):
    secret = secrets.token_urlsafe(32)
    settings = Settings(
        _env_file=None,
        HAB_ENV=environment,
        HAB_SECRET_KEY=secret,
        database_url="postgresql://x/y",
        redis_url="redis://x",
    )
    assert settings.sealing_secret() == secret


def test_settings_without_a_secret_still_load_for_commands_that_never_seal():
    """`hab migrate`, `hab users`, ... read Settings too; only sealing (API, worker) needs the secret."""
    settings = Settings(_env_file=None, HAB_ENV="production", database_url="postgresql://x/y", redis_url="redis://x")
    assert settings.database_url == "postgresql://x/y"


def test_production_needs_explicit_service_urls():
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, HAB_ENV="production", HAB_SECRET_KEY=secrets.token_urlsafe(32))


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


def test_share_link_addresses_follow_the_public_urls():
    local = Settings(_env_file=None, HAB_UI_PORT=8600)
    assert (local.ui_url, local.api_url) == ("http://127.0.0.1:8600", "http://127.0.0.1:8000")
    behind_nginx = Settings(_env_file=None, HAB_PUBLIC_URL="https://hab.example.org/")
    assert (behind_nginx.ui_url, behind_nginx.api_url) == ("https://hab.example.org", "https://hab.example.org")
    split = Settings(_env_file=None, HAB_PUBLIC_URL="http://ui:1", HAB_PUBLIC_API_URL="http://api:2")
    assert (split.ui_url, split.api_url) == ("http://ui:1", "http://api:2")

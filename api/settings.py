"""Typed settings, read once from the environment (and env/.env when present)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.secret_key import (  # noqa: F401  (re-exported: callers import them from the settings)
    MIN_SECRET_LENGTH,
    PLACEHOLDER_SECRETS,
    SECRET_KEY_HELP,
    SecretKeyError,
    is_placeholder_secret,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ENV_FILE = PROJECT_ROOT / "env" / ".env"

# Current models (anthropic SDK 2.12's list). claude-sonnet-4-5 reaches end of life on 2026-11-30 and is refused.
DEFAULT_CHAT_MODEL = "claude-sonnet-5-5"
CHAT_MODELS = ("claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5", "claude-sonnet-4-6", "claude-haiku-4-5")
# Public list prices per million tokens (input, output) in USD; override with HAB_CHAT_PRICES (JSON).
CHAT_PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-sonnet-5-5": (3.0, 15.0),
    "claude-haiku-5-5": (1.0, 5.0),
    "claude-opus-5-5": (5.0, 25.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
}


class ProcessSettings(BaseSettings):
    """Where the processes of a stack find each other: all that `hab run`, the supervisor, reads."""

    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Literal["development", "test", "production"] = Field(default="development", validation_alias="HAB_ENV")
    # Unset means "start an embedded server under data_dir" (see api.local.services).
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Field(default=PROJECT_ROOT / ".data", validation_alias="HAB_DATA_DIR")

    api_host: str = Field(default="127.0.0.1", validation_alias="HAB_API_HOST")
    api_port: int = Field(default=8000, validation_alias="HAB_API_PORT")
    ui_port: int = Field(default=8501, validation_alias="HAB_UI_PORT")
    # The UI's public address (nginx in production, Streamlit under `hab run`): share links open a page there.
    public_url: str | None = Field(default=None, validation_alias="HAB_PUBLIC_URL")
    # The API's public address, for the JSON of a share link; unset: HAB_PUBLIC_URL when set (nginx serves
    # /api/ under the same address), else this machine's API.
    public_api_url: str | None = Field(default=None, validation_alias="HAB_PUBLIC_API_URL")

    @property
    def ui_url(self) -> str:
        """Where people open the UI (share pages live there)."""
        return (self.public_url or f"http://{self.api_host}:{self.ui_port}").rstrip("/")

    @property
    def api_url(self) -> str:
        """Where clients reach the API from outside."""
        return (self.public_api_url or self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")


class Settings(ProcessSettings):
    """Everything the API, the workers and the commands read."""

    # Seals the Anthropic key of a queued chat job (api.chat.keybox) and nothing else. No default: a public
    # default would open every sealed key. Checked where it is used (sealing_secret), so commands that never
    # seal (migrate, users, score, ...) need none.
    secret_key: str | None = Field(default=None, validation_alias="HAB_SECRET_KEY")

    upload_max_bytes: int = Field(default=200 * 1024 * 1024, validation_alias="HAB_UPLOAD_MAX_BYTES")
    # Uploads received at once per API process (each holds up to upload_max_bytes and its parse); others wait.
    upload_slots: int = Field(default=2, ge=1, le=64, validation_alias="HAB_UPLOAD_SLOTS")
    upload_slot_wait_seconds: float = Field(default=30.0, ge=0, validation_alias="HAB_UPLOAD_SLOT_WAIT_SECONDS")
    dataset_cache_bytes: int = Field(default=1024 * 1024 * 1024, validation_alias="HAB_DATASET_CACHE_BYTES")
    share_link_default_ttl: int = Field(default=7 * 24 * 3600, validation_alias="HAB_SHARE_TTL")
    db_pool_size: int = Field(default=10, validation_alias="HAB_DB_POOL_SIZE")
    log_level: str = Field(default="INFO", validation_alias="HAB_LOG_LEVEL")
    # json: one JSON object per line (the compose stack); console: readable lines (development).
    log_format: Literal["console", "json"] = Field(default="console", validation_alias="HAB_LOG_FORMAT")
    # Each `hab worker` serves /metrics here (0 turns it off); the API serves /metrics on its own port.
    worker_metrics_host: str = Field(default="127.0.0.1", validation_alias="HAB_WORKER_METRICS_HOST")
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535, validation_alias="HAB_WORKER_METRICS_PORT")
    model_recheck_seconds: float = Field(default=30.0, gt=0, validation_alias="HAB_MODEL_RECHECK_SECONDS")
    # Batches are predicted by the model compiled to native code (models/compiled.py) once it is built, in
    # the background after activation; "off", or no C compiler on the machine, keeps LightGBM for everything.
    model_compile: Literal["auto", "off"] = Field(default="auto", validation_alias="HAB_MODEL_COMPILE")
    # Where compiled models are cached (default: <HAB_DATA_DIR>/compiled-models); processes may share it.
    model_compile_dir: Path | None = Field(default=None, validation_alias="HAB_MODEL_COMPILE_DIR")
    model_compile_threads: int = Field(default=1, ge=1, le=64, validation_alias="HAB_MODEL_COMPILE_THREADS")
    # Tests use a queue of their own so nothing left in a shared Redis is ever picked up.
    queue_name: str = Field(default="arq:queue", validation_alias="HAB_QUEUE_NAME")
    score_chunk_rows: int | None = Field(default=None, gt=0, validation_alias="HAB_SCORE_CHUNK_ROWS")
    # Helper deliveries a scoring job asks for (other workers score its parts beside it; 0: one worker each).
    score_helpers: int = Field(default=7, ge=0, le=64, validation_alias="HAB_SCORE_HELPERS")
    # The lease of a running job (api/jobs/locks.py): renewed every heartbeat by the live run; a job whose
    # lease is older than stale_seconds and whose lock nobody holds is put back in line by the sweeper.
    job_heartbeat_seconds: float = Field(default=2.0, gt=0, validation_alias="HAB_JOB_HEARTBEAT_SECONDS")
    job_stale_seconds: float = Field(default=6.0, gt=0, validation_alias="HAB_JOB_STALE_SECONDS")
    # A worker's record on the job dashboard (api/jobs/presence.py) expires this long after its last renewal
    # (renewed every third of it), so a dead worker leaves the list within it.
    worker_ttl_seconds: float = Field(default=30.0, gt=0, le=60, validation_alias="HAB_WORKER_TTL_SECONDS")
    # A running job whose worker went silent this many times fails instead of being queued again.
    job_max_attempts: int = Field(default=5, gt=0, validation_alias="HAB_JOB_MAX_ATTEMPTS")
    demo_scale: float = Field(default=1.0, gt=0, validation_alias="HAB_DEMO_SCALE")
    # A v1.2.5 `model/` folder that `hab run` imports and activates once (default: `model/` in the project).
    legacy_model_dir: Path | None = Field(default=None, validation_alias="HAB_LEGACY_MODEL_DIR")
    # Memory reuse for large uploads (api/runtime.py): Arrow's allocator, and how long freed memory is kept.
    arrow_memory_pool: Literal["jemalloc", "mimalloc", "system", "default"] = Field(
        default="jemalloc", validation_alias="HAB_ARROW_MEMORY_POOL"
    )
    memory_reuse_seconds: float = Field(default=10.0, ge=0, validation_alias="HAB_MEMORY_REUSE_SECONDS")

    # Chat (Anthropic). The user's API key is never a setting: it arrives with each request.
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    anthropic_timeout: float = Field(default=120.0, gt=0, validation_alias="HAB_ANTHROPIC_TIMEOUT")
    anthropic_max_retries: int = Field(default=2, ge=0, le=5, validation_alias="HAB_ANTHROPIC_MAX_RETRIES")
    chat_default_model: str = Field(default=DEFAULT_CHAT_MODEL, validation_alias="HAB_CHAT_MODEL")
    chat_models: list[str] = Field(default_factory=lambda: list(CHAT_MODELS), validation_alias="HAB_CHAT_MODELS")
    chat_max_iterations: int = Field(default=8, ge=1, le=30, validation_alias="HAB_CHAT_MAX_ITERATIONS")
    chat_max_tokens: int = Field(default=4096, ge=64, le=64000, validation_alias="HAB_CHAT_MAX_TOKENS")
    cache_ttl: int = Field(default=3600, ge=0, validation_alias="CACHE_TTL")
    # USD per million tokens (input, output); models missing here are costed at the default Sonnet price.
    chat_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(CHAT_PRICES_USD_PER_MTOK), validation_alias="HAB_CHAT_PRICES"
    )
    usd_to_krw: float = Field(default=1400.0, gt=0, validation_alias="HAB_USD_KRW")

    @model_validator(mode="after")
    def _check_chat_models(self) -> Settings:
        from anthropic.resources.messages.messages import DEPRECATED_MODELS  # heavy: only where settings are whole

        retired = [m for m in [self.chat_default_model, *self.chat_models] if m in DEPRECATED_MODELS]
        if retired:
            raise ValueError(
                f"chat model(s) {retired} are deprecated by Anthropic (end of life: "
                f"{', '.join(DEPRECATED_MODELS[m] for m in retired)}); choose current models"
            )
        if self.chat_default_model not in self.chat_models:
            self.chat_models = [self.chat_default_model, *self.chat_models]
        return self

    @model_validator(mode="after")
    def _fit_job_lease(self) -> Settings:
        # A lease renewed less than about three times per stale period could lapse under a live run.
        self.job_heartbeat_seconds = min(self.job_heartbeat_seconds, self.job_stale_seconds / 3)
        return self

    @model_validator(mode="after")
    def _production_needs_service_urls(self) -> Settings:
        if self.environment == "production" and not (self.database_url and self.redis_url):
            raise ValueError("DATABASE_URL and REDIS_URL must be set in production")
        return self

    def sealing_secret(self) -> str:
        """HAB_SECRET_KEY for sealing chat jobs' API keys, refused when missing or a placeholder.

        Only HAB_ENV=test accepts a placeholder (a test may reproduce the old default on purpose); a missing
        value is refused everywhere.
        """
        value = self.secret_key
        if value is None or not value.strip():
            raise SecretKeyError(SECRET_KEY_HELP)
        if self.environment != "test" and is_placeholder_secret(value):
            raise SecretKeyError(SECRET_KEY_HELP)
        return value


def env_file_path() -> Path:
    """env/.env, or HAB_ENV_FILE (tests point it elsewhere so they never touch a developer's file)."""
    return Path(os.environ.get("HAB_ENV_FILE") or DEFAULT_ENV_FILE)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings(_env_file=env_file_path())


def _secret_in_process_environment() -> bool:
    return any(name.upper() == "HAB_SECRET_KEY" for name in os.environ)


def settings_with_secret() -> Settings:
    """get_settings() for a process that seals or opens chat keys: the API, the worker and `hab run`.

    On a developer's machine (HAB_ENV=development) with no real HAB_SECRET_KEY in the environment or in
    env/.env, one is generated once into env/.env (0600), where every local process reads the same value.
    Anywhere else, or when the process environment itself carries a placeholder, SecretKeyError is raised.
    """
    from api.local.envfile import ensure_secret_key

    settings = get_settings()
    if (
        settings.environment == "development"
        and is_placeholder_secret(settings.secret_key)
        and not _secret_in_process_environment()
    ):
        ensure_secret_key(env_file_path())
        get_settings.cache_clear()
        settings = get_settings()
    settings.sealing_secret()
    return settings

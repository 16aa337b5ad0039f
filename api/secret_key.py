"""What counts as a real HAB_SECRET_KEY (kept free of heavy imports: env-file helpers and `hab score` use it)."""

from __future__ import annotations

# Values copied from env/*.example files (and the old built-in default); a real install must replace them.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "dev-secret-change-me", "secret"})
MIN_SECRET_LENGTH = 32
SECRET_KEY_HELP = (
    "HAB_SECRET_KEY가 없거나 예시 값입니다. `make run`(또는 `hab run`)은 처음 실행할 때 무작위 값을 env/.env에 "
    "만들어 둡니다. 직접 정하려면 32자 이상의 무작위 값을 HAB_SECRET_KEY로 설정하세요 "
    "(예: python -c 'import secrets; print(secrets.token_urlsafe(48))'). / "
    "HAB_SECRET_KEY is missing or a placeholder: run `make run` / `hab run` (which generates one into env/.env) "
    f"or set HAB_SECRET_KEY to {MIN_SECRET_LENGTH}+ random characters."
)


class SecretKeyError(RuntimeError):
    """HAB_SECRET_KEY is missing or a placeholder where a process needs it (API, worker, `hab run`)."""


def is_placeholder_secret(value: str | None) -> bool:
    """True for no value, a value copied from the examples, or one too short to be a random secret."""
    if value is None:
        return True
    value = value.strip()
    return value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH

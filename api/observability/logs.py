"""Structured logs: one formatter for structlog and stdlib records (ours, uvicorn's, arq's, the SDKs'),
JSON lines when HAB_LOG_FORMAT=json, readable lines otherwise; the request id and job id of the context on
every line; and the one place where secrets are redacted.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars
from structlog.typing import EventDict, WrappedLogger

from api.settings import Settings

REDACTED = "[redacted]"
# Keys (in a structured event, or quoted in a logged dict/headers) whose values are secrets.
SECRET_KEYS = frozenset(
    {"authorization", "x-anthropic-api-key", "x-api-key", "api_key", "anthropic_api_key", "token", "share_token"}
)
_KEY_NAMES = "|".join(re.escape(k) for k in sorted(SECRET_KEYS, key=len, reverse=True))
_SECRET_PATTERNS = (
    # `'x-api-key': 'value'`, `Authorization: Bearer value`, `api_key=value` inside any logged text.
    re.compile(rf"(?i)(['\"]?(?:{_KEY_NAMES})['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+)?[^'\"\s,;}}\]]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\b(?:hab|shr)_[A-Za-z0-9_-]{16,}"),  # user tokens and share tokens (api/users/tokens.py)
    re.compile(r"\bsk-ant-[A-Za-z0-9_-]+"),  # Anthropic keys
)


def redact_text(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in SECRET_KEYS:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, MutableMapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v) for v in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The one redaction step: every line passes here after formatting, before rendering."""
    return {key: _redact_value(key, value) for key, value in event.items()}


def _drop_record(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    event.pop("_record", None)
    event.pop("_from_structlog", None)
    return event


# The id of the HTTP request being handled, set by api/observability/http.py: one ContextVar of its own, set
# and reset once per request (cheaper than structlog's bound_contextvars on a path that runs every request).
REQUEST_ID: ContextVar[str | None] = ContextVar("hab_request_id", default=None)


def _add_request_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _chain() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def make_formatter(log_format: str = "console") -> logging.Formatter:
    """The formatter of every handler (also named in uvicorn's dictConfig for its worker processes)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    _configure_structlog()
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_chain(),
        processors=[_drop_record, redact, renderer],
    )


def _configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_chain(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for the process (and uvicorn's `log_config`, applied again in each worker process)."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"hab": {"()": "api.observability.logs.make_formatter", "log_format": settings.log_format}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "hab", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level},
        # uvicorn's and arq's loggers keep their own handlers otherwise: route them through the root.
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq")
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))


@contextmanager
def job_context(job_id: int, kind: str) -> Iterator[None]:
    """The job id (and kind) on every line logged while a job runs."""
    with bound_contextvars(job_id=job_id, job_kind=kind):
        yield

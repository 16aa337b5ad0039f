"""Domain exceptions and the one place that maps them to HTTP.

Services and repositories raise these; controllers never build error responses themselves.
Every error body has the shape {"error": {"code", "message" (Korean, for people), "detail"}}.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import asyncpg
import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandler, ExceptionHandlersMap, Scope
from sqlalchemy.exc import DataError, DBAPIError

logger = logging.getLogger("hab.errors")


class DomainError(Exception):
    """Base of every error meant for the API's caller."""

    status_code = 400
    code = "bad_request"
    default_message = "요청을 처리할 수 없습니다."

    def __init__(
        self, message: str | None = None, *, detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.message = message or self.default_message
        self.detail = detail or {}
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(DomainError):
    """A request whose framing is wrong (not its values): a broken form, a missing field."""


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"
    default_message = "입력 값이 올바르지 않습니다."


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_message = "요청한 항목을 찾을 수 없습니다."


class Gone(DomainError):
    status_code = 410
    code = "gone"
    default_message = "더 이상 사용할 수 없는 항목입니다."


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"
    default_message = "인증이 필요합니다. 올바른 API 토큰을 Authorization: Bearer 헤더로 보내 주세요."


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    default_message = "이 작업을 할 권한이 없습니다."


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    default_message = "현재 상태와 충돌하는 요청입니다."


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    default_message = "요청이 너무 큽니다."


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"
    default_message = "지원하지 않는 파일 형식입니다."


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"
    default_message = "일시적으로 서비스를 사용할 수 없습니다. 잠시 후 다시 시도해 주세요."


class ErrorInfo(msgspec.Struct, kw_only=True):
    code: str
    message: str
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorInfo


# Errors name the value they refuse; a huge value (a 150 MB field) must not come back whole, and certainly not
# twice (message and detail). Echoed text is cut to a short prefix, long lists to their first items.
ECHO_CHARS = 200
MESSAGE_CHARS = 1000
ECHO_ITEMS = 50
_CUT = "…"


def _cut_text(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit] + _CUT


def bounded(value: Any, depth: int = 0) -> Any:
    """`value` (a detail of an error) with long strings, long lists and deep nesting cut short."""
    if isinstance(value, str):
        return _cut_text(value, ECHO_CHARS)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if depth >= 4:
        return _CUT if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        items = list(value.items())
        cut = {_cut_text(str(k), ECHO_CHARS): bounded(v, depth + 1) for k, v in items[:ECHO_ITEMS]}
        if len(items) > ECHO_ITEMS:
            cut[_CUT] = f"{len(items) - ECHO_ITEMS}개 더"
        return cut
    if isinstance(value, list | tuple):
        head = [bounded(v, depth + 1) for v in value[:ECHO_ITEMS]]
        return [*head, _CUT] if len(value) > ECHO_ITEMS else head
    return value


def error_response(
    status: int, code: str, message: str, detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    info = ErrorInfo(code=code, message=_cut_text(message, MESSAGE_CHARS), detail=bounded(detail or {}))
    return Response(
        ErrorBody(error=info),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


# Litestar's own HTTP errors (routing, validation, size limits) get Korean messages too.
_HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "요청 형식이 올바르지 않습니다."),
    401: ("unauthorized", Unauthorized.default_message),
    403: ("forbidden", Forbidden.default_message),
    404: ("not_found", "요청한 경로나 항목을 찾을 수 없습니다."),
    405: ("method_not_allowed", "허용되지 않는 HTTP 메서드입니다."),
    413: ("payload_too_large", "요청 본문이 허용된 크기를 넘습니다."),
    415: ("unsupported_media_type", UnsupportedMediaType.default_message),
    429: ("rate_limited", "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요."),
}


def handle_domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[ErrorBody]:
    return error_response(exc.status_code, exc.code, exc.message, exc.detail, exc.headers or None)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    code, message = _HTTP_MESSAGES.get(status, ("http_error", "요청을 처리할 수 없습니다."))
    detail: dict[str, Any] = {}
    if isinstance(exc, ValidationException):
        code, message = "invalid_input", "요청 값이 올바르지 않습니다."
        detail = {"errors": exc.extra} if exc.extra else {"reason": exc.detail}
        status = 400 if status == 400 else status
    elif isinstance(exc, NotAuthorizedException):
        code, message = "unauthorized", Unauthorized.default_message
    return error_response(status, code, message, detail, dict(exc.headers or {}) or None)


_BAD_BODY_MESSAGE = "JSON 본문을 읽을 수 없습니다. UTF-8로 인코딩된, 지나치게 깊게 중첩되지 않은 JSON을 보내 주세요."
# SQLSTATEs of values PostgreSQL cannot take: NUL or bad UTF-8 in text (22021), \u0000 in jsonb (22P05),
# a number out of the column's range (22003). All come from the caller's values; none is a server fault.
_BAD_VALUE_SQLSTATES = {"22021", "22P05", "22003"}


def _raised_in(exc: BaseException, module_prefixes: tuple[str, ...]) -> bool:
    """Whether the innermost Python frame of `exc` belongs to one of these modules."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith(module_prefixes)


def handle_undecodable(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """A JSON body that is not UTF-8 or nests deeper than the decoder goes: msgspec raises UnicodeDecodeError or
    RecursionError, which Litestar does not turn into a 400. Raised anywhere else, they are bugs (a 500)."""
    if not _raised_in(exc, ("litestar.serialization", "api.predictions.batch_rows", "api.predictions.single_http")):
        return handle_unexpected(request, exc)
    logger.info("undecodable JSON body on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(400, "bad_json", _BAD_BODY_MESSAGE, {"reason": type(exc).__name__})


def _bad_value(request: Request[Any, Any, Any], sqlstate: str | None) -> Response[ErrorBody]:
    logger.info("refused value on %s %s (sqlstate %s)", request.method, request.url.path, sqlstate)
    return error_response(
        400,
        "invalid_value",
        "저장하거나 찾을 수 없는 값이 들어 있습니다 (NUL 문자, 잘못된 문자, 범위를 벗어난 숫자 등).",
        {"sqlstate": sqlstate},
    )


def handle_database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[ErrorBody]:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    # asyncpg refuses to encode some arguments itself (an int beyond int64): a DataError without a SQLSTATE.
    if sqlstate in _BAD_VALUE_SQLSTATES or (sqlstate is None and isinstance(exc, DataError)):
        return _bad_value(request, sqlstate)
    return handle_unexpected(request, exc)


def handle_driver_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """The same refusals from statements run on the driver itself, outside SQLAlchemy (a chat cache hit)."""
    sqlstate = getattr(exc, "sqlstate", None)
    # The driver's own refusal to encode an argument is the bare class-22 DataError (22000).
    if sqlstate in _BAD_VALUE_SQLSTATES or type(exc) is asyncpg.DataError:
        return _bad_value(request, sqlstate)
    return handle_unexpected(request, exc)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    # The traceback (with the exception's text) goes to the log, never to the caller. No code path formats a
    # secret into an exception message; Anthropic SDK errors are re-raised unchained (api.chat.turns).
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "서버 내부 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    UnicodeDecodeError: handle_undecodable,
    RecursionError: handle_undecodable,
    DBAPIError: handle_database_error,
    asyncpg.PostgresError: handle_driver_error,
    Exception: handle_unexpected,
}


def answer_outside_litestar(exc: Exception, scope: Scope) -> Response[ErrorBody]:
    """The answer to an error raised where Litestar's exception handling does not run (api/lanes.py): the
    handler that EXCEPTION_HANDLERS names for the exception's nearest class, as Litestar would pick it."""
    return cast("Response[ErrorBody]", _handler_for(exc)(Request(scope), exc))


def _handler_for(exc: Exception) -> ExceptionHandler:
    # The map has no status-code keys, so the nearest class decides, as in Litestar's own lookup (a unit test
    # compares the two).
    return next(EXCEPTION_HANDLERS[cls] for cls in type(exc).__mro__ if cls in EXCEPTION_HANDLERS)

"""The Anthropic client per request, its errors as domain errors, and the price of a turn.

One pooled httpx client is created with the process's resources; each request wraps it in an
``AsyncAnthropic`` carrying that request's key (cheap: no new connections), and the key goes nowhere else.
"""

from __future__ import annotations

import logging

import anthropic

from api.errors import DomainError
from api.settings import Settings

logger = logging.getLogger("hab.chat.llm")

KEY_HEADER = "X-Anthropic-API-Key"
MAX_KEY_LENGTH = 512
# What the routes accept in the key header (printable ASCII, no spaces); the lane checks the same (api/chat/lane.py).
KEY_PATTERN = rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$"


class AnthropicKeyMissing(DomainError):
    status_code = 400
    code = "anthropic_key_missing"
    default_message = "Anthropic API 키가 필요합니다. X-Anthropic-API-Key 헤더에 키를 넣어 보내 주세요."


class AnthropicKeyInvalid(DomainError):
    status_code = 401
    code = "anthropic_key_invalid"
    default_message = "Anthropic API 키가 올바르지 않거나 만료되었습니다. 키를 확인해 주세요."


class AnthropicForbidden(DomainError):
    status_code = 403
    code = "anthropic_forbidden"
    default_message = "이 Anthropic API 키로는 요청한 모델이나 기능을 쓸 수 없습니다."


class AnthropicRateLimited(DomainError):
    status_code = 429
    code = "anthropic_rate_limited"
    default_message = "Anthropic API 사용 한도에 도달했습니다. 잠시 후 다시 시도해 주세요."


class AnthropicUnavailable(DomainError):
    status_code = 503
    code = "anthropic_unavailable"
    default_message = "Anthropic API가 일시적으로 과부하 상태이거나 응답하지 않습니다. 잠시 후 다시 시도해 주세요."


class AnthropicUnreachable(DomainError):
    status_code = 502
    code = "anthropic_unreachable"
    default_message = "Anthropic API에 연결할 수 없습니다. 네트워크나 ANTHROPIC_BASE_URL 설정을 확인해 주세요."


class AnthropicRejected(DomainError):
    status_code = 502
    code = "anthropic_rejected"
    default_message = "Anthropic API가 요청을 거절했습니다. 잠시 후 다시 시도하거나 다른 모델을 골라 주세요."


def require_key(raw: str | None) -> str:
    """The request's key, stripped; a missing or absurd header is a 400 (the value is never echoed)."""
    key = (raw or "").strip()
    if not key:
        raise AnthropicKeyMissing()
    if len(key) > MAX_KEY_LENGTH or any(not "\x21" <= c <= "\x7e" for c in key):
        raise AnthropicKeyMissing("Anthropic API 키 형식이 올바르지 않습니다. 키를 다시 확인해 주세요.")
    return key


def _retry_after(exc: anthropic.APIStatusError) -> str | None:
    value = exc.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return str(max(0, round(float(value))))
    except ValueError:
        return None


# Error types Anthropic sends as an `error` event inside a 200 stream, by the status they would have had.
_STREAM_ERROR_STATUS = {
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _error_type(exc: anthropic.APIStatusError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    value = error.get("type") if isinstance(error, dict) else None
    return value if isinstance(value, str) else None


def _for_status(status: int, retry_after: str | None) -> DomainError:
    upstream = {"upstream_status": status}
    retry_headers = {"Retry-After": retry_after} if retry_after else None
    if status == 401:
        return AnthropicKeyInvalid()
    if status == 403:
        return AnthropicForbidden()
    if status == 429:
        detail = {"retry_after": int(retry_after)} if retry_after else {}
        return AnthropicRateLimited(detail=detail, headers=retry_headers)
    if status >= 500:
        return AnthropicUnavailable(detail=upstream, headers=retry_headers)
    if status == 404:
        return AnthropicRejected("요청한 Claude 모델을 찾을 수 없습니다. 다른 모델을 골라 주세요.", detail=upstream)
    return AnthropicRejected(detail=upstream)


def map_anthropic_error(exc: Exception) -> DomainError:
    """Translate an SDK error into the status and Korean message the caller sees.

    Only the status and error type are used: SDK messages may quote the request (never the key, but there
    is no reason to pass upstream text through).
    """
    if isinstance(exc, anthropic.APITimeoutError):
        return AnthropicUnreachable("Anthropic API 응답이 제한 시간 안에 오지 않았습니다. 잠시 후 다시 시도해 주세요.")
    if isinstance(exc, anthropic.APIConnectionError):
        return AnthropicUnreachable()
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:  # an `error` event inside a streamed 200 response (e.g. overloaded mid-answer)
            status = _STREAM_ERROR_STATUS.get(_error_type(exc) or "", 500)
        return _for_status(status, _retry_after(exc))
    return AnthropicRejected()


def llm_outcome(exc: Exception) -> str:
    """The outcome label of a failed call: the error code the caller sees (a closed set), never SDK text."""
    if isinstance(exc, anthropic.AnthropicError):
        return map_anthropic_error(exc).code
    return "error"


class AnthropicGateway:
    """Builds per-request SDK clients over one shared connection pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The SDK's own transport class (it runs on httpx2, not httpx) with its default pool limits.
        self.http = anthropic.DefaultAsyncHttpxClient(
            timeout=anthropic.Timeout(settings.anthropic_timeout, connect=10.0)
        )

    def client(self, api_key: str) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=self.settings.anthropic_base_url,
            max_retries=self.settings.anthropic_max_retries,
            timeout=self.settings.anthropic_timeout,
            http_client=self.http,
        )

    async def aclose(self) -> None:
        await self.http.aclose()


def price_usd(settings: Settings, model: str, input_tokens: int, output_tokens: int) -> float:
    prices = settings.chat_prices.get(model) or settings.chat_prices.get(settings.chat_default_model) or (3.0, 15.0)
    return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 6)


def usd_to_krw(settings: Settings, usd: float) -> float:
    return round(usd * settings.usd_to_krw, 2)

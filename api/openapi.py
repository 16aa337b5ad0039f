"""The error responses each operation documents, with the body hab really sends (api/errors.py's ErrorBody).

Litestar documents a handler's 400 as its own `{status_code, detail, extra}` body, which hab never sends (the one
error mapper turns every error into `{"error": {code, message, detail}}`). `document_errors` gives every route
the statuses it can answer, derived from what the route is (authenticated, admin-only, has path parameters or
a body), plus the ones its service raises (`_RAISED`) or its controller declares with `errors(...)`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from litestar import Litestar, Request, Response
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import Scope

from api.errors import ErrorBody
from api.schemas import BIG_ID_SCHEMA, INT64_MAX, Input
from api.users.auth import admin_only

_DESCRIPTIONS: dict[int, str] = {
    400: "요청 형식이 올바르지 않음 (깨진 JSON, 범위를 벗어난 값, NUL 문자 등)",
    401: "인증 필요 (Authorization: Bearer 토큰이 없거나 올바르지 않음)",
    403: "권한 없음",
    404: "항목이나 경로를 찾을 수 없음",
    409: "현재 상태와 충돌",
    410: "더 이상 사용할 수 없음",
    413: "요청 본문이 너무 큼",
    415: "지원하지 않는 형식",
    422: "입력 값이 올바르지 않음",
    429: "요청이 너무 많음",
    500: "서버 내부 오류",
    502: "외부 서비스(Anthropic) 오류",
    503: "일시적으로 사용할 수 없음 (데이터베이스, Redis, 모델)",
    504: "외부 서비스(Anthropic) 응답 지연",
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_CHAT = (403, 404, 429, 502, 504)
# Statuses a route's service raises beyond the derived ones (ids in bodies, ownership, state conflicts, Anthropic).
_RAISED: dict[str, tuple[int, ...]] = {
    "POST /api/chat/message": _CHAT,
    "POST /api/chat/stream": _CHAT,
    "POST /api/chat/jobs": _CHAT,
    "POST /api/chat/verify-key": (403, 429, 502, 504),
    "POST /api/jobs/{job_id:int}/cancel": (409,),
    "DELETE /api/datasets/{dataset_id:int}": (403,),
    "POST /api/datasets/{dataset_id:int}/share": (403,),
    "GET /api/datasets/{dataset_id:int}/shares": (403,),
    "DELETE /api/datasets/{dataset_id:int}/shares/{share_id:int}": (403,),
    "DELETE /api/shared/{token:str}": (403, 410),
    "GET /api/shared/{token:str}": (410,),
    "GET /api/shared/{token:str}/rows": (410,),
    "GET /api/shared/{token:str}/columns/{column:str}/distribution": (410,),
    "GET /api/shared/{token:str}/points": (410,),
    "GET /api/models/active": (404,),
    "POST /api/predict/jobs": (404,),
    "POST /api/analysis/proximity": (404,),
    "POST /api/datasets/compare": (404,),
    "GET /api/shared/{token:str}/sample": (410,),
    "GET /api/shared/{token:str}/insights": (410,),
}


def _spec(status: int) -> ResponseSpec:
    description = _DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """Extra error statuses of one route (beyond those `document_errors` derives), for its `responses=`."""
    return {status: _spec(status) for status in statuses}


def _statuses(route: HTTPRoute, handler: HTTPRouteHandler) -> set[int]:
    statuses = {400, 422, 500}
    if not route.path.startswith("/api"):
        return statuses | {503}
    statuses |= {503}
    if not handler.opt.get("exclude_from_auth"):
        statuses.add(401)
    if any(admin_only in (layer.guards or ()) for layer in handler.ownership_layers):
        statuses.add(403)
    if route.path_parameters:
        statuses.add(404)
    if handler.http_methods & _BODY_METHODS:
        statuses |= {413, 415}
    for method in handler.http_methods:
        statuses.update(_RAISED.get(f"{method} {route.path}", ()))
    return statuses


def document_errors(app: Litestar) -> None:
    """Set every route handler's error responses (before the OpenAPI document is first built)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            declared = dict(handler.responses or {})
            for status in _statuses(route, handler):
                declared.setdefault(status, _spec(status))
            handler.responses = declared


def answer_options_with_every_method(app: Litestar) -> None:
    """Litestar's automatic OPTIONS handler lists the methods of the route it was first made for: a path whose
    handlers were registered in two steps (GET, then DELETE) answered `Allow: GET, OPTIONS`. Each route's
    OPTIONS handler is pointed at the route it serves now (the handler's function is private to Litestar;
    tests/integration/test_api_hardening.py checks the result)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"} and handler.handler_name == "options_handler":
                handler._fn = _options_answer(route)


def _options_answer(route: HTTPRoute) -> Any:
    def options_handler(scope: Scope) -> Response[None]:
        allow = ", ".join(sorted(route.methods))
        return Response(
            content=None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow}, media_type="text/plain"
        )

    return options_handler


# ---- the finished document -------------------------------------------------------------------------------------
# What Litestar's generator cannot say about msgspec Structs: request bodies (api.schemas.Input) refuse unknown
# fields, and the Meta of list items (ids in ChatRequest.dataset_ids) is dropped. Applied to the generated
# document once, in place, by the JSON and Swagger renderers below (the only ways it is served).
_ITEM_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {("ChatRequest", "dataset_ids"): BIG_ID_SCHEMA}
# Number ranges a service checks itself (so that its refusal can name the range in Korean), and bounds the
# generator drops, documented here.
_PROPERTY_BOUNDS: dict[tuple[str, str], dict[str, Any]] = {
    ("ProximityRequest", "radius_m"): {"minimum": 1, "maximum": 5000},
    # A BigId | None with a Meta of its own (a description) loses BigId's bounds in Litestar's generator.
    ("ChatRequest", "dataset_id"): {"minimum": 1, "maximum": INT64_MAX},
}
_FINISHED = "x-hab-finished"


def _exact_integer_bounds(node: Any) -> None:
    """Litestar writes msgspec's integer bounds as floats, and float(2**63 - 1) is 2**63: a fuzzer then takes
    2**63 + 191 for a valid id. Integer schemas get their bounds back as exact integers."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = min(int(value), INT64_MAX) if key == "maximum" else int(value)
        for child in node.values():
            _exact_integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_integer_bounds(child)


def _input_structs() -> set[str]:
    names: set[str] = set()
    pending: list[type] = [Input]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def finish_openapi(document: dict[str, Any], chat_models: list[str] | None = None) -> dict[str, Any]:
    """Complete the generated OpenAPI document (idempotent; returns it). `chat_models` (HAB_CHAT_MODELS, a
    setting, so not known to the Structs) become the enum of every `model` the chat routes take."""
    info = document.setdefault("info", {})
    if info.get(_FINISHED):
        return document
    components = document.get("components", {}).get("schemas", {})
    for name in _input_structs():
        if name in components:
            components[name]["additionalProperties"] = False
    for (struct, field), items in _ITEM_SCHEMAS.items():
        prop = components.get(struct, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["items"] = dict(items)
    for (struct, field), bounds in _PROPERTY_BOUNDS.items():
        prop = components.get(struct, {}).get("properties", {}).get(field)
        if prop is not None:
            prop.update(bounds)
    _exact_integer_bounds(document)
    if chat_models:
        model = {"oneOf": [{"type": "string", "enum": list(chat_models)}, {"type": "null"}]}
        if "ChatRequest" in components:
            components["ChatRequest"]["properties"]["model"] = model
        for parameter in (
            document.get("paths", {}).get("/api/chat/verify-key", {}).get("post", {}).get("parameters", [])
        ):
            if parameter.get("name") == "model":
                parameter["schema"] = dict(model)
    info[_FINISHED] = True
    return document


def _chat_models(request: Request[Any, Any, Any]) -> list[str] | None:
    resources = getattr(request.app.state, "resources", None)
    return list(resources.settings.chat_models) if resources is not None else None


class JsonOpenAPI(JsonRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, finish_openapi(openapi_schema, _chat_models(request)))


class SwaggerOpenAPI(SwaggerRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, finish_openapi(openapi_schema, _chat_models(request)))

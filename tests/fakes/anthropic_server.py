"""A fake Anthropic Messages API: a real HTTP server (uvicorn, own thread) speaking `/v1/messages`.

Tests script it per call (`reply`, `fail`) or give it a `responder`; it records every request and counts
calls. It answers JSON or, when the request says `"stream": true`, Server-Sent Events in the same event
order as the real API, so the real `anthropic` SDK (pointed at it through its base URL) parses both.
Keys are accepted in `x-api-key` or `Authorization: Bearer`; keys in `invalid_keys` get a 401.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


_tool_ids = itertools.count(1)


def tool_use(name: str, tool_input: dict[str, Any], tool_id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id or f"toolu_fake{next(_tool_ids):06d}", "name": name, "input": tool_input}


@dataclass
class Reply:
    """One scripted answer: content blocks and usage, or an error status."""

    content: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 100
    output_tokens: int = 20
    stop_reason: str | None = None
    status: int = 200
    error_type: str = ""
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Streamed requests: send this error type as an `error` event after the first text delta (HTTP 200).
    stream_error: str | None = None

    def body(self, model: str, message_id: str) -> dict[str, Any]:
        stop = self.stop_reason or ("tool_use" if any(b["type"] == "tool_use" for b in self.content) else "end_turn")
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self.content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }


@dataclass
class RecordedCall:
    path: str
    api_key: str | None
    body: dict[str, Any]
    at: float


Responder = Callable[[dict[str, Any]], Reply]


class FakeAnthropic:
    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.invalid_keys: set[str] = set()
        self.responder: Responder | None = None
        self._script: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- scripting ---------------------------------------------------------------------------------

    def reply(self, *content: dict[str, Any] | str, input_tokens: int = 100, output_tokens: int = 20,
              delay: float = 0.0, stop_reason: str | None = None) -> FakeAnthropic:  # fmt: skip
        blocks = [text(c) if isinstance(c, str) else c for c in content]
        self._script.append(
            Reply(blocks, input_tokens=input_tokens, output_tokens=output_tokens, delay=delay, stop_reason=stop_reason)
        )
        return self

    def fail(self, status: int, error_type: str, message: str = "fake error", *,
             headers: dict[str, str] | None = None) -> FakeAnthropic:  # fmt: skip
        self._script.append(Reply(status=status, error_type=error_type, error_message=message, headers=headers or {}))
        return self

    def fail_mid_stream(self, error_type: str, partial: str = "부분 답변") -> FakeAnthropic:
        """A stream that starts answering, then reports `error_type` as an SSE error event (as the API does)."""
        self._script.append(Reply([text(partial)], stream_error=error_type))
        return self

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.calls.clear()
        self.responder = None
        self.invalid_keys.clear()
        self.latency = 0.0

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def pending(self) -> int:
        return len(self._script)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Reply(status=500, error_type="api_error", error_message="fake server: script exhausted")

    # -- HTTP --------------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("x-api-key")
        if key is None and headers.get("authorization", "").lower().startswith("bearer "):
            key = headers["authorization"][7:]
        path = scope["path"]
        if path != "/v1/messages" or scope["method"] != "POST":
            await self._send_json(send, 404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
            return
        body = json.loads(b"".join(chunks) or b"{}")
        with self._lock:
            self.calls.append(RecordedCall(path=path, api_key=key, body=body, at=time.monotonic()))
        if not key or key in self.invalid_keys:
            error = {"type": "authentication_error", "message": "invalid x-api-key"}
            await self._send_json(send, 401, {"type": "error", "error": error})
            return
        reply = self._next(body)
        if self.latency or reply.delay:
            await asyncio.sleep(self.latency + reply.delay)
        if reply.status != 200:
            error = {"type": reply.error_type, "message": reply.error_message}
            await self._send_json(send, reply.status, {"type": "error", "error": error}, reply.headers)
            return
        message_id = f"msg_fake{next(self._ids):06d}"
        payload = reply.body(body.get("model", "unknown"), message_id)
        if body.get("stream"):
            await self._send_stream(send, payload, reply.stream_error)
        else:
            await self._send_json(send, 200, payload)

    @staticmethod
    async def _send_json(send: Callable[..., Any], status: int, payload: dict[str, Any],
                         extra: dict[str, str] | None = None) -> None:  # fmt: skip
        data = json.dumps(payload, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake")]
        headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    @staticmethod
    async def _send_stream(send: Callable[..., Any], message: dict[str, Any], error_type: str | None = None) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"request-id", b"req_fake")],
            }
        )

        async def event(name: str, data: dict[str, Any]) -> None:
            line = f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            await send({"type": "http.response.body", "body": line.encode(), "more_body": True})

        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        await event("message_start", {"type": "message_start", "message": start})
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                await event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
                # Several deltas per block, as the real API sends.
                pieces = [block["text"][i : i + 8] for i in range(0, len(block["text"]), 8)] or [""]
                for piece in pieces:
                    delta = {"type": "text_delta", "text": piece}
                    await event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                    if error_type is not None:
                        await event("error", {"type": "error", "error": {"type": error_type, "message": "fake"}})
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                        return
            else:
                shell = {**block, "input": {}}
                await event(
                    "content_block_start", {"type": "content_block_start", "index": index, "content_block": shell}
                )
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"], ensure_ascii=False)}
                await event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            await event("content_block_stop", {"type": "content_block_stop", "index": index})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Anthropic server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

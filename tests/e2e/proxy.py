"""A real HTTP reverse proxy in front of a real `hab serve`, for what a client meets between it and the server.

Everything is forwarded to the server unless a rule matches the request: then the proxy answers 502 the
way nginx does while the app restarts, drops the connection without an answer, or forwards the request
to another path (an older server without a route answers with the real server's own 404). The proxy
serves nothing of its own beyond that, so the client under test still talks to the real API.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "host"}
BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class Rule:
    method: str
    path: str  # a regular expression the whole path must match
    action: str  # "pass" (forward as it is), "502", "drop" or "forward:<path>"
    times: int = 1  # how many matching requests it applies to
    used: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.used < self.times and method == self.method and re.fullmatch(self.path, path) is not None


@dataclass
class Proxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, int | str]] = field(default_factory=list)  # (method, path, status or "drop")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=self.upstream, timeout=120)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-proxy", daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.used += 1
                    return rule
        return None

    def record(self, method: str, path: str, outcome: int | str) -> None:
        with self._lock:
            self.seen.append((method, path, outcome))


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: the test reads `proxy.seen`
            return

        def _handle(self) -> None:
            path, _, query = self.path.partition("?")
            assert "chunked" not in self.headers.get("Transfer-Encoding", ""), "the proxy needs Content-Length"
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rule = proxy.rule_for(self.command, path)
            if rule is not None and rule.action == "drop":
                proxy.record(self.command, path, "drop")
                self.close_connection = True  # no answer at all: the client sees the connection close
                return
            if rule is not None and rule.action == "502":
                proxy.record(self.command, path, 502)
                self._answer(502, {"Content-Type": "text/html"}, BAD_GATEWAY)
                return
            target = rule.action.removeprefix("forward:") if rule is not None and rule.action != "pass" else path
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"accept-encoding"}}
            response = proxy._client.request(
                self.command, target + (f"?{query}" if query else ""), headers=headers, content=body
            )
            proxy.record(self.command, path, response.status_code)
            keep = {
                k: v
                for k, v in response.headers.items()
                if k.lower() not in HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}
            }
            self._answer(response.status_code, keep, response.content)

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    return Handler

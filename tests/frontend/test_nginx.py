"""The production entry: Debian's real nginx running deploy/nginx/default.conf.template (rendered as the
official image's envsubst step does) in front of a real `hab serve` and a real `streamlit run`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.anthropic_server import tool_use
from tests.frontend.conftest import APP, REPO_ROOT, Stack, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "default.conf.template"
UPLOAD_LIMIT = 1024 * 1024  # a small HAB_UPLOAD_MAX_BYTES, so the test can go past it

pytestmark = [
    pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian's nginx is not installed (.ci/run installs it)"),
    pytest.mark.timeout(600),
]


def render(template: str, values: dict[str, str]) -> str:
    """envsubst as the nginx image runs it: only the named variables; nginx's own $variables stay."""
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    left = re.findall(r"\$\{(HAB_[A-Z_]+)\}", template)
    assert not left, f"unrendered variables: {left}"
    return template


@contextlib.contextmanager
def _streamlit(stack: Stack) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "HAB_API_URL": stack.url,
        "HAB_API_TOKEN": stack.admin_token,
        "HAB_ENV_FILE": str(stack.env_file),
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]  # fmt: skip
    log = (stack.root / "streamlit-nginx.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text.strip() == "ok", 90)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _wait(ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError):
            if ready():
                return
        time.sleep(0.2)
    raise AssertionError(f"not ready within {timeout:.0f} s")


@pytest.fixture(scope="module")
def nginx(stack: Stack) -> Iterator[str]:
    with _streamlit(stack) as ui_upstream:
        root = stack.root / "nginx"
        root.mkdir(exist_ok=True)
        port = free_port()
        site = render(
            TEMPLATE.read_text(encoding="utf-8"),
            {
                "HAB_NGINX_PORT": str(port),
                "HAB_API_UPSTREAM": stack.url.removeprefix("http://"),
                "HAB_UI_UPSTREAM": ui_upstream,
                "HAB_UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT),
            },
        )
        (root / "site.conf").write_text(site, encoding="utf-8")
        user = "user root;\n" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n"
            f"  fastcgi_temp_path {root}/fcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n"
            f"  include {root}/site.conf;\n}}\n",
            encoding="utf-8",
        )
        checked = subprocess.run([NGINX, "-t", "-c", str(root / "nginx.conf"), "-p", str(root)], capture_output=True)
        assert checked.returncode == 0, checked.stderr.decode()
        process = subprocess.Popen([NGINX, "-c", str(root / "nginx.conf"), "-p", str(root)])
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, 30)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_each_path_goes_where_it_belongs(nginx: str, stack: Stack) -> None:
    assert httpx.get(f"{nginx}/health", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{nginx}/ready", timeout=10).json()["checks"] == {"postgres": "ok", "redis": "ok"}
    assert "/api/datasets" in httpx.get(f"{nginx}/schema/openapi.json", timeout=10).json()["paths"]
    me = httpx.get(f"{nginx}/api/me", headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["role"] == "admin"
    assert httpx.get(f"{nginx}/api/me", timeout=10).status_code == 401  # the API's own answer, passed on
    page = httpx.get(f"{nginx}/", timeout=10)
    assert page.status_code == 200 and "<noscript>" in page.text.lower()  # Streamlit's page
    assert httpx.get(f"{nginx}/_stcore/health", timeout=10).text.strip() == "ok"
    hidden = httpx.get(f"{nginx}/metrics", timeout=10)
    assert hidden.status_code == 404 and hidden.headers["server"].startswith("nginx")


def test_the_streamlit_websocket_is_upgraded(nginx: str) -> None:
    host, port = nginx.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"GET /_stcore/stream HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        status = conn.recv(1024).split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 101 Switching Protocols", status


def test_chat_events_arrive_as_they_are_produced(nginx: str, stack: Stack) -> None:
    datasets = stack.get("/api/datasets").json()["items"]
    stack.anthropic.latency = 1.0  # each LLM call takes a second: the tool step's events come well before the end
    try:
        stack.anthropic.reply(tool_use("get_dataframe_info", {}))
        stack.anthropic.reply("두 번째 호출에서 나온 답입니다.")
        arrivals: list[tuple[float, str]] = []
        started = time.monotonic()
        with httpx.stream(
            "POST",
            f"{nginx}/api/chat/stream",
            json={"dataset_ids": [datasets[0]["id"]], "message": f"nginx 스트림 시험 {time.time()}"},
            headers={"Authorization": f"Bearer {stack.admin_token}", "X-Anthropic-API-Key": "sk-ant-nginx-" + "n" * 20},
            timeout=60,
        ) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("event:"):
                    arrivals.append((time.monotonic() - started, line.split(":", 1)[1].strip()))
    finally:
        stack.anthropic.latency = 0.0
    names = [name for _, name in arrivals]
    assert names[0] == "tool_start" and names[-1] == "done", names
    first, last = arrivals[0][0], arrivals[-1][0]
    assert last - first > 0.5, arrivals  # buffered by the proxy, all events would arrive together at the end


def test_an_upload_over_the_limit_is_refused_at_the_door(nginx: str, stack: Stack) -> None:
    before = stack.get("/api/datasets").json()["total"]
    body = b"a,b\n" + b"1,2\n" * (UPLOAD_LIMIT // 4 + 10)
    refused = httpx.post(
        f"{nginx}/api/datasets/upload/csv",
        params={"name": "너무 큰 파일"},
        content=body,
        headers={"Authorization": f"Bearer {stack.admin_token}", "Content-Type": "text/csv"},
        timeout=30,
    )
    assert refused.status_code == 413 and refused.headers["server"].startswith("nginx")
    assert stack.get("/api/datasets").json()["total"] == before
    small = httpx.post(
        f"{nginx}/api/datasets/upload/csv",
        params={"name": "작은 파일"},
        content=b"a,b\n1,2\n",
        headers={"Authorization": f"Bearer {stack.admin_token}", "Content-Type": "text/csv"},
        timeout=30,
    )
    assert small.status_code == 201, small.text
    # The stack is shared with the other frontend tests, which expect only the seeded datasets.
    deleted = httpx.delete(
        f"{stack.url}/api/datasets/{small.json()['id']}",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30,
    )
    assert deleted.status_code == 204, deleted.text

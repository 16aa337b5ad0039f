"""Shared helpers for benchmarks: services, the `hab serve` process, RSS sampling, statistics, tables."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench-results"
PYTHON = sys.executable
VENV_BIN = Path(sys.executable).parent
MB = 1024 * 1024


def repeat(default: int = 3) -> int:
    """How many times each measurement is repeated (`python -m bench --repeat N` sets BENCH_REPEAT)."""
    return max(1, int(os.environ.get("BENCH_REPEAT", default)))


# ------------------------------------------------------------------------------------------ facts


def machine_info() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_total_mb": round(vm.total / MB),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    for package in ("pyarrow", "pandas", "numpy", "litestar", "uvicorn", "httpx"):
        with contextlib.suppress(Exception):
            info[package] = importlib.metadata.version(package)
    with contextlib.suppress(Exception):
        git = ["git", "--no-optional-locks", "-C", str(REPO_ROOT)]
        info["git_commit"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
        info["git_dirty"] = bool(status.strip())
    return info


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------- statistics


def stats(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def server_timing_seconds(header: str | None) -> float | None:
    """hab's `Server-Timing: app;dur=<ms>` (request received -> response started, measured in the server)."""
    if not header:
        return None
    for part in header.split(";"):
        if part.strip().startswith("dur="):
            return float(part.strip()[4:]) / 1000
    return None


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first, *rest = row
        return "  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)])

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ RSS sampling


class RssSampler:
    """Samples the resident set size of one process every `interval` seconds in a background thread.

    `before` is the RSS when sampling started; `peak` the largest sample (the start and stop samples
    included). On Linux the kernel's own high-water mark (VmHWM) is reset at start when allowed and read
    at stop as a cross-check that catches spikes shorter than the sampling interval.
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.before = 0
        self.peak = 0
        self.samples = 0
        self.hwm: int | None = None
        self._hwm_reset = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss(self) -> int:
        try:
            return self.process.memory_info().rss
        except psutil.Error:
            return 0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())
            self.samples += 1

    def start(self) -> RssSampler:
        with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (VmHWM) to the current RSS
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            self._hwm_reset = True
        self.before = self.peak = self._rss()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> RssSampler:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._rss())
        if self._hwm_reset:
            self.hwm = _vm_hwm(self.process.pid)
        return self

    def result(self) -> dict[str, Any]:
        return {
            "rss_before_mb": round(self.before / MB, 1),
            "rss_peak_mb": round(self.peak / MB, 1),
            "rss_delta_mb": round((self.peak - self.before) / MB, 1),
            "vm_hwm_mb": round(self.hwm / MB, 1) if self.hwm else None,
            "vm_hwm_delta_mb": round((self.hwm - self.before) / MB, 1) if self.hwm else None,
            "samples": self.samples,
        }


def _vm_hwm(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


@contextlib.contextmanager
def sample_rss(pid: int | None = None, interval: float = 0.01) -> Iterator[RssSampler]:
    sampler = RssSampler(pid or os.getpid(), interval).start()
    try:
        yield sampler
    finally:
        sampler.stop()


# ---------------------------------------------------------------------------------- memory warm-up


def prefault_mb(default: int = 1536) -> int:
    """How much memory `prefault_memory` touches (BENCH_PREFAULT_MB; 0 turns it off)."""
    return max(0, int(os.environ.get("BENCH_PREFAULT_MB", default)))


def prefault_memory(mb: int | None = None) -> float:
    """Touch `mb` MB of fresh memory once and free it; returns the seconds it took.

    On virtual machines the first use of a guest page the VM has never touched is slow (measured on a
    2-core cloud VM: ~2.5 s per GB, against ~0.1 s per GB for a page used before), so whichever
    process happens to get never-used pages pays up to a second for a 600k-row upload. Touching
    memory just before each measurement puts recently used pages first on the kernel's free lists,
    so the measurements compare code rather than the VM's page backing.
    """
    size = (prefault_mb() if mb is None else mb) * MB
    if size <= 0:
        return 0.0
    started = time.perf_counter()
    buffer = bytearray(size)
    page = 4096
    buffer[::page] = b"\x01" * len(range(0, size, page))
    del buffer
    return time.perf_counter() - started


# -------------------------------------------------------------------------------- subprocess jobs


def run_json_subprocess(args: Sequence[str], *, timeout: float = 300, env: dict[str, str] | None = None) -> Any:
    """Run `python <args>` from the repo root and return the JSON object printed on its last stdout line."""
    proc = subprocess.run(
        [PYTHON, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------- services


@dataclass
class BenchServices:
    """A fresh, migrated PostgreSQL database and a Redis URL for one benchmark."""

    database_url: str
    redis_url: str
    embedded: list[str] = field(default_factory=list)  # which servers were started for the benchmark
    temp_dir: Path = field(default_factory=Path)
    # One per benchmark, shared by its API and workers (they would refuse to start without one); never the
    # developer's env/.env, which `hab serve` would otherwise write a generated secret into.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def env(self) -> dict[str, str]:
        """Environment for hab processes (CLI, `hab serve`) that use these services."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "HAB_DATA_DIR": str(self.temp_dir / "hab-data"),
            "HAB_ENV": "development",
            "HAB_SECRET_KEY": self.secret_key,
        }


@contextlib.contextmanager
def bench_services() -> Iterator[BenchServices]:
    """DATABASE_URL/TEST_DATABASE_URL and REDIS_URL when set, else embedded servers in a temporary folder.

    A database `hab_bench_<random>` is created and migrated to head, and dropped afterwards.
    """
    from api.db.migrate import upgrade_head
    from api.infra.embedded import EmbeddedPostgres, EmbeddedRedis
    from api.infra.services import drop_database, ensure_database, with_database

    temp = Path(tempfile.mkdtemp(prefix="hab-bench-services-"))
    server_url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    embedded: list[str] = []
    database: str | None = None
    try:
        if not server_url:
            pg = EmbeddedPostgres(temp / "postgres")
            server_url = pg.start()
            started.append(pg)
            embedded.append("postgres")
        if not redis_url:
            rd = EmbeddedRedis(temp / "redis", persist=False)
            redis_url = rd.start()
            started.append(rd)
            embedded.append("redis")
        database = f"hab_bench_{secrets.token_hex(4)}"
        asyncio.run(ensure_database(server_url, database))
        database_url = with_database(server_url, database)
        upgrade_head(database_url)
        yield BenchServices(database_url=database_url, redis_url=redis_url, embedded=embedded, temp_dir=temp)
    finally:
        if database is not None and server_url:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(server_url, database))
        for server in started:
            with contextlib.suppress(Exception):
                server.remove()
        shutil.rmtree(temp, ignore_errors=True)


def hab_cli(args: Sequence[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run `.venv/bin/hab <args>` and return its stdout."""
    proc = subprocess.run(
        [str(VENV_BIN / "hab"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def create_token(services: BenchServices, name: str = "bench") -> str:
    """A new admin user's API token, via `hab users create <name> --admin` (the token is the last line)."""
    out = hab_cli(["users", "create", name, "--admin"], services.env())
    return out.strip().splitlines()[-1].strip()


class ManagedProcess:
    """A subprocess with its log in a file: pid, log tail, graceful stop, context manager."""

    log_path: Path
    stop_grace_s: float = 20

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 90) -> ManagedProcess:
        raise NotImplementedError

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=self.stop_grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HabServer(ManagedProcess):
    """A real `hab serve` process on a free port, with its log in a file."""

    def __init__(self, services: BenchServices, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = services.temp_dir / f"hab-serve-{self.port}.log"
        self.env = {**os.environ, **services.env(), "HAB_LOG_LEVEL": "WARNING", **(extra_env or {})}
        super().__init__()

    def start(self, timeout: float = 90) -> HabServer:
        import httpx

        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "hab"), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hab serve exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hab serve was not ready within {timeout:.0f} s:\n{self.log_tail()}")

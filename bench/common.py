"""Shared helpers for benchmarks: machine facts, statistics, tables, services, the database, the v1.2.5 model.

Memory and CPU measurement are in bench.measure; the processes benchmarks start in bench.processes.
"""

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
# The v1.2.5 model files (pickles) that the baselines unpickle and hab imports.
LEGACY_DIR = Path(os.environ.get("BENCH_LEGACY_MODEL_DIR", REPO_ROOT.parent / "shared" / "legacy-model-v1.2"))


def repeat(default: int = 3) -> int:
    """How many times each measurement is repeated (`python -m bench --repeat N` sets BENCH_REPEAT)."""
    return max(1, int(os.environ.get("BENCH_REPEAT", default)))


def load_average_since(before: tuple[float, float, float]) -> dict[str, float]:
    """The 1-minute load average at the start (`os.getloadavg()` then) and now, as every result records it."""
    return {"before": round(before[0], 2), "after": round(os.getloadavg()[0], 2)}


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


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`th percentile (0-100) of `values`."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


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
    from api.local.embedded import EmbeddedPostgres, EmbeddedRedis
    from api.local.services import drop_database, ensure_database, with_database

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
            rd = EmbeddedRedis(temp / "redis")
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


# ------------------------------------------------------------------------------- database, model


async def sql_async(database_url: str, query: str, *args: Any, fetch: str = "val") -> Any:
    """One query on its own asyncpg connection; `fetch` is val, row, all or exec."""
    import asyncpg

    from api.db.engine import to_libpq_url

    connection = await asyncpg.connect(to_libpq_url(database_url))
    try:
        method = {"val": "fetchval", "row": "fetchrow", "all": "fetch", "exec": "execute"}[fetch]
        return await getattr(connection, method)(query, *args)
    finally:
        await connection.close()


def sql(database_url: str, query: str, *args: Any, fetch: str = "val") -> Any:
    return asyncio.run(sql_async(database_url, query, *args, fetch=fetch))


def created(response: Any, what: str = "upload") -> dict[str, Any]:
    """The JSON of a 201 answer (an upload, a dataset); anything else raises with the status and body."""
    if response.status_code != 201:
        raise RuntimeError(f"{what} failed: HTTP {response.status_code}: {response.text[:1000]}")
    return response.json()


def require_legacy_model() -> None:
    if not (LEGACY_DIR / "accident_lgbm_model.pkl").is_file():
        raise RuntimeError(f"v1.2.5 model files not found in {LEGACY_DIR} (set BENCH_LEGACY_MODEL_DIR)")


def legacy_loaded_model() -> Any:
    """The v1.2.5 files imported in this process as a `LoadedModel` (the pickles' version warnings silenced)."""
    import warnings

    from models.legacy import import_legacy
    from models.loaded import LoadedModel

    require_legacy_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LoadedModel(import_legacy(LEGACY_DIR))


def import_legacy_model(services: BenchServices) -> str:
    """`hab models import-legacy LEGACY_DIR --activate`, so hab serves the trees the baselines unpickle."""
    return hab_cli(["models", "import-legacy", str(LEGACY_DIR), "--activate"], services.env()).strip()


# -------------------------------------------------------------------------------------- processes


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

    def spawn(self, args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `args` from the repo root with stdout and stderr going to `log_path`."""
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(list(args), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self.proc

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


def upload_and_train(base_url: str, services: BenchServices, token: str, csv_bytes: bytes, name: str) -> dict[str, Any]:
    """Upload an accident CSV as a dataset and train + activate a model on it (`hab train`); the dataset."""
    import httpx

    upload = httpx.post(
        f"{base_url}/api/datasets/upload/csv",
        params={"name": name},
        content=csv_bytes,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=60,
    )
    dataset = created(upload)
    hab_cli(["train", "--dataset", str(dataset["id"]), "--activate"], services.env(), timeout=600)
    return dataset

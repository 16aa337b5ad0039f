"""`python -m bench resources`: resident memory of every process of the stack, idle and under load.

The stack is what a 1 GB machine would run: embedded PostgreSQL and Redis (their own servers, so nothing
else is counted), one `hab serve` (uvicorn, 1 process), one `hab worker` and the Streamlit UI. Figures are
RSS in MB, summed over a process and its children (PostgreSQL's backends share its buffers, so the sum
over-counts them; PSS, shared pages divided among sharers, is given too). Idle: after start-up and warm-up.
Under load: the peak while soak's mixed traffic (8 clients: predictions, rows, distributions, cached chat,
small jobs) runs for `HAB_RESOURCES_LOAD_SECONDS` (default 30) and a 20k-row scoring job runs on the worker.
Settings come from the environment, so `HAB_DATASET_CACHE_BYTES=... python -m bench resources` measures a
profile. Not part of `make bench`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import threading
import time
from contextlib import ExitStack
from typing import Any

import httpx
import psutil

from bench.common import REPO_ROOT, VENV_BIN, bench_services, create_token, free_port, render_table, upload_and_train
from bench.processes import HabServer, HabWorker, wait_for_model
from bench.soak import _traffic
from tests.fakes.anthropic_server import FakeAnthropic, Reply, text
from tests.sample_rows import ACCIDENT_ROW

MB = 2**20


def _seconds() -> float:
    return float(os.environ.get("HAB_RESOURCES_LOAD_SECONDS", "30"))


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB of a process and its children."""
    rss = pss = 0
    for proc in _tree(pid):
        try:
            full = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += full.rss
        pss += getattr(full, "pss", full.rss)
    return round(rss / MB, 1), round(pss / MB, 1)


def _find(marker: str, name: str) -> int:
    """The top process whose command line mentions `marker` (the benchmark's temporary folder)."""
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if marker in cmd and name in (proc.info["name"] or "") and marker in cmd:
            parent = proc.parent()
            if parent is None or marker not in " ".join(parent.cmdline()):
                return proc.info["pid"]
    raise RuntimeError(f"no {name} process under {marker}")


def _listener(url: str) -> int:
    """The process listening on the URL's port (the embedded redis-server names no folder on its command line)."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise RuntimeError(f"nothing listens on port {port}")


class Peak:
    """Samples every process group every 0.5 s in a thread and keeps each one's peak."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids, self.peak = pids, {n: (0.0, 0.0) for n in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                rss, pss = _memory(pid)
                self.peak[name] = (max(self.peak[name][0], rss), max(self.peak[name][1], pss))
            self._stop.wait(0.5)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run() -> dict[str, Any]:
    from api.demo.generate import generate_demo_datasets

    for name in ("DATABASE_URL", "TEST_DATABASE_URL", "REDIS_URL"):  # embedded servers: only ours are measured
        os.environ.pop(name, None)
    train = next(d for d in generate_demo_datasets(seed=9, scale=0.05) if d.key == "train")
    job_rows = [ACCIDENT_ROW] * 20_000
    with bench_services() as services, FakeAnthropic() as fake, ExitStack() as stack:
        fake.responder = lambda body: Reply([text("맑은 날 사고가 가장 많습니다.")], 900, 60)
        token = create_token(services)
        env = {"ANTHROPIC_BASE_URL": fake.url, "HAB_QUEUE_NAME": f"hab-rss-{secrets.token_hex(4)}"}
        server = stack.enter_context(HabServer(services, env))
        worker = stack.enter_context(HabWorker(services, env, "rss"))
        ui_port = free_port()
        ui_log = (services.temp_dir / "streamlit.log").open("wb")
        ui = subprocess.Popen(
            [
                str(VENV_BIN / "streamlit"),
                "run",
                "frontend/app.py",
                "--server.port",
                str(ui_port),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "HAB_API_URL": server.base_url, "HAB_API_TOKEN": token},
            stdout=ui_log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(ui.wait, 30)
        stack.callback(ui.terminate)
        auth = {"Authorization": f"Bearer {token}"}
        dataset = upload_and_train(server.base_url, services, token, train.csv_bytes, "rss")
        wait_for_model(server.base_url, token)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        marker = str(services.temp_dir)
        pids = {
            "api (hab serve)": server.pid,
            "worker (hab worker)": worker.pid,
            "frontend (streamlit)": ui.pid,
            "postgresql": _find(marker, "postgres"),
            "redis": _listener(services.redis_url),
        }
        time.sleep(5)  # settle after start-up (a measurement pause, not synchronisation)
        idle = {name: _memory(pid) for name, pid in pids.items()}
        headers = {**auth, "X-Anthropic-API-Key": "sk-ant-rss-" + secrets.token_hex(8)}
        with Peak(pids) as peak:
            job = httpx.post(f"{server.base_url}/api/predict/jobs", json={"rows": job_rows}, headers=auth, timeout=120)
            asyncio.run(_traffic(server.base_url, headers, dataset, _seconds()))
            job_id = job.json()["job_id"]
            end = time.monotonic() + 300
            while time.monotonic() < end:
                state = httpx.get(f"{server.base_url}/api/jobs/{job_id}", headers=auth, timeout=30).json()
                if state["finished"]:
                    break
                time.sleep(0.5)
    rows = {
        name: {
            "idle_rss_mb": idle[name][0],
            "idle_pss_mb": idle[name][1],
            "load_rss_mb": peak.peak[name][0],
            "load_pss_mb": peak.peak[name][1],
        }
        for name in pids
    }
    return {
        "load_seconds": _seconds(),
        "job_rows": len(job_rows),
        "dataset_cache_bytes": os.environ.get("HAB_DATASET_CACHE_BYTES", "default"),
        "processes": rows,
        "total_idle_pss_mb": round(sum(r["idle_pss_mb"] for r in rows.values()), 1),
        "total_load_pss_mb": round(sum(r["load_pss_mb"] for r in rows.values()), 1),
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        [n, r["idle_rss_mb"], r["idle_pss_mb"], r["load_rss_mb"], r["load_pss_mb"]]
        for n, r in result["processes"].items()
    ]
    rows.append(["total", "", result["total_idle_pss_mb"], "", result["total_load_pss_mb"]])
    return render_table(["process", "idle RSS MB", "idle PSS MB", "peak RSS MB (load)", "peak PSS MB (load)"], rows)

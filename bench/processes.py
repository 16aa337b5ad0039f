"""The processes benchmarks start: `hab serve`, `hab worker`, the v1.2.5 FastAPI baseline, a no-op upload server.

Each is a `ManagedProcess` (bench.common): its log in a file, a graceful stop, usable as a context manager.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from bench.common import LEGACY_DIR, PYTHON, VENV_BIN, BenchServices, ManagedProcess, free_port


def wait_http_ok(process: ManagedProcess, url: str, timeout: float, what: str) -> None:
    """Poll `url` until it answers 200; if the process exits or the time runs out, stop it and raise."""
    import httpx

    assert process.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.proc.returncode}):\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{what} was not ready within {timeout:.0f} s:\n{process.log_tail()}")


def wait_for_model(base_url: str, token: str, timeout: float = 60) -> None:
    """Wait until `hab serve` serves an active model (GET /api/predict/schema answers 200)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{base_url}/api/predict/schema", headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"hab did not serve a model within {timeout:.0f} s: {response.status_code} {response.text}")


def wait_for_compiled(base_url: str, token: str, timeout: float = 900) -> float | None:
    """Wait until `hab serve` predicts batches with the compiled model; the seconds it took, or None when the
    server says it serves LightGBM only (HAB_MODEL_COMPILE=off or no C compiler)."""
    import httpx

    started = time.monotonic()
    while time.monotonic() < started + timeout:
        active = httpx.get(f"{base_url}/api/models/active", headers={"Authorization": f"Bearer {token}"}).json()
        if active.get("predictor") == "compiled":
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


class HabServer(ManagedProcess):
    """A real `hab serve` process on a free port, with its log in a file."""

    def __init__(self, services: BenchServices, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = services.temp_dir / f"hab-serve-{self.port}.log"
        self.env = {**os.environ, **services.env(), "HAB_LOG_LEVEL": "WARNING", **(extra_env or {})}
        super().__init__()

    def start(self, timeout: float = 300) -> HabServer:  # minutes on a loaded 2-core machine
        self.spawn([str(VENV_BIN / "hab"), "serve", "--host", "127.0.0.1", "--port", str(self.port)], self.env)
        wait_http_ok(self, f"{self.base_url}/ready", timeout, "hab serve")
        return self


class HabWorker(ManagedProcess):
    """One `hab worker` process; ready once its arq health-check key is in Redis (it is polling)."""

    def __init__(self, services: BenchServices, env: dict[str, str], tag: str) -> None:
        self.metrics_port = free_port()  # its own, so that several workers can run side by side
        self.env = {
            **os.environ,
            **services.env(),
            "HAB_LOG_LEVEL": "INFO",
            "HAB_WORKER_METRICS_PORT": str(self.metrics_port),
            **env,
        }
        self.queue = env["HAB_QUEUE_NAME"]
        self.redis_url = services.redis_url
        self.log_path = services.temp_dir / f"hab-worker-{tag}.log"
        self.stop_grace_s = 30
        super().__init__()

    def start(self, timeout: float = 300) -> HabWorker:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        key = f"{self.queue}:health-check"
        client.delete(key)
        proc = self.spawn([str(VENV_BIN / "hab"), "worker"], self.env)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"hab worker exited ({proc.returncode}):\n{self.log_tail()}")
                if client.exists(key):
                    return self
                time.sleep(0.1)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"hab worker was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def metric_samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The worker's current samples of one metric (by sorted labels), read from its /metrics."""
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        return {
            tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        }


class LegacyServer(ManagedProcess):
    """bench/legacy_fastapi_app.py (the v1.2.5 path) in its own uvicorn process on a free port."""

    def __init__(self, handler: str, log_dir: Path) -> None:
        super().__init__()
        self.handler = handler
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"legacy-{handler}-{self.port}.log"

    def start(self, timeout: float = 60) -> LegacyServer:
        self.spawn([PYTHON, "-m", "bench.legacy_fastapi_app", str(self.port), str(LEGACY_DIR), self.handler])
        wait_http_ok(self, f"{self.base_url}/health", timeout, "the baseline server")
        return self


class DrainServer(ManagedProcess):
    """bench.dataset_upload's no-op ASGI app (reads the body, answers 200) in its own uvicorn process."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_dir / f"drain-{self.port}.log"

    def start(self, timeout: float = 30) -> DrainServer:
        self.spawn([PYTHON, "-m", "bench.dataset_upload", "drain-server", str(self.port)])
        wait_http_ok(self, self.url, timeout, "the no-op upload server")
        return self

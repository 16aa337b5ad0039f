"""Real processes on the fresh-laptop path: no DATABASE_URL / REDIS_URL, embedded servers under a temp folder."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.local.envfile import read_env_file
from tests import legacy_model
from tests.sample_rows import ACCIDENT_ROW

# Each test starts real processes on embedded services; up to ~2 min each measured on a busy 2-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
HAB = str(Path(sys.executable).with_name("hab"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a fresh laptop does not have: configured services, a token, a secret, an environment name.
_NOT_ON_A_FRESH_LAPTOP = frozenset(
    {"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "HAB_API_TOKEN", "HAB_API_URL", "HAB_SECRET_KEY", "HAB_ENV"}
)


def _fresh_laptop_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_ON_A_FRESH_LAPTOP}
    env.update({"HAB_DATA_DIR": str(tmp_path / "data"), "HAB_ENV_FILE": str(tmp_path / "env" / ".env"), **extra})
    return env


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"process exited with {process.returncode}"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered 200 ({last})")


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("process did not stop in time") from None


def _postgres_running(data_dir: Path) -> bool:
    return (data_dir / "postgres" / "postmaster.pid").exists()


def test_hab_help_lists_the_commands():
    out = subprocess.run([HAB, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "worker", "migrate", "demo-data", "users", "run"):
        assert command in out
    users = subprocess.run([HAB, "users", "--help"], capture_output=True, text=True, check=True).stdout
    assert "create" in users and "list" in users


def test_serve_with_embedded_services_is_ready(tmp_path):
    port = _free_port()
    env = _fresh_laptop_env(tmp_path)
    process = subprocess.Popen([HAB, "serve", "--port", str(port)], env=env)
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/ready", process)
        assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
        assert _postgres_running(tmp_path / "data")
    finally:
        code = _stop(process)
    assert code == 0
    # No secret configured: one was generated into the (owner-only) env file, and the data folder is private.
    env_file = tmp_path / "env" / ".env"
    assert len(read_env_file(env_file)["HAB_SECRET_KEY"]) >= 32
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)
    # hab serve started the embedded servers, so it stops them on the way out.
    assert not _postgres_running(tmp_path / "data")


def test_cli_users_and_migrate_on_embedded_services(tmp_path):
    env = _fresh_laptop_env(tmp_path)
    subprocess.run([HAB, "migrate"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [HAB, "users", "create", "학생", "--admin"], env=env, check=True, capture_output=True, text=True
    )
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("hab_") and len(token) > 40
    listed = subprocess.run([HAB, "users", "list"], env=env, check=True, capture_output=True, text=True).stdout
    assert "학생" in listed and "admin" in listed and token not in listed
    duplicate = subprocess.run([HAB, "users", "create", "학생"], env=env, capture_output=True, text=True)
    assert duplicate.returncode != 0 and "이미 있는" in duplicate.stderr
    assert not (tmp_path / "env" / ".env").exists()  # commands that never seal a key need no secret


def test_run_brings_up_the_stack_and_keeps_data(tmp_path):
    """`make run` = `hab run`: services, migrations, demo data, API + worker + UI; SIGTERM stops all."""
    api_port, ui_port = _free_port(), _free_port()
    env = _fresh_laptop_env(tmp_path, HAB_API_PORT=str(api_port), HAB_UI_PORT=str(ui_port), HAB_DEMO_SCALE="0.02")
    env_file = tmp_path / "env" / ".env"
    env_file.parent.mkdir()
    env_file.write_text("claude_api_key=sk-ant-test-keep-me\n", encoding="utf-8")

    first = subprocess.Popen([HAB, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(f"http://127.0.0.1:{api_port}/ready", first, timeout=180)
        values = read_env_file(env_file)
        assert values["claude_api_key"] == "sk-ant-test-keep-me"
        assert values["HAB_API_URL"] == f"http://127.0.0.1:{api_port}"
        headers = {"Authorization": f"Bearer {values['HAB_API_TOKEN']}"}
        datasets = httpx.get(f"http://127.0.0.1:{api_port}/api/datasets", headers=headers, timeout=10).json()
        assert datasets["total"] == 7 and all(d["is_demo"] and "데모" in d["name"] for d in datasets["items"])
        # A fresh install can predict at once: the demo model was trained and activated.
        active = httpx.get(f"http://127.0.0.1:{api_port}/api/models/active", headers=headers, timeout=10).json()
        # trained on the synthetic demo data, which every prediction's detail then says
        assert active["status"] == "active" and active["source"] == "trained-synthetic"
        predicted = httpx.post(
            f"http://127.0.0.1:{api_port}/api/predict/eclo",
            headers=headers,
            timeout=10,
            json=ACCIDENT_ROW,
        )
        assert predicted.status_code == 200 and predicted.json()["model_version"] == active["version"]
        assert "합성(가상) 데모 데이터" in predicted.json()["detail"]
        _wait_ready(f"http://127.0.0.1:{ui_port}/_stcore/health", first, timeout=90)
    finally:
        code = _stop(first)
    output = first.stdout.read() if first.stdout else ""
    assert code == 0, output
    assert not _postgres_running(tmp_path / "data"), output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=1)

    # Second start: same data, same token, no second copy of the demo data.
    second = subprocess.Popen([HAB, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{api_port}/ready", second, timeout=180)
        assert read_env_file(env_file)["HAB_API_TOKEN"] == values["HAB_API_TOKEN"]
        again = httpx.get(f"http://127.0.0.1:{api_port}/api/datasets", headers=headers, timeout=10).json()
        assert again["total"] == 7
        models = httpx.get(f"http://127.0.0.1:{api_port}/api/models", headers=headers, timeout=10).json()
        assert models["total"] == 1  # no second demo model
    finally:
        assert _stop(second, signal.SIGINT) == 0


LEGACY_DIR = legacy_model.local_copy()


def test_cli_trains_imports_and_activates(tmp_path):
    """hab train --csv, hab models import-legacy, hab models list/activate on embedded services."""
    from api.demo.generate import generate_demo_datasets

    env = _fresh_laptop_env(tmp_path)
    subprocess.run([HAB, "migrate"], env=env, check=True, capture_output=True)
    train = next(d for d in generate_demo_datasets(scale=0.1) if d.key == "train")
    csv = tmp_path / "train.csv"
    csv.write_bytes(train.csv_bytes)
    trained = subprocess.run([HAB, "train", "--csv", str(csv), "--activate"], env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    assert "RMSLE" in trained.stdout and "활성화" in trained.stdout

    not_accident = tmp_path / "lights.csv"
    not_accident.write_text("보안등위치명,설치개수\n대명1동1,1\n", encoding="utf-8")
    refused = subprocess.run([HAB, "train", "--csv", str(not_accident)], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "교통사고" in refused.stderr

    if not legacy_model.available():
        pytest.skip(legacy_model.SKIP_REASON)
    imported = subprocess.run(
        [HAB, "models", "import-legacy", str(LEGACY_DIR)], env=env, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr
    assert "pickle" in imported.stderr  # the trusted-source warning
    listed = subprocess.run([HAB, "models", "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "legacy-v1.2.5" in listed and "active" in listed
    activated = subprocess.run([HAB, "models", "activate", "2"], env=env, capture_output=True, text=True)
    assert activated.returncode == 0, activated.stderr
    listed = subprocess.run([HAB, "models", "list"], env=env, capture_output=True, text=True, check=True).stdout
    line_v2 = next(line for line in listed.splitlines() if line.strip().startswith("2 "))
    assert "active" in line_v2

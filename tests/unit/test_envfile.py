"""env/.env: the generated HAB_SECRET_KEY, owner-only writes, and the lock two starting processes share."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.local.envfile import ensure_secret_key, lock_path, read_env_file, update_env_file
from api.settings import PROJECT_ROOT, SecretKeyError, get_settings, settings_with_secret


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_secret_key_generates_once_and_keeps_the_other_lines(tmp_path):
    env = tmp_path / "env" / ".env"
    env.parent.mkdir()
    env.write_text("# mine\nclaude_api_key=sk-ant-mine\nHAB_API_TOKEN=hab_x\n", encoding="utf-8")
    env.chmod(0o644)

    first = ensure_secret_key(env)
    assert len(first) >= 60 and re.fullmatch(r"[A-Za-z0-9_-]+", first)
    assert env.read_text(encoding="utf-8").startswith("# mine\n")
    assert read_env_file(env) == {"claude_api_key": "sk-ant-mine", "HAB_API_TOKEN": "hab_x", "HAB_SECRET_KEY": first}
    assert _mode(env) == 0o600
    assert ensure_secret_key(env) == first  # a second start reuses it
    assert read_env_file(env)["HAB_SECRET_KEY"] == first
    leftovers = sorted(p.name for p in env.parent.iterdir())
    assert leftovers == [".env", ".env.lock"]  # no temporary files left behind


def test_ensure_secret_key_creates_a_private_env_folder(tmp_path):
    env = tmp_path / "fresh" / ".env"
    secret = ensure_secret_key(env)
    assert read_env_file(env) == {"HAB_SECRET_KEY": secret}
    assert _mode(env.parent) == 0o700 and _mode(env) == 0o600 and _mode(lock_path(env)) == 0o600


@pytest.mark.parametrize("placeholder", ["change-me", "dev-secret-change-me", "too-short-to-be-random"])
def test_a_placeholder_in_the_file_is_replaced(tmp_path, placeholder):
    env = tmp_path / ".env"
    env.write_text(f"HAB_API_PORT=9000\nHAB_SECRET_KEY={placeholder}\n", encoding="utf-8")
    secret = ensure_secret_key(env)
    assert secret != placeholder
    assert env.read_text(encoding="utf-8") == f"HAB_API_PORT=9000\nHAB_SECRET_KEY={secret}\n"


def test_a_real_secret_in_a_loose_file_is_kept_and_the_file_tightened(tmp_path):
    env = tmp_path / ".env"
    real = "r" * 20 + "EAL-secret-from-the-operator-0123456789"
    env.write_text(f"HAB_SECRET_KEY={real}\n", encoding="utf-8")
    env.chmod(0o644)
    assert ensure_secret_key(env) == real
    assert _mode(env) == 0o600


def test_update_env_file_always_writes_owner_only(tmp_path):
    env = tmp_path / ".env"
    env.write_text("A=1\n", encoding="utf-8")
    env.chmod(0o644)
    update_env_file(env, {"HAB_API_TOKEN": "hab_secret"})
    assert _mode(env) == 0o600 and read_env_file(env) == {"A": "1", "HAB_API_TOKEN": "hab_secret"}


def test_a_device_is_not_an_env_file(tmp_path):
    with pytest.raises(ValueError, match="regular file"):
        ensure_secret_key(Path("/dev/null"))


def _waiters_on(path: Path) -> int:
    """How many processes /proc/locks shows blocked on a flock of `path` (Linux)."""
    inode = path.stat().st_ino
    blocked = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and fields[-3].rsplit(":", 1)[-1] == str(inode):
            blocked += 1
    return blocked


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks to see blocked lockers")
def test_processes_starting_together_agree_on_one_secret(tmp_path):
    import fcntl

    env = tmp_path / "env" / ".env"
    env.parent.mkdir()
    code = (
        "import sys; from pathlib import Path; from api.local.envfile import ensure_secret_key; "
        "print(ensure_secret_key(Path(sys.argv[1])))"
    )
    count = 4
    with open(lock_path(env), "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # every process must queue behind this
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(env)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
            )
            for _ in range(count)
        ]
        try:
            deadline = time.monotonic() + 60
            while _waiters_on(lock_path(env)) < count:
                assert all(p.poll() is None for p in processes), "a process finished without waiting for the lock"
                assert time.monotonic() < deadline, "the processes never queued on the lock"
                time.sleep(0.02)
            assert not env.exists()  # nobody wrote while the lock was held
        finally:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
        outputs = [p.communicate(timeout=60)[0].strip() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert len(set(outputs)) == 1 and read_env_file(env) == {"HAB_SECRET_KEY": outputs[0]}
    assert env.read_text(encoding="utf-8").count("HAB_SECRET_KEY=") == 1


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    path = tmp_path / "env" / ".env"
    monkeypatch.setenv("HAB_ENV_FILE", str(path))
    for name in ("HAB_SECRET_KEY", "HAB_ENV"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_a_developer_machine_gets_a_secret_on_first_start(env_file):
    settings = settings_with_secret()
    assert settings.sealing_secret() == read_env_file(env_file)["HAB_SECRET_KEY"]
    assert settings_with_secret().secret_key == settings.secret_key  # the next process reads the same one


def test_production_never_generates_a_secret(env_file, monkeypatch):
    monkeypatch.setenv("HAB_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("REDIS_URL", "redis://x")
    with pytest.raises(SecretKeyError, match="make run"):
        settings_with_secret()
    assert not env_file.exists()


def test_a_placeholder_in_the_process_environment_is_refused_not_papered_over(env_file, monkeypatch):
    monkeypatch.setenv("HAB_SECRET_KEY", "dev-secret-change-me")
    with pytest.raises(SecretKeyError):
        settings_with_secret()
    assert not env_file.exists()


def test_the_env_folder_mode_is_left_alone_when_it_exists(tmp_path):
    """env/ may be a shared folder the user chose (HAB_ENV_FILE); only the file itself is made private."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    ensure_secret_key(folder / "hab.env")
    assert _mode(folder) == 0o755 and _mode(folder / "hab.env") == 0o600

"""What an earlier `hab run` may have left running, found and stopped so that this one can start cleanly.

Normally nothing: supervisord gets SIGTERM when `hab run` dies (even by SIGKILL) and stops its programs.
But supervisord itself may have been killed, or a single command (`hab serve` with no URLs) may have left
the embedded servers running as daemons. Only processes whose command line is one of ours are touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil

OURS = ("supervisord", "api.cli", "streamlit", "redis-server", "postgres")
GRACE_SECONDS = 30.0


def _ours(process: psutil.Process, data_dir: Path, project: Path) -> bool:
    """One of our programs, of this install: its command names our data folder, or it runs in our project."""
    with contextlib.suppress(psutil.Error):
        command = " ".join(process.cmdline())
        if not any(marker in command for marker in OURS):
            return False
        return str(data_dir) in command or Path(process.cwd()) == project
    return False


def _pid_from(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


def leftovers(run_dir: Path, postgres_dir: Path, redis_dir: Path, project: Path) -> list[psutil.Process]:
    pids: list[int] = []
    supervisord = _pid_from(run_dir / "supervisord.pid")
    if supervisord:
        pids.append(supervisord)
    with contextlib.suppress(OSError, ValueError):
        pids += list(json.loads((run_dir / "state.json").read_text()).get("programs", {}).values())
    for pidfile in (postgres_dir / "postmaster.pid", redis_dir / "redis.pid"):
        pid = _pid_from(pidfile)
        if pid:
            pids.append(pid)
    found: list[psutil.Process] = []
    for pid in dict.fromkeys(pids):
        if pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if (
                process.is_running()
                and process.status() != psutil.STATUS_ZOMBIE
                and _ours(process, run_dir.parent, project)
            ):
                found.append(process)
    return found


def take_over(
    run_dir: Path,
    postgres_dir: Path,
    redis_dir: Path,
    project: Path,
    say: Callable[[str], None],
    grace: float = GRACE_SECONDS,
) -> int:
    """Stop what an earlier run left (supervisord and the servers). Returns how many processes."""
    found = leftovers(run_dir, postgres_dir, redis_dir, project)
    if not found:
        return 0
    say(f"이전 실행이 남긴 프로세스 {len(found)}개를 정리합니다…")
    for process in found:
        with contextlib.suppress(psutil.Error):
            # PostgreSQL: SIGINT is its "fast shutdown" (roll back, write a checkpoint, exit).
            is_postgres = "postgres" in process.name()
            process.send_signal(signal.SIGINT if is_postgres else signal.SIGTERM)
    _, alive = psutil.wait_procs(found, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    deadline = time.monotonic() + 5
    while (postgres_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # a fast shutdown removes its pid file last
    return len(found)

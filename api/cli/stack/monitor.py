"""Watching the supervised programs: their output on the console, restarts said in Korean, and when to give up.

supervisord restarts a program that exits at once and, for one that keeps failing to start, gives up
(FATAL). A program that starts fine and then crashes again and again would be restarted forever, so the
monitor also gives up after `CRASH_LIMIT` unexpected exits within `CRASH_WINDOW_SECONDS`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CRASH_LIMIT = 5
CRASH_WINDOW_SECONDS = 120.0
LOG_TAIL_LINES = 15

LABELS = {
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "api": "API",
    "worker": "작업자(worker)",
    "ui": "화면(Streamlit)",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


@dataclass
class LogPump:
    """Copies new lines of each program's log file to the console, prefixed with the program's name."""

    paths: dict[str, Path]
    out: Callable[[str], None]
    offsets: dict[str, int] = field(default_factory=dict)
    width: int = 8

    def pump(self) -> None:
        for name, path in self.paths.items():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            offset = self.offsets.get(name, 0)
            if size < offset:  # rotated
                offset = 0
            if size == offset:
                continue
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read(size - offset)
            complete = data.rfind(b"\n") + 1
            if complete == 0 and size - offset < 64 * 1024:
                continue  # wait for the rest of the line
            complete = complete or len(data)
            for line in data[:complete].decode("utf-8", "replace").splitlines():
                self.out(f"{name:<{self.width}}| {line}")
            self.offsets[name] = offset + complete

    def tail(self, name: str, lines: int = LOG_TAIL_LINES) -> list[str]:
        try:
            text = self.paths[name].read_text(encoding="utf-8", errors="replace")
        except (OSError, KeyError):
            return []
        return text.splitlines()[-lines:]


@dataclass
class Verdict:
    """Why the stack must stop: which program, and the Korean reason."""

    name: str
    reason: str


@dataclass
class Watch:
    """Turns successive snapshots of supervisord's process table into Korean messages and a verdict."""

    say: Callable[[str], None]
    state_file: Path | None = None
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashes: dict[str, deque[float]] = field(default_factory=dict)
    restarting: set[str] = field(default_factory=set)

    def step(self, infos: dict[str, dict[str, Any]], now: float | None = None) -> Verdict | None:
        now = time.monotonic() if now is None else now
        verdict = None
        for name, info in infos.items():
            prev = self.last.get(name)
            state, pid = info["statename"], info["pid"]
            if prev is not None:
                was_running = prev["statename"] == "RUNNING"
                if was_running and (state != "RUNNING" or pid != prev["pid"]):
                    self._crashed(name, info, now)
                if name in self.restarting and state == "RUNNING" and (not was_running or pid != prev["pid"]):
                    self.restarting.discard(name)
                    self.say(f"{label(name)} 다시 시작됨 (pid {pid}).")
                if state == "BACKOFF" and prev["statename"] != "BACKOFF":
                    why = info.get("spawnerr") or "곧바로 종료됨"
                    self.say(f"{label(name)} 시작에 실패했습니다 ({why}). 잠시 후 다시 시도합니다…")
            if state == "FATAL":
                why = info.get("spawnerr") or "여러 번 시도했지만 시작되지 않았습니다"
                verdict = verdict or Verdict(name, f"{label(name)}이(가) 계속 시작에 실패합니다: {why}")
            window = self.crashes.get(name)
            if window is not None and len(window) >= CRASH_LIMIT:
                verdict = verdict or Verdict(
                    name, f"{label(name)}이(가) {int(CRASH_WINDOW_SECONDS)}초 사이에 {len(window)}번 멈췄습니다."
                )
        changed = any(self.last.get(n, {}).get("pid") != i["pid"] for n, i in infos.items())
        self.last = infos
        if changed:
            self._record_pids(infos)
        return verdict

    def _crashed(self, name: str, info: dict[str, Any], now: float) -> None:
        window = self.crashes.setdefault(name, deque())
        window.append(now)
        while window and now - window[0] > CRASH_WINDOW_SECONDS:
            window.popleft()
        self.restarting.add(name)
        how = ""
        if info["statename"] in ("EXITED", "BACKOFF", "FATAL"):  # seen between exit and restart: the status is its own
            status = info.get("exitstatus")
            how = " (신호로 종료)" if status == -1 else f" (종료 코드 {status})"
        self.say(f"{label(name)}이(가) 예기치 않게 멈췄습니다{how}. 다시 시작합니다 ({len(window)}번째)…")

    def _record_pids(self, infos: dict[str, dict[str, Any]]) -> None:
        """Kept for the next `hab run`: if this one is killed outright, it can find what was left running."""
        if self.state_file is None:
            return
        pids = {name: info["pid"] for name, info in infos.items() if info["pid"]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"programs": pids}), encoding="utf-8")
        tmp.replace(self.state_file)

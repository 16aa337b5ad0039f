"""Measuring what a benchmark costs: a process's RSS over time, CPU seconds over a window, memory warm-up."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench.common import MB

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


# ------------------------------------------------------------------------------------- CPU seconds


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by one process."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def machine_busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy so far (not idle, not waiting for I/O)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - t.iowait


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every process named postgres on this machine (0 if none is visible)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if process.info["name"] and process.info["name"].startswith("postgres"):
                times = process.cpu_times()
                total += times.user + times.system
    return total


class CpuWindow:
    """CPU seconds of one process (all threads) and of the whole machine between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def start(self) -> CpuWindow:
        self._proc = self.process.cpu_times()
        self._machine = psutil.cpu_times()
        self._wall = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        proc, machine = self.process.cpu_times(), psutil.cpu_times()
        wall = time.perf_counter() - self._wall
        busy = (sum(machine) - machine.idle - machine.iowait) - (
            sum(self._machine) - self._machine.idle - self._machine.iowait
        )
        server = (proc.user - self._proc.user) + (proc.system - self._proc.system)
        return {
            "wall_s": round(wall, 2),
            "server_cpu_s": round(server, 2),
            "machine_busy_cpu_s": round(busy, 2),
            "machine_cpu_available_s": round(wall * (os.cpu_count() or 1), 2),
        }

"""Process-wide memory settings for large uploads, applied once when the API or a worker starts.

On the 2-core cloud VM hab is measured on, returning freed memory to the kernel and faulting it in again
costs more than the work that uses it (a large upload frees and re-allocates hundreds of MB). Three
settings keep freed memory for reuse (measurements in docs/decisions/0001-jemalloc-memory-reuse.md):

* Arrow's allocator is jemalloc (`HAB_ARROW_MEMORY_POOL`). pyarrow's default, mimalloc, made the first
  large parse in a process slower.
* jemalloc keeps freed pages for `HAB_MEMORY_REUSE_SECONDS` instead of releasing them at once (Arrow's
  default), so the pieces of one upload and the next upload reuse them.
* glibc (Python's own large objects: request chunks, pieces) serves blocks up to 32 MB from its heap and
  keeps up to 256 MB of freed heap, instead of mapping and unmapping each block.

Memory freed this way stays counted in the process's RSS for a while: the price of the speed. The API hands
it back once no upload is being received (api/datasets/receive.py, `_give_back_freed_memory`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger("hab.runtime")

ARROW_POOLS = ("jemalloc", "mimalloc", "system")
GLIBC_MMAP_THRESHOLD = 32 << 20
GLIBC_TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def prepare_process() -> None:
    """What every entry point (the `hab` command, the test suite, the benchmarks) calls first, before
    anything imports lightgbm or pyarrow; child processes inherit it through the environment.

    LightGBM's OpenMP threads would otherwise spin while waiting; with an event loop, a worker thread and
    other processes on two cores, spinning makes an oversubscribed moment many times slower. It must be
    set before libgomp initialises. Arrow picks its allocator when it first allocates.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    prefer_arrow_pool_from_env()


def prefer_arrow_pool_from_env() -> None:
    """Name Arrow's allocator in ARROW_DEFAULT_MEMORY_POOL, which Arrow reads when it first allocates.

    Windows wheels have no jemalloc: there Arrow keeps mimalloc unless told otherwise.
    """
    name = os.environ.get("HAB_ARROW_MEMORY_POOL", "mimalloc" if sys.platform == "win32" else "jemalloc")
    if name in ARROW_POOLS:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", name)


def use_arrow_memory_pool(name: str) -> str:
    """Make `name` Arrow's allocator for this process where this build of pyarrow has it; returns the one in use.

    Also needed after prefer_arrow_pool_from_env(): pyarrow may have been imported (and allocated) first.
    """
    import pyarrow as pa

    if name in ARROW_POOLS:
        try:
            pa.set_memory_pool(getattr(pa, f"{name}_memory_pool")())
        except NotImplementedError:  # e.g. no jemalloc in Windows wheels: keep the default
            logger.info(
                "Arrow allocator %s is not available here; using %s", name, pa.default_memory_pool().backend_name
            )
    return pa.default_memory_pool().backend_name


def _glibc_keep_freed_memory() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library the process already uses
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # musl and friends
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD)
    )


def tune_memory(arrow_pool: str, reuse_seconds: float) -> dict[str, object]:
    """Apply the settings above (idempotent); returns what is in effect, for the start-up log."""
    import pyarrow as pa

    pool = use_arrow_memory_pool(arrow_pool)
    kept = False
    if reuse_seconds > 0:
        if pool == "jemalloc":
            pa.jemalloc_set_decay_ms(int(reuse_seconds * 1000))
        kept = _glibc_keep_freed_memory()
    return {"arrow_pool": pool, "reuse_seconds": reuse_seconds, "glibc_keeps_freed_memory": kept}

"""Process memory settings (api/runtime.py)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

from api.runtime import tune_memory


def test_tuning_applies_and_reports_what_is_in_effect():
    tuned = tune_memory("jemalloc", 10.0)
    assert tuned["arrow_pool"] == pa.default_memory_pool().backend_name == "jemalloc"
    assert tuned["glibc_keeps_freed_memory"] is (sys.platform.startswith("linux"))


def test_an_unknown_pool_keeps_the_default_and_zero_seconds_keeps_nothing():
    before = pa.default_memory_pool().backend_name
    assert tune_memory("default", 0) == {"arrow_pool": before, "reuse_seconds": 0, "glibc_keeps_freed_memory": False}


def test_importing_api_first_makes_jemalloc_arrows_own_default():
    # The C++ default pool (used by e.g. the Parquet writer) is chosen from the environment at first use.
    code = "import api, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.strip() == "jemalloc"

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


def test_preparing_the_process_first_makes_jemalloc_arrows_own_default():
    # The C++ default pool (used by e.g. the Parquet writer) is chosen from the environment at first use.
    code = (
        "from api.runtime import prepare_process; prepare_process(); import os, pyarrow as pa; "
        "print(pa.default_memory_pool().backend_name, os.environ['OMP_WAIT_POLICY'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.split() == ["jemalloc", "PASSIVE"]


def test_importing_the_packages_changes_nothing_in_the_process():
    code = (
        "import os, api, workers, models; "
        "print(sorted(k for k in os.environ if k in ('OMP_WAIT_POLICY', 'ARROW_DEFAULT_MEMORY_POOL')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.strip() == "[]"


def test_the_hab_command_prepares_the_process_for_every_subcommand():
    code = (
        "import os, sys; from api.cli import main; sys.argv = ['hab', 'users', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint(os.environ.get('OMP_WAIT_POLICY'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"

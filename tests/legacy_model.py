"""The v1.2.5 model files users have (../shared/legacy-model-v1.2/ beside the checkout), for the tests.

Tests use a private copy: the shared folder may be read-only (CI lays it without write bits) and an import
must never write next to a user's files. Where the files are absent, the tests that need them are skipped
and the run's closing summary says so plainly (tests/conftest.py).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

SOURCE = (Path(__file__).resolve().parents[1].parent / "shared" / "legacy-model-v1.2").resolve()
REQUIRED = ("accident_lgbm_model.pkl", "label_encoders.pkl")
OPTIONAL = ("feature_config.json",)
SKIP_REASON = f"v1.2.5 model files not found in {SOURCE}"


def available() -> bool:
    return all((SOURCE / name).is_file() for name in REQUIRED)


@functools.cache
def local_copy() -> Path:
    """A copy of the files in a temporary folder of this test process (the source path when they are absent)."""
    if not available():
        return SOURCE
    target = Path(tempfile.mkdtemp(prefix="hab-legacy-model-"))
    target.chmod(0o755)  # an embedded PostgreSQL's own user never reads it, but hab processes may run as others
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    for name in (*REQUIRED, *OPTIONAL):
        if (SOURCE / name).is_file():
            shutil.copy(SOURCE / name, target / name)
    return target

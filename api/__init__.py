"""hab API package."""

import os

# LightGBM's OpenMP threads would otherwise spin while waiting; with an event loop, a worker thread and
# other processes on two cores, spinning makes an oversubscribed moment many times slower.
# Must be set before libgomp initialises, i.e. before lightgbm is imported anywhere in the process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Arrow picks its allocator when it first allocates; hab prefers jemalloc (reasons in api/runtime.py).
from api.runtime import prefer_arrow_pool_from_env

prefer_arrow_pool_from_env()

"""hab API package."""

import os

# LightGBM's OpenMP threads would otherwise spin while waiting; with an event loop, a worker thread and
# other processes on two cores, spinning makes an oversubscribed moment many times slower.
# Must be set before libgomp initialises, i.e. before lightgbm is imported anywhere in the process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

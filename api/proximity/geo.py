"""Great-circle neighbour counts and nearest distances with a haversine BallTree (scikit-learn).

Pure functions over numpy arrays of degrees; the tree is built on the targets and queried once per source
point, so the work grows with n·log m rather than n·m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The mean Earth radius (IUGG), in metres: the haversine metric works on the unit sphere.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Proximity:
    counts: np.ndarray  # int64, targets within the radius of each source
    nearest_m: np.ndarray  # float64, distance to the nearest target


def proximity(
    source_lat: np.ndarray, source_lon: np.ndarray, target_lat: np.ndarray, target_lon: np.ndarray, radius_m: float
) -> Proximity:
    """Counts of targets within ``radius_m`` (inclusive) and nearest distances, for every source point."""
    from sklearn.neighbors import BallTree  # heavy import, needed only here

    if len(target_lat) == 0:
        raise ValueError("no target points")
    sources = np.radians(np.column_stack([source_lat, source_lon]))
    targets = np.radians(np.column_stack([target_lat, target_lon]))
    if len(sources) == 0:
        return Proximity(counts=np.zeros(0, dtype=np.int64), nearest_m=np.zeros(0))
    tree = BallTree(targets, metric="haversine")
    counts = tree.query_radius(sources, r=radius_m / EARTH_RADIUS_M, count_only=True)
    distances, _ = tree.query(sources, k=1)
    return Proximity(counts=np.asarray(counts, dtype=np.int64), nearest_m=distances[:, 0] * EARTH_RADIUS_M)

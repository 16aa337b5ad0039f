"""Great-circle neighbour counts and nearest distances with a scikit-learn BallTree.

The points go into the tree as unit vectors on the sphere, with the straight-line (chord) metric: the
chord 2·sin(θ/2) grows strictly with the great-circle angle θ, so "within the radius" and "nearest" are
exactly the great-circle answers, and θ = 2·asin(chord/2) gives the distance back. On the full demo
data (bench/proximity.py, 2-core VM) the 71,913 lights against the zones took 1.9 s with scikit-learn's
`haversine` metric on the same tree and 0.27 s in this form: the tree prunes with cheap Euclidean
bounds in three dimensions instead of evaluating trigonometry at every node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The mean Earth radius (IUGG), in metres.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Proximity:
    counts: np.ndarray  # int64, targets within the radius of each source
    nearest_m: np.ndarray  # float64, great-circle distance to the nearest target


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Points given in degrees as (x, y, z) on the unit sphere."""
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)])


def chord_for(metres: float) -> float:
    return 2.0 * float(np.sin(metres / EARTH_RADIUS_M / 2.0))


def metres_for(chord: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)) * EARTH_RADIUS_M


def proximity(
    source_lat: np.ndarray, source_lon: np.ndarray, target_lat: np.ndarray, target_lon: np.ndarray, radius_m: float
) -> Proximity:
    """Counts of targets within ``radius_m`` (inclusive) and nearest distances, for every source point."""
    from sklearn.neighbors import BallTree  # heavy import, needed only here

    if len(target_lat) == 0:
        raise ValueError("no target points")
    if len(source_lat) == 0:
        return Proximity(counts=np.zeros(0, dtype=np.int64), nearest_m=np.zeros(0))
    sources, targets = unit_vectors(source_lat, source_lon), unit_vectors(target_lat, target_lon)
    tree = BallTree(targets, metric="euclidean")
    counts = tree.query_radius(sources, r=chord_for(radius_m), count_only=True)
    chords, _ = tree.query(sources, k=1)
    return Proximity(counts=np.asarray(counts, dtype=np.int64), nearest_m=metres_for(chords[:, 0]))

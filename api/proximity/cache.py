"""Proximity figures cached in Redis under both datasets' content hashes, the radius and PROXIMITY_VERSION.

Datasets are immutable and content-addressed, so an entry never goes stale (a new version of a dataset has
new bytes, so a new hash); a change to which points count or how they are counted bumps PROXIMITY_VERSION.
The entry holds what depends on the target's points: the number of valid targets and, for every valid
source point in row order, its count and nearest distance (12 bytes a point; answers for sources past
MAX_CACHED_SOURCES are not cached). The source's points themselves come from its table, which the page's
coordinates need anyway. Every Redis error degrades to "no cache".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec
import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.datasets.profile import PROFILE_VERSION
from api.observability.metrics import count_cache
from api.proximity.geo import Proximity

log = logging.getLogger("hab.proximity")

PROXIMITY_VERSION = "1"
PREFIX = "hab:proximity:"
TTL_SECONDS = 24 * 3600
MAX_CACHED_SOURCES = 2_000_000  # 24 MB an entry at most


class _Entry(msgspec.Struct, array_like=True):
    targets: int
    counts: bytes  # int32, little-endian, one per valid source point
    nearest_m: bytes  # float64, little-endian


@dataclass(frozen=True)
class CachedProximity:
    targets: int  # valid target points
    found: Proximity


_decoder = msgspec.msgpack.Decoder(_Entry)


def cache_key(source_sha256: str, target_sha256: str, radius_m: float) -> str:
    # repr() of a float is exact and round-trips, so 300 and 300.0 share an entry and 300.0001 does not.
    # Which columns hold coordinates is the profiling code's decision: its version is part of the answer.
    version = f"v{PROXIMITY_VERSION}.p{PROFILE_VERSION}"
    return f"{PREFIX}{version}:{source_sha256}:{target_sha256}:{float(radius_m)!r}"


async def read(redis: Redis, key: str, sources: int) -> CachedProximity | None:
    """The cached figures for `sources` valid source points, or None (missing, unreadable, or not matching)."""
    try:
        raw = await redis.get(key)
    except (RedisError, OSError):
        log.warning("proximity cache read failed; computing", exc_info=True)
        raw = None
    entry = None
    if raw is not None:
        try:
            entry = _decoder.decode(raw)
        except msgspec.DecodeError:
            entry = None
    if entry is None or len(entry.counts) != 4 * sources or len(entry.nearest_m) != 8 * sources:
        count_cache("proximity", hit=False)
        return None
    count_cache("proximity", hit=True)
    counts = np.frombuffer(entry.counts, dtype="<i4").astype(np.int64)
    nearest = np.frombuffer(entry.nearest_m, dtype="<f8").astype(np.float64)
    return CachedProximity(targets=entry.targets, found=Proximity(counts=counts, nearest_m=nearest))


async def write(redis: Redis, key: str, targets: int, found: Proximity) -> None:
    if len(found.counts) > MAX_CACHED_SOURCES:
        return
    entry = _Entry(
        targets=targets,
        counts=found.counts.astype("<i4").tobytes(),
        nearest_m=found.nearest_m.astype("<f8").tobytes(),
    )
    try:
        await redis.set(key, msgspec.msgpack.encode(entry), ex=TTL_SECONDS)
    except (RedisError, OSError):
        log.warning("proximity cache write failed", exc_info=True)

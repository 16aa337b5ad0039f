"""Insights cached in Redis under the dataset's content hash and the version of the insight code.

Datasets are immutable and content-addressed, so an entry never goes stale; a change to how insights are
computed bumps INSIGHTS_VERSION. Every Redis error degrades to "no cache".
"""

from __future__ import annotations

import logging

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.insights.schemas import Insight

log = logging.getLogger("hab.insights")

INSIGHTS_VERSION = "1"
PREFIX = "hab:insights:"
TTL_SECONDS = 7 * 24 * 3600
_decoder = msgspec.json.Decoder(list[Insight])


def cache_key(content_sha256: str) -> str:
    return f"{PREFIX}v{INSIGHTS_VERSION}:{content_sha256}"


async def read(redis: Redis, content_sha256: str) -> list[Insight] | None:
    try:
        raw = await redis.get(cache_key(content_sha256))
    except (RedisError, OSError):
        log.warning("insights cache read failed; computing", exc_info=True)
        return None
    if raw is None:
        return None
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return None


async def write(redis: Redis, content_sha256: str, items: list[Insight]) -> None:
    try:
        await redis.set(cache_key(content_sha256), msgspec.json.encode(items), ex=TTL_SECONDS)
    except (RedisError, OSError):
        log.warning("insights cache write failed", exc_info=True)

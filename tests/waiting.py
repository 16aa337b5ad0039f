"""Waiting for a condition with a deadline: how tests synchronise with other tasks and processes.

A fixed sleep is either too short on a loaded machine (the test fails for no reason) or too long
everywhere else; polling a condition until a deadline is neither. The helpers raise AssertionError
naming what was awaited, so a condition that never comes fails the test at the right place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, seconds: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Call `predicate` until it returns something truthy (returned) or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {seconds:g} s: {what or getattr(predicate, '__name__', 'condition')}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], T | Awaitable[T]], *, seconds: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """`wait_until` for the event loop: `predicate` may be a plain function or return an awaitable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"not within {seconds:g} s: {what or getattr(predicate, '__name__', 'condition')}")
        await asyncio.sleep(interval)

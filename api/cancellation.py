"""Telling a task's cancellation apart from the exception it surfaces as."""

from __future__ import annotations

import asyncio


def being_cancelled() -> bool:
    """Whether the current task is being cancelled, whatever exception is propagating (a driver interrupted
    mid-query may report the cancellation as an error of its own)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

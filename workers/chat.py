"""The chat-turn job (long chats run here instead of in an HTTP request)."""

from __future__ import annotations

from typing import Any

from api.chat.jobs import ChatJobRun


async def chat_job(ctx: dict[str, Any], job_id: int) -> str:
    """Run one chat turn for a job (idempotent: a finished job returns its status, a duplicate is 'busy')."""
    return await ChatJobRun(ctx["resources"], job_id).run()

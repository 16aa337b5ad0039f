"""`POST /api/chat/message` on its lane (api/lanes.py): an answer from the cache is stored and answered there.

Everything else is handed to the route (api/chat/controllers.py) before anything is stored: a miss (the LLM
run), a refused hit (the store's re-check stored nothing), and whatever the route would refuse or would accept
only after its own coercion. The lane accepts a subset of the route's requests: the body decoded strictly as
ChatRequest, the Anthropic key header exactly as the route's pattern allows it, once. The key itself is not
used by a hit; it is required because the route requires it.
"""

from __future__ import annotations

import re

import msgspec
from litestar.types import Scope

from api.chat import schemas as s
from api.chat.hits import ChatAsk
from api.chat.llm import KEY_HEADER, KEY_PATTERN
from api.resources import Resources
from api.users.services import Principal

PATH = "/api/chat/message"
_KEY_HEADER = KEY_HEADER.lower().encode("latin-1")
_KEY = re.compile(KEY_PATTERN.encode("latin-1"))  # the route's HeaderParameter pattern
_decode_request = msgspec.json.Decoder(s.ChatRequest).decode


def _has_plain_key(scope: Scope) -> bool:
    values = [value for name, value in scope["headers"] if name == _KEY_HEADER]
    return len(values) == 1 and _KEY.fullmatch(values[0]) is not None


async def chat_hit_on_lane(resources: Resources, user: Principal, body: bytes, scope: Scope) -> s.ChatResponse | None:
    if not _has_plain_key(scope):
        return None
    ask = ChatAsk(resources)
    try:
        turn, cached = await ask.cached(user, _decode_request(body))
    except Exception:  # refusals (an unknown dataset, too many) and faults: the route answers them
        return None
    if cached is None:
        return None
    return await ask.store_hit(turn, cached)

"""Objects shared by every page: one API client per (URL, token), a tokenless one for share links, and this
browser session's settings."""

from __future__ import annotations

import streamlit as st

from frontend.client import HabClient
from frontend.config import DEFAULT_MAP_POINTS, MODEL_CHOICES, load_config

# st.session_state keys shared between the sidebar and the pages.
CLAUDE_KEY = "claude_api_key"
CLAUDE_MODEL = "claude_model"
TOKENS_USED = "tokens_used"
MAP_MAX_POINTS = "map_max_points"


@st.cache_resource(show_spinner=False)
def _client(api_url: str, api_token: str, timeout: float, upload_timeout: float) -> HabClient:
    return HabClient(api_url, api_token, timeout=timeout, upload_timeout=upload_timeout)


def get_client() -> HabClient:
    """The client for the configured API; re-reading the configuration is cheap and follows its changes."""
    config = load_config()
    return _client(config.api_url, config.api_token, config.request_timeout, config.upload_timeout)


def get_anonymous_client() -> HabClient:
    """A client for the same API that carries no token: what a share link's page (and share-link reads on the
    explore page) use, so opening someone's link never sends the viewer's token along."""
    config = load_config()
    return _client(config.api_url, "", config.request_timeout, config.upload_timeout)


def init_session() -> None:
    """Defaults of the per-session settings (the Anthropic key never leaves this session)."""
    state = st.session_state
    if CLAUDE_KEY not in state:
        state[CLAUDE_KEY] = load_config().claude_api_key
    state.setdefault(CLAUDE_MODEL, MODEL_CHOICES[0])
    state.setdefault(TOKENS_USED, 0)
    state.setdefault(MAP_MAX_POINTS, DEFAULT_MAP_POINTS)


def map_max_points() -> int:
    return int(st.session_state.get(MAP_MAX_POINTS, DEFAULT_MAP_POINTS))


def add_tokens_used(count: int) -> None:
    """For the chat page: count the Anthropic tokens this session has used."""
    st.session_state[TOKENS_USED] = int(st.session_state.get(TOKENS_USED, 0)) + int(count)

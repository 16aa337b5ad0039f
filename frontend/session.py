"""Objects shared by every page (one API client per server process)."""

from __future__ import annotations

import streamlit as st

from frontend.client import HabClient
from frontend.config import load_config


@st.cache_resource
def get_client() -> HabClient:
    config = load_config()
    return HabClient(
        config.api_url, config.api_token, timeout=config.request_timeout, upload_timeout=config.upload_timeout
    )

"""공유된 데이터셋: what a share link (`/?share=shr_…`) opens — read-only, no account, no sidebar.

The same views as the explore and map pages: the explore page's script in share mode (it reads `?share=`),
then the map page's sections over the link's points.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st

from frontend.client import ApiError, DatasetSource
from frontend.session import get_anonymous_client, map_max_points
from frontend.ui import is_mappable, share_token_from
from frontend.views import map as map_view

GONE_HELP = "링크를 보낸 분께 새 공유 링크를 요청해 주세요."

client = get_anonymous_client()  # /api/shared/* needs no token, and the viewer's must not travel with it
token = share_token_from(st.query_params.get("share", ""))
if token is None:
    st.error("공유 링크 주소가 올바르지 않습니다. " + GONE_HELP, icon="🔗")
    st.stop()
try:
    detail = client.shared(token)
except ApiError as error:
    # 410: revoked or expired, 404: unknown or deleted; the API's message says which, in Korean.
    if error.status in (404, 410):
        st.error(f"{error.message} {GONE_HELP}", icon="⛔")
    else:
        st.error(error.message, icon="⚠️")
    st.stop()

st.title(f"🔗 {detail['name']}")
expires = str(detail.get("expires_at") or "")[:16].replace("T", " ")
st.caption(f"공유받은 데이터셋 (읽기 전용) · v{detail['version']}" + (f" · 링크 만료 {expires}" if expires else ""))
# The explore page's own script (st.Page.run is only for the page st.navigation returned).
runpy.run_path(str(Path(__file__).with_name("explore.py")), run_name="__main__")

if is_mappable(detail):
    st.subheader("지도")
    source = DatasetSource(share_token=token)
    layers = map_view.load_layers(client, [(detail, source)], map_max_points())
    if layers:
        map_view.coordinate_metrics(layers, map_max_points())
        map_view.map_section(layers, map_view.choose_mode(), key="shared_map")

"""Hot swap across processes' worth of resources: Redis announcement, periodic re-check, Redis down."""

from __future__ import annotations

import asyncio

import httpx

from api.app import create_app
from api.registry.services import RegistryService
from api.resources import close_resources, open_resources
from tests.integration.conftest import closed_port
from tests.integration.test_predictions_api import FEATURES
from tests.waiting import async_wait_until


async def _channel_listeners(resources) -> int:
    """Connections of this test database's Redis (db number) subscribed to a channel.

    Channels are shared by every Redis db, so PUBSUB NUMSUB would count other test sessions' listeners;
    CLIENT LIST says which db each connection uses."""
    db = resources.redis.connection_pool.connection_kwargs.get("db", 0)
    clients = await resources.redis.client_list()
    return sum(1 for c in clients if int(c.get("db", -1)) == db and int(c.get("sub", 0)) > 0)


async def _more_listeners(resources, than: int) -> bool:
    return await _channel_listeners(resources) > than


async def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_other_process_swaps_on_the_announcement(settings, resources, versions):
    v1, v2 = versions
    listeners = await _channel_listeners(resources)
    peer = await open_resources(settings.model_copy(update={"model_recheck_seconds": 3600}), follow_models=True)
    try:
        assert peer.models.version == v1
        # The announcement only reaches a peer that is already subscribed (no re-check for an hour here).
        await async_wait_until(
            lambda: _more_listeners(resources, listeners), seconds=10, what="the peer subscribed to the channel"
        )
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(v2)
        assert await _wait_for(lambda: peer.models.version == v2), "peer never swapped"
    finally:
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(v1)
        await close_resources(peer)


async def test_lost_announcement_only_delays_the_swap(settings, resources, versions):
    """A peer whose Redis is unreachable still follows PostgreSQL through its periodic re-check."""
    v1, v2 = versions
    cut_off = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0", "model_recheck_seconds": 0.3}
    )
    peer = await open_resources(cut_off, follow_models=True)
    try:
        assert peer.models.version == v1
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(v2)
        assert await _wait_for(lambda: peer.models.version == v2), "re-check never swapped"
    finally:
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(v1)
        await close_resources(peer)


async def test_predictions_work_with_redis_down(settings, versions, alice):
    cut_off = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    app = create_app(cut_off)
    app.state.resources = await open_resources(cut_off, follow_models=True)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)
            assert response.status_code == 200, response.text
            assert response.json()["model_version"] == versions[0]
            assert (await client.get("/ready")).status_code == 503
    finally:
        await close_resources(app.state.resources)

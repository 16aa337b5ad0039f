"""An API process with model compilation on: activation serves at once on LightGBM, the compiled library
takes over batches once it is built, and the answers stay LightGBM's."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from api.registry.services import RegistryService
from api.resources import close_resources, open_resources
from models.compiled import EQUALITY_TOLERANCE, find_compiler
from tests.integration.test_predictions_api import RAW_ROW
from tests.waiting import async_wait_until

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="no C compiler on this machine")


@pytest.fixture
async def compiling(settings, tmp_path, versions, resources):
    """A second API app on the same database whose model holder compiles what it serves."""
    async with resources.sessions() as session:
        await RegistryService(session, resources).activate(versions[0])
        await session.commit()
    await resources.model_sync.refresh()
    compiling_settings = settings.model_copy(
        update={"model_compile": "auto", "model_compile_dir": tmp_path / "compiled", "model_compile_threads": 2}
    )
    app = create_app(compiling_settings)
    app.state.resources = await open_resources(compiling_settings, follow_models=True)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local", timeout=60) as c:
            yield c, app.state.resources
    finally:
        await close_resources(app.state.resources)


async def test_batches_move_to_the_compiled_library_with_the_same_answers(
    compiling, client, alice, versions, demo_train_table
):
    compiled_client, compiled_resources = compiling
    rows = demo_train_table.select(list(RAW_ROW)).to_pylist()[:2_000]
    for row in rows:
        row["사고일시"] = row["사고일시"].strftime("%Y-%m-%d %H")

    async def predictor() -> str | None:
        active = await compiled_client.get("/api/models/active", headers=alice.headers)
        assert active.status_code == 200, active.text
        assert active.json()["version"] == versions[0]
        return active.json()["predictor"]

    # The version is served at once (by LightGBM), before any library exists.
    assert await predictor() in ("lightgbm", "compiled")
    await async_wait_until(_is_compiled(predictor), seconds=300, interval=0.25, what="the served model is compiled")
    assert compiled_resources.models.current.backend == "compiled"

    reference = await client.post("/api/predict/eclo/batch", json={"rows": rows}, headers=alice.headers)
    answered = await compiled_client.post("/api/predict/eclo/batch", json={"rows": rows}, headers=alice.headers)
    assert reference.status_code == answered.status_code == 200
    expected = [r["eclo"] for r in reference.json()["results"]]
    got = [r["eclo"] for r in answered.json()["results"]]
    assert len(got) == len(expected) == len(rows) and len(set(expected)) > 10
    for a, b in zip(expected, got, strict=True):
        assert abs(a - b) <= EQUALITY_TOLERANCE * max(abs(a), 1e-12) + 1e-12
    # The LightGBM-only process says so.
    plain = (await client.get("/api/models/active", headers=alice.headers)).json()
    assert plain["predictor"] == "lightgbm"


def _is_compiled(predictor):
    async def check() -> bool:
        return await predictor() == "compiled"

    return check

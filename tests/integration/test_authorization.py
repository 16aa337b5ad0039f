"""Authorization as one table: every route of the app, who may call it, and what everyone else gets.

A route the table does not name fails the first test. Every entry is then checked end to end: without a token
(401), as a member on an admin route (403), as another member on someone's things (404 exactly like a missing
thing, nothing leaked, nothing changed), as an admin, and as the rightful caller (its status): the same request
is served to the right person, so no refusal here is the accident of a malformed request.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update

from api.db.tables import ShareLink
from api.registry.repository import ModelVersionRepository
from tests.integration.authz_helpers import (
    FEATURES,
    KEY,
    Access,
    Rule,
    World,
    answering,
    app_routes,
    call,
    chat_body,
    path_params,
    route_id,
    snapshot,
)

HANGUL = re.compile(r"[가-힣]")
PUBLIC, SHARE, MEMBER, ADMIN = Access.PUBLIC, Access.SHARE, Access.MEMBER, Access.ADMIN
OWNER, OWN_LIST = Access.OWNER, Access.OWN_LIST
CSV = "구,값\n중구,1\n".encode()
SCHEMA_ID = "/schema/{path:str}"
DATASET = "/api/datasets/{dataset_id:int}"
SHARED = "/api/shared/{token:str}"


def form(t):
    return {"files": {"file": ("권한.csv", CSV, "text/csv")}}


def csv_body(t):
    return {"content": CSV, "headers": {"Content-Type": "text/csv"}}


def compare_body(t):
    group = {"dataset_id": t.dataset_id, "where": {"column": "시도명", "value": "대구광역시"}}
    return {"json": {"column": t.column, "left": group, "right": group}}


def proximity_body(t):
    return {"json": {"source_dataset_id": t.dataset_id, "target_dataset_id": t.dataset_id, "radius_m": 300}}


ROUTES: dict[tuple[str, str], Rule] = {
    # Probes and the API description.
    ("GET", "/health"): Rule(PUBLIC),
    ("GET", "/metrics"): Rule(PUBLIC),  # on the API's own port; nginx does not serve it to the outside
    ("GET", "/ready"): Rule(PUBLIC),
    ("GET", "/schema"): Rule(PUBLIC),
    ("GET", "/schema/swagger"): Rule(PUBLIC),
    ("GET", "/schema/openapi.json"): Rule(PUBLIC),
    ("GET", "/schema/oauth2-redirect.html"): Rule(PUBLIC),
    ("GET", SCHEMA_ID): Rule(
        PUBLIC, ok=404, params={"path": "redoc"}
    ),  # Litestar's page for a renderer we do not serve
    # Share-link reads: the token in the path is the permission (and names the dataset: see the share tests).
    ("GET", SHARED): Rule(SHARE),
    ("GET", f"{SHARED}/rows"): Rule(SHARE),
    ("GET", f"{SHARED}/columns/{{column:str}}/distribution"): Rule(SHARE),
    ("GET", f"{SHARED}/points"): Rule(SHARE),
    ("GET", f"{SHARED}/sample"): Rule(SHARE, send=lambda t: {"params": {"x": t.column, "y": t.column, "n": 10}}),
    ("GET", f"{SHARED}/insights"): Rule(SHARE),
    # Any member.
    ("GET", "/api/me"): Rule(MEMBER),
    ("GET", "/api/labels"): Rule(PUBLIC),  # the fixed Korean names; a share link's page needs them
    ("GET", "/api/analysis/tools"): Rule(MEMBER),
    ("GET", "/api/predict/schema"): Rule(MEMBER),
    ("GET", "/api/models"): Rule(MEMBER),
    ("GET", "/api/models/active"): Rule(MEMBER),
    ("GET", "/api/models/{version:int}"): Rule(MEMBER),
    ("GET", "/api/jobs/overview"): Rule(MEMBER),  # members see their own jobs of it (test_job_dashboard.py)
    ("GET", "/api/chat/models"): Rule(MEMBER),
    ("POST", "/api/chat/verify-key"): Rule(MEMBER, send=lambda t: {"headers": {"X-Anthropic-API-Key": KEY}}),
    ("POST", "/api/datasets/upload"): Rule(MEMBER, ok=201, send=form),
    ("POST", "/api/datasets/upload/csv"): Rule(MEMBER, ok=201, send=csv_body),
    ("POST", "/api/predict/eclo"): Rule(MEMBER, send=lambda t: {"json": FEATURES}),
    ("POST", "/api/predict/eclo/batch"): Rule(MEMBER, send=lambda t: {"json": {"rows": [FEATURES]}}),
    # Admins only. The member's request is a real bundle and the active version, so a missing guard would serve it.
    ("POST", "/api/models"): Rule(ADMIN, ok=201, send=lambda t: {"files": {"file": ("model.zip", t.bundle)}}),
    ("POST", "/api/models/{version:int}/activate"): Rule(ADMIN),
    # Lists of the caller's own things (an admin's dataset list shows everyone's).
    ("GET", "/api/datasets"): Rule(OWN_LIST, resource="dataset_id"),
    ("GET", "/api/jobs"): Rule(OWN_LIST, resource="job_id", admin_sees=False),
    ("GET", "/api/conversations"): Rule(OWN_LIST, resource="conversation_id", admin_sees=False),
    ("GET", "/api/predictions"): Rule(OWN_LIST, resource="prediction_id", admin_sees=False),
    # One user's things. Admins see datasets, share links and jobs; conversations stay their owner's.
    ("GET", DATASET): Rule(OWNER, resource="dataset_id"),
    ("DELETE", DATASET): Rule(OWNER, ok=204, resource="dataset_id", mutates=True),
    ("GET", f"{DATASET}/rows"): Rule(OWNER, resource="dataset_id"),
    ("GET", f"{DATASET}/columns/{{column:str}}/distribution"): Rule(OWNER, resource="dataset_id"),
    ("GET", f"{DATASET}/points"): Rule(OWNER, resource="dataset_id"),
    ("GET", f"{DATASET}/sample"): Rule(
        OWNER, resource="dataset_id", send=lambda t: {"params": {"x": t.column, "y": t.column, "n": 10}}
    ),
    ("GET", f"{DATASET}/insights"): Rule(OWNER, resource="dataset_id"),
    ("POST", "/api/datasets/compare"): Rule(OWNER, resource="dataset_id", send=compare_body),
    ("POST", "/api/analysis/proximity"): Rule(OWNER, resource="dataset_id", send=proximity_body),
    ("POST", f"{DATASET}/share"): Rule(OWNER, ok=201, resource="dataset_id"),
    ("GET", f"{DATASET}/shares"): Rule(OWNER, resource="dataset_id"),
    ("DELETE", f"{DATASET}/shares/{{share_id:int}}"): Rule(OWNER, ok=204, resource="share_id", mutates=True),
    ("DELETE", SHARED): Rule(OWNER, ok=204, resource="share_id", mutates=True),
    ("POST", "/api/predict/jobs"): Rule(
        OWNER, ok=202, resource="scorable_id", send=lambda t: {"json": {"dataset_id": t.scorable_id}}
    ),
    ("GET", "/api/predict/jobs/{job_id:int}/results"): Rule(OWNER, resource="job_id"),
    ("GET", "/api/jobs/{job_id:int}"): Rule(OWNER, resource="job_id"),
    ("POST", "/api/jobs/{job_id:int}/cancel"): Rule(
        OWNER, resource="queued_job_id", mutates=True, params={"job_id": "queued_job_id"}
    ),
    ("GET", "/api/conversations/{conversation_id:int}"): Rule(OWNER, resource="conversation_id", admin_sees=False),
    ("DELETE", "/api/conversations/{conversation_id:int}"): Rule(
        OWNER, ok=204, resource="conversation_id", admin_sees=False, mutates=True
    ),
    # A chat turn continuing the owner's conversation about the owner's dataset.
    ("POST", "/api/chat/message"): Rule(OWNER, resource="conversation_id", admin_sees=False, send=chat_body),
    ("POST", "/api/chat/stream"): Rule(OWNER, resource="conversation_id", admin_sees=False, send=chat_body),
    ("POST", "/api/chat/jobs"): Rule(OWNER, ok=202, resource="conversation_id", admin_sees=False, send=chat_body),
}


def keys(*access: Access) -> list[tuple[str, str]]:
    return [key for key, rule in ROUTES.items() if rule.access in access]


@pytest.fixture(scope="module")
async def world(client, alice, settings, resources, anthropic_server, demo_train_table, versions):
    async with resources.sessions() as session:
        bundle, _ = await ModelVersionRepository(session=session).bundle(versions[1])
    made = World(client, alice, settings)
    anthropic_server.reset()
    anthropic_server.responder = answering
    try:
        made.targets = await made.build(demo_train_table, bundle)
    finally:
        anthropic_server.reset()
    yield made
    await made.cancel_leftovers()


@pytest.fixture(autouse=True)
def llm(fake_anthropic):
    """Every question is answered, so a refusal is the app's and not the fake's; refusals must not ask."""
    fake_anthropic.responder = answering
    return fake_anthropic


async def refused(client, resources, llm, key, t, who, status: int, code: str) -> dict:
    """Call the route and check the refusal: status, Korean error, the owner's secret unsaid, nothing changed."""
    before, asked = await snapshot(resources), llm.call_count
    response = await call(client, key, ROUTES[key], t, who)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and HANGUL.search(error["message"]), error
    assert t.secret not in response.text and "alice" not in response.text
    assert await snapshot(resources) == before, "a refused request changed what is stored"
    assert llm.call_count == asked, "a refused request reached the Anthropic API"
    return error


def test_the_table_names_every_route_of_the_app(app):
    routes, table = app_routes(app), set(ROUTES)
    missing = sorted(route_id(k) for k in routes - table)
    stale = sorted(route_id(k) for k in table - routes)
    assert not missing, f"routes without an entry in ROUTES (say who may call them): {missing}"
    assert not stale, f"entries in ROUTES for routes the app no longer has: {stale}"


@pytest.mark.parametrize("key", keys(MEMBER, ADMIN, OWNER, OWN_LIST), ids=route_id)
async def test_without_a_token_it_is_401(key, client, resources, world, llm):
    t = await world.targets_for(ROUTES[key])
    await refused(client, resources, llm, key, t, None, 401, "unauthorized")
    await world.still_there(t, ROUTES[key].resource)


@pytest.mark.parametrize("key", keys(ADMIN), ids=route_id)
async def test_a_member_on_an_admin_route_is_403(key, client, resources, world, llm, alice):
    await refused(client, resources, llm, key, world.targets, alice, 403, "forbidden")


@pytest.mark.parametrize("key", keys(OWNER), ids=route_id)
async def test_another_member_gets_404_as_for_a_missing_thing(key, client, resources, world, llm, bob, alice):
    rule = ROUTES[key]
    t = await world.targets_for(rule)
    bobs = await refused(client, resources, llm, key, t, bob, 404, "not_found")
    missing = await refused(client, resources, llm, key, t.missing(), alice, 404, "not_found")
    assert bobs["message"] == missing["message"]  # nothing tells bob that the thing exists
    await world.still_there(t, rule.resource)


@pytest.mark.parametrize("key", keys(OWNER), ids=route_id)
async def test_an_admin_on_someone_elses_thing(key, client, resources, world, llm, admin):
    rule = ROUTES[key]
    t = await world.targets_for(rule)
    if not rule.admin_sees:
        await refused(client, resources, llm, key, t, admin, 404, "not_found")
        return
    response = await call(client, key, rule, t, admin)
    assert response.status_code == rule.ok, response.text
    await world.settle(response, admin)


@pytest.mark.parametrize("key", list(ROUTES), ids=route_id)
async def test_the_rightful_caller_is_served(key, client, world, alice, admin):
    rule = ROUTES[key]
    who = {PUBLIC: None, SHARE: None, ADMIN: admin}.get(rule.access, alice)
    response = await call(client, key, rule, await world.targets_for(rule), who)
    assert response.status_code == rule.ok, response.text
    await world.settle(response, who)


async def listed_ids(client, path: str, who, *, every_page: bool) -> tuple[set[int], str]:
    """Ids a list route shows `who` (newest 200 only, or every page) and the bodies' text."""
    ids, texts, offset = set(), [], 0
    while True:
        response = await client.get(path, params={"offset": offset, "limit": 200}, headers=who.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids |= {item["id"] for item in page["items"]}
        texts.append(response.text)
        offset += 200
        if not every_page or offset >= page["total"]:
            return ids, "".join(texts)


@pytest.mark.parametrize("key", keys(OWN_LIST), ids=route_id)
async def test_lists_show_only_the_callers_things(key, client, world, alice, bob, admin):
    rule, path = ROUTES[key], key[1]
    thing = getattr(world.targets, rule.resource)
    assert thing in (await listed_ids(client, path, alice, every_page=False))[0]
    bobs, text = await listed_ids(client, path, bob, every_page=True)
    assert thing not in bobs and world.targets.secret not in text
    assert (thing in (await listed_ids(client, path, admin, every_page=True))[0]) is rule.admin_sees


def test_share_routes_take_no_dataset_id():
    """A share token reads only its own dataset by construction: no share route can name another one."""
    for key in keys(SHARE):
        assert path_params(key[1]) <= {"token", "column"}, key


async def test_a_share_token_reads_its_own_dataset(client, world, alice):
    t = world.targets
    dataset = (await client.get(f"/api/datasets/{t.dataset_id}", headers=alice.headers)).json()
    shared = (await client.get(f"/api/shared/{t.token}")).json()
    assert (shared["id"], shared["name"], shared["rows"]) == (dataset["id"], dataset["name"], dataset["rows"])
    rows = (await client.get(f"/api/shared/{t.token}/rows", params={"limit": 3})).json()
    assert rows["total"] == dataset["rows"] and rows["columns"] == [c["name"] for c in dataset["columns"]]
    points = (await client.get(f"/api/shared/{t.token}/points", params={"max_points": 50000})).json()
    assert points["valid"] + points["invalid"] + points["missing"] == dataset["rows"]
    shared_insights = (await client.get(f"/api/shared/{t.token}/insights")).json()
    owners = (await client.get(f"/api/datasets/{dataset['id']}/insights", headers=alice.headers)).json()
    assert shared_insights == owners and shared_insights["items"]


@pytest.mark.parametrize("ending", ["revoked", "expired", "dataset deleted"])
async def test_a_dead_share_link_reads_nothing(ending, client, resources, world, alice):
    t = world.targets
    dataset_id = await world.dataset(world.cctv_csv, f"{t.secret} 공유 종료")
    share_id, token = await world.share(dataset_id)
    t = replace(t, dataset_id=dataset_id, share_id=share_id, token=token)
    for key in keys(SHARE):
        assert (await call(client, key, ROUTES[key], t, None)).status_code == 200, key
    if ending == "revoked":
        assert (await client.delete(f"/api/shared/{token}", headers=alice.headers)).status_code == 204
    elif ending == "expired":
        async with resources.sessions() as session:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await session.execute(update(ShareLink).where(ShareLink.id == share_id).values(expires_at=past))
            await session.commit()
    else:
        assert (await client.delete(f"/api/datasets/{dataset_id}", headers=alice.headers)).status_code == 204
    status = 404 if ending == "dataset deleted" else 410  # a deleted dataset takes its links with it
    for key in keys(SHARE):
        response = await call(client, key, ROUTES[key], t, None)
        assert response.status_code == status, (key, response.text)
        assert HANGUL.search(response.json()["error"]["message"]) and t.secret not in response.text
    async with resources.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(ShareLink).where(ShareLink.id == share_id))
    assert left == (0 if ending == "dataset deleted" else 1)


async def test_on_a_team_dataset_a_member_reads_but_neither_shares_nor_deletes(
    client, resources, world, llm, alice, bob, admin
):
    team = await client.post(
        "/api/datasets/upload/csv",
        params={"name": f"{world.targets.secret} 팀", "visibility": "team"},
        content=world.cctv_csv,
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    assert team.status_code == 201, team.text
    share_id, token = await world.share(team.json()["id"])
    t = replace(world.targets, dataset_id=team.json()["id"], share_id=share_id, token=token)
    assert (await client.get(f"/api/datasets/{t.dataset_id}", headers=bob.headers)).status_code == 200
    await refused(client, resources, llm, ("POST", f"{DATASET}/share"), t, bob, 403, "forbidden")
    await refused(client, resources, llm, ("DELETE", DATASET), t, bob, 403, "forbidden")
    await refused(client, resources, llm, ("DELETE", f"{DATASET}/shares/{{share_id:int}}"), t, bob, 404, "not_found")
    await refused(client, resources, llm, ("DELETE", SHARED), t, bob, 404, "not_found")
    links = await client.get(f"/api/datasets/{t.dataset_id}/shares", headers=bob.headers)
    assert links.status_code == 200 and links.json()["items"] == []  # alice's link is not bob's business
    await world.still_there(t, "dataset_id")
    await world.still_there(t, "share_id")
    assert (await client.post(f"/api/datasets/{t.dataset_id}/share", headers=admin.headers)).status_code == 201


async def test_the_datasets_owner_revokes_a_link_an_admin_made(client, world, alice, admin):
    """Its owner may revoke every link of a dataset, by id or by token alike."""
    _, token = await world.share(world.targets.dataset_id, by=admin)
    assert (await client.delete(f"/api/shared/{token}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/api/shared/{token}")).status_code == 410

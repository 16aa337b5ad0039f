"""What the authorization table (test_authorization.py) needs: the app's routes, one owner's things to name in
paths and bodies, requests built from a table entry, and a snapshot of everything a route could change."""

from __future__ import annotations

import enum
import io
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pyarrow.csv as pacsv
from litestar import Litestar
from sqlalchemy import text

from api.demo.generate import generate_demo_datasets
from tests.fakes.anthropic_server import Reply
from tests.fakes.anthropic_server import text as text_block
from tests.integration.conftest import Account, run_worker

KEY = "sk-ant-authz-" + "k" * 20
MISSING = 2**31 - 1  # an id no row has
FEATURES = {
    "기상상태": "맑음",
    "노면상태": "건조",
    "도로형태": "교차로 - 교차로안",
    "사고유형": "차대사람",
    "시간대": "심야",
    "시군구": "대구광역시 중구 대신동",
    "요일": "토요일",
    "사고연": 2021,
    "사고월": 7,
    "사고일": 3,
    "사고시": 2,
}
_PARAM = re.compile(r"\{(\w+):\w+\}")


class Access(enum.StrEnum):
    PUBLIC = "public"  # no token needed
    SHARE = "share"  # no token: the share link's token in the path is the permission
    MEMBER = "member"  # any signed-in user
    ADMIN = "admin"  # admins only; members get 403
    OWNER = "owner"  # names one user's thing (path or body); anyone else gets 404, as for a missing one
    OWN_LIST = "own_list"  # lists only the caller's things


@dataclass(frozen=True)
class Rule:
    access: Access
    ok: int = 200  # the rightful caller's status
    resource: str | None = None  # the Targets field the route names (OWNER) or must list (OWN_LIST)
    admin_sees: bool = True  # whether an admin gets `ok` on another user's thing (OWNER, OWN_LIST)
    mutates: bool = False  # changes the thing it names: every call gets a fresh one (see World.fresh)
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> Targets field, where not the same
    send: Callable[[Targets], dict[str, Any]] | None = None  # body, query and headers besides the token


@dataclass(frozen=True)
class Targets:
    """One owner's things, as the routes' path parameters and bodies name them."""

    dataset_id: int  # with coordinates (points) and the column below
    scorable_id: int  # accident-shaped, for scoring jobs
    column: str
    share_id: int
    token: str
    job_id: int  # a finished scoring job
    queued_job_id: int
    conversation_id: int
    prediction_id: int
    version: int  # the active model version
    secret: str  # in the owner's dataset names and questions: must never reach anyone else
    bundle: bytes = field(default=b"", repr=False)  # a registered model bundle, to upload again

    def missing(self) -> Targets:
        """The same request shape, naming things that do not exist."""
        ids = ("dataset_id", "scorable_id", "share_id", "job_id", "queued_job_id", "conversation_id")
        return replace(self, token="shr_" + "0" * 43, **dict.fromkeys(ids, MISSING))


def app_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path template) of every route handler of the app; HEAD and OPTIONS are Litestar's own."""
    return {
        (method, route.path)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for method in handler.http_methods
        if method not in ("HEAD", "OPTIONS")
    }


def path_params(path: str) -> set[str]:
    return set(_PARAM.findall(path))


def route_id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


async def call(
    client: httpx.AsyncClient, key: tuple[str, str], rule: Rule, t: Targets, who: Account | None
) -> httpx.Response:
    method, template = key
    # A parameter is filled from the Targets field of its name (or the one `rule.params` names), else literally.
    path = _PARAM.sub(lambda m: str(getattr(t, (name := rule.params.get(m.group(1), m.group(1))), name)), template)
    options = dict(rule.send(t)) if rule.send else {}
    headers = {**options.pop("headers", {}), **(who.headers if who else {})}
    return await client.request(method, path, headers=headers, **options)


def chat_body(t: Targets) -> dict[str, Any]:
    """Continue the owner's conversation about the owner's dataset (a new question each time: no cache hits)."""
    message = f"이어서 질문 {secrets.token_hex(4)}"
    body = {"dataset_ids": [t.dataset_id], "message": message, "conversation_id": t.conversation_id}
    return {"json": body, "headers": {"X-Anthropic-API-Key": KEY}}


async def snapshot(resources) -> dict[str, Any]:
    """Everything a refused request could have stored or changed, in one query."""
    query = """
        select (select count(*) from datasets) as datasets,
               (select count(*) from dataset_blobs) as blobs,
               (select count(*) from share_links) as share_links,
               (select count(*) from share_links where revoked_at is not null) as revoked_links,
               (select count(*) from jobs) as jobs,
               (select count(*) from jobs where cancel_requested or status = 'cancelled') as cancelled_jobs,
               (select count(*) from conversations) as conversations,
               (select count(*) from chat_messages) as messages,
               (select count(*) from predictions) as predictions,
               (select count(*) from model_versions) as model_versions,
               (select version from model_versions where status = 'active') as active_version
    """
    async with resources.sessions() as session:
        return dict((await session.execute(text(query))).mappings().one())


def answering(body: dict[str, Any]) -> Reply:
    """The fake Anthropic server's answer to every question here (set as its responder)."""
    return Reply([text_block("확인했습니다.")])


def _ok(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


@dataclass
class World:
    """Makes an owner's things through the API, as the routes under test would see them."""

    client: httpx.AsyncClient
    owner: Account
    settings: Any
    jobs: list[int] = field(default_factory=list)  # queued jobs made here, cancelled at the end
    targets: Targets | None = None  # made by build()
    cctv_csv: bytes = b""  # the content of targets.dataset_id, for fresh copies of it
    cctv_id: int = 0

    async def dataset(self, content: bytes, name: str) -> int:
        response = await self.client.post(
            "/api/datasets/upload/csv",
            params={"name": name},
            content=content,
            headers={**self.owner.headers, "Content-Type": "text/csv"},
        )
        return _ok(response, 201)["id"]

    async def share(self, dataset_id: int, by: Account | None = None) -> tuple[int, str]:
        link = _ok(await self.client.post(f"/api/datasets/{dataset_id}/share", headers=(by or self.owner).headers), 201)
        return link["id"], link["token"]

    async def queued_job(self) -> int:
        response = await self.client.post("/api/predict/jobs", json={"rows": [FEATURES]}, headers=self.owner.headers)
        self.jobs.append(_ok(response, 202)["job_id"])
        return self.jobs[-1]

    async def conversation(self, question: str) -> int:
        body = {"dataset_ids": [self.cctv_id], "message": question}
        response = await self.client.post(
            "/api/chat/message", json=body, headers={**self.owner.headers, "X-Anthropic-API-Key": KEY}
        )
        return _ok(response, 200)["conversation_id"]

    async def build(self, demo_train_table, bundle: bytes) -> Targets:
        secret = f"앨리스비밀-{secrets.token_hex(4)}"
        demo = {d.key: d for d in generate_demo_datasets(seed=13, scale=0.02)}
        self.cctv_csv = demo["cctv"].csv_bytes
        self.cctv_id = await self.dataset(self.cctv_csv, f"{secret} CCTV")
        sink = io.BytesIO()
        pacsv.write_csv(demo_train_table.slice(0, 200), sink)
        scorable_id = await self.dataset(sink.getvalue(), f"{secret} 사고")
        submitted = await self.client.post(
            "/api/predict/jobs", json={"dataset_id": scorable_id}, headers=self.owner.headers
        )
        job_id = _ok(submitted, 202)["job_id"]
        await run_worker(self.settings)  # burst: returns once the queue is empty
        assert _ok(await self.client.get(f"/api/jobs/{job_id}", headers=self.owner.headers), 200)["status"] == (
            "succeeded"
        )
        share_id, token = await self.share(self.cctv_id)
        predicted = await self.client.post("/api/predict/eclo", json=FEATURES, headers=self.owner.headers)
        active = _ok(await self.client.get("/api/models/active", headers=self.owner.headers), 200)
        return Targets(
            dataset_id=self.cctv_id,
            scorable_id=scorable_id,
            column="제한속도",
            share_id=share_id,
            token=token,
            job_id=job_id,
            queued_job_id=await self.queued_job(),
            conversation_id=await self.conversation(f"{secret} 질문"),
            prediction_id=_ok(predicted, 200)["prediction_id"],
            version=active["version"],
            secret=secret,
            bundle=bundle,
        )

    async def fresh(self, t: Targets, resource: str | None) -> Targets:
        """`t` with a new thing of this kind, for a call that may change or delete it."""
        if resource == "dataset_id":
            return replace(t, dataset_id=await self.dataset(self.cctv_csv, f"{t.secret} 삭제용"))
        if resource == "share_id":
            share_id, token = await self.share(t.dataset_id)
            return replace(t, share_id=share_id, token=token)
        if resource == "queued_job_id":
            return replace(t, queued_job_id=await self.queued_job())
        if resource == "conversation_id":
            return replace(t, conversation_id=await self.conversation(f"{t.secret} 삭제용 {secrets.token_hex(4)}"))
        raise AssertionError(f"no fresh {resource}")

    async def targets_for(self, rule: Rule) -> Targets:
        assert self.targets is not None
        return await self.fresh(self.targets, rule.resource) if rule.mutates else self.targets

    async def still_there(self, t: Targets, resource: str | None) -> None:
        """The owner still has the thing a refused call named, unchanged."""
        owner = self.owner.headers
        if resource == "dataset_id":
            _ok(await self.client.get(f"/api/datasets/{t.dataset_id}", headers=owner), 200)
        elif resource == "share_id":
            _ok(await self.client.get(f"/api/shared/{t.token}"), 200)
        elif resource == "queued_job_id":
            job = _ok(await self.client.get(f"/api/jobs/{t.queued_job_id}", headers=owner), 200)
            assert job["status"] == "queued", job
        elif resource == "conversation_id":
            _ok(await self.client.get(f"/api/conversations/{t.conversation_id}", headers=owner), 200)

    async def settle(self, response: httpx.Response, who: Account | None) -> None:
        """Cancel a job an allowed call queued, so no later worker runs it."""
        if response.status_code == 202 and who is not None:
            job_id = response.json()["job_id"]
            _ok(await self.client.post(f"/api/jobs/{job_id}/cancel", headers=who.headers), 200)

    async def cancel_leftovers(self) -> None:
        """Leave no job of ours queued for later tests' workers (an already finished one answers 409)."""
        for job_id in self.jobs:
            response = await self.client.post(f"/api/jobs/{job_id}/cancel", headers=self.owner.headers)
            assert response.status_code in (200, 409), response.text

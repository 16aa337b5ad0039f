"""The Korean names of values come from the API, once (GET /api/labels and each job's own labels)."""

from __future__ import annotations

from api.db.tables import Job

EXPECTED_JOB_STATUSES = {
    "queued": "대기 중",
    "running": "실행 중",
    "succeeded": "완료",
    "failed": "실패",
    "cancelled": "취소됨",
}


async def test_labels_cover_every_value_the_api_can_send(client, alice):
    response = await client.get("/api/labels", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = {s["value"]: (s["label"], s["finished"]) for s in body["job_statuses"]}
    assert statuses == {
        v: (label, v in ("succeeded", "failed", "cancelled")) for v, label in EXPECTED_JOB_STATUSES.items()
    }
    assert {k["value"]: k["label"] for k in body["job_kinds"]} == {"score": "배치 ECLO 예측", "chat": "질의응답(AI)"}
    kinds = {k["value"]: k for k in body["dataset_kinds"]}
    assert {"accident", "accident_test", "cctv", "lights", "zones", "parking", "generic"} == set(kinds)
    assert kinds["lights"]["label"] == "보안등" and not kinds["lights"]["scorable"]
    assert {v for v, k in kinds.items() if k["scorable"]} == {"accident", "accident_test"}
    # Public (a share link's page has no account), and the same for everyone.
    anonymous = await client.get("/api/labels")
    assert anonymous.status_code == 200 and anonymous.json() == body


async def test_a_chat_job_is_listed_with_its_korean_kind_and_status(client, alice, resources):
    async with resources.sessions() as session:
        job = Job(kind="chat", owner_id=alice.id, status="cancelled", total=1, params={})
        session.add(job)
        await session.commit()
    info = (await client.get(f"/api/jobs/{job.id}", headers=alice.headers)).json()
    assert (info["kind_label"], info["status_label"], info["finished"]) == ("질의응답(AI)", "취소됨", True)
    listed = (await client.get("/api/jobs", params={"kind": "chat"}, headers=alice.headers)).json()["items"]
    assert any(j["id"] == job.id and j["kind_label"] == "질의응답(AI)" for j in listed)

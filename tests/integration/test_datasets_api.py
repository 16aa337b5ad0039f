"""The dataset store through the real HTTP app, on real PostgreSQL and Redis."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import select, update

from api.db.tables import ShareLink
from api.demo.generate import generate_demo_datasets
from tests.integration.conftest import TEST_UPLOAD_LIMIT, stored_counts

HANGUL = re.compile(r"[가-힣]")


@pytest.fixture(scope="module")
def demo_files():
    return {d.key: d for d in generate_demo_datasets(seed=7, scale=0.02)}


async def upload(client, account, content: bytes, filename="data.csv", **form):
    return await client.post(
        "/api/datasets/upload",
        headers=account.headers,
        files={"file": (filename, content, "text/csv")},
        data=form or None,
    )


@pytest.fixture(scope="module")
async def stored(client, alice, demo_files):
    """Every demo kind uploaded once by alice (private), returning the API's answers by key."""
    answers = {}
    for key, demo in demo_files.items():
        response = await upload(client, alice, demo.csv_bytes, demo.filename, name=f"{key}-fixture")
        assert response.status_code == 201, response.text
        answers[key] = response.json()
    return answers


EXPECTED_KIND = {
    "train": "accident",
    "test": "accident_test",
    "accident": "accident",
    "cctv": "cctv",
    "lights": "lights",
    "zones": "zones",
    "parking": "parking",
}


async def test_upload_of_each_kind(stored, demo_files, alice):
    for key, body in stored.items():
        assert body["kind"] == EXPECTED_KIND[key], key
        assert body["version"] == 1
        assert body["owner"] == alice.name and body["visibility"] == "private"
        assert body["size_bytes"] == len(demo_files[key].csv_bytes)
        assert re.fullmatch(r"[0-9a-f]{64}", body["content_sha256"])
        assert body["rows"] > 0 and all({"name", "dtype", "missing_ratio"} <= set(c) for c in body["columns"])
    # The public companion files are CP949, the way they are published.
    assert stored["cctv"]["encoding"] == "cp949" and stored["train"]["encoding"] == "utf-8"


async def test_kind_specific_parsing(client, alice, stored):
    train = (await client.get(f"/api/datasets/{stored['train']['id']}", headers=alice.headers)).json()
    dtypes = {c["name"]: c["dtype"] for c in train["columns"]}
    assert dtypes["사고일시"] == "datetime" and dtypes["ECLO"] == "integer" and dtypes["시군구"] == "string"
    assert [d["column"] for d in train["summary"]["dates"]] == ["사고일시"]
    cctv = (await client.get(f"/api/datasets/{stored['cctv']['id']}", headers=alice.headers)).json()
    cctv_types = {c["name"]: c["dtype"] for c in cctv["columns"]}
    assert cctv_types["설치연도"] == "integer"  # a year, never a 1970 timestamp
    years = next(n for n in cctv["summary"]["numeric"] if n["column"] == "설치연도")
    assert 1990 <= years["min"] <= years["max"] <= 2030
    coords = cctv["summary"]["coordinates"]
    assert coords["lat_column"] == "위도" and coords["invalid"] >= 1
    assert coords["valid"] + coords["invalid"] + coords["missing"] == cctv["rows"]


async def test_utf8_bom_upload(client, alice, resources):
    content = "\ufeff이름,값\n가,1\n나,2\n".encode()
    response = await upload(client, alice, content, "bom.csv")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["encoding"] == "utf-8-sig" and [c["name"] for c in body["columns"]] == ["이름", "값"]


async def test_versioning_and_dedupe(client, alice, resources, demo_files, stored):
    # `stored` (a fixture, so this holds when the test runs alone) has already stored zones' and parking's bytes.
    before = await stored_counts(resources)
    first = await upload(client, alice, demo_files["zones"].csv_bytes, name="버전 테스트")
    second = await upload(client, alice, demo_files["zones"].csv_bytes, name="버전 테스트")
    third = await upload(client, alice, demo_files["parking"].csv_bytes, name="버전 테스트")
    assert [r.json()["version"] for r in (first, second, third)] == [1, 2, 3]
    assert first.json()["content_sha256"] == second.json()["content_sha256"]
    after = await stored_counts(resources)
    assert after.datasets == before.datasets + 3
    assert after.blobs == before.blobs  # known content: three new versions, no new blob
    listed = await client.get("/api/datasets", params={"name": "버전 테스트"}, headers=alice.headers)
    assert [d["version"] for d in listed.json()["items"]] == [3, 2, 1]


async def test_new_content_adds_one_blob(client, alice, resources):
    before = await stored_counts(resources)
    content = b"a,b\n1,2\n3,4\n"
    assert (await upload(client, alice, content, name="새 내용")).status_code == 201
    assert (await upload(client, alice, content, name="새 내용 복사본")).status_code == 201
    after = await stored_counts(resources)
    assert (after.datasets, after.blobs) == (before.datasets + 2, before.blobs + 1)


async def test_list_paging_and_kind_filter(client, alice, stored):
    page = await client.get("/api/datasets", params={"offset": 0, "limit": 2}, headers=alice.headers)
    body = page.json()
    assert set(body) == {"items", "total", "offset", "limit"}
    assert len(body["items"]) == 2 and body["total"] >= len(stored) and body["limit"] == 2
    second = (await client.get("/api/datasets", params={"offset": 2, "limit": 2}, headers=alice.headers)).json()
    assert {d["id"] for d in body["items"]}.isdisjoint({d["id"] for d in second["items"]})
    cctv = (await client.get("/api/datasets", params={"kind": "cctv"}, headers=alice.headers)).json()
    assert cctv["total"] >= 1 and {d["kind"] for d in cctv["items"]} == {"cctv"}
    bad = await client.get("/api/datasets", params={"limit": 0}, headers=alice.headers)
    assert bad.status_code == 400 and HANGUL.search(bad.json()["error"]["message"])


async def test_private_is_hidden_and_team_is_shared(client, alice, bob, stored):
    private_id = stored["train"]["id"]
    hidden = await client.get(f"/api/datasets/{private_id}", headers=bob.headers)
    missing = await client.get("/api/datasets/999999999", headers=bob.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    for suffix in ("/rows", "/columns/ECLO/distribution", "/points"):
        assert (await client.get(f"/api/datasets/{private_id}{suffix}", headers=bob.headers)).status_code == 404
    listed = (await client.get("/api/datasets", params={"limit": 200}, headers=bob.headers)).json()
    assert private_id not in {d["id"] for d in listed["items"]}

    team = await upload(client, alice, b"x,y\n1,2\n", "team.csv", visibility="team")
    assert team.status_code == 201 and team.json()["visibility"] == "team"
    seen = await client.get(f"/api/datasets/{team.json()['id']}", headers=bob.headers)
    assert seen.status_code == 200 and seen.json()["owner"] == alice.name


async def test_summary(client, alice, stored):
    body = (await client.get(f"/api/datasets/{stored['train']['id']}", headers=alice.headers)).json()
    summary = body["summary"]
    assert summary["rows"] == body["rows"] and summary["kind"] == "accident"
    eclo = next(n for n in summary["numeric"] if n["column"] == "ECLO")
    assert eclo["min"] >= 1 and eclo["mean"] > 0 and {"p25", "p50", "p75", "std"} <= set(eclo)
    weather = next(c for c in summary["categorical"] if c["column"] == "기상상태")
    assert weather["values"][0]["value"] == "맑음" and len(weather["values"]) <= 20
    assert summary["coordinates"] is None


async def test_rows_paging_and_columns(client, alice, stored):
    dataset_id = stored["cctv"]["id"]
    page = await client.get(f"/api/datasets/{dataset_id}/rows", params={"offset": 5, "limit": 3}, headers=alice.headers)
    body = page.json()
    assert page.status_code == 200 and len(body["items"]) == 3 and body["total"] == stored["cctv"]["rows"]
    assert body["offset"] == 5 and body["limit"] == 3
    narrow = await client.get(
        f"/api/datasets/{dataset_id}/rows", params={"limit": 2, "columns": "위도,경도"}, headers=alice.headers
    )
    assert narrow.json()["columns"] == ["위도", "경도"]
    assert all(set(item) == {"위도", "경도"} for item in narrow.json()["items"])
    unknown = await client.get(f"/api/datasets/{dataset_id}/rows", params={"columns": "없는열"}, headers=alice.headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["detail"]["unknown_columns"] == ["없는열"]
    too_many = await client.get(f"/api/datasets/{dataset_id}/rows", params={"limit": 5000}, headers=alice.headers)
    assert too_many.status_code == 400 and HANGUL.search(too_many.json()["error"]["message"])  # the declared 1~1000


async def test_distributions(client, alice, stored):
    base = f"/api/datasets/{stored['train']['id']}/columns"
    numeric = (await client.get(f"{base}/ECLO/distribution", headers=alice.headers)).json()
    assert numeric["type"] == "numeric"
    assert sum(numeric["histogram"]["counts"]) == numeric["count"]
    assert numeric["box"]["q1"] <= numeric["box"]["median"] <= numeric["box"]["q3"]
    assert len(numeric["kde"]["x"]) == len(numeric["kde"]["y"]) > 10
    categorical = (await client.get(f"{base}/사고유형/distribution", headers=alice.headers)).json()
    assert categorical["type"] == "categorical"
    assert {v["value"] for v in categorical["values"]} <= {"차대사람", "차대차", "차량단독"}
    dates = (await client.get(f"{base}/사고일시/distribution", headers=alice.headers)).json()
    assert dates["type"] == "datetime" and len(dates["by_hour"]) == 24
    assert sum(d["count"] for d in dates["by_month"]) == dates["count"]
    spaced = await client.get(f"{base}/사고유형 - 세부분류/distribution", headers=alice.headers)
    assert spaced.status_code == 200 and spaced.json()["type"] == "categorical"
    missing = await client.get(f"{base}/없는열/distribution", headers=alice.headers)
    assert missing.status_code == 404 and HANGUL.search(missing.json()["error"]["message"])


async def test_points(client, alice, stored):
    lights = stored["lights"]
    body = (
        await client.get(f"/api/datasets/{lights['id']}/points", params={"max_points": 50}, headers=alice.headers)
    ).json()
    assert body["returned"] == len(body["points"]) == 50 and body["sampled"] is True
    assert body["valid"] + body["invalid"] + body["missing"] == lights["rows"]
    assert body["invalid"] >= 1 and body["missing"] >= 1
    assert all(35.6 <= p["lat"] <= 36.02 and 128.35 <= p["lon"] <= 128.77 for p in body["points"])
    everything = (
        await client.get(f"/api/datasets/{lights['id']}/points", params={"max_points": 50000}, headers=alice.headers)
    ).json()
    assert everything["returned"] == everything["valid"] and everything["sampled"] is False
    no_coords = await client.get(f"/api/datasets/{stored['train']['id']}/points", headers=alice.headers)
    assert no_coords.status_code == 422 and HANGUL.search(no_coords.json()["error"]["message"])


async def test_delete_rules_and_blob_cleanup(client, alice, bob, admin, resources):
    content = "가,나\n1,2\n".encode()
    mine = (await upload(client, alice, content, "delete-me.csv", visibility="team")).json()
    before = await stored_counts(resources)
    forbidden = await client.delete(f"/api/datasets/{mine['id']}", headers=bob.headers)
    assert forbidden.status_code == 403 and await stored_counts(resources) == before
    assert (await client.delete(f"/api/datasets/{mine['id']}", headers=alice.headers)).status_code == 204
    after = await stored_counts(resources)
    assert (after.datasets, after.blobs) == (before.datasets - 1, before.blobs - 1)
    assert (await client.get(f"/api/datasets/{mine['id']}", headers=alice.headers)).status_code == 404

    private = (await upload(client, bob, "다,라\n3,4\n".encode(), "admin-deletes.csv")).json()
    assert (await client.delete(f"/api/datasets/{private['id']}", headers=admin.headers)).status_code == 204


async def test_share_links(client, alice, bob, stored, resources):
    dataset = stored["cctv"]
    created = await client.post(
        f"/api/datasets/{dataset['id']}/share", headers=alice.headers, json={"expires_in": 3600}
    )
    assert created.status_code == 201, created.text
    link = created.json()
    # A page of the UI (HAB_PUBLIC_URL) for people; the JSON under the API's address (here the same one).
    assert link["url"] == f"http://testserver.local/?share={link['token']}"
    assert link["api_url"] == f"http://testserver.local/api/shared/{link['token']}"
    token = link["token"]
    shared = await client.get(f"/api/shared/{token}")
    assert shared.status_code == 200 and shared.json()["id"] == dataset["id"]
    assert "owner_id" not in shared.json()
    assert (await client.get(f"/api/shared/{token}/rows", params={"limit": 5})).json()["total"] == dataset["rows"]
    assert (await client.get(f"/api/shared/{token}/columns/제한속도/distribution")).json()["type"] == "numeric"
    assert (await client.get(f"/api/shared/{token}/points", params={"max_points": 10})).json()["returned"] == 10

    # Revoking needs the creator's token.
    assert (await client.delete(f"/api/shared/{token}")).status_code == 401
    assert (await client.delete(f"/api/shared/{token}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/api/shared/{token}", headers=alice.headers)).status_code == 204
    revoked = await client.get(f"/api/shared/{token}")
    assert revoked.status_code == 410 and HANGUL.search(revoked.json()["error"]["message"])
    assert (await client.get(f"/api/shared/{token}/rows")).status_code == 410

    unknown = await client.get("/api/shared/shr_not-a-real-token")
    assert unknown.status_code == 404


async def test_share_link_expiry(client, alice, stored, resources):
    link = (await client.post(f"/api/datasets/{stored['zones']['id']}/share", headers=alice.headers)).json()
    assert dt.datetime.fromisoformat(link["expires_at"]) > dt.datetime.now(dt.UTC)
    assert (await client.get(f"/api/shared/{link['token']}")).status_code == 200
    async with resources.sessions() as session:
        await session.execute(
            update(ShareLink)
            .where(ShareLink.dataset_id == stored["zones"]["id"])
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await session.commit()
    expired = await client.get(f"/api/shared/{link['token']}")
    assert expired.status_code == 410 and expired.json()["error"]["detail"]["reason"] == "expired"


async def test_share_links_of_a_private_dataset_are_not_anyone_elses_business(client, alice, bob, stored, resources):
    private = stored["lights"]["id"]
    link = (await client.post(f"/api/datasets/{private}/share", headers=alice.headers)).json()
    before = await stored_counts(resources)
    listed = await client.get(f"/api/datasets/{private}/shares", headers=bob.headers)
    assert listed.status_code == 404 and HANGUL.search(listed.json()["error"]["message"])
    revoked = await client.delete(f"/api/datasets/{private}/shares/{link['id']}", headers=bob.headers)
    assert revoked.status_code == 404
    assert (await client.get(f"/api/datasets/{private}/shares")).status_code == 401
    assert await stored_counts(resources) == before
    assert (await client.get(f"/api/shared/{link['token']}")).status_code == 200  # still live


async def test_only_the_owner_and_admins_create_share_links(client, alice, bob, admin, stored, resources):
    team = (await upload(client, alice, "구,값\n중구,1\n".encode(), "팀공유.csv", visibility="team")).json()
    base = f"/api/datasets/{team['id']}"
    assert (await client.get(base, headers=bob.headers)).status_code == 200  # bob may read it...
    owners = await client.post(f"{base}/share", headers=alice.headers)
    admins = await client.post(f"{base}/share", headers=admin.headers)
    assert owners.status_code == 201 and admins.status_code == 201

    before = await stored_counts(resources)
    refused = await client.post(f"{base}/share", headers=bob.headers, json={"expires_in": 600})  # ...not publish it
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "forbidden" and HANGUL.search(error["message"])
    private = await client.post(f"/api/datasets/{stored['cctv']['id']}/share", headers=bob.headers)
    assert private.status_code == 404 and HANGUL.search(private.json()["error"]["message"])
    assert await stored_counts(resources) == before
    async with resources.sessions() as session:
        creators = await session.scalars(select(ShareLink.created_by).where(ShareLink.dataset_id == team["id"]))
        assert sorted(creators) == sorted([alice.id, admin.id])


async def test_share_links_are_listed_and_revoked_by_id(client, alice, bob, admin, resources):
    team = (await upload(client, alice, "구,값\n중구,1\n".encode(), "공유목록.csv", visibility="team")).json()
    base = f"/api/datasets/{team['id']}"
    mine = (await client.post(f"{base}/share", headers=alice.headers)).json()
    admins = (await client.post(f"{base}/share", headers=admin.headers, json={"expires_in": 600})).json()
    assert isinstance(mine["id"], int) and mine["id"] != admins["id"]
    # A link bob made on this team dataset before only owners could share: he still sees and revokes it.
    async with resources.sessions() as session:
        legacy = ShareLink(
            token_hash=hashlib.sha256(b"shr_legacy-bob").hexdigest(), dataset_id=team["id"], created_by=bob.id
        )
        session.add(legacy)
        await session.flush()
        bobs = legacy.id  # read before the commit expires the object
        await session.commit()

    def ids(response):
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    # The owner and admins see every link of the dataset; anyone else only their own. Never a token.
    listed = await client.get(f"{base}/shares", headers=alice.headers)
    assert ids(listed) == [bobs, admins["id"], mine["id"]] and listed.json()["total"] == 3
    assert {i["created_by"] for i in listed.json()["items"]} == {"alice", "bob", admin.name}
    assert all("token" not in i for i in listed.json()["items"])
    assert {i["status"] for i in listed.json()["items"]} == {"active"}
    assert ids(await client.get(f"{base}/shares", headers=bob.headers)) == [bobs]
    assert ids(await client.get(f"{base}/shares", headers=admin.headers)) == [bobs, admins["id"], mine["id"]]
    assert ids(await client.get(f"{base}/shares", headers=alice.headers, params={"limit": 1, "offset": 2})) == [
        mine["id"]
    ]

    # Bob may not revoke alice's link; the dataset's owner may revoke the admin's; unknown ids are 404.
    before = await stored_counts(resources)
    refused = await client.delete(f"{base}/shares/{mine['id']}", headers=bob.headers)
    assert refused.status_code == 404 and HANGUL.search(refused.json()["error"]["message"])
    assert (await client.delete(f"{base}/shares/999999", headers=alice.headers)).status_code == 404
    assert (await client.get(f"/api/shared/{mine['token']}")).status_code == 200
    assert await stored_counts(resources) == before
    assert (await client.delete(f"{base}/shares/{admins['id']}", headers=alice.headers)).status_code == 204
    assert (await client.delete(f"{base}/shares/{admins['id']}", headers=admin.headers)).status_code == 204  # again
    assert (await client.get(f"/api/shared/{admins['token']}")).status_code == 410
    assert (await client.delete(f"{base}/shares/{bobs}", headers=bob.headers)).status_code == 204

    async with resources.sessions() as session:
        await session.execute(
            update(ShareLink)
            .where(ShareLink.id == mine["id"])
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await session.commit()
    statuses = {
        i["id"]: i["status"] for i in (await client.get(f"{base}/shares", headers=alice.headers)).json()["items"]
    }
    assert statuses == {mine["id"]: "expired", admins["id"]: "revoked", bobs: "revoked"}


async def test_share_link_bad_input_and_visibility(client, alice, bob, stored, resources):
    before = await stored_counts(resources)
    too_short = await client.post(
        f"/api/datasets/{stored['zones']['id']}/share", headers=alice.headers, json={"expires_in": 1}
    )
    unknown_field = await client.post(
        f"/api/datasets/{stored['zones']['id']}/share", headers=alice.headers, json={"expires": 100}
    )
    not_visible = await client.post(f"/api/datasets/{stored['zones']['id']}/share", headers=bob.headers)
    assert too_short.status_code == 400 and unknown_field.status_code == 400 and not_visible.status_code == 404
    assert await stored_counts(resources) == before


BAD_UPLOADS = [
    ("undecodable", b"a,b\n" + bytes([0x81, 0x41, 0xFF, 0xFF]) + b",1\n", 422, "encodings_tried"),
    ("png", b"\x89PNG\r\n\x1a\n" + bytes(200), 415, "detected"),
    ("binary", b"a,b\n\x00\x01\x02\x03,\x00\n", 415, "detected"),
    ("xlsx", b"PK\x03\x04" + bytes(100), 415, "detected"),
    ("empty", b"", 422, "reason"),
    ("blank", b"\n\n  \n", 422, "reason"),
    ("header only", "이름,값\n".encode(), 422, "reason"),
    ("header only no newline", "이름,값".encode(), 422, "reason"),
    ("ragged", b"a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n", 422, "line"),
    ("duplicate columns", b"a,a\n1,2\n", 422, "duplicate_columns"),
    (
        "bad accident time",
        (
            "ID,사고일시,요일,기상상태,시군구,도로형태,노면상태,사고유형\n"
            "A,2019-01-01 00,화요일,맑음,대구광역시 중구 대신동,단일로 - 기타,건조,차대차\n"
            "B,어제 밤,화요일,맑음,대구광역시 중구 대신동,단일로 - 기타,건조,차대차\n"
        ).encode(),
        422,
        "column",
    ),
]


@pytest.mark.parametrize(("case", "content", "status", "detail_key"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
async def test_bad_uploads_store_nothing(client, alice, resources, case, content, status, detail_key):
    before = await stored_counts(resources)
    response = await upload(client, alice, content, f"{case}.csv")
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert HANGUL.search(error["message"]) and detail_key in error["detail"]
    assert await stored_counts(resources) == before


async def test_ragged_row_reports_its_line(client, alice):
    content = ("a,b\n" + "1,2\n" * 500 + "3\n" + "4,5\n" * 10).encode()
    error = (await upload(client, alice, content)).json()["error"]
    assert error["detail"]["line"] == 502 and "502" in error["message"]


async def test_undecodable_names_the_encodings(client, alice):
    error = (await upload(client, alice, b"a,b\n\xff\xfe\xfd,1\n")).json()["error"]
    assert error["detail"]["encodings_tried"] == ["utf-8", "utf-8-sig", "cp949"]
    assert "CP949" in error["message"] and "UTF-8" in error["message"]


async def test_bad_visibility_stores_nothing(client, alice, resources):
    before = await stored_counts(resources)
    response = await upload(client, alice, b"a,b\n1,2\n", visibility="public")
    assert response.status_code == 422 and response.json()["error"]["detail"]["field"] == "visibility"
    assert await stored_counts(resources) == before


async def test_over_the_size_limit(client, alice, resources):
    before = await stored_counts(resources)
    row = b"1234567890,abcdefghij\n"
    just_over = b"a,b\n" + row * (TEST_UPLOAD_LIMIT // len(row) + 1)
    response = await upload(client, alice, just_over)
    assert response.status_code == 413
    assert response.json()["error"]["detail"]["limit_bytes"] == TEST_UPLOAD_LIMIT
    far_over = b"a,b\n" + row * (2 * TEST_UPLOAD_LIMIT // len(row))
    response = await upload(client, alice, far_over)
    assert response.status_code == 413 and HANGUL.search(response.json()["error"]["message"])
    assert await stored_counts(resources) == before


async def test_client_file_name_is_display_text_only(client, alice):
    response = await upload(client, alice, b"a,b\n1,2\n", "../../../etc/passwd.csv")
    assert response.status_code == 201 and response.json()["name"] == "passwd"
    windows = await upload(client, alice, b"a,b\n1,3\n", "C:\\Users\\me\\사고 자료.CSV")
    assert windows.json()["name"] == "사고 자료"


async def test_upload_without_file_is_refused(client, alice, resources):
    before = await stored_counts(resources)
    # A form of text fields only (sent as multipart: an empty "files" part list forces it).
    response = await client.post(
        "/api/datasets/upload", headers=alice.headers, data={"name": "x"}, files={"other": ("a.txt", b"1")}
    )
    assert response.status_code == 400 and HANGUL.search(response.json()["error"]["message"])
    assert response.json()["error"]["detail"]["field"] == "file"
    # Not a form at all.
    response = await client.post("/api/datasets/upload", headers=alice.headers, data={"name": "x"})
    assert response.status_code == 415 and HANGUL.search(response.json()["error"]["message"])
    assert await stored_counts(resources) == before


def _multipart(boundary: str, *parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    ("case", "body", "reason_field"),
    [
        ("two files", _multipart("b0", ("file", "a.csv", b"a\n1\n"), ("file", "b.csv", b"a\n2\n")), "field"),
        ("cut off", _multipart("b0", ("file", "a.csv", b"a\n1\n"))[:-10], "reason"),
        ("huge name field", _multipart("b0", ("name", None, b"x" * 5000), ("file", "a.csv", b"a\n1\n")), "limit_bytes"),
        (
            "name not UTF-8",
            _multipart("b0", ("name", None, "이름".encode("cp949")), ("file", "a.csv", b"a\n1\n")),
            "field",
        ),
    ],
)
async def test_malformed_forms_are_refused(client, alice, resources, case, body, reason_field):
    before = await stored_counts(resources)
    response = await client.post(
        "/api/datasets/upload",
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=b0"},
        content=body,
    )
    assert response.status_code == 400, (case, response.text)
    error = response.json()["error"]
    assert HANGUL.search(error["message"]) and reason_field in error["detail"]
    assert await stored_counts(resources) == before


async def test_form_fields_and_a_file_without_a_name(client, alice):
    body = _multipart(
        "b1", ("visibility", None, b"team"), ("name", None, "폼 이름".encode()), ("file", None, b"a\n7\n")
    )
    response = await client.post(
        "/api/datasets/upload",
        headers={**alice.headers, "Content-Type": 'multipart/form-data; boundary="b1"'},
        content=body,
    )
    assert response.status_code == 201, response.text
    out = response.json()
    assert (out["name"], out["visibility"], out["rows"]) == ("폼 이름", "team", 1)
    assert out["content_sha256"] == hashlib.sha256(b"a\n7\n").hexdigest()


async def test_table_cache_serves_repeated_reads(client, alice, stored, resources):
    sha = stored["accident"]["content_sha256"]
    resources.tables.discard(sha)
    misses = resources.tables.misses
    for _ in range(3):
        response = await client.get(
            f"/api/datasets/{stored['accident']['id']}/rows", params={"limit": 1}, headers=alice.headers
        )
        assert response.status_code == 200
    assert resources.tables.misses == misses + 1


async def test_raw_csv_body_upload(client, alice, resources, demo_files):
    import hashlib

    content = demo_files["cctv"].csv_bytes
    response = await client.post(
        "/api/datasets/upload/csv",
        params={"name": "본문 업로드", "visibility": "team", "filename": "c.csv"},
        content=content,
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "cctv" and body["encoding"] == "cp949" and body["visibility"] == "team"
    assert body["content_sha256"] == hashlib.sha256(content).hexdigest() and body["name"] == "본문 업로드"

    before = await stored_counts(resources)
    too_big = await client.post(
        "/api/datasets/upload/csv",
        content=b"a,b\n" + b"1,2\n" * TEST_UPLOAD_LIMIT,
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    bad = await client.post(
        "/api/datasets/upload/csv", content=b"a,b\n1\n2,3\n", headers={**alice.headers, "Content-Type": "text/csv"}
    )
    assert too_big.status_code == 413 and bad.status_code == 422
    assert bad.json()["error"]["detail"]["line"] == 2
    assert await stored_counts(resources) == before

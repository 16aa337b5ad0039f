from __future__ import annotations

import re

HANGUL = re.compile(r"[가-힣]")


async def test_health_is_public(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_both_services(client):
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_openapi_and_swagger(client):
    spec = await client.get("/schema/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/api/datasets/upload" in paths and "/api/shared/{token}" in paths
    # Upload bodies are read by hand (streamed and hashed), so their schema is declared by hand.
    form = paths["/api/datasets/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert "text/csv" in paths["/api/datasets/upload/csv"]["post"]["requestBody"]["content"]
    swagger = await client.get("/schema/swagger")
    assert swagger.status_code == 200 and "swagger" in swagger.text.lower()


async def test_api_requires_a_token(client):
    response = await client.get("/api/datasets")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and HANGUL.search(error["message"])


async def test_wrong_token_and_wrong_scheme_are_refused(client, alice):
    for header in (f"Bearer {alice.token}x", f"Basic {alice.token}", "Bearer ", alice.token):
        response = await client.get("/api/datasets", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "unauthorized"


async def test_me_returns_the_caller(client, alice, admin):
    assert (await client.get("/api/me", headers=alice.headers)).json()["role"] == "member"
    me = (await client.get("/api/me", headers=admin.headers)).json()
    assert me["role"] == "admin" and me["name"] == admin.name


async def test_unknown_api_route_is_a_korean_404(client, alice):
    response = await client.get("/api/nothing-here", headers=alice.headers)
    assert response.status_code == 404
    assert HANGUL.search(response.json()["error"]["message"])

"""/metrics on the in-process app: every family with its labels, route templates (never raw paths), no
secret or name in a label; X-Request-ID in and out."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from api.observability import metrics as m

FAMILIES = {
    "hab_http_requests": (m.HTTP_REQUESTS, ("method", "route", "status")),
    "hab_http_request_duration_seconds": (m.HTTP_DURATION, ("method", "route")),
    "hab_predictions": (m.PREDICTIONS, ("model_version", "source")),
    "hab_jobs": (m.JOBS, ("kind", "status")),
    "hab_job_duration_seconds": (m.JOB_DURATION, ("kind",)),
    "hab_job_rows": (m.JOB_ROWS, ("kind",)),
    "hab_queue_depth": (m.QUEUE_DEPTH, ()),
    "hab_cache_requests": (m.CACHE_REQUESTS, ("cache", "result")),
    "hab_llm_requests": (m.LLM_REQUESTS, ("model", "outcome")),
    "hab_llm_tokens": (m.LLM_TOKENS, ("model", "direction")),
    "hab_dataset_uploads": (m.DATASET_UPLOADS, ("outcome",)),
    "hab_model_active_version": (m.MODEL_ACTIVE_VERSION, ()),
}


async def _families(client) -> dict[str, list]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


async def test_every_family_is_served_with_its_labels(client) -> None:
    families = await _families(client)
    for name, (metric, labels) in FAMILIES.items():
        assert name in families, name
        assert tuple(metric._labelnames) == labels, name


async def test_the_route_label_is_the_template_and_holds_no_secret(client, alice) -> None:
    raw = "/api/datasets/987654321"
    assert (await client.get(raw, headers=alice.headers)).status_code == 404
    assert (await client.get("/api/datasets/987654321/rows", headers=alice.headers)).status_code == 404
    text = (await client.get("/metrics")).text
    assert raw not in text, [line for line in text.splitlines() if raw in line]
    assert alice.token not in text and 'alice"' not in text
    routes = {
        s.labels["route"]
        for s in (await _families(client))["hab_http_requests"]
        if s.name == "hab_http_requests_total" and s.labels["status"] == "404"
    }
    assert "/api/datasets/{dataset_id}" in routes, routes
    durations = [s for s in (await _families(client))["hab_http_request_duration_seconds"] if s.name.endswith("_count")]
    assert any(s.labels["route"] == "/api/datasets/{dataset_id}" for s in durations)


async def test_metrics_need_no_token_and_stay_out_of_the_schema(client) -> None:
    assert (await client.get("/metrics")).status_code == 200
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_a_request_id_is_returned_or_made(client) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "trace-0001.a:b"})
    assert given.headers["x-request-id"] == "trace-0001.a:b"
    made = await client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    unsafe = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    assert made.headers["x-request-id"] != unsafe.headers["x-request-id"]

"""compose.yaml, .env.example and the settings agree; Debian's docker-compose validates the stack as shipped.

No Docker engine is needed: `docker-compose config` only parses, interpolates and validates.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from api.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKER_COMPOSE = shutil.which("docker-compose")
SERVICES = {"postgres", "redis", "migrate", "api", "worker", "frontend", "nginx", "prometheus", "grafana"}
HAB_SERVICES = ("migrate", "api", "worker")
# Read by something other than the application's settings, and by what.
NOT_SETTINGS = {
    "POSTGRES_PASSWORD": "the postgres image (and DATABASE_URL)",
    "GRAFANA_ADMIN_PASSWORD": "the grafana image",
    "HAB_NGINX_PORT": "nginx's template and its published port",
    "HAB_API_WORKERS": "the api service's `hab serve --workers`",
    "HAB_API_TOKEN": "the frontend's config (frontend/config.py)",
    "HAB_MAP_TILES": "the frontend's config (frontend/config.py)",
}


def _settings_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add((field.validation_alias if isinstance(field.validation_alias, str) else name).upper())
    return names


def _example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def _compose_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (REPO / "compose.yaml").read_text(encoding="utf-8")))


def test_the_example_lists_exactly_what_compose_reads():
    assert set(_example()) == _compose_variables()


def test_every_variable_is_read_by_the_settings_or_named_here():
    unknown = [v for v in _compose_variables() if v not in _settings_names() and v not in NOT_SETTINGS]
    assert unknown == [], f"compose passes variables nothing reads: {unknown}"
    stale = [v for v in NOT_SETTINGS if v not in _compose_variables()]
    assert stale == []


def test_the_hab_services_pass_only_what_the_settings_read():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    known = _settings_names() | {"DATABASE_URL", "REDIS_URL"}
    for name in HAB_SERVICES:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= known, (name, set(environment) - known)
        assert environment["HAB_ENV"] == "production"
    assert set(compose["services"]["frontend"]["environment"]) == {"HAB_API_URL", "HAB_API_TOKEN", "HAB_MAP_TILES"}


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="Debian's docker-compose is not installed (.ci/run installs it)")
def test_docker_compose_config_accepts_the_stack_as_shipped(tmp_path):
    for item in ("compose.yaml", ".env.example", "deploy"):
        source = REPO / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / item)
    missing = subprocess.run([DOCKER_COMPOSE, "config"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr  # secrets are required, not defaulted
    shutil.copy(tmp_path / ".env.example", tmp_path / ".env")
    done = subprocess.run([DOCKER_COMPOSE, "config"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == SERVICES
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"nginx", "grafana"}  # nginx is the one public entry; grafana on the host's loopback only
    assert all(str(p).startswith("127.0.0.1:") for p in services["grafana"]["ports"]) or all(
        p.get("host_ip") == "127.0.0.1" for p in services["grafana"]["ports"] if isinstance(p, dict)
    )
    assert "container_name" not in services["worker"]  # scalable with --scale worker=N
    nginx = services["nginx"]["environment"]
    assert nginx["HAB_API_UPSTREAM"] == "api:8000" and nginx["HAB_UI_UPSTREAM"] == "frontend:8501"
    assert nginx["HAB_UPLOAD_MAX_BYTES"] == services["api"]["environment"]["HAB_UPLOAD_MAX_BYTES"]
    assert services["api"]["environment"]["HAB_SECRET_KEY"] == "change-me"  # the API refuses it: it must be changed
    assert services["redis"]["command"] == ["redis-server", "--appendonly", "yes"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_prometheus_and_the_dashboard_use_only_series_hab_exports():
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    assert {job["job_name"] for job in prometheus["scrape_configs"]} == {"hab-api", "hab-worker"}
    import json

    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "hab.json").read_text(encoding="utf-8"))
    families = {
        "hab_http_requests_total",
        "hab_http_request_duration_seconds",
        "hab_predictions_total",
        "hab_jobs_total",
        "hab_job_duration_seconds",
        "hab_job_rows_total",
        "hab_queue_depth",
        "hab_cache_requests_total",
        "hab_llm_requests_total",
        "hab_llm_tokens_total",
        "hab_dataset_uploads_total",
        "hab_model_active_version",
    }
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bhab_[a-z_]+", target["expr"])}
    assert used <= families and used == families, (used - families, families - used)

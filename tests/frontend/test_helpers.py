"""The frontend's pure helpers, and its boundary: it talks to the API only."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

from frontend.client import ApiError, DatasetSource, HabClient
from frontend.config import load_config
from frontend.forms import AUTO, integer_default, request_body
from frontend.sidebar import backend_problem
from frontend.ui import coordinate_columns, share_token_from
from tests.frontend.conftest import free_port

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def test_the_frontend_never_imports_the_backend():
    for path in FRONTEND.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"api", "workers", "models"}, f"{path}: imports {name}"


def test_share_tokens_are_found_in_pasted_links():
    token = "shr_AbC-12_x"
    assert share_token_from(f"http://127.0.0.1:8000/api/shared/{token}") == token
    assert share_token_from(f"  {token}  ") == token
    assert share_token_from("https://example.org/nothing") is None


def test_coordinate_columns_are_recognised_like_the_api_does():
    assert coordinate_columns([{"name": "위도"}, {"name": "경도"}]) == ("위도", "경도")
    assert coordinate_columns(["Latitude", "Longitude"]) == ("latitude", "longitude")
    assert coordinate_columns(["위도", "x"]) is None


def test_request_body_leaves_automatic_fields_to_the_api():
    values = {"기상상태": "맑음", "시간대": AUTO, "요일": AUTO, "사고연": 2022, "사고월": 3, "사고일": 5, "사고시": 7}
    body = request_body(values)
    assert "시간대" not in body and "요일" not in body
    assert body["사고일시"] == "2022-03-05 07"
    assert request_body({**values, "요일": "토요일"}).get("사고일시") is None


def test_integer_defaults_stay_in_range():
    today = dt.date(2031, 12, 31)
    assert integer_default({"name": "사고연", "minimum": 2000, "maximum": 2030}, today) == 2030
    assert integer_default({"name": "사고일", "minimum": 1, "maximum": 31}, today) == 31
    assert integer_default({"name": "사고시", "minimum": 0, "maximum": 23}, today) == 8


def test_backend_problem_names_what_is_down():
    assert backend_problem({"status": "ok"}) is None
    assert "(Redis)" in backend_problem({"status": "unavailable", "failed": ["redis"]})
    assert "(API 서버)" in backend_problem({"status": "unreachable"})


def test_the_client_turns_transport_failures_into_korean_errors():
    client = HabClient(f"http://127.0.0.1:{free_port()}", "hab_x", timeout=2)
    assert client.ready()["failed"] == ["api"]
    try:
        client.rows(DatasetSource(dataset_id=1))
    except ApiError as error:
        assert error.code == "unreachable" and "백엔드 서버에 연결할 수 없습니다" in error.message
    else:
        raise AssertionError("expected ApiError")
    assert DatasetSource(share_token="shr_a").path == "/api/shared/shr_a"


def test_env_file_values_and_environment_precedence(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("HAB_API_URL=http://file:1/\nHAB_API_TOKEN='hab_file'\nclaude_api_key=sk-file\n", "utf-8")
    monkeypatch.setenv("HAB_ENV_FILE", str(env_file))
    monkeypatch.delenv("HAB_API_URL", raising=False)
    monkeypatch.setenv("HAB_API_TOKEN", "hab_env")
    config = load_config()
    assert (config.api_url, config.api_token, config.claude_api_key) == ("http://file:1", "hab_env", "sk-file")


def test_the_key_is_also_read_where_v12_users_keep_it_after_env(tmp_path, monkeypatch):
    """env/ first, then the project's .env, then .streamlit/secrets.toml (claude_api_key or ANTHROPIC_API_KEY)."""
    env_file, project = tmp_path / "env.env", tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    env_file.write_text("HAB_API_TOKEN=hab_x\n", "utf-8")
    for name in ("HAB_API_URL", "HAB_API_TOKEN", "claude_api_key", "CLAUDE_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAB_ENV_FILE", str(env_file))
    monkeypatch.setenv("HAB_PROJECT_DIR", str(project))
    assert (load_config().claude_api_key, load_config().claude_api_key_source) == ("", "")

    secrets = project / ".streamlit" / "secrets.toml"
    secrets.write_text('ANTHROPIC_API_KEY = "sk-ant-from-secrets"\n[other]\nx = 1\n', "utf-8")
    assert (load_config().claude_api_key, load_config().claude_api_key_source) == (
        "sk-ant-from-secrets", ".streamlit/secrets.toml"
    )  # fmt: skip
    (project / ".env").write_text("export claude_api_key='sk-ant-from-root-env'\n", "utf-8")
    assert (load_config().claude_api_key, load_config().claude_api_key_source) == ("sk-ant-from-root-env", ".env")
    env_file.write_text("claude_api_key=sk-ant-from-env-dir\n", "utf-8")
    assert (load_config().claude_api_key, load_config().claude_api_key_source) == ("sk-ant-from-env-dir", "env")

    env_file.write_text("", "utf-8")
    (project / ".env").unlink()
    secrets.write_text("claude_api_key = [not toml", "utf-8")  # a broken file is as if absent, never an error
    assert load_config().claude_api_key == ""
    secrets.write_text('claude_api_key = "sk-ant-lower"\nANTHROPIC_API_KEY = "sk-ant-upper"\n', "utf-8")
    assert load_config().claude_api_key == "sk-ant-lower"

"""개요 / 업로드: the dataset list, uploads, share links and deletion against the live API."""

from __future__ import annotations

import httpx
from streamlit.testing.v1 import AppTest

from tests.frontend.conftest import APP, RUN_TIMEOUT, assert_clean, metrics, open_page, texts

PAGE = "views/overview.py"


def _table(at):
    return at.dataframe[0].value


def test_the_list_shows_the_apis_datasets(frontend_env):
    api = frontend_env.get("/api/datasets", limit=200).json()
    at = open_page(PAGE)
    table = _table(at)
    assert sorted(table["이름"]) == sorted(d["name"] for d in api["items"])
    assert set(table["데모"]) == {"🧪 데모"}  # the seeded data is all synthetic demo data
    by_id = table.set_index("ID")
    for dataset in api["items"]:
        row = by_id.loc[dataset["id"]]
        assert row["행 수"] == dataset["rows"] and row["버전"] == dataset["version"]
        assert row["소유자"] == "데모" and row["공개"] == "팀"
    assert by_id.loc[next(d["id"] for d in api["items"] if d["kind"] == "cctv")]["종류"] == "CCTV"
    shown = metrics(at)
    assert shown["데이터셋"] == f"{api['total']}개"
    assert shown["전체 행 수"] == f"{sum(d['rows'] for d in api['items']):,}"


def test_upload_several_csvs_then_delete_one(frontend_env):
    at = open_page(PAGE)
    at.file_uploader(key="upload_files").set_value(
        [
            (
                "학교 앞 보안등.csv",
                "보안등위치명,설치개수,설치형태,위도,경도\n대명1동1,2,한전주,35.85,128.59\n".encode(),
                "text/csv",
            ),
            ("메모.csv", b"a,b\n1,2\n3,4\n", "text/csv"),
        ]
    )
    at.run()
    at.button(key="upload_button").click().run()
    assert_clean(at)
    assert at.progress[0].value == 100
    assert "학교 앞 보안등 (v1): 1행, 보안등" in texts(at.success)
    assert "메모 (v1): 2행, 일반" in texts(at.success)
    mine = {d["name"]: d for d in frontend_env.get("/api/datasets", name="메모").json()["items"]}
    assert mine["메모"]["owner"] == "관리자" and mine["메모"]["visibility"] == "private"

    at = open_page(PAGE)
    names = [o for o in at.selectbox(key="overview_dataset").options]
    at.selectbox(key="overview_dataset").select_index(next(i for i, n in enumerate(names) if " 메모 v1" in n)).run()
    assert at.button(key="delete_button").disabled  # nothing is deleted without the confirmation
    at.checkbox[0].check().run()
    at.button(key="delete_button").click().run()
    assert_clean(at)
    assert "'메모'을(를) 삭제했습니다." in texts(at.success)
    assert "메모" not in list(_table(at)["이름"])
    assert frontend_env.get(f"/api/datasets/{mine['메모']['id']}").status_code == 404


def test_share_link_create_copy_list_and_revoke(frontend_env):
    at = open_page(PAGE)
    options = at.selectbox(key="overview_dataset").options
    at.selectbox(key="overview_dataset").select_index(next(i for i, o in enumerate(options) if "CCTV" in o)).run()
    at.button(key="share_create").click().run()
    assert_clean(at)
    url = at.code[0].value  # st.code: shown with a copy button
    assert url.startswith(f"{frontend_env.ui_url}/?share=shr_")  # a page of the UI, not the API's JSON
    token = url.split("share=", 1)[1]
    shared = httpx.get(f"{frontend_env.url}/api/shared/{token}", timeout=10)  # no token needed
    assert shared.status_code == 200 and shared.json()["name"] == "데모 대구 CCTV 정보"

    # The dataset's links are listed from the API (newest first), each active one with a cancel button.
    dataset_id = shared.json()["id"]
    newest = frontend_env.get(f"/api/datasets/{dataset_id}/shares").json()["items"][0]
    assert newest["status"] == "active"
    assert any("🟢 사용 중 · 만든 사람 관리자" in m for m in texts(at.markdown))
    at.button(key=f"share_revoke_id_{newest['id']}").click().run()
    assert_clean(at)
    assert "공유 링크를 취소했습니다. 이제 그 주소로는 볼 수 없습니다." in texts(at.success)
    assert not at.code  # a revoked link is no longer offered for copying
    assert any("⛔ 취소됨" in m for m in texts(at.markdown))
    assert not any(b.key == f"share_revoke_id_{newest['id']}" for b in at.button)
    assert httpx.get(f"{frontend_env.url}/api/shared/{token}", timeout=10).status_code == 410
    listed = frontend_env.get(f"/api/datasets/{dataset_id}/shares").json()["items"]
    assert next(i for i in listed if i["id"] == newest["id"])["status"] == "revoked"


def test_a_refused_delete_shows_the_apis_korean_message(frontend_env, monkeypatch):
    monkeypatch.setenv("HAB_API_TOKEN", frontend_env.user_token)  # a regular user; demo data is not theirs
    at = open_page(PAGE)
    at.checkbox[0].check().run()
    at.button(key="delete_button").click().run()
    assert_clean(at)
    assert "삭제: 데이터셋을 만든 사용자나 관리자만 삭제할 수 있습니다." in texts(at.error)
    visible = frontend_env.get("/api/datasets", token=frontend_env.user_token, limit=200).json()
    assert len(_table(at)) == visible["total"]


def test_a_large_upload_arrives_whole_through_the_client(frontend_env):
    """More than one 1 MB client piece and more than one 8 MB server piece: the server parses it while it
    arrives, and what it stored must be exactly the bytes sent."""
    import hashlib

    from frontend.client import HabClient

    rows = "".join(f"{i},대구 {i % 97}번지,{i * 0.25}\n" for i in range(600_000))
    content = ("번호,주소,값\n" + rows).encode()
    assert len(content) > 2 * 8 * 1024 * 1024
    client = HabClient(frontend_env.url, frontend_env.admin_token)
    out = client.upload("큰 파일.csv", content, name="큰 파일")
    assert out["rows"] == 600_000 and out["content_sha256"] == hashlib.sha256(content).hexdigest()
    page = frontend_env.get(f"/api/datasets/{out['id']}/rows", offset=599_999, limit=1).json()
    assert page["items"] == [{"번호": 599_999, "주소": f"대구 {599_999 % 97}번지", "값": 149_999.75}]
    client.delete_dataset(out["id"])


def _share(stack, name: str) -> tuple[dict, str]:
    dataset = next(d for d in stack.get("/api/datasets", limit=200).json()["items"] if d["name"] == name)
    created = httpx.post(
        f"{stack.url}/api/datasets/{dataset['id']}/share",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return dataset, created.json()["token"]


def test_a_share_link_opens_a_read_only_page_with_rows_and_map(frontend_env, monkeypatch):
    dataset, token = _share(frontend_env, "데모 대구 보안등 정보")
    monkeypatch.setenv("HAB_API_TOKEN", "")  # the share page needs no account
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    at.query_params["share"] = token
    at.run()
    assert_clean(at)
    assert at.title[0].value == f"🔗 {dataset['name']}"
    assert not at.sidebar.text_input  # no sidebar, no key or login fields
    assert not any(r.key == "explore_mode" for r in at.radio)  # no way to other datasets
    shown = metrics(at)
    assert shown["행 수"] == f"{dataset['rows']:,}"
    points = frontend_env.get(f"/api/shared/{token}/points", max_points=5000).json()
    assert shown["지도에 표시한 점"] == f"{points['returned']:,}"
    assert len(at.get("component_instance")) == 1  # the map
    assert at.dataframe[0].value.shape[0] == 10  # the first page of rows


def test_a_share_page_never_sends_the_viewers_token(frontend_env, monkeypatch):
    """The UI is configured with a token (a signed-in user opens a link): not one request carries it."""
    from tests.frontend.recording_proxy import RecordingProxy

    dataset, token = _share(frontend_env, "데모 대구 어린이 보호 구역 정보")
    with RecordingProxy(frontend_env.url) as proxy:
        monkeypatch.setenv("HAB_API_URL", proxy.url)  # HAB_API_TOKEN stays the admin's (frontend_env)
        at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
        at.query_params["share"] = token
        at.run()
        assert_clean(at)
        assert at.title[0].value == f"🔗 {dataset['name']}"
        shown = metrics(at)
        assert shown["행 수"] == f"{dataset['rows']:,}"
        kinds = {k["value"]: k["label"] for k in httpx.get(f"{frontend_env.url}/api/labels").json()["dataset_kinds"]}
        assert shown["종류"] == kinds[dataset["kind"]] != dataset["kind"]  # the Korean name, fetched without a token
        seen = list(proxy.seen)
    shared = [r.path for r in seen if r.path.startswith(f"/api/shared/{token}")]
    assert any(p.startswith(f"/api/shared/{token}/rows") for p in shared)
    assert any(p.startswith(f"/api/shared/{token}/points") for p in shared)
    assert [r for r in seen if r.authorization is not None] == []
    public = ("/api/shared/", "/api/labels")  # nothing that needs an account is asked for
    assert not [r.path for r in seen if r.path.startswith("/api/") and not r.path.startswith(public)]


def test_a_revoked_share_link_says_so_in_korean(frontend_env):
    _, token = _share(frontend_env, "데모 대구 CCTV 정보")
    headers = {"Authorization": f"Bearer {frontend_env.admin_token}"}
    assert httpx.delete(f"{frontend_env.url}/api/shared/{token}", headers=headers, timeout=30).status_code == 204
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    at.query_params["share"] = token
    at.run()
    assert not at.exception
    assert any("공유가 취소된 링크입니다." in e and "새 공유 링크" in e for e in texts(at.error))
    assert not at.dataframe and not at.get("component_instance")

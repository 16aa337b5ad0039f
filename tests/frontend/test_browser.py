"""One real browser: headless Chromium (Debian's chromium + chromedriver, driven by Selenium) against a real
`streamlit run` of the frontend, which talks to the live stack. It uploads a CSV, then opens the explore, map,
chat and prediction pages; a screenshot of each lands in test-artifacts/browser/ (git-ignored).

The browser resolves no host but localhost (Chrome's host-resolver rules), as on a closed network, and its
performance log shows every request: the map test checks that Leaflet drew the known dataset's markers and
cluster icons with nothing fetched from elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.anthropic_server import tool_use
from tests.frontend.conftest import APP, REPO_ROOT, Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
KEY = "sk-ant-browser-" + "b" * 16
WAIT_SECONDS = 45

pytestmark = [
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
    ),
    # One long test (Streamlit, Chromium, a dozen steps with 45 s waits of their own): above the 300 s default.
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def ui(stack: Stack) -> Iterator[str]:
    """`streamlit run frontend/app.py` at the stack's public UI address, pointed at the live API as the admin."""
    port = int(stack.ui_url.rsplit(":", 1)[1])
    env = {
        **os.environ,
        "HAB_API_URL": stack.url,
        "HAB_API_TOKEN": stack.admin_token,
        "HAB_ENV_FILE": str(stack.env_file),
        "claude_api_key": KEY,
        # Tiles would be the one request leaving localhost; the map must draw its points without them.
        "HAB_MAP_TILES": "off",
    }
    log_path = stack.root / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("streamlit did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1100",
                 "--disable-gpu", "--lang=ko-KR",
                 # A closed network: every host but the local ones fails to resolve.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _body_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def wait_text(driver, *needles: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until every needle is visible on the page (Streamlit renders over a websocket, after load)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            text = _body_text(driver)
            if all(n in text for n in needles):
                return
        time.sleep(0.25)
    raise AssertionError(f"{needles} not on the page; it shows:\n{text[-2000:]}")


def wait_element(driver, css: str, timeout: float = WAIT_SECONDS):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def click(driver, xpath: str, timeout: float = WAIT_SECONDS) -> None:
    """Click the element once it is clickable. Streamlit re-renders elements on every rerun, so an element
    found a moment ago may be replaced before the click lands ("stale"): then find it again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    deadline = time.monotonic() + timeout
    while True:
        wait = WebDriverWait(
            driver, max(deadline - time.monotonic(), 1), ignored_exceptions=(StaleElementReferenceException,)
        )
        element = wait.until(ec.element_to_be_clickable((By.XPATH, xpath)))
        try:
            element.click()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def click_button(driver, label: str, timeout: float = WAIT_SECONDS) -> None:
    click(driver, f"//button[normalize-space(.)='{label}' and not(@disabled)]", timeout)


def shot(driver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    return path


def no_traceback(driver) -> None:
    text = _body_text(driver)
    assert "Traceback" not in text and "예상하지 못한 문제" not in text, text[-2000:]


def test_upload_explore_map_chat_and_predict_in_a_real_browser(ui, browser, stack, tmp_path):
    from selenium.webdriver.common.keys import Keys

    from api.demo.generate import generate_demo_datasets

    driver = browser
    cctv = next(d for d in generate_demo_datasets(seed=21, scale=0.02) if d.key == "cctv")
    csv_path = tmp_path / "브라우저 CCTV.csv"
    csv_path.write_bytes(cctv.csv_bytes)

    # 개요 / 업로드: upload through the file input, as a person would.
    driver.get(ui)
    wait_text(driver, "데이터셋", "백엔드 연결됨")
    click(driver, "//summary[contains(., 'CSV 올리기')]")
    wait_element(driver, "input[type='file']").send_keys(str(csv_path))
    wait_text(driver, "브라우저 CCTV.csv")
    click_button(driver, "올리기")
    wait_text(driver, "브라우저 CCTV (v1)", "1개 파일 처리 완료")
    uploaded = next(d for d in stack.get("/api/datasets", limit=200).json()["items"] if d["name"] == "브라우저 CCTV")
    assert uploaded["kind"] == "cctv"
    no_traceback(driver)
    shot(driver, "01-overview-upload")

    # 데이터 탐색
    driver.get(f"{ui}/explore")
    wait_text(driver, "데이터 탐색", "행 수")
    no_traceback(driver)
    shot(driver, "02-explore")

    # 지도: the page's own metrics and the map component's frame (tiles cannot load offline).
    driver.get(f"{ui}/map")
    wait_text(driver, "지도에 표시한 점", "잘못된 좌표")
    wait_element(driver, "iframe")
    no_traceback(driver)
    shot(driver, "03-map")

    # 질의응답: tick a dataset, ask, and see the streamed answer with its tool call.
    stack.anthropic.reset()
    stack.anthropic.reply("CCTV 데이터를 살펴보겠습니다.", tool_use("get_dataframe_info", {}))
    stack.anthropic.reply("브라우저에서 받은 답변입니다. CCTV 설치 현황을 요약했습니다.")
    driver.get(f"{ui}/chat")
    wait_text(driver, "질의응답", "질문할 데이터셋")
    click(driver, "//div[@data-testid='stCheckbox']//label[contains(., '브라우저 CCTV')]")
    time.sleep(1.0)  # let the checkbox's rerun settle before typing
    box = wait_element(driver, "textarea[data-testid='stChatInputTextArea']")
    box.send_keys(f"CCTV 설치 현황을 알려줘 ({secrets.token_hex(3)})")  # never asked before: no cached answer
    box.send_keys(Keys.ENTER)
    wait_text(driver, "브라우저에서 받은 답변입니다.", "도구 호출 1개", timeout=60)
    assert stack.anthropic.call_count == 2 and stack.anthropic.calls[0].api_key == KEY
    no_traceback(driver)
    shot(driver, "04-chat")
    stack.anthropic.reset()

    # ECLO 예측: the schema-built form's defaults are valid; submit and read the result.
    driver.get(f"{ui}/predict")
    wait_text(driver, "ECLO 예측", "예측하기")
    click_button(driver, "예측하기")
    wait_text(driver, "예상 ECLO", "위험도", "백분위")
    no_traceback(driver)
    shot(driver, "05-predict")


@pytest.fixture(autouse=True)
def _remove_what_the_browser_uploaded(stack):
    """The stack is shared with the other frontend tests, which expect only the seeded datasets."""
    yield
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    for dataset in stack.get("/api/datasets", limit=200).json()["items"]:
        if dataset["name"] == "브라우저 CCTV":
            httpx.delete(f"{stack.url}/api/datasets/{dataset['id']}", headers=headers, timeout=30)


LOCAL_PREFIXES = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "ws://localhost", "data:", "blob:",
                  "about:")  # fmt: skip


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call (Chrome's performance log, all frames)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def map_drawing(driver) -> tuple[int, int, int]:
    """(Leaflet container height, plain markers, points inside cluster icons) in the map's component frame."""
    from selenium.webdriver.common.by import By

    frame = wait_element(driver, "iframe[title='streamlit_folium.st_folium']")
    driver.switch_to.frame(frame)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            containers = driver.find_elements(By.CSS_SELECTOR, ".leaflet-container")
            markers = driver.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")
            clusters = driver.find_elements(By.CSS_SELECTOR, ".marker-cluster span")
            if containers and (markers or clusters):
                clustered = sum(int(c.text.replace(",", "")) for c in clusters)
                return containers[0].size["height"], len(markers), clustered
            if time.monotonic() > deadline:
                logs = driver.get_log("browser")
                raise AssertionError(
                    f"the map drew no markers: {logs}\n{requested_urls(driver)}\n" + driver.page_source[:3000]
                )
            time.sleep(0.25)
    finally:
        driver.switch_to.default_content()


def test_the_map_draws_a_deep_linked_dataset_offline(ui, browser, stack):
    driver = browser
    demo = [d for d in stack.get("/api/datasets", limit=200).json()["items"] if d["is_demo"]]
    lights = next(d for d in demo if d["kind"] == "lights")
    zones = next(d for d in demo if d["kind"] == "zones")
    expected = {k: stack.get(f"/api/datasets/{d['id']}/points", max_points=5000 // 2).json()["returned"]
                for k, d in (("lights", lights), ("zones", zones))}  # fmt: skip
    assert expected["lights"] > 500  # dense: the page clusters it

    requested_urls(driver)  # drop what earlier tests requested
    driver.get(f"{ui}/map?dataset={lights['id']}&dataset={zones['id']}")
    wait_text(driver, "지도에 표시한 점", lights["name"], zones["name"])
    height, markers, clustered = map_drawing(driver)
    no_traceback(driver)
    shot(driver, "06-map-offline")
    assert height >= 400
    # Every point of both layers is drawn: the sparse one as circle markers, the dense one in clusters
    # (each cluster icon says how many points it holds; unclustered points of a cluster group are markers too).
    assert markers + clustered == expected["lights"] + expected["zones"]
    assert clustered > 0
    remote = [u for u in requested_urls(driver) if not u.startswith(LOCAL_PREFIXES)]
    assert remote == []


def test_a_share_link_opens_its_page_and_a_revoked_one_says_so(ui, browser, stack):
    driver = browser
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    zones = next(d for d in stack.get("/api/datasets", limit=200).json()["items"] if d["kind"] == "zones")
    created = httpx.post(f"{stack.url}/api/datasets/{zones['id']}/share", headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["url"].startswith(f"{ui}/?share=shr_")  # HAB_PUBLIC_URL is this Streamlit

    # The address as received: no token in the browser, no sidebar, the dataset with its rows and map.
    driver.get(link["url"])
    wait_text(driver, zones["name"], "공유받은 데이터셋", "행 수", "미리 보기", "지도에 표시한 점")
    _, markers, clustered = map_drawing(driver)
    assert markers + clustered == stack.get(f"/api/shared/{link['token']}/points", max_points=5000).json()["returned"]
    text = _body_text(driver)
    assert "Anthropic API 키" not in text and "로그인:" not in text
    no_traceback(driver)
    shot(driver, "07-share-page")

    assert httpx.delete(f"{stack.url}/api/shared/{link['token']}", headers=headers, timeout=30).status_code == 204
    driver.get(link["url"])
    wait_text(driver, "공유가 취소된 링크입니다.", "새 공유 링크를 요청해 주세요")
    assert zones["name"] not in _body_text(driver)
    shot(driver, "08-share-revoked")


# Node labels of frontend/views/about.py's graph; a label with a line break is two <text> elements.
ARCHITECTURE_LABELS = ("브라우저", "Streamlit 화면", "API", "Litestar (api/)", "작업자", "PostgreSQL", "Redis",
                       "Anthropic API", "ECLO 모델", "LightGBM")  # fmt: skip


def graph_texts(driver) -> list[str]:
    """The text of every <text> of the SVG Streamlit drew for st.graphviz_chart (empty until it is drawn)."""
    return driver.execute_script(
        "const chart = document.querySelector(\"[data-testid='stGraphVizChart']\");"
        "if (!chart) return [];"
        "return Array.from(chart.querySelectorAll('svg text')).map(t => t.textContent.trim());"
    )


def test_the_about_page_draws_the_architecture_graph_offline(ui, browser):
    driver = browser
    requested_urls(driver)  # drop what earlier tests requested
    driver.get(f"{ui}/about")
    wait_text(driver, "구조", "화면은 API와 HTTP로만 이야기합니다.")
    deadline = time.monotonic() + WAIT_SECONDS
    texts: list[str] = []
    while time.monotonic() < deadline and not set(ARCHITECTURE_LABELS) <= set(texts):
        texts = graph_texts(driver)
        time.sleep(0.25)
    assert set(ARCHITECTURE_LABELS) <= set(texts), (texts, driver.get_log("browser"))
    # Drawn, not just present: the SVG has a size and a shape for every node.
    size = driver.execute_script(
        "const svg = document.querySelector(\"[data-testid='stGraphVizChart'] svg\");"
        "const box = svg.getBoundingClientRect();"
        "return [box.width, box.height, svg.querySelectorAll('g.node').length];"
    )
    assert size[0] > 200 and size[1] > 100 and size[2] == 9, size
    no_traceback(driver)
    shot(driver, "09-about-graph")
    remote = [u for u in requested_urls(driver) if not u.startswith(LOCAL_PREFIXES)]
    assert remote == []

"""What v1.2.5 users had on their pages (issue 14 §5), with AppTest against the live stack: the explore page's
column information and describe() tables, a scatter plot from a random sample of the whole dataset, blank
missing cells, the chat page's dataset selection, and the 소개 page."""

from __future__ import annotations

import secrets

import httpx
import pyarrow as pa
import pytest

from tests.frontend.conftest import assert_clean, open_page, plotly_figures, texts
from tests.frontend.test_chat import KEY, _train_id, unique

EXPLORE, CHAT, ABOUT = "views/explore.py", "views/chat.py", "views/about.py"


@pytest.fixture
def fake(frontend_env):
    frontend_env.anthropic.reset()
    yield frontend_env.anthropic
    frontend_env.anthropic.reset()


def _explore(stack, name_part: str):
    at = open_page(EXPLORE)
    box = at.selectbox(key="explore_dataset")
    box.select_index(next(i for i, option in enumerate(box.options) if name_part in option)).run()
    assert_clean(at)
    return at


def _display_values(element) -> pa.Table:
    """The cells as the browser shows them (the Styler's display values)."""
    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_all()


def test_column_information_and_describe_tables(frontend_env):
    dataset = next(d for d in frontend_env.get("/api/datasets", limit=200).json()["items"] if "CCTV" in d["name"])
    summary = frontend_env.get(f"/api/datasets/{dataset['id']}").json()["summary"]
    at = _explore(frontend_env, "CCTV")
    assert {"열 정보", "기술 통계 (describe)"} <= set(texts(at.subheader))
    info = next(t.value for t in at.dataframe if "자료형" in t.value.columns)
    assert list(info["열"]) == [c["name"] for c in summary["columns"]]
    assert list(info["값 있음"]) == [summary["rows"] - c["missing"] for c in summary["columns"]]
    assert list(info["고유값"]) == [c["unique"] for c in summary["columns"]]
    assert list(info["결측"]) == [c["missing"] for c in summary["columns"]]
    described = next(t.value for t in at.dataframe if "표준편차" in list(t.value.index))
    for numeric in summary["numeric"]:
        column = described[numeric["column"]]
        assert column["개수"] == numeric["count"] and column["평균"] == pytest.approx(numeric["mean"])
        assert column["50%"] == pytest.approx(numeric["p50"]) and column["최댓값"] == pytest.approx(numeric["max"])

    # The preview shows a missing value as an empty cell, never "None".
    preview = at.dataframe[0]
    rows = frontend_env.get(f"/api/datasets/{dataset['id']}/rows", limit=10).json()["items"]
    shown = _display_values(preview).to_pandas()
    assert len(shown) == len(rows) == len(preview.value)
    sparse = [c["name"] for c in summary["columns"] if any(r[c["name"]] is None for r in rows)]
    assert sparse  # the demo CCTV data has empty cells in its first rows
    for name in sparse:
        assert [v == "" for v in shown[name]] == [r[name] is None for r in rows], name
    assert not shown.isin(["None", "nan", "NaN", "<NA>"]).any().any()


def test_scatter_uses_a_random_sample_of_the_whole_dataset(frontend_env):
    lines = ["가,나"] + [f"{i},{i % 97}" for i in range(9_000)]
    name = f"산점도 표본 {secrets.token_hex(3)}"
    uploaded = httpx.post(
        f"{frontend_env.url}/api/datasets/upload/csv",
        params={"name": name},
        content=("\n".join(lines) + "\n").encode(),
        headers={"Authorization": f"Bearer {frontend_env.admin_token}", "Content-Type": "text/csv"},
        timeout=30,
    ).json()
    at = _explore(frontend_env, name)
    scatter = next(f for f in plotly_figures(at) if "산점도" in str(f.get("layout", {}).get("title", "")))
    xs = scatter["data"][0]["x"]
    sample = frontend_env.get(f"/api/datasets/{uploaded['id']}/sample", x="가", y="나", n=3000).json()
    assert len(xs) == 3000 and list(xs) == sample["xs"]
    assert max(xs) > 6_000  # drawn from the whole file, not its first 3,000 rows
    assert any("무작위로 고른 3,000행" in c for c in texts(at.caption))


def test_reopening_a_conversation_reselects_its_datasets(frontend_env, fake):
    train_id = _train_id(frontend_env)
    items = frontend_env.get("/api/datasets", limit=200).json()["items"]
    cctv_id = next(d["id"] for d in items if d["kind"] == "cctv")
    fake.reply("두 데이터셋으로 답합니다.")
    at = open_page(CHAT, state={"claude_api_key": KEY})
    at.checkbox(key=f"chat_ds_{train_id}").check().run()
    at.checkbox(key=f"chat_ds_{cctv_id}").check().run()
    assert any(c.startswith("📚 질문할 데이터셋 2개:") for c in texts(at.caption))
    at.chat_input[0].set_value(unique("두 데이터셋 질문")).run()
    assert_clean(at)
    conversation_id = at.session_state["chat_conversation_id"]

    reopened = open_page(CHAT, state={"claude_api_key": KEY})
    assert not reopened.checkbox(key=f"chat_ds_{train_id}").value
    assert any("선택한 데이터셋이 없습니다" in c for c in texts(reopened.caption))
    reopened.selectbox(key="chat_picker").select(conversation_id).run()
    assert_clean(reopened)
    checked = {c.key for c in reopened.checkbox if c.value}
    assert checked == {f"chat_ds_{train_id}", f"chat_ds_{cctv_id}"}
    summary = next(c for c in texts(reopened.caption) if c.startswith("📚 질문할 데이터셋"))
    assert summary.startswith("📚 질문할 데이터셋 2개:") and f"#{train_id} " in summary and f"#{cctv_id} " in summary


def test_more_than_five_datasets_is_explained_in_korean_and_nothing_is_asked(frontend_env, fake):
    items = frontend_env.get("/api/datasets", limit=200).json()["items"]
    assert len(items) >= 6
    before = frontend_env.get("/api/conversations").json()["total"]
    at = open_page(CHAT, state={"claude_api_key": KEY})
    for dataset in items[:6]:
        at.checkbox(key=f"chat_ds_{dataset['id']}").check()
    at.run()
    assert_clean(at)
    assert any("최대 5개" in w and "6개 선택" in w for w in texts(at.warning))
    at.chat_input[0].set_value(unique("여섯 개 질문")).run()
    assert_clean(at)
    assert any("최대 5개" in e for e in texts(at.error))
    assert frontend_env.get("/api/conversations").json()["total"] == before
    assert fake.call_count == 0


def test_about_page_lists_the_tools_from_the_api_and_draws_the_architecture(frontend_env):
    at = open_page(ABOUT)
    assert [t.value for t in at.title] == ["소개"]
    assert {"데이터는 어디에서 오나요", "ECLO란", "질의응답의 분석 도구", "구조"} <= set(texts(at.header))
    served = frontend_env.get("/api/analysis/tools").json()
    tools = next(t.value for t in at.dataframe if "도구" in t.value.columns)
    assert list(tools["도구"]) == [t["name"] for t in served["items"]] and len(tools) >= 22
    assert any(f"{served['count']}개 도구" in m for m in texts(at.markdown))
    diagram = at.get("graphviz_chart")[0].proto.spec
    assert "digraph" in diagram and "PostgreSQL" in diagram and "Anthropic" in diagram
    assert any("10" in str(x.value) and "사망자수" in str(x.value) for x in at.latex)

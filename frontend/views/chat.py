"""질의응답: ask Claude about the selected datasets; answers stream in, tool calls are shown with their snippets."""

from __future__ import annotations

import json
import time
from typing import Any

import streamlit as st

from frontend.client import ApiError, HabClient
from frontend.session import CLAUDE_KEY, CLAUDE_MODEL, add_tokens_used, get_client
from frontend.ui import dataset_label, fetch, require, show_error

CONVERSATION = "chat_conversation_id"
SELECTED = "chat_dataset_ids"
BACKGROUND = "chat_background"
KEY_STATUS = "chat_key_status"
GRID_COLUMNS = 3
JOB_WAIT_SECONDS = 600
MAX_DATASETS = 5  # the API's limit per question (api/chat/schemas.py)
TOO_MANY = (
    "한 번에 질문할 수 있는 데이터셋은 최대 {limit}개입니다 (지금 {count}개 선택). 데이터셋이 많을수록 Claude가 "
    "읽어야 할 설명이 길어져 답이 느리고 비싸지므로, 질문과 관련된 데이터셋만 남겨 주세요."
)


def _usage_caption(message: dict[str, Any]) -> str:
    usage = message.get("token_usage") or {}
    parts = [f"토큰 입력 {usage.get('input', 0):,} · 출력 {usage.get('output', 0):,}"]
    if usage.get("cost_krw"):
        parts.append(f"약 {usage['cost_krw']:,.1f}원 (${usage.get('cost_usd', 0):.4f})")
    if message.get("cache_hit"):
        parts.append("⚡ 캐시 응답")
    return " · ".join(parts)


def render_tool_calls(calls: list[dict[str, Any]]) -> None:
    if not calls:
        return
    with st.expander(f"🔧 도구 호출 {len(calls)}개", expanded=False):
        for number, call in enumerate(calls, start=1):
            badge = "✅" if call.get("ok") else "⚠️"
            cached = " · 캐시" if call.get("cached") else ""
            st.markdown(
                f"**{number}. {badge} `{call['tool']}`** — {call.get('summary', '')} "
                f"({call.get('duration_ms', 0):.0f} ms, {call.get('rows_touched', 0):,}행{cached})"
            )
            st.code(json.dumps(call.get("args", {}), ensure_ascii=False, indent=1), language="json")
            if call.get("snippet"):
                st.caption("같은 결과를 만드는 pandas 코드")
                st.code(call["snippet"], language="python")


def render_message(message: dict[str, Any]) -> None:
    with st.chat_message("user" if message["role"] == "user" else "assistant"):
        st.markdown(message["content"])
        if message["role"] == "assistant":
            render_tool_calls(message.get("tool_calls", []))
            st.caption(_usage_caption(message))


def pick_datasets(client: HabClient) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """The checked datasets' ids, and every listed dataset by id."""
    listing = fetch(client.datasets, context="데이터셋 목록")
    items = (listing or {}).get("items", [])
    if not items:
        st.info("먼저 '개요 / 업로드'에서 데이터셋을 올려 주세요.")
        return [], {}
    chosen = set(st.session_state.get(SELECTED, []))
    st.markdown("**질문할 데이터셋** (여러 개 고를 수 있습니다)")
    columns = st.columns(GRID_COLUMNS)
    selected = []
    for index, dataset in enumerate(items):
        with columns[index % GRID_COLUMNS]:
            if st.checkbox(dataset_label(dataset), value=dataset["id"] in chosen, key=f"chat_ds_{dataset['id']}"):
                selected.append(dataset["id"])
    st.session_state[SELECTED] = selected
    if len(selected) > MAX_DATASETS:
        st.warning(TOO_MANY.format(limit=MAX_DATASETS, count=len(selected)), icon="📚")
    return selected, {d["id"]: d for d in items}


def reselect_datasets(conversations: dict[int, dict[str, Any]]) -> None:
    """On opening a conversation (before the page runs again): check exactly the datasets it was about."""
    chosen = st.session_state.get("chat_picker")
    if chosen is None or chosen not in conversations:
        return
    wanted = set(conversations[chosen]["dataset_ids"])
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith("chat_ds_")]:
        st.session_state[key] = int(key.removeprefix("chat_ds_")) in wanted
    for dataset_id in wanted:
        st.session_state[f"chat_ds_{dataset_id}"] = True
    st.session_state[SELECTED] = sorted(wanted)


def selection_summary(dataset_ids: list[int], datasets: dict[int, dict[str, Any]]) -> None:
    """What the next question will be about, right above the input."""
    if not dataset_ids:
        st.caption("📚 선택한 데이터셋이 없습니다. 위에서 질문할 데이터셋을 골라 주세요.")
        return
    parts = [
        f"{dataset_label(datasets[i])} ({datasets[i]['rows']:,}행)" if i in datasets else f"#{i}" for i in dataset_ids
    ]
    st.caption(f"📚 질문할 데이터셋 {len(dataset_ids)}개: " + " · ".join(parts))


def conversation_picker(client: HabClient) -> None:
    listing = fetch(client.conversations, context="대화 목록") or {"items": []}
    conversations = listing["items"]
    labels = {None: "➕ 새 대화"} | {
        c["id"]: f"{c['title']} · 메시지 {c['message_count']} · {c['totals']['cost_krw']:,.0f}원" for c in conversations
    }
    by_id = {c["id"]: c for c in conversations}
    current = st.session_state.get(CONVERSATION)
    if current not in labels:
        current = None
    left, right = st.columns([4, 1])
    with left:
        chosen = st.selectbox(
            "대화",
            list(labels),
            index=list(labels).index(current),
            format_func=labels.get,
            key="chat_picker",
            on_change=reselect_datasets,
            args=(by_id,),
        )
    if chosen != st.session_state.get(CONVERSATION):
        st.session_state[CONVERSATION] = chosen
    with right:
        st.write("")
        if chosen is not None and st.button("🗑️ 삭제", key="chat_delete", use_container_width=True):
            try:
                client.delete_conversation(chosen)
            except ApiError as error:
                show_error(error, "대화 삭제")
            else:
                st.session_state[CONVERSATION] = None
                st.session_state.pop("chat_picker", None)
                st.toast("대화를 삭제했습니다.")
                st.rerun()


def key_check(client: HabClient, api_key: str) -> None:
    status = st.session_state.get(KEY_STATUS)
    if status and status.get("key") == hash(api_key):
        (st.success if status["valid"] else st.error)(status["message"], icon="🔑")
    if st.button("🔑 API 키 확인", key="chat_verify"):
        try:
            result = client.verify_key(api_key, st.session_state.get(CLAUDE_MODEL))
        except ApiError as error:
            show_error(error, "API 키 확인")
        else:
            st.session_state[KEY_STATUS] = {"key": hash(api_key), **result}
            st.rerun()


def stream_answer(client: HabClient, body: dict[str, Any], api_key: str) -> dict[str, Any] | None:
    """Show the answer as it streams; tool steps appear in a status box. The final `done` payload, or None."""
    done: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    with st.chat_message("assistant"):
        steps = st.status("분석 중…", expanded=False)

        def deltas():
            nonlocal done, failure
            for event, data in client.ask_stream(body, api_key):
                if event == "text":
                    yield data.get("delta", "")
                elif event == "tool_start":
                    steps.update(label=f"도구 실행 중: {data['tool']}")
                    steps.write(f"▶ `{data['tool']}` {json.dumps(data.get('args', {}), ensure_ascii=False)}")
                elif event == "tool_end":
                    steps.write(f"{'✅' if data.get('ok') else '⚠️'} {data.get('summary', '')}")
                elif event == "done":
                    done = data
                elif event == "error":
                    failure = data

        try:
            st.write_stream(deltas())
        except ApiError as error:
            steps.update(label="실패", state="error")
            show_error(error)
            return None
        if failure is not None:
            steps.update(label="실패", state="error")
            st.error(failure.get("message", "답변을 받지 못했습니다."), icon="⚠️")
            return None
        if done is None:
            steps.update(label="중단됨", state="error")
            st.error("답변이 중간에 끊겼습니다. 잠시 후 다시 시도해 주세요.", icon="⚠️")
            return None
        steps.update(label=f"완료 · 도구 {len(done['tool_calls'])}개", state="complete")
        render_tool_calls(done["tool_calls"])
        st.caption(_usage_caption(done))
    return done


def answer_in_background(client: HabClient, body: dict[str, Any], api_key: str) -> dict[str, Any] | None:
    """Run the turn as a worker job, showing the tool steps as they finish. The job's summary, or None."""
    try:
        accepted = client.ask_in_background(body, api_key)
    except ApiError as error:
        show_error(error, "백그라운드 질문")
        return None
    job_id = accepted["job_id"]
    with st.chat_message("assistant"):
        bar = st.progress(0.0, text=f"작업 #{job_id} 대기 중…")
        deadline = time.monotonic() + JOB_WAIT_SECONDS
        job: dict[str, Any] = {"status": "queued", "summary": None}
        while time.monotonic() < deadline:
            try:
                job = client.job(job_id)
            except ApiError as error:
                show_error(error, "작업 상태")
                return None
            steps = (job.get("summary") or {}).get("steps", [])
            if job.get("finished"):
                break
            label = job.get("status_label") or job["status"]
            bar.progress(min(0.9, 0.1 + 0.1 * len(steps)), text=f"작업 #{job_id} {label} · 도구 {len(steps)}단계 완료")
            time.sleep(0.5)
        else:
            st.warning(f"작업 #{job_id}이(가) 아직 끝나지 않았습니다. '작업' 화면에서 확인해 주세요.")
            return None
        if job["status"] != "succeeded":
            bar.progress(1.0, text=f"작업 #{job_id} {job.get('status_label') or job['status']}")
            st.error(job.get("error") or "작업이 실패했습니다.", icon="⚠️")
            return None
        bar.progress(1.0, text=f"작업 #{job_id} 완료")
        summary = job["summary"]
        st.markdown(summary["response"])
        render_tool_calls(summary.get("tool_calls", []))
        st.caption(_usage_caption(summary))
    return summary


st.title("질의응답")
st.caption("Claude가 선택한 데이터셋을 분석 도구로 직접 살펴보고 답합니다. API 키는 이 세션에만 보관됩니다.")
client = get_client()
api_key = (st.session_state.get(CLAUDE_KEY) or "").strip()
if not api_key:
    st.warning("왼쪽 사이드바에 Anthropic API 키를 입력하면 질문할 수 있습니다.", icon="🔑")
else:
    key_check(client, api_key)

dataset_ids, listed = pick_datasets(client)
conversation_picker(client)
st.toggle("백그라운드에서 실행 (긴 분석용, 진행 상황 표시)", key=BACKGROUND)

conversation_id = st.session_state.get(CONVERSATION)
if conversation_id is not None:
    detail = require(client.conversation, conversation_id, context="대화 불러오기")
    for message in detail["messages"]:
        render_message(message)
    totals = detail["totals"]
    st.caption(
        f"이 대화 누적: 입력 {totals['input_tokens']:,} · 출력 {totals['output_tokens']:,} 토큰 · "
        f"약 {totals['cost_krw']:,.0f}원"
    )

selection_summary(dataset_ids, listed)
question = st.chat_input(
    "데이터에 대해 물어보세요 (예: 비 오는 날 사고의 평균 ECLO는?)", disabled=not api_key, key="chat_input"
)
if question:
    if not dataset_ids:
        st.warning("질문할 데이터셋을 하나 이상 골라 주세요.")
    elif len(dataset_ids) > MAX_DATASETS:
        st.error(TOO_MANY.format(limit=MAX_DATASETS, count=len(dataset_ids)), icon="📚")
    else:
        with st.chat_message("user"):
            st.markdown(question)
        body = {
            "dataset_ids": dataset_ids,
            "message": question,
            "conversation_id": conversation_id,
            "model": st.session_state.get(CLAUDE_MODEL),
        }
        if st.session_state.get(BACKGROUND):
            result = answer_in_background(client, body, api_key)
        else:
            result = stream_answer(client, body, api_key)
        if result is not None:
            usage = result.get("token_usage") or {}
            add_tokens_used(int(usage.get("input", 0)) + int(usage.get("output", 0)))
            st.session_state[CONVERSATION] = result["conversation_id"]
            st.session_state.pop("chat_picker", None)
            st.rerun()

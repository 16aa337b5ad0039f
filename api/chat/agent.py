"""The chat agent as a LangGraph StateGraph: agent (Claude with tools) → tools → agent …, until Claude
answers without tools or the iteration limit sends the turn to a last, tool-free call for a graceful answer.

The graph is compiled once; per-turn dependencies (the SDK client with the user's key, the tool runner, the
event sink for streaming) travel in the run's config, never in the state, so nothing secret is checkpointed
or logged by LangGraph.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import anthropic
import msgspec
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from api.analysis import ToolOutcome
from api.chat.llm import llm_outcome
from api.chat.prompt import LIMIT_NOTE
from api.observability.metrics import count_llm_call

EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]
ToolRunner = Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]]
TEXT_SEPARATOR = "\n\n"


@dataclass
class TurnDeps:
    client: anthropic.AsyncAnthropic
    model: str
    max_tokens: int
    system: str
    tools: list[dict[str, Any]]
    max_iterations: int
    run_tool: ToolRunner
    emit: EventSink | None = None


class AgentState(TypedDict):
    messages: list[dict[str, Any]]
    texts: list[str]
    records: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    iterations: int
    pending: list[dict[str, Any]]
    hit_limit: bool


@dataclass(frozen=True)
class TurnOutcome:
    response: str
    tool_calls: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    iterations: int
    hit_limit: bool


def _deps(config: RunnableConfig) -> TurnDeps:
    return config["configurable"]["deps"]


def _block_param(block: Any) -> dict[str, Any] | None:
    """An assistant content block as a request param (only the fields the API accepts back)."""
    if block.type == "text":
        # The API refuses blank text blocks sent back in the history (they come with tool calls at times).
        return {"type": "text", "text": block.text} if block.text.strip() else None
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return None


async def _call_claude(deps: TurnDeps, state: AgentState, *, final: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": deps.model,
        "max_tokens": deps.max_tokens,
        "system": deps.system + ("\n\n" + LIMIT_NOTE if final else ""),
        "messages": state["messages"],
    }
    if deps.tools:
        kwargs["tools"] = deps.tools
        if final:
            kwargs["tool_choice"] = {"type": "none"}
    started_text = False

    async def on_text(delta: str) -> None:
        nonlocal started_text
        if deps.emit is None or not delta:
            return
        if not started_text and state["texts"]:
            await deps.emit("text", {"delta": TEXT_SEPARATOR})
        started_text = True
        await deps.emit("text", {"delta": delta})

    try:
        if deps.emit is not None:
            async with deps.client.messages.stream(**kwargs) as stream:
                async for event in stream:
                    if event.type == "text":
                        await on_text(event.text)
                message = await stream.get_final_message()
        else:
            message = await deps.client.messages.create(**kwargs)
    except Exception as exc:
        count_llm_call(deps.model, llm_outcome(exc))
        raise
    count_llm_call(deps.model, "ok", message.usage.input_tokens, message.usage.output_tokens)

    blocks = [p for p in (_block_param(b) for b in message.content) if p is not None]
    text = "".join(b["text"] for b in blocks if b["type"] == "text").strip()
    pending = [b for b in blocks if b["type"] == "tool_use"] if message.stop_reason == "tool_use" and not final else []
    return {
        "messages": [*state["messages"], {"role": "assistant", "content": blocks or [{"type": "text", "text": ""}]}],
        "texts": [*state["texts"], text] if text else state["texts"],
        "input_tokens": state["input_tokens"] + message.usage.input_tokens,
        "output_tokens": state["output_tokens"] + message.usage.output_tokens,
        "iterations": state["iterations"] + 1,
        "pending": pending,
    }


async def agent_node(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
    return await _call_claude(_deps(config), state, final=False)


async def final_node(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
    update = await _call_claude(_deps(config), state, final=True)
    return {**update, "hit_limit": True}


async def tools_node(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
    deps = _deps(config)
    results: list[dict[str, Any]] = []
    records = list(state["records"])
    for block in state["pending"]:
        args = block["input"] if isinstance(block["input"], dict) else {}
        if deps.emit is not None:
            await deps.emit("tool_start", {"id": block["id"], "tool": block["name"], "args": args})
        outcome = await deps.run_tool(block["name"], args)
        record_dict = {**msgspec.to_builtins(outcome.record), "id": block["id"]}
        records.append(record_dict)
        if deps.emit is not None:
            await deps.emit("tool_end", record_dict)
        results.append(
            {
                "type": "tool_result",
                "tool_use_id": block["id"],
                "content": outcome.text,
                "is_error": not outcome.record.ok,
            }
        )
    return {
        "messages": [*state["messages"], {"role": "user", "content": results}],
        "records": records,
        "pending": [],
    }


def after_agent(state: AgentState) -> Literal["tools", "__end__"]:
    return "tools" if state["pending"] else "__end__"  # END, spelled out so that it type-checks as the Literal


def after_tools(state: AgentState, config: RunnableConfig) -> Literal["agent", "final"]:
    return "final" if state["iterations"] >= _deps(config).max_iterations else "agent"


@functools.cache
def graph() -> Any:
    builder = StateGraph(AgentState)
    builder.add_node("agent", agent_node)
    builder.add_node("tools", tools_node)
    builder.add_node("final", final_node)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", after_agent)
    builder.add_conditional_edges("tools", after_tools)
    builder.add_edge("final", END)
    return builder.compile()


async def run_turn(deps: TurnDeps, messages: list[dict[str, Any]]) -> TurnOutcome:
    state: AgentState = {
        "messages": messages,
        "texts": [],
        "records": [],
        "input_tokens": 0,
        "output_tokens": 0,
        "iterations": 0,
        "pending": [],
        "hit_limit": False,
    }
    final = await graph().ainvoke(
        state, config={"configurable": {"deps": deps}, "recursion_limit": 3 * deps.max_iterations + 5}
    )
    return TurnOutcome(
        response=TEXT_SEPARATOR.join(final["texts"]),
        tool_calls=final["records"],
        input_tokens=final["input_tokens"],
        output_tokens=final["output_tokens"],
        iterations=final["iterations"],
        hit_limit=final["hit_limit"],
    )

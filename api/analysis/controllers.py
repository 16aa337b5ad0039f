"""What the assistant can do: the analysis tools' names and descriptions (the 소개 page lists them)."""

from __future__ import annotations

from litestar import Controller, get

from api.analysis.registry import TOOLS
from api.schemas import Output


class ToolInfo(Output):
    name: str
    description: str
    uses_dataset: bool
    parameters: list[str]


class ToolList(Output):
    count: int
    items: list[ToolInfo]


TOOL_LIST = ToolList(
    count=len(TOOLS),
    items=[
        ToolInfo(
            name=tool.name,
            description=tool.description,
            uses_dataset=tool.uses_dataset,
            parameters=[p.name for p in tool.all_params],
        )
        for tool in TOOLS.values()
    ],
)


class AnalysisToolController(Controller):
    path = "/api/analysis"
    tags = ["meta"]

    @get("/tools", summary="질의응답 도우미의 분석 도구 목록")
    async def tools(self) -> ToolList:
        return TOOL_LIST

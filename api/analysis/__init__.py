"""Data-analysis tools for the chat agent (Anthropic tool use): pure functions over pandas DataFrames.

Each call returns bounded Korean text for the model and a ToolRecord (arguments, rows, duration and a pandas
snippet that reproduces the result). No I/O: the caller supplies the frames and the served model.
"""

from api.analysis.core import ToolContext, ToolOutcome, ToolRecord
from api.analysis.registry import (
    TOOL_NAMES,
    TOOL_SCHEMA_VERSION,
    run_tool,
    tool_dataset_params,
    tool_schemas,
    tool_uses_dataset,
    tool_version,
)

__all__ = [
    "TOOL_NAMES",
    "TOOL_SCHEMA_VERSION",
    "ToolContext",
    "ToolOutcome",
    "ToolRecord",
    "run_tool",
    "tool_dataset_params",
    "tool_schemas",
    "tool_uses_dataset",
    "tool_version",
]

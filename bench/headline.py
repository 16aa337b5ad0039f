"""The one table `python -m bench` ends with: each benchmark's figure beside its peer or floor, ratio and goal.

A benchmark module may define `headlines(result) -> list[Headline]` (its result dict as `run()` returned
it). `python -m bench` prints the rows of every benchmark it ran, and `python -m bench --summary` prints
them from the latest `bench-results/<name>.json` of every benchmark, so the table covers benchmarks run
at different times; each row names the date of its run.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Headline:
    figure: str  # what is measured, with its unit
    value: str  # hab's figure
    peer: str  # the peer's or the floor's figure in the same run, with its name ("-" where there is none)
    ratio: str  # hab against the peer, in the direction the goal is stated
    goal: str
    met: bool | None  # None: no goal, or nothing to judge it on


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "NOT met")


def ratio_text(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def rows_of(name: str, result: dict[str, Any]) -> list[Headline]:
    module = importlib.import_module(f"bench.{name}")
    headlines = getattr(module, "headlines", None)
    if headlines is None:
        return []
    try:
        return list(headlines(result))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:  # a result of an older shape
        return [Headline("(result not readable)", f"{type(error).__name__}: {error}", "-", "-", "-", None)]


def render(entries: list[tuple[str, str, list[Headline]]]) -> str:
    """entries: (benchmark, date of its run, its headlines)."""
    table = [
        [f"{name} ({date[:16]})", h.figure, h.value, h.peer, h.ratio, h.goal, _verdict(h.met)]
        for name, date, headlines in entries
        for h in headlines
    ]
    if not table:
        return "(no benchmark with headline figures was run)"
    header = ["benchmark (run, UTC)", "figure", "hab", "peer / floor (same run)", "ratio", "goal", "verdict"]
    # A Markdown table: readable in a terminal and pasted as is into BENCHMARKS.md.
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table]
    return "\n".join(lines)


def from_results(results_dir: Path, names: list[str]) -> str:
    """The table over the latest stored result of each benchmark in `names` that has one."""
    entries = []
    for name in names:
        path = results_dir / f"{name}.json"
        if path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            entries.append((name, str(document.get("date", "?")), rows_of(name, document)))
    return render(entries)

"""Proximity analysis speed: the full-size demo lights (71,913 rows) against every demo zone, and back.

Figures (median of BENCH_REPEAT runs, default 3, after one warm-up), each the work of one
`POST /api/analysis/proximity` after the tables are cached: valid coordinates of both tables
(`api.proximity.services.valid_points`) plus the BallTree counts and nearest great-circle distances
(`api.proximity.geo.proximity`), in seconds. Goal < 1 s each (issue 14: "well under a second").

* lights_to_zones_500m: every light with coordinates as a source, the zones as targets.
* zones_to_lights_500m: every zone as a source, the lights as targets (the tree holds ~44k points).

`python -m bench proximity` runs it (about 20 s, most of it generating the demo data).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.common import render_table, repeat
from bench.headline import Headline

GOAL_S = 1.0
RADIUS_M = 500.0


def run() -> dict[str, Any]:
    from api.datasets.ingest import parse_csv
    from api.demo.generate import generate_demo_datasets
    from api.proximity.geo import proximity
    from api.proximity.services import valid_points

    demo = {d.key: d for d in generate_demo_datasets(scale=1.0) if d.key in ("lights", "zones")}
    tables = {key: parse_csv(d.csv_bytes).table for key, d in demo.items()}
    runs = repeat()
    figures: dict[str, Any] = {}
    for name, source, target in (
        ("lights_to_zones_500m", "lights", "zones"),
        ("zones_to_lights_500m", "zones", "lights"),
    ):

        def once(source: str = source, target: str = target) -> int:
            s, t = valid_points(tables[source]), valid_points(tables[target])
            assert s is not None and t is not None
            return int(proximity(s.lat, s.lon, t.lat, t.lon, RADIUS_M).counts.sum())

        once()
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            once()
            timings.append(time.perf_counter() - started)
        median = statistics.median(timings)
        figures[name] = {
            "unit": "s",
            "sources": tables[source].num_rows,
            "targets": tables[target].num_rows,
            "median": round(median, 4),
            "min": round(min(timings), 4),
            "runs": [round(t, 4) for t in timings],
            "goal": f"< {GOAL_S:g} s",
            "goal_met": median < GOAL_S,
        }
    return {
        "repeat": runs,
        "radius_m": RADIUS_M,
        "figures": figures,
        "goals_met": all(f["goal_met"] for f in figures.values()),
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        [name, f["sources"], f["targets"], f["median"], f["min"], f["goal"], "MET" if f["goal_met"] else "NOT MET"]
        for name, f in result["figures"].items()
    ]
    return render_table(["figure", "source rows", "target rows", "median s", "min s", "goal", "verdict"], rows)


def headlines(result: dict[str, Any]) -> list[Headline]:
    return [
        Headline(f"{name} ({f['unit']}, median)", f"{f['median']:g}", "-", "-", f["goal"], bool(f["goal_met"]))
        for name, f in result["figures"].items()
    ]

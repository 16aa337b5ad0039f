"""`python -m bench [NAME ...] [--repeat N]`: run the registered benchmarks and write bench-results/."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
import traceback
from typing import Any

from api.runtime import prepare_process

prepare_process()  # as every entry point does, before anything imports lightgbm or pyarrow

from bench.common import RESULTS_DIR, machine_info, now_iso  # noqa: E402
from bench.headline import Headline, from_results, render, rows_of  # noqa: E402

# Benchmark modules under bench/, in the order `python -m bench` runs them. Each has `run() -> dict`,
# may have `report(result: dict) -> str` for its printed tables and `headlines(result: dict)` for its rows of
# the closing table (bench/headline.py).
BENCHMARKS: list[str] = [
    "dataset_upload",
    "predict_serving",
    "batch_job",
    "compiled_predict",
    "scoring_stages",
    "chat_cache",
    "micro",
    "proximity",
]

# Run only when named (`make soak` = `python -m bench soak`): too long for every `make bench`.
ON_REQUEST: list[str] = ["soak", "resources", "upload_memory"]


def _run_one(name: str, machine: dict[str, Any], command: str) -> tuple[str, str, list[Headline]] | None:
    module = importlib.import_module(f"bench.{name}")
    print(f"== {name} ==", flush=True)
    date = now_iso()
    started = time.perf_counter()
    try:
        result = module.run()
    except Exception:
        traceback.print_exc()
        print(f"{name}: FAILED", flush=True)
        return None
    elapsed = time.perf_counter() - started
    document = {"benchmark": name, "date": date, "command": command, "machine": machine}
    document |= result
    document["elapsed_s"] = round(elapsed, 1)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    report = getattr(module, "report", None)
    if report is not None:
        print(report(result))
    print(f"({elapsed:.0f} s; results in {path.relative_to(RESULTS_DIR.parent)})\n", flush=True)
    return name, date, rows_of(name, result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {BENCHMARKS})")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (default 3)")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="run nothing: print the closing table from the latest bench-results/*.json of every benchmark",
    )
    args = parser.parse_args(argv)
    if args.summary:
        print(from_results(RESULTS_DIR, [*BENCHMARKS, *ON_REQUEST]))
        return 0
    unknown = [n for n in args.names if n not in (*BENCHMARKS, *ON_REQUEST)]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {BENCHMARKS}, on request only: {ON_REQUEST}")
    if args.repeat is not None:
        os.environ["BENCH_REPEAT"] = str(args.repeat)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    machine = machine_info()
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine.get('cpu_model')}), {machine['memory_total_mb']} MB RAM, "
        f"Python {machine['python']}, pyarrow {machine.get('pyarrow')}, pandas {machine.get('pandas')}\n",
        flush=True,
    )
    ran = [_run_one(name, machine, command.strip()) for name in (args.names or BENCHMARKS)]
    finished = [entry for entry in ran if entry is not None]
    summary = render(finished)
    print(f"== summary: figure, peer, ratio, goal ==\n{summary}", flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "summary.md").write_text(summary + "\n", encoding="utf-8")
    return 0 if len(finished) == len(ran) else 1


if __name__ == "__main__":
    sys.exit(main())

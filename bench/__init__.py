"""hab's benchmark harness: `make bench` (= `.venv/bin/python -m bench`).

One module per benchmark, each with `run() -> dict` (the raw results) and optionally
`report(result) -> str` (a printed table). Register new modules in `bench.__main__.BENCHMARKS`.
Results go to `bench-results/<name>.json` together with the date, the command and machine facts.
"""

# hab — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed-stamp
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help
.PHONY: help install run test test-faults test-fast fuzz lint format bench soak migrate demo-data clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || { $(BIN)/python -m ensurepip --upgrade >/dev/null 2>&1 || true; \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; }
	@# --inexact keeps uv itself (installed by pip above) in the environment.
	$(BIN)/uv sync --frozen --inexact
	@touch $(STAMP)

# Leaflet and its plugins for the maps, from the npm registry at install time (served by Streamlit, never a CDN).
MAP_ASSETS := frontend/static/node_modules/.package-lock.json
$(MAP_ASSETS): frontend/static/package.json frontend/static/package-lock.json
	cd frontend/static && npm ci --no-audit --no-fund --ignore-scripts
	@touch $(MAP_ASSETS)

install: $(STAMP) $(MAP_ASSETS) ## Create .venv and install the locked dependencies (Python and the map's npm packages)

run: $(STAMP) $(MAP_ASSETS) ## Start everything locally (PostgreSQL, Redis, API, worker, UI); Ctrl-C stops it
	$(BIN)/hab run

test: $(STAMP) $(MAP_ASSETS) ## Run the test suite against real PostgreSQL and Redis (all but the fault tests)
	$(BIN)/pytest -q -m "not faults"

test-faults: $(STAMP) ## Kill and restart real parts (Redis, PostgreSQL, workers, the API, hab run) under load
	$(BIN)/pytest -q -m faults

test-fast: $(STAMP) ## Unit tests only
	$(BIN)/pytest -q tests/unit

fuzz: $(STAMP) ## schemathesis on every operation (100 examples each, admin and member) against a live hab serve
	HAB_FUZZ_EXAMPLES=$${HAB_FUZZ_EXAMPLES:-100} $(BIN)/pytest -q -s tests/e2e/test_fuzz.py

lint: $(STAMP) ## ruff lint and format check, import contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## Run the benchmarks and write bench-results/
	$(BIN)/uv sync --frozen --inexact --group bench
	$(BIN)/python -m bench

soak: $(STAMP) ## Ten minutes of mixed traffic on one API and one worker: errors and memory growth (not in CI)
	$(BIN)/uv sync --frozen --inexact --group bench
	$(BIN)/python -m bench soak

migrate: $(STAMP) ## Apply database migrations
	$(BIN)/hab migrate

demo-data: $(STAMP) ## Load the synthetic demo datasets
	$(BIN)/hab demo-data

clean: ## Remove caches (keeps .venv and .data)
	rm -rf .pytest_cache .ruff_cache .mypy_cache bench-results test-artifacts

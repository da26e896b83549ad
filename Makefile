# auth0-backfill: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint types check bench bench-memory sandbox format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with the sandbox and test tools

demo: $(STAMP) ## Run a backfill on the local sandbox (no account needed), interrupt it, resume it
	$(BIN)/python -m backfill.sandbox.demo

test: $(STAMP) ## Run the whole test suite (unit, sandbox, end-to-end, fault drills)
	$(BIN)/pytest

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check backfill tests bench
	$(BIN)/ruff format --check backfill tests bench

types: $(STAMP) ## mypy --strict
	$(BIN)/mypy

check: lint types test ## Everything CI runs: lint, types, tests

bench: $(STAMP) ## Throughput per plan and per tenant shape vs the rate-limit ceiling
	$(BIN)/python -m bench.run

bench-memory: $(STAMP) ## Peak RSS of a 1,000,000-log backfill
	$(BIN)/python -m bench.run --memory

sandbox: $(STAMP) ## Start the local Auth0 + Tinybird sandbox and print its environment
	$(BIN)/auth0-backfill sandbox

format: $(STAMP) ## Format the code
	$(BIN)/ruff format backfill tests bench
	$(BIN)/ruff check --fix backfill tests bench

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo .bench

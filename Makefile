# auth0-backfill: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tinybird's two CLIs, both called `tb` and both the Python package `tinybird`, each pinning its
# own click, requests, urllib3 ...: one venv apiece, apart from .venv (the tests run them).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# The suite mostly waits (subprocesses, servers, timeouts): more workers than cores; on 2 cores
# 4 did better than 2 or 6 (issue 24). One test at a time to each worker, the `slow` ones
# first (tests/conftest.py), so that no worker is left with a long one at the end. A failure,
# or no test collected (pytest's exit 5), fails the target as before.
TEST_WORKERS ?= 4
# The tests start the CLI some 400 times; compiling its modules at every start cost a quarter
# of a second each where the machine sets PYTHONDONTWRITEBYTECODE (empty means unset).
TEST_ENV := PYTHONDONTWRITEBYTECODE=
PARALLEL := -n $(TEST_WORKERS) --maxschedchunk 1
# What runs in seconds: pure unit tests, and the checks of the repository's own files.
FAST_TESTS := tests/unit tests/bench tests/test_docs.py tests/test_layout.py tests/test_kubernetes.py tests/test_container.py

.DEFAULT_GOAL := help
.PHONY: help install tools demo test test-fast lint types check package bench bench-import bench-memory sandbox format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(TOOLS_STAMP): tests/tools/tinybird-forward.txt tests/tools/tinybird-classic.txt
	$(PYTHON) -m venv $(TOOLS)/forward
	$(TOOLS)/forward/bin/pip install --quiet -r tests/tools/tinybird-forward.txt
	$(PYTHON) -m venv $(TOOLS)/classic
	$(TOOLS)/classic/bin/pip install --quiet -r tests/tools/tinybird-classic.txt
	touch $(TOOLS_STAMP)

install: $(STAMP) $(TOOLS_STAMP) ## Create .venv (the package, sandbox, test tools) and .venv-tools (Tinybird's CLIs)

tools: $(TOOLS_STAMP) ## Install Tinybird's CLIs (Forward and Classic `tb`) into .venv-tools for the tests

demo: $(STAMP) ## Run a backfill on the local sandbox (no account needed), interrupt it, resume it
	$(BIN)/python -m backfill.sandbox.demo

test: $(STAMP) $(TOOLS_STAMP) ## Run the whole test suite (unit, sandbox, end-to-end, fault drills), in parallel
	$(TEST_ENV) $(BIN)/pytest $(PARALLEL)

test-fast: $(STAMP) ## Run the unit tests and the checks of the repository's files (seconds; no `slow` test)
	$(TEST_ENV) $(BIN)/pytest -m 'not slow' $(FAST_TESTS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check backfill tests bench
	$(BIN)/ruff format --check backfill tests bench

types: $(STAMP) ## mypy --strict
	$(BIN)/mypy

check: lint types test ## Everything CI runs: lint, types, tests

package: $(STAMP) ## Build the sdist and the wheel, check them, install the wheel alone and run it
	PYTHON=$(PYTHON) .ci/package

bench: $(STAMP) ## Throughput per plan and tenant shape vs the ceiling; following; the import of archives
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.run --imports

bench-import: $(STAMP) ## The import of archives alone: records/s, MB/s, peak RSS at two sizes
	$(BIN)/python -m bench.run --imports

bench-memory: $(STAMP) ## Peak RSS of a 1,000,000-log backfill
	$(BIN)/python -m bench.run --memory

sandbox: $(STAMP) ## Start the local Auth0 + Tinybird sandbox and print its environment
	$(BIN)/auth0-backfill sandbox

format: $(STAMP) ## Format the code
	$(BIN)/ruff format backfill tests bench
	$(BIN)/ruff check --fix backfill tests bench

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .demo .bench

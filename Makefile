# review-bot: every target builds (or refreshes) its own virtualenv, so a fresh clone needs only python3.
#
#   make demo    a local MLflow store with scikit-learn runs in ./demo, and a review preview in ./preview
#   make test    ruff (lint + format check), then the whole pytest suite (needs redis-server or REDIS_URL)
#   make test-fast  ruff, then the unit and in-process tiers only (no MLflow server, no bot process)
#   make bench   the benchmarks (tests/benchmarks)
#   make lint    ruff check + ruff format --check
#   make format  ruff check --fix + ruff format
#   make venv    the dev virtualenv alone (what an editor or a shell wants)
#   make clean   removes the virtualenv, demo/, preview/ and caches
#
# Each extras set has a stamp file inside the virtualenv: it is redone only when pyproject.toml is newer,
# so a second `make test` starts straight away.

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=

BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar off
DEV_STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

REDIS_HELP := the tests need Redis: install redis-server (Debian: apt-get install redis-server) so they start \
their own on a free port, or set REDIS_URL=redis://host:port/db to use a running one.

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast bench lint format clean check-redis

help:
	@sed -n 's/^#   make /  make /p' $(MAKEFILE_LIST)

$(BIN)/python:
	@# Debian's own python3 needs python3-venv for ensurepip; say so instead of leaving a half-made venv.
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "make: '$(PYTHON) -m venv' failed; on Debian: apt-get install python3-venv" >&2; exit 1; }

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	@touch $@

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[demo]'
	@touch $@

venv: $(DEV_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/review-bot demo

check-redis:
	@if [ -z "$${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then \
		echo "make test: $(REDIS_HELP)" >&2; exit 1; fi

# ruff's findings fail `make test`, but pytest still runs, so one CI run reports both; pytest goes last so
# its summary closes the output. The suite finds `mlflow` and `review-bot` through VIRTUAL_ENV.
test: check-redis $(DEV_STAMP)
	@lint=0; \
	echo "+ ruff check ."; $(BIN)/ruff check . || lint=1; \
	echo "+ ruff format --check ."; $(BIN)/ruff format --check . || lint=1; \
	if [ $$lint -ne 0 ]; then echo "make test: ruff found problems (above); running pytest anyway" >&2; fi; \
	echo "+ pytest $(PYTEST_ARGS)"; \
	VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest $(PYTEST_ARGS) || exit $$?; \
	if [ $$lint -ne 0 ]; then echo "make test: pytest passed, but ruff failed (above)" >&2; exit 1; fi

# The edit-test loop: what needs only one service runs in one process (tests/inprocess), no servers started
# but Redis for the store's own tests. `make test` stays the one command CI runs.
test-fast: check-redis $(DEV_STAMP)
	@$(MAKE) --no-print-directory test PYTEST_ARGS="tests/unit tests/inprocess $(PYTEST_ARGS)"

bench: $(DEV_STAMP)
	VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m tests.benchmarks

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) demo preview preview-* bench-results .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Two commands from a fresh clone: `make run` (the broker) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck unit help bench bench-quick bench-tools

help:
	@echo "make run    create the virtual environment if needed, install, start 'agora serve' on 127.0.0.1:1026"
	@echo "make test   the same set-up with the test extras, then lint, type check and the whole test suite"
	@echo "make bench  the benchmarks of bench/ (wrk, about 15 minutes with 1,000,000 entities bulk-loaded), written to bench/RESULTS.md"
	@echo "make bench-quick  a 1-minute smoke run of the same scenarios: fails only when a scenario errors"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Agora needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/agora serve $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not e2e"

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The benchmarks drive the broker with wrk (Debian package) pinned with taskset (util-linux).
bench-tools:
	@command -v wrk >/dev/null && command -v taskset >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q wrk util-linux >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q wrk util-linux >/dev/null; }; }; } || \
	  { echo "make bench needs wrk and taskset: install them with 'apt-get install -y wrk util-linux' (as root)" >&2; \
	    exit 1; }

bench: $(VENV)/.installed bench-tools
	$(BIN)/python bench/run.py --out bench/RESULTS.md --startup-entities 1000000

bench-quick: $(VENV)/.installed bench-tools
	$(BIN)/python bench/run.py --quick

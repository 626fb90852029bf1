# Two commands from a fresh clone: `make run` (the broker) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Test processes (pytest-xdist): the e2e tests mostly wait on the servers they start, so two share a 2-core machine
PYTEST_WORKERS ?= 2

.PHONY: run test lint typecheck unit help bench bench-quick bench-tools clients console-browser console-vendor

help:
	@echo "make run    create the virtual environment if needed, install, start 'agora serve' on 127.0.0.1:1026"
	@echo "make test   the same set-up with the test extras, then lint, type check and the whole test suite (PYTEST_WORKERS=2 processes)"
	@echo "make clients  the NGSI-LD client libraries that tests/clients drives, each in .venv-clients/<name> (make test does it)"
	@echo "make bench  the benchmarks of bench/ (wrk, about 15 minutes with 1,000,000 entities bulk-loaded), written to bench/RESULTS.md"
	@echo "make console-vendor  fetch the web console's MapLibre, uPlot, Natural Earth and axe-core files with npm (committed)"
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

# The NGSI-LD client libraries tests/clients drives against a real `agora serve`, each in its own virtual
# environment with the versions pinned in tests/clients/requirements-<name>.txt: their dependencies clash with
# Agora's and with each other's (ngsildclient pins httpx 0.23 and aiofiles<0.9, FiLiP needs aiofiles>=24 and
# PyLD 2.0.4), docs/decisions/0141. Made once; again only when a requirements file changes.
CLIENTS     := .venv-clients
CLIENT_LIBS := filip ngsildclient

$(CLIENTS)/%/.installed: tests/clients/requirements-%.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "the client tests need Python 3.11 or newer")'
	rm -rf $(CLIENTS)/$*
	$(PYTHON) -m venv $(CLIENTS)/$*
	$(CLIENTS)/$*/bin/python -m pip install --quiet -r $<
	@touch $@

clients: $(foreach lib,$(CLIENT_LIBS),$(CLIENTS)/$(lib)/.installed)

run: $(VENV)/.installed
	$(BIN)/agora serve $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m "not e2e"

test: $(VENV)/.installed-test clients console-browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

# The console's end-to-end tests drive Debian's chromium with Playwright (never a browser download of its own).
console-browser:
	@test -x /usr/bin/chromium || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }; } || \
	  { echo "make test needs Debian's chromium at /usr/bin/chromium: install it with 'apt-get install -y chromium' (as root)" >&2; \
	    exit 1; }

# The console's front-end packages from the npm registry, as built files with their licences (needs npm; the
# files are committed, so neither the broker nor CI needs Node).
console-vendor:
	console/vendor.sh

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

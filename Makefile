# netral hub: every target sets itself up from nothing (venv, install, broker jars).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NETRAL_HOME ?= .netral
export NETRAL_HOME
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
DEMO_ARGS ?=


.PHONY: help install broker-dist compose-client chromium postgresql demo test test-faults test-faults-light test-unit test-integration lint bench bench-restore clean

help:
	@echo "make demo   - set up and run the hub locally on a sample wave, show the result"
	@echo "              (DEMO_ARGS=--secure: SASL_SSL + ACLs, each service its own principal)"
	@echo "make test   - set up and run the whole test suite on a real Kafka broker"
	@echo "make lint   - ruff, mypy and the import-layer contract"
	@echo "make bench  - benchmarks, written to bench/RESULTS.md"
	@echo "make bench-restore - 1M cases restored from the changelog by a worker, written to bench/RESTORE.md (about an hour the first time)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

broker-dist: install
	$(BIN)/netral broker fetch

demo: broker-dist
	$(BIN)/netral demo $(DEMO_ARGS)

# `docker compose config` checks docker-compose.yml; this machine kind has the docker client but not
# the compose plugin, so we build the pinned compose CLI from the Go module proxy once.
COMPOSE_VERSION := v2.29.7
COMPOSE_BIN := $(NETRAL_HOME)/tools/docker-compose
compose-client:
	@if docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1 || [ -x $(COMPOSE_BIN) ]; then :; \
	elif command -v go >/dev/null; then \
	  echo "building docker compose $(COMPOSE_VERSION) from the Go module proxy (once)"; \
	  mkdir -p $(NETRAL_HOME)/tools && GOBIN=$(abspath $(NETRAL_HOME))/tools/gobin go install github.com/docker/compose/v2/cmd@$(COMPOSE_VERSION) \
	  && mv $(NETRAL_HOME)/tools/gobin/cmd $(COMPOSE_BIN); \
	else echo "no docker compose client and no Go toolchain: the compose test will fail"; fi

# The dashboard test drives Debian's chromium with Playwright (never `playwright install`: no
# browser downloads here); installed once from the distribution when missing (CI runs as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian chromium (dashboard test)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

# The PostgreSQL tests start a throwaway server from Debian's binaries (tests/fixtures/postgres.py);
# installed once when missing, like chromium. Under CI a server that cannot start fails the run.
postgresql:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql (PostgreSQL tests)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; }

# Everything, the light form of the fault suite included (README "Proof under stress").
test: broker-dist compose-client chromium postgresql
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no test ran (pytest exit 5): that is a failure"; exit 1; fi; \
	exit $$rc

# The full fault-injection suite (the light form runs in `make test`): more cases, >= 5 worker
# SIGKILLs, a 60 s SIASN outage; prints the table of counts against the ground truth.
test-faults: broker-dist
	NETRAL_TEST_FAULTS=full NETRAL_TEST_SIGKILLS=6 NETRAL_TEST_CASES=400 \
	  $(BIN)/python -m pytest -q -s -p no:cacheprovider -p no:logging \
	  tests/integration/test_faults.py tests/integration/test_cases_stream.py $(PYTEST_ARGS)

test-faults-light: broker-dist
	$(BIN)/python -m pytest -q -s -p no:cacheprovider -p no:logging \
	  tests/integration/test_faults.py $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "unit or contract" $(PYTEST_ARGS)

test-integration: broker-dist chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider -m integration $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: broker-dist
	$(BIN)/python -m bench.run

bench-restore: broker-dist
	$(BIN)/python -m bench.restore_changelog all

clean:
	-$(BIN)/netral broker stop
	rm -rf $(VENV) .mypy_cache .ruff_cache

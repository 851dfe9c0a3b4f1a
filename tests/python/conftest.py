"""Process harness for the real-client suite.

Every node is the real `raftka` binary ($RAFTKA_BIN) started as a subprocess on free loopback
ports with a fresh data dir. Its stdout/stderr go to a log file whose tail is attached to the
report of any failing test.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import raftka_wire

# One implementation of "free listening ports" for tests, Jepsen and benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "jepsen"))
from raftka_jepsen.cluster import free_ports  # noqa: E402,F401 - re-exported to the tests

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.1
LOG_TAIL_LINES = 150

# Nodes whose logs are attached to failure reports (those alive in the current test's scope).
_REGISTERED_NODES: list["RaftkaNode"] = []


def raftka_bin_path() -> Path:
    path = os.environ.get("RAFTKA_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/raftka/target")
        path = os.path.join(target, "debug", "raftka")
    return Path(path)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported if the deadline passes
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last result: {last!r}")
        time.sleep(interval)


class RaftkaNode:
    """One raftka process. Ports and data dir are fixed for its lifetime so restarts reuse them."""

    def __init__(self, binary: Path, workdir: Path, name: str = "node1", node_id: int = 1,
                 extra_args: list[str] | None = None):
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.node_id = node_id
        self.data_dir = workdir / "data"
        self.log_path = workdir / f"{name}.log"
        self.kafka_port, self.zk_port, self.raft_port, self.http_port = free_ports(4)
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    # ---- addresses -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def zk_hosts(self) -> str:
        return f"127.0.0.1:{self.zk_port}"

    def command(self) -> list[str]:
        return [
            str(self.binary), "serve",
            "--node-id", str(self.node_id),
            "--listeners", f"PLAINTEXT://127.0.0.1:{self.kafka_port}",
            "--zk-listen", f"127.0.0.1:{self.zk_port}",
            "--raft-listen", f"127.0.0.1:{self.raft_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--data-dir", str(self.data_dir),
            *self.extra_args,
        ]

    # ---- lifecycle -------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: bool = True) -> None:
        assert not self.is_running(), f"{self.name} is already running"
        self.starts += 1
        cmd = self.command()
        # The node must see only what the test passes: no RAFTKA_* from the developer's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTKA_")}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env["NO_COLOR"] = "1"  # plain text in the log file
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=env, start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """TCP connect to the Kafka port succeeds AND an ApiVersions v0 request gets a reply."""
        deadline = time.monotonic() + timeout
        last_error = "no attempt yet"
        while True:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {rc} before serving\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.kafka_port), timeout=2) as sock:
                    sock.settimeout(2)
                    corr = 0x0BADCAFE
                    sock.sendall(raftka_wire.api_versions_request(corr, version=0))
                    payload = raftka_wire.read_frame(sock)
                    (got_corr,) = struct.unpack_from(">i", payload, 0)
                    if got_corr == corr:
                        return
                    last_error = f"ApiVersions reply with correlation id {got_corr:#x}, sent {corr:#x}"
            except (OSError, AssertionError, struct.error) as e:
                last_error = repr(e)
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{self.name} not serving Kafka on {self.bootstrap} after {timeout}s "
                    f"(last error: {last_error})\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait. Returns the exit code; SIGKILLs and raises if it does not exit."""
        assert self.proc is not None, "never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"{self.name} did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL (kill -9) and wait."""
        assert self.proc is not None, "never started"
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def restart(self, graceful: bool = True) -> int | None:
        """Stop (SIGTERM, or SIGKILL with graceful=False) and start again on the same ports and
        data dir. Returns the exit code of the stopped process."""
        rc = None
        if self.is_running():
            rc = self.stop() if graceful else self.kill()
        self.start()
        return rc

    def cleanup(self) -> None:
        """Used by fixtures: never leaves a process behind."""
        if self.is_running():
            try:
                self.stop(timeout=10)
            except AssertionError:
                pass  # already SIGKILLed by stop()

    # ---- logs ------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()
        head = f"--- last {min(lines, len(text))} lines of {self.log_path} ---"
        return "\n".join([head, *text[-lines:]])


def _kill_leftovers() -> None:
    for node in list(_REGISTERED_NODES):
        if node.is_running():
            node.proc.kill()


atexit.register(_kill_leftovers)


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def raftka_binary() -> Path:
    path = raftka_bin_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"raftka binary not found at {path}: build it (`make build`) or set RAFTKA_BIN",
                    pytrace=False)
    return path


def _new_node(binary: Path, tmp_path_factory, name: str, **kwargs) -> RaftkaNode:
    workdir = tmp_path_factory.mktemp(name)
    node = RaftkaNode(binary, workdir, name=name, **kwargs)
    _REGISTERED_NODES.append(node)
    return node


def _release(node: RaftkaNode) -> None:
    try:
        node.cleanup()
    finally:
        if node in _REGISTERED_NODES:
            _REGISTERED_NODES.remove(node)


@pytest.fixture(scope="module")
def raftka(raftka_binary, tmp_path_factory, request) -> RaftkaNode:
    """One running node shared by every test of a module."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    node = _new_node(raftka_binary, tmp_path_factory, module)
    try:
        node.start()
        yield node
    finally:
        _release(node)


@pytest.fixture
def raftka_factory(raftka_binary, tmp_path_factory):
    """Function-scoped factory for tests that restart or kill their own nodes:
    `node = raftka_factory(extra_args=[...])` returns a started node."""
    made: list[RaftkaNode] = []

    def make(name: str = "node", start: bool = True, **kwargs) -> RaftkaNode:
        node = _new_node(raftka_binary, tmp_path_factory, name, **kwargs)
        made.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in made:
        _release(node)


@pytest.fixture
def bootstrap(raftka) -> str:
    return raftka.bootstrap


# ---- reporting and markers -----------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for node in _REGISTERED_NODES:
            state = "running" if node.is_running() else f"exited {node.proc.returncode if node.proc else '-'}"
            report.sections.append((f"raftka {node.name} log ({state})", node.log_tail()))


def pytest_collection_modifyitems(config, items):
    if os.environ.get("RAFTKA_GROUPS") == "1":
        return
    skip = pytest.mark.skip(
        reason="needs consumer-group APIs (FindCoordinator/JoinGroup/SyncGroup/OffsetCommit), "
               "not implemented yet; run with RAFTKA_GROUPS=1")
    for item in items:
        if "groups" in item.keywords:
            item.add_marker(skip)


# ---- 3-node cluster ------------------------------------------------------------------------

class RaftkaCluster:
    """Three nodes on loopback forming one controller quorum (`--controller-quorum
    1@127.0.0.1:p1,2@...,3@...`), each with its own ports and data dir."""

    def __init__(self, nodes: list[RaftkaNode]):
        self.nodes = nodes

    def node(self, node_id: int) -> RaftkaNode:
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes if n.is_running())

    def start(self) -> None:
        for n in self.nodes:
            n.start(wait=False)
        for n in self.nodes:
            n.wait_ready()


@pytest.fixture
def cluster(raftka_binary, tmp_path_factory, request) -> RaftkaCluster:
    """A function-scoped 3-node cluster. Extra node arguments come from the
    `cluster_args` marker: `@pytest.mark.cluster_args("-o", "replica.lag.time.max.ms=2000")`."""
    marker = request.node.get_closest_marker("cluster_args")
    extra = list(marker.args) if marker else []
    nodes = [_new_node(raftka_binary, tmp_path_factory, f"c{i}", node_id=i) for i in (1, 2, 3)]
    quorum = ",".join(f"{n.node_id}@127.0.0.1:{n.raft_port}" for n in nodes)
    for n in nodes:
        n.extra_args = ["--controller-quorum", quorum, *extra]
    c = RaftkaCluster(nodes)
    try:
        c.start()
        yield c
    finally:
        for n in nodes:
            _release(n)

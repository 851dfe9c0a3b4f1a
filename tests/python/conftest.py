"""pytest fixtures of the real-client suite, over the shared harness (tests/harness,
`raftka_harness`).

Every node is the real `raftka` binary ($RAFTKA_BIN) started as a subprocess on free loopback
ports with a fresh data dir. Its stdout/stderr go to a log file whose tail is attached to the
report of any failing test.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

import pytest

from raftka_harness import Cluster, Node, default_binary

# Nodes whose logs are attached to failure reports (those alive in the current test's scope).
_REGISTERED_NODES: list[Node] = []


def _kill_leftovers() -> None:
    for node in list(_REGISTERED_NODES):
        if node.is_running():
            node.proc.kill()


atexit.register(_kill_leftovers)


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def raftka_binary() -> Path:
    path = default_binary()  # $RAFTKA_BIN, else $CARGO_TARGET_DIR/debug/raftka
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"raftka binary not found at {path}: build it (`make build`) or set RAFTKA_BIN",
                    pytrace=False)
    return path


def _new_node(binary: Path, tmp_path_factory, name: str, **kwargs) -> Node:
    workdir = tmp_path_factory.mktemp(name)
    node = Node(binary, workdir, name=name, **kwargs)
    _REGISTERED_NODES.append(node)
    return node


def _release(node: Node) -> None:
    try:
        node.cleanup()
    finally:
        if node in _REGISTERED_NODES:
            _REGISTERED_NODES.remove(node)


@pytest.fixture(scope="module")
def raftka(raftka_binary, tmp_path_factory, request) -> Node:
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
    made: list[Node] = []

    def make(name: str = "node", start: bool = True, **kwargs) -> Node:
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


# ---- reporting -----------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for node in _REGISTERED_NODES:
            state = "running" if node.is_running() else f"exited {node.proc.returncode if node.proc else '-'}"
            report.sections.append((f"raftka {node.name} log ({state})", node.log_tail()))


# ---- 3-node cluster ------------------------------------------------------------------------

def _cluster(raftka_binary, tmp_path_factory, request, size: int):
    marker = request.node.get_closest_marker("cluster_args")
    extra = list(marker.args) if marker else []
    nodes = [_new_node(raftka_binary, tmp_path_factory, f"c{i}", node_id=i, extra_args=extra)
             for i in range(1, size + 1)]
    c = Cluster(nodes)  # sets every node's --controller-quorum
    try:
        c.start()
        yield c
    finally:
        for n in nodes:
            _release(n)


@pytest.fixture
def cluster(raftka_binary, tmp_path_factory, request) -> Cluster:
    """A function-scoped 3-node cluster. Extra node arguments come from the
    `cluster_args` marker: `@pytest.mark.cluster_args("-o", "replica.lag.time.max.ms=2000")`."""
    yield from _cluster(raftka_binary, tmp_path_factory, request, 3)


@pytest.fixture
def cluster4(raftka_binary, tmp_path_factory, request) -> Cluster:
    """A function-scoped 4-node cluster (four voters), `cluster_args` as for `cluster`."""
    yield from _cluster(raftka_binary, tmp_path_factory, request, 4)

"""Several nodes forming one controller quorum."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from .config import quorum_arg
from .node import POLL_INTERVAL_S, READY_TIMEOUT_S, Node


class Cluster:
    """Nodes that form one controller quorum: every node gets `--controller-quorum` naming all
    of them (unless its `quorum` is already set), a single node runs without one."""

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        if len(nodes) > 1:
            q = quorum_arg((n.node_id, n.host, n.raft_port) for n in nodes)
            for n in nodes:
                n.quorum = n.quorum or q

    @classmethod
    def local(cls, binary: Path, root: Path, n: int, extra_args: Sequence[str] = (),
              name_prefix: str = "n", http: bool = True) -> "Cluster":
        """n nodes on 127.0.0.1 with free ports, node i in `root/<name_prefix>i`."""
        return cls([Node(binary, root / f"{name_prefix}{i}", i, name=f"{name_prefix}{i}",
                         http=http, extra_args=extra_args) for i in range(1, n + 1)])

    def node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    @property
    def bootstrap(self) -> str:
        """The Kafka addresses of the running nodes."""
        return ",".join(n.bootstrap for n in self.nodes if n.is_running())

    @property
    def zk_hosts(self) -> str:
        return ",".join(n.zk_hosts for n in self.nodes if n.is_running())

    def start(self, timeout: float = READY_TIMEOUT_S, interval: float = POLL_INTERVAL_S) -> list[float]:
        """Spawns every node, then waits until each serves Kafka (they need each other to
        elect a controller, so none is waited for alone). Returns each node's seconds from
        spawn to serving, measured to `interval`."""
        for n in self.nodes:
            n.start(wait=False)
        return [n.wait_ready(timeout, interval) for n in self.nodes]

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, interval: float = POLL_INTERVAL_S,
                   listening_only: bool = False) -> None:
        """Waits, within one deadline, until every node serves Kafka (ApiVersions answered)
        or, with `listening_only`, accepts TCP connections on its Kafka port (for a caller
        that judges responsiveness itself). Raises RuntimeError if a node exits or the
        deadline passes."""
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            if not listening_only:
                n.wait_ready(max(0.0, deadline - time.monotonic()), interval)
                continue
            while not n.tcp_ready():
                rc = n.exit_code()
                if rc is not None:
                    raise RuntimeError(f"{n.name} exited with {rc}; see {n.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{n.name} not listening after {timeout}s; see {n.log_path}")
                time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM every node; one that does not exit in time is SIGKILLed. Reaches every node."""
        for n in self.nodes:
            try:
                n.stop(check=False)
            except Exception:  # noqa: BLE001 - teardown must reach every node
                n.kill()

    def memory_mb(self) -> dict[int, float | None]:
        """VmRSS (MB) per running node."""
        return {n.node_id: n.memory_mb().get("VmRSS") for n in self.nodes if n.is_running()}

"""Jepsen's clusters over the shared harness (tests/harness, `raftka_harness`): local processes
on 127.0.0.1 (LocalCluster) or one network namespace per node (NetnsCluster, netns.py).

Each node has fixed ports and a data dir for its lifetime, so kill -9 + restart reuses them.
Node stdout/stderr go to `<results>/nodes/n<ID>.log`. What is Jepsen's own lives here: the
Raft membership commands, the join nemesis' spare node, libfaketime clocks, partitions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from raftka_harness import Cluster, Node, Ports, default_binary

__all__ = ["JepsenNode", "LocalCluster", "NetnsCluster", "default_binary", "faketime_env",
           "faketime_lib", "write_clock_offset"]


FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1",
                 "/usr/local/lib/faketime/libfaketime.so.1")


def faketime_lib() -> Path | None:
    """libfaketime (Debian package `faketime`), or None. `$RAFTKA_JEPSEN_FAKETIME_LIB`
    overrides the search (set it to an empty string to pretend it is not installed)."""
    env = os.environ.get("RAFTKA_JEPSEN_FAKETIME_LIB")
    if env is not None:
        return Path(env) if env and Path(env).exists() else None
    return next((Path(p) for p in FAKETIME_LIBS if Path(p).exists()), None)


def faketime_env(lib: Path, timestamp_file: Path) -> dict[str, str]:
    """The environment that runs a node under libfaketime with its realtime clock offset by
    whatever `timestamp_file` holds ("+0", "+42", "-250", ...), re-read at most once a second.
    CLOCK_MONOTONIC stays real: Raft election/heartbeat timers and tokio sleeps use it."""
    return {
        "LD_PRELOAD": str(lib),
        "FAKETIME_TIMESTAMP_FILE": str(timestamp_file),
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def write_clock_offset(path: Path, offset_s: float) -> str:
    """Atomically replace a libfaketime timestamp file with a relative offset spec."""
    spec = f"{offset_s:+.0f}" if offset_s else "+0"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(spec + "\n")
    os.replace(tmp, path)
    return spec


class JepsenNode(Node):
    """A harness node that may run under libfaketime (`clock_file`, see enable_faketime)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock_file: Path | None = None  # libfaketime timestamp file, when started under it

    def set_clock_offset(self, offset_s: float) -> str:
        """Skew this node's realtime clock by `offset_s` (libfaketime re-reads the file
        within FAKETIME_CACHE_DURATION). Returns the spec written."""
        if self.clock_file is None:
            raise RuntimeError(f"{self.name} was not started under libfaketime")
        return write_clock_offset(self.clock_file, offset_s)


class LocalCluster(Cluster):
    """N raftka processes on loopback. `topology` is reported to nemeses."""

    topology = "local-processes"

    def __init__(self, n: int, workdir: Path, binary: Path | None = None,
                 extra_args: list[str] | None = None, security=None):
        self.workdir = workdir
        # `--secure` (security.Security): SASL_SSL listeners, node-to-node mTLS.
        self.security = security
        self.binary = binary or default_binary()
        if not self.binary.exists():
            raise FileNotFoundError(f"raftka binary not found: {self.binary} (cargo build)")
        (workdir / "nodes").mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args or []) + (security.node_args() if security else [])
        super().__init__([self._new_node(i) for i in range(1, n + 1)])  # sets the quorum
        # Indices of nodes a membership fault removed from the Raft voters and has not added
        # back yet; heal_all adds them back.
        self.removed_voters: set[int] = set()
        self.initial_quorum = self.nodes[0].quorum if self.nodes else ""
        # The join nemesis' brand-new node (enable_spare): id n + 1, outside the initial
        # voters, its data dir wiped before every join. `spare_member`: it may still be in the
        # Raft configuration (its last removal failed), so it must not rejoin with an empty
        # disk before it is removed.
        self.spare: JepsenNode | None = None
        self.spare_member = False

    def _new_node(self, i: int, quorum: str = "") -> JepsenNode:
        """Node i on 127.0.0.1 (no HTTP listener), data in data/nI, log in nodes/nI.log."""
        from .security import LISTENERS
        return JepsenNode(self.binary, self.workdir, i, http=False, quorum=quorum,
                          extra_args=self.extra_args, data_dir=self.workdir / "data" / f"n{i}",
                          log_path=self.workdir / "nodes" / f"n{i}.log",
                          listeners=LISTENERS if self.security else None)

    @property
    def bootstrap(self) -> str:
        """Every node, down or not: the clients must know them all."""
        return ",".join(n.bootstrap for n in self.nodes)

    def _reachable(self, exclude: int | None = None) -> list[JepsenNode]:
        return [n for i, n in enumerate(self.nodes)
                if i != exclude and n.is_running() and not n.paused]

    def quorum(self, *args: str, exclude: int | None = None, timeout_s: float = 30,
               stdout: bool = False) -> dict[str, Any]:
        """`raftka quorum <args>` through the first running, unpaused node other than
        `exclude` (the CLI follows the leader hint). Returns rc and the output's tail."""
        via = self._reachable(exclude)
        if not via:
            return {"rc": None, "out": "no running node to send the command to"}
        v = via[0]
        tls = self.security.quorum_args() if self.security else []
        cmd = [str(self.binary), "quorum", "--bootstrap", f"{v.host}:{v.raft_port}",
               "--timeout-ms", str(int(timeout_s * 1000)), *tls, *args]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 5)
            res = {"via": v.name, "rc": r.returncode, "out": (r.stdout + r.stderr).strip()[-300:]}
            # "out" is the tail that goes into the history; `stdout=True` adds all of stdout.
            return {**res, "stdout": r.stdout} if stdout else res
        except subprocess.TimeoutExpired:
            return {"via": v.name, "rc": None, "out": "timed out"}

    def index_of(self, node_id: int) -> int | None:
        return next((i for i, n in enumerate(self.nodes) if n.node_id == node_id), None)

    def controller_leader(self, timeout_s: float = 5) -> int | None:
        """Index of the Raft (controller) leader as `raftka quorum describe` reports it, or
        None while there is none (an election, no quorum reachable)."""
        r = self.quorum("describe", "--json", timeout_s=timeout_s, stdout=True)
        if r.get("rc") != 0:
            return None
        try:
            leader = json.loads(r["stdout"].strip().splitlines()[-1]).get("leader_id")
        except (ValueError, IndexError, AttributeError):
            return None
        return None if leader is None else self.index_of(int(leader))

    def partition_leader(self, topic: str, partition: int, timeout_s: float = 5) -> int | None:
        """Index of the leader of `topic`-`partition` per a Metadata request, or None."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
        nodes = self._reachable()
        if not nodes:
            return None
        from .workload import CLIENT_SECURITY
        admin = AdminClient({**CLIENT_SECURITY, "bootstrap.servers": ",".join(n.bootstrap for n in nodes),
                             "socket.timeout.ms": int(timeout_s * 1000)},
                            logger=logging.getLogger("raftka_jepsen.clients"))
        try:
            md = admin.list_topics(topic, timeout=timeout_s)
        except KafkaException:
            return None
        t = md.topics.get(topic)
        p = None if t is None or t.error is not None else t.partitions.get(partition)
        if p is None or p.leader < 0:
            return None
        return self.index_of(p.leader)

    def enable_spare(self) -> str | None:
        """Prepare the join nemesis' spare node (not started). Idempotent."""
        if self.spare is None:
            self.spare = self._spare_node(self._new_node(len(self.nodes) + 1, self.initial_quorum))
        return None

    def _spare_node(self, node: JepsenNode) -> JepsenNode:
        return node

    def join_spare(self, timeout_s: float = 30) -> dict[str, Any]:
        """Start the spare with an empty data dir and add it as a voter (learner first)."""
        s = self.spare
        assert s is not None, "enable_spare() first"
        if s.is_running():
            return {"node": s.name, "skipped": "already running"}
        if self.spare_member:  # its last retirement did not complete: finish it
            r = self.retire_spare()
            if self.spare_member:
                return {"node": s.name, "skipped": "still a member from last time", **r}
        shutil.rmtree(s.data_dir, ignore_errors=True)
        s.start(wait=False)
        deadline = time.monotonic() + timeout_s
        while not s.tcp_ready() and time.monotonic() < deadline and s.is_running():
            time.sleep(0.1)
        self.spare_member = True  # from here on it may be in the configuration
        r = self.quorum("add-voter", "--id", str(s.node_id), "--addr", f"{s.host}:{s.raft_port}",
                        timeout_s=timeout_s)
        return {"node": s.name, "incarnation": s.starts, **r}

    def retire_spare(self) -> dict[str, Any]:
        """Decommission the spare: remove it from the voters (it stays a learner, following
        the metadata log), stop it (SIGTERM: controlled shutdown, which needs that log), then
        take it out of the membership."""
        s = self.spare
        if s is None or not (s.is_running() or self.spare_member):
            return {"skipped": "no spare to retire"}
        r = self.quorum("remove-voter", "--id", str(s.node_id))
        rc = s.stop(check=False)
        gone = self.quorum("remove-node", "--id", str(s.node_id))
        if gone.get("rc") == 0 or "is not a member" in str(gone.get("out")):
            self.spare_member = False
        return {"node": s.name, **r, "exit": rc, "remove_node": gone}

    def enable_faketime(self, lib: Path) -> str | None:
        """Start every node (from now on, restarts included) under libfaketime with its own
        timestamp file `<workdir>/clock/nI.faketime`, holding "+0" until the clock nemesis
        writes an offset. Idempotent. Returns why it cannot, or None: nodes that are already
        running were started without it."""
        if all(n.clock_file is not None for n in self.nodes):
            return None
        if any(n.is_running() for n in self.nodes):
            return "nodes were started without libfaketime (enable it before cluster.start())"
        (self.workdir / "clock").mkdir(parents=True, exist_ok=True)
        for n in self.nodes:
            n.clock_file = self.workdir / "clock" / f"{n.name}.faketime"
            write_clock_offset(n.clock_file, 0)
            n.env.update(faketime_env(lib, n.clock_file))
        return None

    @property
    def faketime(self) -> bool:
        return bool(self.nodes) and all(n.clock_file is not None for n in self.nodes)

    @property
    def zk_hosts(self) -> str:
        return ",".join(n.zk_hosts for n in self.nodes)

    def start(self, timeout: float = 60) -> list[float]:
        return super().start(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        """Every node listens again (after heal_all). Only listening: whether each one answers
        is `unresponsive()`'s finding, reported as a liveness result, not a harness abort."""
        super().wait_ready(timeout, listening_only=True)

    def unresponsive(self, timeout_s: float = 30) -> list[str]:
        """Names of nodes that do not answer both probes within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        pending = list(self.nodes)
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not n.responsive()]
            if pending:
                time.sleep(0.5)
        return [n.name for n in pending]

    def heal_all(self) -> list[str]:
        """Resume paused nodes and restart dead ones. Returns what it did."""
        did = []
        for n in self.nodes:
            if n.clock_file is not None and n.clock_file.read_text().strip() != "+0":
                n.set_clock_offset(0)
                did.append(f"reset clock {n.name}")
            if n.paused:
                n.resume()
                did.append(f"resume {n.name}")
            if not n.is_running():
                if n.proc is not None:
                    did.append(f"{n.name} was down (rc {n.proc.poll()})")
                n.start(wait=False)
                did.append(f"start {n.name}")
        for i in sorted(self.removed_voters):
            r = self.add_voter(i)
            did.append(f"add-voter {self.nodes[i].name}: rc {r.get('rc')}")
        if self.spare is not None and (self.spare.is_running() or self.spare_member):
            r = self.retire_spare()
            did.append(f"retire {self.spare.name}: rc {r.get('rc')}")
        return did

    def remove_voter(self, i: int) -> dict[str, Any]:
        r = self.quorum("remove-voter", "--id", str(self.nodes[i].node_id), exclude=i)
        if r.get("rc") == 0:
            self.removed_voters.add(i)
        return {"node": self.nodes[i].name, **r}

    def add_voter(self, i: int) -> dict[str, Any]:
        n = self.nodes[i]
        r = self.quorum("add-voter", "--id", str(n.node_id), "--addr", f"{n.host}:{n.raft_port}",
                        exclude=i)
        if r.get("rc") == 0:
            self.removed_voters.discard(i)
        return {"node": n.name, **r}

    def stop(self) -> None:
        for n in self.nodes + ([self.spare] if self.spare is not None else []):
            try:
                n.stop(check=False)
            except Exception:  # noqa: BLE001 - teardown must reach every node
                n.kill()


# Every namespace node has its own address, so all use the same ports (no HTTP listener).
NETNS_PORTS = Ports(kafka=9092, zk=2181, raft=9193, http=None)


class NetnsCluster(LocalCluster):
    """One network namespace per node (netns.py): node i listens on 10.77.<slot>.i with fixed
    ports; the harness and clients stay in the root namespace and reach every node through
    the bridge. Partitions cut node-to-node links with iptables inside the namespaces.
    Needs root. `ip netns exec` execs the binary, so the Popen pid is raftka's own pid and
    kill -9 / SIGSTOP reach it directly."""

    topology = "netns"

    def __init__(self, n: int, workdir: Path, binary: Path | None = None,
                 extra_args: list[str] | None = None, slot: int = 0, security=None):
        from . import netns
        super().__init__(n, workdir, binary, extra_args, security)
        self._netns = netns.Net(slot)
        self.cuts: list[tuple[int, int]] = []
        for nd in self.nodes:
            self._place(nd)
        if n > 1:
            quorum = ",".join(f"{nd.node_id}@{nd.host}:{nd.raft_port}" for nd in self.nodes)
            for nd in self.nodes:
                nd.quorum = quorum
            self.initial_quorum = quorum
        self._netns.teardown(n + 1)  # leftovers of an aborted run (with its spare)
        self._netns.setup(n)

    def _place(self, node: JepsenNode) -> JepsenNode:
        """Node i runs in namespace i of this slot, at its address, on the fixed ports."""
        node.host = self._netns.addr(node.node_id)
        node.kafka_port, node.zk_port, node.raft_port = NETNS_PORTS.kafka, NETNS_PORTS.zk, NETNS_PORTS.raft
        node.prefix = ["ip", "netns", "exec", self._netns.ns(node.node_id)]
        return node

    def _spare_node(self, node: JepsenNode) -> JepsenNode:
        self._netns.add_node(node.node_id)
        return self._place(node)

    def partition(self, plan: dict) -> dict:
        for x, y in plan["cut"]:
            self._netns.cut(x + 1, y + 1)
            self.cuts.append((x, y))
        return {"plan": plan}

    def heal_network(self) -> dict:
        self._netns.heal(len(self.nodes))
        healed, self.cuts = self.cuts, []
        return {"healed": healed}

    def heal_all(self) -> list[str]:
        did = []
        if self.cuts:
            self.heal_network()
            did.append("heal network")
        return did + super().heal_all()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._netns.teardown(len(self.nodes) + (self.spare is not None))

"""Network namespaces for real link cuts between local raftka nodes (tests/python/test_netsplit.py
and Jepsen's `--topology netns`).

Local processes share 127.0.0.1, so one node's links cannot be cut without cutting everyone's.
Here every node runs in its own network namespace with its own address on a private bridge:

    root ns:  bridge <p>br0  <subnet>.254/24   (the harness and the clients run here)
    <p>n1:    veth <p>n1-in <subnet>.1/24  <->  <p>n1-out (enslaved to the bridge)
    <p>n2:    ...            <subnet>.2/24
    ...

`Netns.fresh(n)` picks a per-run prefix and a free subnet (concurrent test runs do not collide);
`Netns.slot(n, s)` uses Jepsen's fixed names (`rk-n<i>`, `rk-br0`, 10.77.0.0/24 for slot 0;
`rk<s>-n<i>`, 10.77.<s>.0/24 otherwise). A node runs as `exec_prefix(i) + [raftka, ...]`
(`ip netns exec` execs the binary, so kill -9 and SIGSTOP reach raftka's own pid).

A cut between nodes i and j installs, inside both namespaces, iptables DROP rules for the other
node's address (INPUT -s and OUTPUT -d): node-to-node traffic stops on every port while the root
namespace (the clients) still reaches every node. `heal()` flushes those chains. With
br_netfilter loaded, bridged frames also traverse the root namespace's FORWARD chain (policy
DROP under docker): one ACCEPT rule for the bridge is inserted at setup and removed at teardown.

Needs root (CAP_NET_ADMIN), `ip` and `iptables`; `available()` says why not when it cannot work.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import socket
import subprocess
import threading


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def available() -> str | None:
    """None when namespaces can be used here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"rkprobe{os.getpid() % 100000}"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` fails: {r.stderr.strip()}"
    try:
        r = sh("ip", "netns", "exec", probe, "iptables", "-S", "INPUT", check=False)
        if r.returncode != 0:
            return f"iptables does not work inside a namespace: {r.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def free_subnet() -> str:
    """The first three octets of a 10.x.y.0/24 that no local interface uses."""
    used = []
    for line in sh("ip", "-o", "-4", "addr", "show").stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            used.append(ipaddress.ip_network(parts[parts.index("inet") + 1], strict=False))
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net.network_address).rsplit(".", 1)[0]
    raise RuntimeError("no free 10.x.y.0/24 subnet")


class Netns:
    """n namespaces on one bridge. As a context manager, teardown always runs."""

    def __init__(self, n: int, prefix: str, subnet: str):
        self.n = n
        self.prefix = prefix
        self.bridge = f"{prefix}br0"
        self.subnet = subnet
        self.cuts: set[frozenset[int]] = set()
        self._lock = threading.Lock()
        self._forward_rule = ("FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT")

    @classmethod
    def fresh(cls, n: int) -> "Netns":
        """A per-run prefix (7 characters, so interface names stay within 15) and free subnet."""
        return cls(n, f"rt{os.getpid() % 1000:03d}{random.randint(0, 99):02d}", free_subnet())

    @classmethod
    def slot(cls, n: int, slot: int) -> "Netns":
        """Jepsen's fixed names: slot 0 is `rk-n<i>`, `rk-br0`, 10.77.0.0/24; slot s > 0 is
        `rk<s>-n<i>`, `rk<s>-br0`, 10.77.s.0/24, so runs on different slots go side by side."""
        if not 0 <= slot <= 99:
            raise ValueError(f"netns slot {slot} out of 0..99")
        return cls(n, "rk-" if slot == 0 else f"rk{slot}-", f"10.77.{slot}")

    def ns(self, i: int) -> str:
        return f"{self.prefix}n{i}"

    def addr(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    @property
    def host_addr(self) -> str:
        """The root namespace's address on the bridge (where clients come from)."""
        return f"{self.subnet}.254"

    def exec_prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.ns(i)]

    def setup(self, n: int | None = None) -> None:
        """Bridge, FORWARD rule and nodes 1..n (default: the n given at construction)."""
        if n is not None:
            self.n = n
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            sh("ip", "addr", "add", f"{self.host_addr}/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            sh("iptables", "-I", *self._forward_rule)
            for i in range(1, self.n + 1):
                self.add_node(i)
        except BaseException:
            self.teardown()
            raise

    def add_node(self, i: int) -> None:
        """Namespace, veth pair and address for node i (setup, or a node that joins later)."""
        ns, out, inner = self.ns(i), f"{self.ns(i)}-out", f"{self.ns(i)}-in"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", out, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "link", "set", out, "master", self.bridge)
        sh("ip", "link", "set", out, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.addr(i)}/24", "dev", inner)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        self.n = max(self.n, i)

    def teardown(self, n: int | None = None) -> None:
        """Removes nodes 1..n (default: all known), the bridge and the FORWARD rule; also
        clears the leftovers of an aborted run with the same names."""
        for i in range(1, (self.n if n is None else n) + 1):
            sh("ip", "netns", "del", self.ns(i), check=False)
            sh("ip", "link", "del", f"{self.ns(i)}-out", check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        while sh("iptables", "-D", *self._forward_rule, check=False).returncode == 0:
            pass

    def __enter__(self) -> "Netns":
        self.setup()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    # ---- faults ---------------------------------------------------------------------------
    def cut(self, i: int, j: int) -> None:
        """Drops all traffic between nodes i and j (both directions, both namespaces)."""
        with self._lock:
            for a, b in ((i, j), (j, i)):
                sh(*self.exec_prefix(a), "iptables", "-I", "INPUT", "-s", self.addr(b), "-j", "DROP")
                sh(*self.exec_prefix(a), "iptables", "-I", "OUTPUT", "-d", self.addr(b), "-j", "DROP")
            self.cuts.add(frozenset((i, j)))

    def isolate(self, i: int, clients_too: bool = False) -> None:
        """Cuts node i from every other node. Clients in the root namespace still reach it,
        unless `clients_too`: then the root namespace (the bridge address) is cut off as well,
        so the clients are on the majority side, and only a client run inside node i's
        namespace (`exec_prefix(i)`) reaches node i."""
        for j in range(1, self.n + 1):
            if j != i:
                self.cut(i, j)
        if clients_too:
            with self._lock:
                sh(*self.exec_prefix(i), "iptables", "-I", "INPUT", "-s", self.host_addr, "-j", "DROP")
                sh(*self.exec_prefix(i), "iptables", "-I", "OUTPUT", "-d", self.host_addr, "-j", "DROP")

    def heal(self, n: int | None = None) -> None:
        """Flushes the cut rules of nodes 1..n (default: all known)."""
        with self._lock:
            for i in range(1, (self.n if n is None else n) + 1):
                sh(*self.exec_prefix(i), "iptables", "-F", "INPUT", check=False)
                sh(*self.exec_prefix(i), "iptables", "-F", "OUTPUT", check=False)
            self.cuts.clear()

    # ---- self-check -----------------------------------------------------------------------
    def can_connect(self, src: int | None, dst: int, port: int, timeout: float = 1.0) -> bool:
        """Whether a TCP connect from node `src`'s namespace (None = root) to node `dst`
        succeeds (something must listen there)."""
        if src is None:
            try:
                with socket.create_connection((self.addr(dst), port), timeout=timeout):
                    return True
            except OSError:
                return False
        code = ("import socket,sys\n"
                f"s=socket.create_connection(('{self.addr(dst)}',{port}),timeout={timeout})\n")
        r = subprocess.run([*self.exec_prefix(src), "python3", "-c", code], capture_output=True,
                           timeout=timeout + 10)
        return r.returncode == 0

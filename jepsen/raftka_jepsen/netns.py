"""Network-namespace topology: the commands behind cluster.NetnsCluster (`run --topology netns`).

Why: local processes share 127.0.0.1, so one node's links cannot be cut without cutting
everyone's. With one network namespace per node each node gets its own address and its own
netfilter table, and a partition is a set of iptables DROP rules (verified on this machine:
iptables 1.8.9 nf_tables backend; `tc netem` is NOT available in this kernel, so no latency
or loss shaping beyond iptables `-m statistic` random drops).

Layout (root or CAP_NET_ADMIN required):

    root ns:  bridge rk-br0 10.77.0.254/24  (clients run here)
    rk-n1:    veth rk-n1-in 10.77.0.1/24  <-> rk-n1-out (enslaved to rk-br0)
    rk-n2:    ...        10.77.0.2/24
    rk-nN:    ...

Each node runs as `ip netns exec rk-nI raftka serve --listeners PLAINTEXT://10.77.0.I:9092
--zk-listen 10.77.0.I:2181 --raft-listen 10.77.0.I:9193 --controller-quorum 1@10.77.0.1:9193,...`.
The harness (root ns) reaches every node through the bridge. A partition that separates node i
from node j installs, inside rk-ni, `iptables -A INPUT -s 10.77.0.j -j DROP` and
`iptables -A OUTPUT -d 10.77.0.j -j DROP` (and symmetrically in rk-nj); healing flushes the
chains. Clients keep reaching all nodes, as in Jepsen (only inter-node links are cut) — an
option can also cut the client (10.77.0.254) from the minority.

Verified on this machine (2 namespaces, a TCP server in rk-n1): before `cut(1, 2)` both the root
namespace and rk-n2 reach it; after the cut rk-n2 times out while the root namespace still
reaches it; after `heal` both reach it again (see tests/test_netns.py, which needs root).

cluster.NetnsCluster subclasses LocalCluster with `topology = "netns"`, prefixes node commands
with `ip netns exec`, and implements `partition(plan)` / `heal_network()` for
nemesis.PartitionNemesis.
"""

from __future__ import annotations

import subprocess

def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Net:
    """One set of namespaces, bridge and /24. Slot 0 is `rk-n<i>`, `rk-br0`, 10.77.0.0/24
    (what tests/test_netns.py and the docs name); slot k > 0 is `rk<k>-n<i>`, `rk<k>-br0`,
    10.77.k.0/24, so several runs (`--netns-slot`) can go on side by side without sharing a
    namespace, an interface or an address. iptables rules live inside each node's namespace,
    apart from one FORWARD accept per bridge in the root namespace."""

    def __init__(self, slot: int = 0):
        if not 0 <= slot <= 99:
            raise ValueError(f"netns slot {slot} out of 0..99")
        self.slot = slot
        self.prefix = "rk" if slot == 0 else f"rk{slot}"
        self.bridge = f"{self.prefix}-br0"
        self.subnet = f"10.77.{slot}"

    def ns(self, i: int) -> str:
        return f"{self.prefix}-n{i}"

    def addr(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    def setup(self, n: int) -> None:
        br = self.bridge
        sh("ip", "link", "add", br, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.254/24", "dev", br)
        sh("ip", "link", "set", br, "up")
        # With br_netfilter loaded (bridge-nf-call-iptables = 1) bridged frames traverse the
        # root namespace's FORWARD chain, whose policy is DROP on this machine (docker): allow
        # node-to-node traffic on our bridge only; teardown removes the rule.
        sh("iptables", "-I", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT")
        for i in range(1, n + 1):
            self.add_node(i)

    def add_node(self, i: int) -> None:
        """Namespace, veth pair and address for node i (setup, or a node that joins later)."""
        ns = self.ns(i)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"{ns}-out", "type", "veth", "peer", "name", f"{ns}-in")
        sh("ip", "link", "set", f"{ns}-in", "netns", ns)
        sh("ip", "link", "set", f"{ns}-out", "master", self.bridge)
        sh("ip", "link", "set", f"{ns}-out", "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.addr(i)}/24", "dev",
           f"{ns}-in")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", f"{ns}-in", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def teardown(self, n: int) -> None:
        for i in range(1, n + 1):
            sh("ip", "netns", "del", self.ns(i), check=False)
            sh("ip", "link", "del", f"{self.ns(i)}-out", check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        while sh("iptables", "-D", "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j",
                 "ACCEPT", check=False).returncode == 0:
            pass

    def cut(self, i: int, j: int) -> None:
        """Drop traffic between node i and node j (1-based), both directions, both
        namespaces."""
        for a, b in ((i, j), (j, i)):
            sh("ip", "netns", "exec", self.ns(a), "iptables", "-A", "INPUT", "-s", self.addr(b),
               "-j", "DROP")
            sh("ip", "netns", "exec", self.ns(a), "iptables", "-A", "OUTPUT", "-d",
               self.addr(b), "-j", "DROP")

    def heal(self, n: int) -> None:
        for i in range(1, n + 1):
            sh("ip", "netns", "exec", self.ns(i), "iptables", "-F", check=False)


_SLOT0 = Net(0)
ns, addr, setup, teardown, cut, heal = (_SLOT0.ns, _SLOT0.addr, _SLOT0.setup, _SLOT0.teardown,
                                        _SLOT0.cut, _SLOT0.heal)

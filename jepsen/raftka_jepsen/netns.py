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

BRIDGE = "rk-br0"
SUBNET = "10.77.0"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def ns(i: int) -> str:
    return f"rk-n{i}"


def addr(i: int) -> str:
    return f"{SUBNET}.{i}"


def setup(n: int) -> None:
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.254/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    # With br_netfilter loaded (bridge-nf-call-iptables = 1) bridged frames traverse the root
    # namespace's FORWARD chain, whose policy is DROP on this machine (docker): allow
    # node-to-node traffic on our bridge only; teardown removes the rule.
    sh("iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")
    for i in range(1, n + 1):
        sh("ip", "netns", "add", ns(i))
        sh("ip", "link", "add", f"{ns(i)}-out", "type", "veth", "peer", "name", f"{ns(i)}-in")
        sh("ip", "link", "set", f"{ns(i)}-in", "netns", ns(i))
        sh("ip", "link", "set", f"{ns(i)}-out", "master", BRIDGE)
        sh("ip", "link", "set", f"{ns(i)}-out", "up")
        sh("ip", "netns", "exec", ns(i), "ip", "addr", "add", f"{addr(i)}/24", "dev", f"{ns(i)}-in")
        sh("ip", "netns", "exec", ns(i), "ip", "link", "set", f"{ns(i)}-in", "up")
        sh("ip", "netns", "exec", ns(i), "ip", "link", "set", "lo", "up")


def teardown(n: int) -> None:
    for i in range(1, n + 1):
        sh("ip", "netns", "del", ns(i), check=False)
        sh("ip", "link", "del", f"{ns(i)}-out", check=False)
    sh("ip", "link", "del", BRIDGE, check=False)
    while sh("iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
             check=False).returncode == 0:
        pass


def cut(i: int, j: int) -> None:
    """Drop traffic between node i and node j (1-based), both directions, both namespaces."""
    for a, b in ((i, j), (j, i)):
        sh("ip", "netns", "exec", ns(a), "iptables", "-A", "INPUT", "-s", addr(b), "-j", "DROP")
        sh("ip", "netns", "exec", ns(a), "iptables", "-A", "OUTPUT", "-d", addr(b), "-j", "DROP")


def heal(n: int) -> None:
    for i in range(1, n + 1):
        sh("ip", "netns", "exec", ns(i), "iptables", "-F", check=False)

"""Network-namespace topology: the commands behind cluster.NetnsCluster (`run --topology netns`),
from the shared harness (`raftka_harness.netns`, which the partition tests use too).

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
from node j installs, inside rk-ni, `iptables -I INPUT -s 10.77.0.j -j DROP` and
`iptables -I OUTPUT -d 10.77.0.j -j DROP` (and symmetrically in rk-nj); healing flushes the
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

from raftka_harness.netns import Netns


class Net(Netns):
    """One set of namespaces, bridge and /24 (`raftka_harness.netns.Netns.slot`). Slot 0 is
    `rk-n<i>`, `rk-br0`, 10.77.0.0/24 (what tests/test_netns.py and the docs name); slot k > 0
    is `rk<k>-n<i>`, `rk<k>-br0`, 10.77.k.0/24, so several runs (`--netns-slot`) can go on side
    by side without sharing a namespace, an interface or an address. iptables rules live
    inside each node's namespace, apart from one FORWARD accept per bridge in the root
    namespace."""

    def __init__(self, slot: int = 0):
        base = Netns.slot(0, slot)
        super().__init__(0, base.prefix, base.subnet)
        self.slot = slot


_SLOT0 = Net(0)
ns, addr, setup, teardown, cut, heal = (_SLOT0.ns, _SLOT0.addr, _SLOT0.setup, _SLOT0.teardown,
                                        _SLOT0.cut, _SLOT0.heal)

"""ZooKeeper facade limits (issue 14, finding 9): znode data is capped at `jute.maxbuffer`
like ZooKeeper's, the total of stored znode data at `zk.data.total.max.bytes` (QUOTAEXCEEDED
past it, and deleting makes room again), and the replicated copies of znode data (Raft
entries, state machine rows, snapshots) cost 4/3 of the data, not the ~3.6x of a JSON number
array: 100 x 1 MB znodes once made a 408 MB Raft snapshot."""

from __future__ import annotations

import os
import re

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadArgumentsError, QuotaExceededError

from raftka_harness import wait_until

JUTE_MAXBUFFER = 1_048_575


def kazoo(node) -> KazooClient:
    zk = KazooClient(hosts=node.zk_hosts, timeout=15)
    zk.start(20)
    return zk


def test_data_past_jute_maxbuffer_is_refused(raftka):
    zk = kazoo(raftka)
    try:
        zk.create("/at-limit", b"x" * JUTE_MAXBUFFER)
        assert len(zk.get("/at-limit")[0]) == JUTE_MAXBUFFER
        with pytest.raises(BadArgumentsError):
            zk.create("/past-limit", b"x" * (JUTE_MAXBUFFER + 1))
        with pytest.raises(BadArgumentsError):
            zk.set("/at-limit", b"x" * (JUTE_MAXBUFFER + 1))
        assert zk.exists("/past-limit") is None
        zk.delete("/at-limit")
    finally:
        zk.stop()
    assert raftka.is_running()


def test_total_znode_data_has_a_budget(raftka_factory):
    node = raftka_factory(extra_args=["-o", "zk.data.total.max.bytes=2500000"])
    zk = kazoo(node)
    try:
        zk.create("/a", os.urandom(1_000_000))
        zk.create("/b", os.urandom(1_000_000))
        with pytest.raises(QuotaExceededError):
            zk.create("/c", os.urandom(1_000_000))
        assert zk.exists("/c") is None
        zk.create("/s", os.urandom(400_000))
        with pytest.raises(QuotaExceededError):
            zk.set("/s", os.urandom(600_000))
        assert len(zk.get("/s")[0]) == 400_000
        # Shrinking and deleting always pass, and make room.
        zk.set("/s", b"small")
        zk.set("/a", b"small")
        zk.create("/c", os.urandom(1_000_000))
        zk.delete("/b")
        zk.create("/d", os.urandom(1_000_000))
        # A multi that frees before it adds stays within the budget.
        tx = zk.transaction()
        tx.delete("/d")
        tx.create("/e", os.urandom(1_000_000))
        assert all(r is True or isinstance(r, str) for r in tx.commit())
    finally:
        zk.stop()


def test_snapshots_do_not_multiply_znode_data(raftka_factory):
    node = raftka_factory(extra_args=["-o", "zk.data.total.max.bytes=100000000"])
    zk = kazoo(node)
    total = 0
    try:
        for i in range(20):
            data = os.urandom(1_000_000)
            total += len(data)
            zk.create(f"/big{i}", data)
    finally:
        zk.stop()
    # After a restart the persistent state machine is offered as the current snapshot: the
    # node builds it (and logs its size) when it starts.
    node.stop()
    node.start()
    wait_until(lambda: re.findall(r"snapshot built .*bytes=(\d+)", node.log_text()), 30,
               "a snapshot built after the restart")
    sizes = [int(m) for m in re.findall(r"snapshot built .*bytes=(\d+)", node.log_text())]
    ratio = sizes[-1] / total
    assert ratio < 1.45, f"snapshot is {ratio:.2f}x the znode data"
    zk = kazoo(node)
    try:
        assert len(zk.get("/big7")[0]) == 1_000_000
    finally:
        zk.stop()

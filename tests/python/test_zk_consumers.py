"""The ZooKeeper facade's read-only `/consumers/<group>/offsets/<topic>/<partition>` (issue 16):
offsets committed through the Kafka protocol (confluent-kafka, OffsetCommit v8+) are visible to
kazoo through every node of a 3-node cluster, whichever node coordinates the group (the others
ask it over the node-to-node GroupService), with the commit time as mtime; a later commit is
what the next read shows; the subtree refuses writes; an old ZooKeeper consumer's own znodes
under `/consumers/<group>` stay free-form next to it.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from cluster_util import wait_brokers
from raftka_harness import unique_name, wait_until


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                 asynchronous=False)
    finally:
        c.close()


def read_offsets(zk: KazooClient, group: str, topic: str) -> dict[int, int]:
    base = f"/consumers/{group}/offsets/{topic}"
    return {int(p): int(zk.get(f"{base}/{p}")[0]) for p in zk.get_children(base)}


@pytest.mark.timeout(240)
@pytest.mark.cluster_args("-o", "offsets.topic.replication.factor=3")
def test_committed_offsets_visible_through_every_node(cluster):
    bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
    wait_brokers(bootstrap, 3, timeout=60)
    topic = unique_name("zkoffsets")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=30)
    # Several groups, so that their coordinators are spread over the nodes.
    groups = [unique_name(f"zkg{i}") for i in range(4)]
    want = {g: {p: 10 * i + p + 1 for p in range(3)} for i, g in enumerate(groups)}
    before_ms = int(time.time() * 1000) - 1000
    for g in groups:
        commit(bootstrap, g, topic, want[g])

    for node in cluster.nodes:
        zk = KazooClient(hosts=node.zk_hosts, timeout=15)
        zk.start(timeout=15)
        try:
            assert set(groups) <= set(zk.get_children("/consumers")), node.node_id
            for g in groups:
                assert zk.get_children(f"/consumers/{g}") == ["offsets"]
                assert zk.get_children(f"/consumers/{g}/offsets") == [topic]
                assert read_offsets(zk, g, topic) == want[g], (node.node_id, g)
                _, stat = zk.get(f"/consumers/{g}/offsets/{topic}/0")
                assert stat.mtime >= before_ms, stat
            missing = f"/consumers/{groups[0]}/offsets/{topic}/9"
            assert zk.exists(missing) is None
            assert zk.exists(f"/consumers/{unique_name('nogroup')}/offsets") is None
            # Read-only: commits go through the Kafka protocol.
            leaf = f"/consumers/{groups[0]}/offsets/{topic}/0"
            with pytest.raises(NoAuthError):
                zk.set(leaf, b"0")
            with pytest.raises(NoAuthError):
                zk.create(missing, b"1")
            with pytest.raises(NoAuthError):
                zk.delete(leaf)
        finally:
            zk.stop()
            zk.close()

    # A later commit is what the next read shows, through every node.
    commit(bootstrap, groups[0], topic, {0: 99})
    for node in cluster.nodes:
        zk = KazooClient(hosts=node.zk_hosts, timeout=15)
        zk.start(timeout=15)
        try:
            assert read_offsets(zk, groups[0], topic) == {0: 99, 1: 2, 2: 3}
        finally:
            zk.stop()
            zk.close()

    # An old ZooKeeper consumer's registration is stored next to the projection.
    zk = KazooClient(hosts=cluster.nodes[1].zk_hosts, timeout=15)
    zk.start(timeout=15)
    try:
        zk.create(f"/consumers/{groups[1]}/ids/c1", b'{"version":1}', makepath=True)
        wait_until(lambda: zk.get_children(f"/consumers/{groups[1]}") == ["ids", "offsets"],
                   10, "stored ids next to the projected offsets")
        assert zk.get(f"/consumers/{groups[1]}/ids/c1")[0] == b'{"version":1}'
        assert read_offsets(zk, groups[1], topic) == want[groups[1]]
    finally:
        zk.stop()
        zk.close()

"""Faults on a real 3-process cluster (the `cluster` fixture), driven by real clients:

- every node in turn, as the leader of the most partitions, is `kill -9`ed under a continuous
  acks=all idempotent load and restarted; nothing acknowledged is lost, nothing duplicated;
- the ZooKeeper facade behaves as one ZooKeeper ensemble across nodes (topic create on node 1,
  seen on 2 and 3, deleted through 3; sessions survive the death of their node by resuming on
  another one; an abandoned session's ephemerals expire wherever it was connected);
- a consumer group survives the `kill -9` of its coordinator: committed offsets are served by
  the new coordinator and a new member resumes exactly there.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from kafka.structs import OffsetAndMetadata
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoNodeError

import zk_wire as w
from cluster_util import (FAST, ContinuousProducer, check_log, create_topic, drain,
                          full_isr, leaders, partitions_meta, preferred_leaders, topic_names,
                          wait_brokers)
from raftka_harness import unique_name, wait_until, wire


# ---- a. kill -9 every partition leader in turn --------------------------------------------

@pytest.mark.timeout(240)
@pytest.mark.cluster_args(*FAST)
def test_kill_every_leader_in_turn_loses_nothing(cluster):
    topic, nparts = unique_name("killall"), 6
    boot_all = ",".join(n.bootstrap for n in cluster.nodes)
    wait_brokers(cluster.node(1).bootstrap)
    create_topic(cluster.node(2).bootstrap, topic, nparts, 3, {"min.insync.replicas": "2"})
    wait_until(lambda: full_isr(cluster.node(1).bootstrap, topic, nparts), 20, "ISR of 3")
    prod = ContinuousProducer(boot_all, topic, nparts, rate=1500).start()
    killed: list[int] = []
    try:
        prod.wait_progress(1000, 30, "before the first kill")
        for _ in range(3):
            alive = [n for n in cluster.nodes if n.node_id not in killed]
            probe = alive[0].bootstrap
            led = leaders(probe, topic)
            victim = max(alive, key=lambda n: sum(1 for lid in led.values() if lid == n.node_id))
            assert any(lid == victim.node_id for lid in led.values()), f"nobody leads anything: {led}"
            killed.append(victim.node_id)
            survivor = next(n for n in cluster.nodes if n is not victim)
            victim.kill()
            # Every partition moves to a live ISR member; producing keeps going meanwhile.
            wait_until(lambda: all(lid not in (-1, victim.node_id) for lid in leaders(survivor.bootstrap, topic).values()),
                       20, f"leaders moved off node {victim.node_id}")
            prod.wait_progress(1500, 30, f"with node {victim.node_id} down")
            victim.start()
            wait_until(lambda: full_isr(survivor.bootstrap, topic, nparts), 40,
                       f"node {victim.node_id} back in every ISR")
            # Preferred leaders come back, so the next round has a leader of the most partitions.
            wait_until(lambda: preferred_leaders(survivor.bootstrap, topic), 20, "preferred leaders restored")
            prod.wait_progress(1000, 30, f"after node {victim.node_id} rejoined")
    finally:
        undelivered = prod.stop()
    assert sorted(killed) == [1, 2, 3]
    assert undelivered == 0, f"{undelivered} records never got a delivery report"
    assert not prod.failed, f"{len(prod.failed)} deliveries failed, e.g. {prod.failed[:5]}"
    assert len(prod.acked) == prod.sent
    got = drain(boot_all, topic, nparts)
    assert sum(len(v) for v in got.values()) == len(prod.acked), "log holds records nobody acknowledged"
    check_log(got, prod.acked)
    # Every replica serves the same log once it leads: read it back through a different node.
    assert all(len(p.isrs) == 3 for p in partitions_meta(cluster.node(3).bootstrap, topic).values())


# ---- b. the ZooKeeper facade on several nodes ---------------------------------------------

def kz(*nodes, timeout: float = 10.0) -> KazooClient:
    """A kazoo client over the facades of `nodes`, tried in the order given."""
    c = KazooClient(hosts=",".join(n.zk_hosts for n in nodes), randomize_hosts=False, timeout=timeout)
    c.start(timeout=15)
    return c


def zk_children(c: KazooClient, path: str) -> list[str] | None:
    try:
        return sorted(c.get_children(path))
    except NoNodeError:
        return None


def zk_json(c: KazooClient, path: str):
    try:
        return json.loads(c.get(path)[0])
    except NoNodeError:
        return None


@pytest.mark.timeout(120)
@pytest.mark.cluster_args(*FAST)
def test_zk_facade_topic_lifecycle_across_nodes(cluster):
    n1, n2, n3 = cluster.nodes
    wait_brokers(n1.bootstrap)
    topic = unique_name("zkt")
    assignment = {"0": [1, 2, 3], "1": [2, 3, 1], "2": [3, 1, 2]}
    c1, c2, c3 = kz(n1), kz(n2), kz(n3)
    try:
        # kafka-topics.sh --zookeeper n1 --create (Kafka 2.x AdminZkClient): config znode first,
        # then the assignment.
        assert sorted(c1.get_children("/brokers/ids")) == ["1", "2", "3"]
        c1.create(f"/config/topics/{topic}",
                  json.dumps({"version": 1, "config": {"retention.ms": "3600000"}}).encode())
        c1.create(f"/brokers/topics/{topic}", json.dumps({"version": 1, "partitions": assignment}).encode())
        # Through the Kafka protocol of nodes 2 and 3: same assignment, leaders elected.
        for n in (n2, n3):
            wait_until(lambda n=n: full_isr(n.bootstrap, topic, 3), 20, f"{topic} with ISR 3 via {n.name}")
            parts = partitions_meta(n.bootstrap, topic)
            assert {str(p): list(pm.replicas) for p, pm in parts.items()} == assignment
        # Through the facades of nodes 2 and 3: assignment, partition states, live brokers.
        for c, n in ((c2, n2), (c3, n3)):
            assert topic in c.get_children("/brokers/topics")
            assert zk_json(c, f"/brokers/topics/{topic}")["partitions"] == assignment
            assert zk_children(c, f"/brokers/topics/{topic}/partitions") == ["0", "1", "2"]
            for p in assignment:
                state = wait_until(lambda c=c, p=p: (s := zk_json(c, f"/brokers/topics/{topic}/partitions/{p}/state"))
                                   and len(s["isr"]) == 3 and s, 15, f"state of partition {p} via {n.name}")
                assert state["leader"] in assignment[p] and state["leader"] in state["isr"]
                assert sorted(state["isr"]) == sorted(assignment[p])
            assert zk_json(c, f"/config/topics/{topic}")["config"]["retention.ms"] == "3600000"
            ids = sorted(c.get_children("/brokers/ids"))
            assert ids == ["1", "2", "3"], f"/brokers/ids via {n.name}: {ids}"
            for bid in ids:
                reg = zk_json(c, f"/brokers/ids/{bid}")
                port = cluster.node(int(bid)).kafka_port
                assert reg["port"] == port and reg["endpoints"] == [f"PLAINTEXT://127.0.0.1:{port}"], reg
        # kafka-topics.sh --zookeeper n3 --delete: a marker the controller's node carries out.
        c3.create(f"/admin/delete_topics/{topic}")
        for c, n in ((c1, n1), (c2, n2), (c3, n3)):
            wait_until(lambda n=n: topic not in topic_names(n.bootstrap), 20, f"{topic} gone via Kafka on {n.name}")
            wait_until(lambda c=c: not c.exists(f"/brokers/topics/{topic}"), 10, f"{topic} gone via ZK on {n.name}")
            wait_until(lambda c=c: not c.exists(f"/admin/delete_topics/{topic}"), 10, f"marker removed on {n.name}")
            assert topic not in c.get_children("/brokers/topics")
    finally:
        for c in (c1, c2, c3):
            c.stop()
            c.close()


@pytest.mark.timeout(120)
@pytest.mark.cluster_args(*FAST)
def test_zk_session_survives_its_node_death_by_resuming_elsewhere(cluster):
    """What the facade promises (docs/design.md, src/zk/session.rs): a session is replicated
    state; it can be resumed on any node with its id and password; it expires only when no node
    touched it for its timeout; its ephemerals go with it."""
    n1, n2, n3 = cluster.nodes
    wait_brokers(n1.bootstrap)
    states: list[str] = []
    c = kz(n2, n1, n3, timeout=10.0)  # connects to node 2 first
    c.add_listener(lambda s: states.append(s))
    observer = kz(n1)
    path = f"/{unique_name('eph')}"
    try:
        session_before = c.client_id[0]
        assert c._connection._socket.getpeername()[1] == n2.zk_port
        c.create(path, b"mine", ephemeral=True)
        assert observer.get(path)[1].ephemeralOwner == session_before
        n2.kill()
        # kazoo sees the connection drop (SUSPENDED), resumes the same session on node 1 or 3.
        wait_until(lambda: KazooState.SUSPENDED in states and c.state == KazooState.CONNECTED, 20,
                   "kazoo reconnected to another node")
        assert KazooState.LOST not in states, f"session lost: {states}"
        assert c.client_id[0] == session_before
        assert c._connection._socket.getpeername()[1] in (n1.zk_port, n3.zk_port)
        # The ephemeral outlived the node death, well past the session timeout.
        wait_until(lambda: 2 not in {int(b) for b in observer.get_children("/brokers/ids")}, 20, "node 2 fenced")
        deadline = time.monotonic() + 12  # > the 10 s session timeout
        while time.monotonic() < deadline:
            assert observer.exists(path) is not None, "ephemeral removed while its session is alive"
            c.set(path, b"still mine")  # the session keeps working on the new node
            time.sleep(0.5)
        assert observer.get(path)[0] == b"still mine"
        # Closing the session removes its ephemerals on every node.
        c.stop()
        c.close()
        wait_until(lambda: observer.exists(path) is None, 10, "ephemeral removed on close")
        n2.start()
        c3 = kz(n3)
        try:
            wait_until(lambda: c3.exists(path) is None, 10, "ephemeral gone on node 3 as well")
        finally:
            c3.stop()
            c3.close()
    finally:
        for cl in (c, observer):
            cl.stop()
            cl.close()


@pytest.mark.timeout(120)
@pytest.mark.cluster_args(*FAST)
def test_zk_abandoned_session_expires_after_its_node_dies(cluster):
    """A client connected to node 2 that never comes back after node 2 dies: the controller
    leader's node expires its session after the timeout and removes its ephemerals."""
    n1, n2, n3 = cluster.nodes
    wait_brokers(n1.bootstrap)
    host, port = n2.zk_hosts.split(":")
    s = w.ZkWire(host, int(port), timeout_ms=4000)
    path = f"/{unique_name('eph')}"
    assert s.create(path, b"x", mode=w.EPHEMERAL) == (w.OK, path)
    observer = kz(n3)
    try:
        assert observer.get(path)[1].ephemeralOwner == s.session_id
        t0 = time.monotonic()
        n2.kill()
        wait_until(lambda: observer.exists(path) is None, 25, "abandoned ephemeral expired")
        # Not before the session timeout (4 s) counted from the last touch before the kill.
        assert time.monotonic() - t0 >= 2.5, "session expired well before its timeout"
        # The session cannot be resumed anywhere any more.
        r = w.ZkWire(n1.host, n1.zk_port, timeout_ms=4000, session_id=s.session_id, passwd=s.passwd)
        assert r.session_id == 0 and r.timeout_ms == 0
    finally:
        observer.stop()
        observer.close()


# ---- c. group coordinator failover --------------------------------------------------------

GROUP_ARGS = (*FAST, "-o", "offsets.topic.num.partitions=3", "-o", "group.initial.rebalance.delay.ms=500")


def coordinator_of(bootstrap: str, group: str) -> int:
    """The group's coordinator as the first answering node says (-1 if none knows yet). A raw
    FindCoordinator, not librdkafka's DescribeConsumerGroups: that one can abort the test
    process when a node dies under it (librdkafka#4605, seen in CI)."""
    for addr in bootstrap.split(","):
        host, port = addr.rsplit(":", 1)
        try:
            error, node_id = wire.find_coordinator_roundtrip(host, int(port), group, timeout=5)
        except OSError:
            continue
        if error == 0:
            return node_id
    return -1


@pytest.mark.timeout(180)
@pytest.mark.cluster_args(*GROUP_ARGS)
def test_group_resumes_from_committed_offsets_after_coordinator_kill(cluster):
    topic, nparts, per_part, half = unique_name("grp"), 2, 1000, 500
    boot_all = ",".join(n.bootstrap for n in cluster.nodes)
    wait_brokers(cluster.node(1).bootstrap)
    create_topic(cluster.node(1).bootstrap, topic, nparts, 3)
    wait_until(lambda: full_isr(cluster.node(1).bootstrap, topic, nparts), 20, "ISR of 3")
    p = Producer({"bootstrap.servers": boot_all, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    for i in range(per_part * nparts):
        p.produce(topic, value=f"{i % nparts}:{i:06d}".encode(), partition=i % nparts)
    assert p.flush(30) == 0
    group = unique_name("g")
    # kafka-python consumer: processes exactly the first half of each partition, commits it.
    c1 = KafkaConsumer(topic, bootstrap_servers=boot_all.split(","), group_id=group,
                       enable_auto_commit=False, auto_offset_reset="earliest",
                       max_poll_records=100, request_timeout_ms=15000)
    processed: dict[int, list[int]] = {pt: [] for pt in range(nparts)}
    deadline = time.monotonic() + 60
    while any(len(v) < half for v in processed.values()):
        assert time.monotonic() < deadline, f"first consumer stuck: {[len(v) for v in processed.values()]}"
        for tp, recs in c1.poll(timeout_ms=500).items():
            for r in recs:
                if len(processed[tp.partition]) < half:
                    processed[tp.partition].append(r.offset)
    for pt, offs in processed.items():
        assert offs == list(range(half)), f"first consumer read partition {pt} out of order"
    c1.commit({KTopicPartition(topic, pt): OffsetAndMetadata(half, "", -1) for pt in range(nparts)})
    c1.close(autocommit=False)

    coord = coordinator_of(boot_all, group)
    assert coord in (1, 2, 3)
    offsets_leader_before = leaders(boot_all, "__consumer_offsets")
    assert coord in offsets_leader_before.values()
    cluster.node(coord).kill()
    rest = [n for n in cluster.nodes if n.node_id != coord]
    boot_rest = ",".join(n.bootstrap for n in rest)
    wait_until(lambda: coordinator_of(boot_rest, group) not in (coord, -1), 30, "a new coordinator")

    # A new member (confluent-kafka this time) of the same group resumes at the commit point.
    c2 = Consumer({"bootstrap.servers": boot_rest, "group.id": group, "enable.auto.commit": False,
                   "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 1000})
    try:
        committed = wait_until(
            lambda: (r := c2.committed([TopicPartition(topic, pt) for pt in range(nparts)], timeout=5))
            and all(tp.error is None for tp in r) and r, 30, "committed offsets from the new coordinator")
        assert {tp.partition: tp.offset for tp in committed} == {pt: half for pt in range(nparts)}
        c2.subscribe([topic])
        seen: dict[int, list[tuple[int, bytes]]] = {pt: [] for pt in range(nparts)}
        deadline = time.monotonic() + 60
        while any(len(v) < per_part - half for v in seen.values()):
            assert time.monotonic() < deadline, f"second consumer stuck: {[len(v) for v in seen.values()]}"
            for m in c2.consume(num_messages=500, timeout=0.5):
                if m.error():
                    continue
                seen[m.partition()].append((m.offset(), m.value()))
        for pt, recs in seen.items():
            offs = [o for o, _ in recs]
            assert offs[0] == half, f"partition {pt}: resumed at {offs[0]}, committed {half}"
            assert offs == list(range(half, per_part)), f"partition {pt}: gap or re-read after the commit point"
            assert all(int(v.split(b":")[1]) % nparts == pt for _, v in recs)
        # Its own commit is durable on the new coordinator too.
        c2.commit(offsets=[TopicPartition(topic, pt, per_part) for pt in range(nparts)], asynchronous=False)
    finally:
        c2.close()
    c3 = Consumer({"bootstrap.servers": boot_rest, "group.id": group, "enable.auto.commit": False})
    try:
        r = c3.committed([TopicPartition(topic, pt) for pt in range(nparts)], timeout=10)
        assert {tp.partition: tp.offset for tp in r} == {pt: per_part for pt in range(nparts)}
    finally:
        c3.close()

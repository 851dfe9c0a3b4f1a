"""Partition replication on a real 3-node cluster (separate processes on loopback):
followers fetch from leaders, acks=all survives a leader kill, a restarted node rejoins the
ISR, and min.insync.replicas is enforced."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from raftka_harness import unique_name, wait_until

# Fast failure detection for tests: fence after 2 s of silence, drop laggards after 2 s.
FAST = ("-o", "replica.lag.time.max.ms=2000", "-o", "broker.session.timeout.ms=2000",
        "-o", "broker.heartbeat.interval.ms=300", "-o", "leader.imbalance.check.interval.seconds=1")


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def wait_brokers(bootstrap: str, n: int = 3) -> None:
    a = admin(bootstrap)
    wait_until(lambda: len(a.list_topics(timeout=5).brokers) >= n, 20, f"{n} live brokers")


def create_topic(bootstrap: str, topic: str, partitions: int, rf: int, configs=None) -> None:
    wait_brokers(bootstrap)
    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=rf, config=configs or {})],
        operation_timeout=10, request_timeout=15)
    fs[topic].result(timeout=20)


def partitions_meta(bootstrap: str, topic: str):
    md = admin(bootstrap).list_topics(topic, timeout=5)
    t = md.topics[topic]
    if t.error is not None:
        raise RuntimeError(str(t.error))
    return t.partitions


def full_isr(bootstrap: str, topic: str, n: int) -> bool:
    parts = partitions_meta(bootstrap, topic)
    return len(parts) == n and all(len(p.isrs) == 3 and p.leader >= 0 for p in parts.values())


def producer(bootstrap: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 30000, "retry.backoff.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000}
    conf.update(extra)
    return Producer(conf)


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 30):
    """Every record of every partition from offset 0 (assign, no group)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "topic.metadata.refresh.interval.ms": 1000})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    deadline = time.monotonic() + timeout
    total = 0
    try:
        while total < expected and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    continue
                out[m.partition()].append((m.offset(), m.value()))
                total += 1
    finally:
        c.close()
    return out


def test_rf3_topic_replicates_and_serves_from_any_node(cluster):
    topic = unique_name("rep")
    create_topic(cluster.node(2).bootstrap, topic, 3, 3)
    wait_until(lambda: full_isr(cluster.node(1).bootstrap, topic, 3), 15, "ISR of 3 everywhere")
    p = producer(cluster.node(1).bootstrap)
    acked = []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    for i in range(3000):
        p.produce(topic, value=f"v{i}".encode(), key=f"k{i % 17}".encode(), on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(30) == 0
    assert len(acked) == 3000
    got = consume_all(cluster.node(3).bootstrap, topic, 3, 3000)
    assert sum(len(v) for v in got.values()) == 3000
    # Followers hold the same data: every replica stays in the ISR.
    assert full_isr(cluster.node(3).bootstrap, topic, 3)


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    return partitions_meta(bootstrap, topic)[partition].leader


@pytest.mark.cluster_args(*FAST)
def test_leader_kill_loses_no_acknowledged_record_and_node_rejoins(cluster):
    topic, nparts, total = unique_name("failover"), 6, 100_000
    create_topic(cluster.node(2).bootstrap, topic, nparts, 3)
    wait_until(lambda: full_isr(cluster.node(1).bootstrap, topic, nparts), 15, "ISR of 3")
    victim_id = leader_of(cluster.node(1).bootstrap, topic, 0)
    survivor = next(n for n in cluster.nodes if n.node_id != victim_id)
    p = producer(cluster.node(1).bootstrap if victim_id != 1 else survivor.bootstrap)
    acked: list[tuple[int, int, bytes]] = []
    failed: list[str] = []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            failed.append(str(err))

    for i in range(total):
        if i == total // 3:
            cluster.node(victim_id).kill()  # with batches in flight
        while True:
            try:
                p.produce(topic, value=f"r{i:07d}".encode(), partition=i % nparts, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(45) == 0
    assert len(acked) >= total * 0.9, f"too few acknowledged: {len(acked)}, errors {failed[:5]}"
    # Every acknowledged record is there exactly once, at its acknowledged offset, in order.
    got = consume_all(survivor.bootstrap, topic, nparts, len(acked), timeout=30)
    values = [v for recs in got.values() for _, v in recs]
    assert len(values) == len(set(values)), "duplicates in the log"
    by_pos = {(pt, off): v for pt, recs in got.items() for off, v in recs}
    missing = [(pt, off, v) for pt, off, v in acked if by_pos.get((pt, off)) != v]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    for pt, recs in got.items():
        seqs = [int(v[1:]) for _, v in recs]
        assert seqs == sorted(seqs), f"partition {pt} out of order"
    # The killed node restarts, catches up and rejoins every ISR.
    cluster.node(victim_id).start()
    wait_until(lambda: full_isr(survivor.bootstrap, topic, nparts), 30, "restarted node back in the ISR")
    # ... and leadership returns to each partition's preferred (first) replica.
    wait_until(lambda: all(pm.leader == pm.replicas[0] for pm in partitions_meta(survivor.bootstrap, topic).values()),
               15, "preferred leaders restored")
    # Data written after the failover is still all there, served by the restored leaders.
    got = consume_all(cluster.node(victim_id).bootstrap, topic, nparts, len(values), timeout=30)
    by_pos = {(pt, off): v for pt, recs in got.items() for off, v in recs}
    assert all(by_pos.get((pt, off)) == v for pt, off, v in acked), "acknowledged records lost after rebalance"


@pytest.mark.cluster_args(*FAST)
def test_min_insync_replicas_with_two_nodes_down_refuses_acks_all(cluster):
    topic = unique_name("minisr")
    create_topic(cluster.node(2).bootstrap, topic, 1, 3, {"min.insync.replicas": "2"})
    wait_until(lambda: full_isr(cluster.node(1).bootstrap, topic, 1), 15, "ISR of 3")
    leader = cluster.node(leader_of(cluster.node(1).bootstrap, topic, 0))
    p = producer(leader.bootstrap, **{"enable.idempotence": False, "retries": 0, "linger.ms": 0,
                                      "request.timeout.ms": 2000, "message.timeout.ms": 3000})
    p.produce(topic, value=b"before")
    assert p.flush(15) == 0
    for n in cluster.nodes:
        if n is not leader:
            n.kill()
    errors = []

    def attempt():
        errors.clear()
        p.produce(topic, value=b"after", on_delivery=lambda err, msg: errors.append(err))
        p.flush(10)
        return errors and errors[0] is not None and errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS

    wait_until(attempt, 20, "NOT_ENOUGH_REPLICAS", interval=0.5)
    # No group coordinator is needed (the controller has no quorum): ListOffsets through admin.
    a = admin(leader.bootstrap)
    tp = TopicPartition(topic, 0)
    high = a.list_offsets({tp: OffsetSpec.latest()}, request_timeout=5)[tp].result(timeout=10).offset
    assert high == 1, "nothing acknowledged past the first record"


def controller_id(bootstrap: str) -> int:
    return admin(bootstrap).list_topics(timeout=5).controller_id


@pytest.mark.cluster_args(*FAST)
def test_controller_leader_kill_keeps_topic_admin_working(cluster):
    wait_brokers(cluster.node(1).bootstrap)
    ctrl = wait_until(lambda: controller_id(cluster.node(1).bootstrap) if controller_id(cluster.node(1).bootstrap) > 0 else None,
                      10, "a controller")
    cluster.node(ctrl).kill()
    others = [n for n in cluster.nodes if n.node_id != ctrl]
    topic = unique_name("afterctl")
    # Through each remaining node: create, then delete.
    wait_until(lambda: controller_id(others[0].bootstrap) not in (-1, ctrl), 15, "a new controller")
    a = admin(others[0].bootstrap)
    a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=2)],
                    operation_timeout=10, request_timeout=15)[topic].result(timeout=20)
    wait_until(lambda: topic in admin(others[1].bootstrap).list_topics(timeout=5).topics, 10, "topic visible")
    b = admin(others[1].bootstrap)
    b.delete_topics([topic], operation_timeout=10, request_timeout=15)[topic].result(timeout=20)
    wait_until(lambda: topic not in admin(others[0].bootstrap).list_topics(timeout=5).topics, 10, "topic gone")


@pytest.mark.cluster_args(*FAST)
def test_paused_leader_is_replaced_and_rejoins_as_follower(cluster):
    """SIGSTOP stands in for cutting the leader off: the others fence it and elect a new
    leader; acks=all writes continue there; resumed, the old leader (which may first append
    requests queued while it was paused, in its stale epoch) follows, truncates the divergent
    suffix, catches up, and serves exactly the acknowledged log once it leads again."""
    import signal
    topic = unique_name("paused")
    create_topic(cluster.node(2).bootstrap, topic, 1, 3, {"min.insync.replicas": "2"})
    wait_until(lambda: full_isr(cluster.node(1).bootstrap, topic, 1), 15, "ISR of 3")
    old = cluster.node(leader_of(cluster.node(1).bootstrap, topic, 0))
    others = [n for n in cluster.nodes if n is not old]
    boot = ",".join(n.bootstrap for n in others)
    # A paused broker accepts TCP but never answers: requests to it must time out quickly.
    p = producer(boot, **{"request.timeout.ms": 3000, "socket.timeout.ms": 3000})
    for i in range(500):
        p.produce(topic, value=f"a{i}".encode(), partition=0)
    assert p.flush(20) == 0
    old.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: leader_of(others[0].bootstrap, topic, 0) not in (-1, old.node_id), 15, "a new leader")
        acked = []
        for i in range(500):
            p.produce(topic, value=f"b{i}".encode(), partition=0,
                      on_delivery=lambda err, m: acked.append(m.offset()) if err is None else None)
        assert p.flush(30) == 0
        # Acknowledged by the new leader only; writes the old leader takes when it resumes
        # (requests queued while it was paused) are never acknowledged and get truncated.
        assert sorted(acked) == list(range(500, 1000))
    finally:
        old.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: full_isr(others[0].bootstrap, topic, 1), 30, "old leader back in the ISR")
    wait_until(lambda: leader_of(others[0].bootstrap, topic, 0) == old.node_id, 15, "preferred leader restored")
    got = consume_all(old.bootstrap, topic, 1, 1000, timeout=20)[0]
    assert [v for _, v in got] == [f"a{i}".encode() for i in range(500)] + [f"b{i}".encode() for i in range(500)]
    assert [o for o, _ in got] == list(range(1000))


@pytest.mark.cluster_args(*FAST)
def test_unclean_leader_election_only_where_enabled(cluster):
    """RF 2 on nodes 1 and 2: node 2 dies (the ISR shrinks to {1}); node 1 freezes (SIGSTOP,
    fenced after its session) while node 2 comes back out of sync and cannot catch up. With
    `unclean.leader.election.enable=true` node 2 becomes leader (records only node 1 had are
    given up for availability); by default the partition stays offline until an in-sync
    replica returns. Node 3 keeps the Raft majority with whoever is up."""
    import os
    import signal
    import cluster_util
    boot = cluster.bootstrap
    wait_brokers(boot)
    unclean, clean = unique_name("unclean"), unique_name("clean")
    cluster_util.create_topic(boot, unclean, assignment=[[1, 2]],
                              configs={"unclean.leader.election.enable": "true"})
    cluster_util.create_topic(boot, clean, assignment=[[1, 2]])
    p = producer(boot)
    for t in (unclean, clean):
        for i in range(10):
            p.produce(t, value=f"before-{i}".encode(), partition=0)
    assert p.flush(30) == 0
    survivor = cluster.node(3).bootstrap
    cluster.node(2).kill()
    wait_until(lambda: all(partitions_meta(survivor, t)[0].isrs == [1]
                           for t in (unclean, clean)), 20, "ISR shrunk to node 1")
    n1 = cluster.node(1)
    os.kill(n1.proc.pid, signal.SIGSTOP)
    try:
        cluster.node(2).start()
        wait_until(lambda: partitions_meta(survivor, unclean)[0].leader == 2, 30,
                   "unclean election of node 2")
        assert partitions_meta(survivor, unclean)[0].isrs == [2]
        # The default-config topic waits for node 1 (no election from outside the ISR).
        assert partitions_meta(survivor, clean)[0].leader == -1
        time.sleep(2)
        assert partitions_meta(survivor, clean)[0].leader == -1
        p2 = producer(survivor + "," + cluster.node(2).bootstrap)
        p2.produce(unclean, value=b"after", partition=0)
        assert p2.flush(30) == 0
    finally:
        os.kill(n1.proc.pid, signal.SIGCONT)
    # Node 1 is back: it re-registers and the clean topic gets its in-sync leader again.
    wait_until(lambda: partitions_meta(survivor, clean)[0].leader == 1, 30, "clean topic back")

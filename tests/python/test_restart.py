"""Durability across restarts: SIGTERM (graceful) and SIGKILL (kill -9) right after acks=all
acknowledgements. Every test gets its own node (function scope) because it restarts it."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from confluent_kafka import Producer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from raftka_harness import unique_name

TOPIC_SPECS = {
    "rs-three": {"num_partitions": 3, "replication_factor": 1,
                 "configs": {"retention.ms": "8640000", "max.message.bytes": "2000000"}},
    "rs-one": {"num_partitions": 1, "replication_factor": 1,
               "configs": {"cleanup.policy": "delete", "segment.bytes": "1048576"}},
    "rs-plain": {"num_partitions": 2, "replication_factor": 1, "configs": {}},
}


def admin_for(node) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=[node.bootstrap], request_timeout_ms=15000)


def create_topics(node) -> None:
    admin = admin_for(node)
    try:
        admin.create_topics(TOPIC_SPECS)
        admin.wait_for_topics(list(TOPIC_SPECS), timeout_ms=15000)
    finally:
        admin.close()


def produce_acked(node, n_per_topic: int, tag: str) -> list[tuple]:
    """acks=all, wait for every ack; returns [(topic, partition, offset, key, value)]."""
    producer = KafkaProducer(bootstrap_servers=[node.bootstrap], acks="all", linger_ms=5,
                             request_timeout_ms=15000, max_block_ms=20000)
    try:
        pending = []
        for i in range(n_per_topic):
            for topic in TOPIC_SPECS:
                key, value = f"{tag}-k{i}".encode(), f"{topic}|{tag}|{i}".encode()
                pending.append((key, value, producer.send(topic, key=key, value=value)))
        producer.flush(timeout=30)
        acked = []
        for key, value, fut in pending:
            md = fut.get(timeout=10)  # raises if not acknowledged
            acked.append((md.topic, md.partition, md.offset, key, value))
        return acked
    finally:
        producer.close(timeout=5)


def read_everything(node) -> dict[tuple[str, int], list[tuple]]:
    """All records of all TOPIC_SPECS partitions: {(topic, partition): [(offset, key, value)]}."""
    consumer = KafkaConsumer(bootstrap_servers=[node.bootstrap], enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=15000)
    try:
        tps = [TopicPartition(t, p) for t, spec in TOPIC_SPECS.items() for p in range(spec["num_partitions"])]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        out = defaultdict(list)
        deadline = time.monotonic() + 30
        while any(len(out[(tp.topic, tp.partition)]) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, \
                f"read {sum(map(len, out.values()))} of {sum(ends.values())} records in 30 s"
            for tp, recs in consumer.poll(timeout_ms=500).items():
                out[(tp.topic, tp.partition)].extend((r.offset, r.key, r.value) for r in recs)
        return {tp: recs for tp, recs in out.items()}
    finally:
        consumer.close()


def assert_log_is_exactly(node, acked: list[tuple]) -> None:
    log = read_everything(node)
    expected = defaultdict(list)
    for topic, part, off, key, value in acked:
        expected[(topic, part)].append((off, key, value))
    for tp in expected:
        expected[tp].sort()
    assert {tp: recs for tp, recs in log.items() if recs} == dict(expected)
    for tp, recs in log.items():
        assert [o for o, _, _ in recs] == list(range(len(recs))), f"offset gap or duplicate in {tp}"


def assert_topics_and_configs_survived(node) -> None:
    admin = admin_for(node)
    try:
        assert set(TOPIC_SPECS) <= set(admin.list_topics())
        for topic, spec in TOPIC_SPECS.items():
            (desc,) = admin.describe_topics([topic])
            assert desc["error_code"] == 0 and len(desc["partitions"]) == spec["num_partitions"], desc
            assert all(p["leader_id"] == 1 for p in desc["partitions"]), desc
            modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
            assert {k: v["value"] for k, v in modified.items()} == spec["configs"], (topic, modified)
    finally:
        admin.close()


def test_sigterm_restart_keeps_topics_configs_and_records(raftka_factory):
    node = raftka_factory("restart-term")
    create_topics(node)
    acked = produce_acked(node, 200, "before")
    assert len(acked) == 600

    rc = node.stop()
    assert rc == 0, f"SIGTERM should shut down gracefully with exit 0, got {rc}"
    node.start()

    assert_topics_and_configs_survived(node)
    assert_log_is_exactly(node, acked)

    # New records continue after the old ones (no offset reuse after restart).
    acked += produce_acked(node, 50, "after")
    assert_log_is_exactly(node, acked)


def test_sigkill_right_after_acks_loses_nothing(raftka_factory):
    node = raftka_factory("restart-kill")
    create_topics(node)
    acked = []
    for round_no in range(2):
        acked += produce_acked(node, 150, f"round{round_no}")
        node.kill()  # kill -9 immediately after the last acknowledgement
        node.start()
        assert_topics_and_configs_survived(node)
        assert_log_is_exactly(node, acked)


def test_sigkill_during_produce_keeps_every_ack(raftka_factory):
    """kill -9 while an idempotent acks=all producer is streaming; after restart the producer
    finishes (retries go to the restarted node). Every record acknowledged at any point must be
    in the log at its acknowledged offset; nothing may appear twice."""
    node = raftka_factory("restart-kill-stream")
    topic = unique_name("rs-stream")
    admin = admin_for(node)
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    admin.close()

    acked, failed = [], []

    def on_delivery(err, msg):
        (failed if err is not None else acked).append(
            (msg.partition(), msg.offset(), msg.key(), msg.value(), str(err) if err else None))

    producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 2,
                         "message.timeout.ms": 40000, "broker.address.family": "v4"})
    i = 0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline or len(acked) < 100:
        assert time.monotonic() < deadline + 15, f"only {len(acked)} acks in 17 s"
        for _ in range(50):  # ~1000 records/s, so there are always some in flight
            producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2,
                             on_delivery=on_delivery)
            i += 1
        producer.poll(0.05)
    node.kill()
    acked_before_kill = len(acked)
    node.start()
    remaining = producer.flush(45)
    assert remaining == 0, f"{remaining} records neither acked nor failed after restart"
    assert acked_before_kill >= 100

    consumer = KafkaConsumer(bootstrap_servers=[node.bootstrap], enable_auto_commit=False,
                             request_timeout_ms=15000)
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        log = {}
        stop_at = time.monotonic() + 30
        while len(log) < sum(ends.values()):
            assert time.monotonic() < stop_at, f"read {len(log)} of {sum(ends.values())}"
            for tp, recs in consumer.poll(timeout_ms=500).items():
                for r in recs:
                    log[(tp.partition, r.offset)] = (r.key, r.value)
    finally:
        consumer.close()

    missing = [(p, o, k) for p, o, k, v, _ in acked if log.get((p, o)) != (k, v)]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records lost or changed, e.g. {missing[:5]}"
    dupes = [kv for kv, c in Counter(log.values()).items() if c > 1]
    assert not dupes, f"{len(dupes)} records stored twice (idempotent retries not deduplicated), e.g. {dupes[:3]}"

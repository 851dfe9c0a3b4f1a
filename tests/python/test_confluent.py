"""confluent-kafka 2.16.1 (bundled librdkafka 2.16.0): idempotent acks=all producer with every
codec, assign()-based consumer, AdminClient."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic)

from raftka_harness import unique_name, wait_until

N = 1000
# librdkafka's Consumer refuses to start without group.id, even when only assign() is used.
ASSIGN_ONLY_GROUP = "raftka-assign-only"


def common_conf(bootstrap: str) -> dict:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000,
            "broker.address.family": "v4"}


@pytest.fixture(scope="module")
def admin(raftka):
    return AdminClient(common_conf(raftka.bootstrap))


def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list]], **extra):
    """Produce to partition 0 with acks=all + idempotence; return the delivery reports."""
    conf = {**common_conf(bootstrap), "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 30000, **extra}
    producer = Producer(conf)
    reports = []

    def on_delivery(err, msg):
        reports.append((err, msg.topic(), msg.partition(), msg.offset(), msg.key()))

    for key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, partition=0,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages still undelivered after 30 s"
    return reports


def consume_assigned(bootstrap: str, topic: str, count: int, start: int = 0, timeout: float = 30):
    """Read `count` messages from partition 0 starting at `start` with assign(); then check that
    nothing else arrives."""
    consumer = Consumer({**common_conf(bootstrap), "group.id": ASSIGN_ONLY_GROUP,
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "auto.offset.reset": "error"})
    try:
        consumer.assign([TopicPartition(topic, 0, start)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg)
        assert len(got) == count, f"consumed {len(got)} of {count} within {timeout}s"
        extra = consumer.poll(1.0)
        assert extra is None or extra.error() is not None and extra.error().code() == KafkaError._PARTITION_EOF, \
            f"unexpected extra message at offset {extra.offset()}"
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return got, (low, high)
    finally:
        consumer.close()


def make_records(n: int, tag: str):
    # Compressible but distinct values, keys and headers per record.
    return [(f"key-{i}".encode(),
             (f"{tag}-value-{i:06d}-" + "abcdefgh" * 16).encode(),
             [("idx", str(i).encode()), ("codec", tag.encode())])
            for i in range(n)]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_idempotent_produce_and_assign_consume_roundtrip(raftka, codec):
    topic = unique_name(f"cf-{codec}")
    records = make_records(N, codec)
    reports = produce_all(raftka.bootstrap, topic, records, **{"compression.type": codec})

    assert len(reports) == N
    errors = [r for r in reports if r[0] is not None]
    assert not errors, f"{len(errors)} failed deliveries, first: {errors[0]}"
    # One partition, one idempotent producer: delivery reports in order with offsets 0..N-1.
    assert [r[3] for r in reports] == list(range(N))
    assert [r[4] for r in reports] == [k for k, _, _ in records]

    got, (low, high) = consume_assigned(raftka.bootstrap, topic, N)
    assert (low, high) == (0, N)
    assert [m.offset() for m in got] == list(range(N)), "each record exactly once, in order"
    assert [m.key() for m in got] == [k for k, _, _ in records]
    assert [m.value() for m in got] == [v for _, v, _ in records]
    assert [m.headers() for m in got] == [h for _, _, h in records]
    assert all(m.topic() == topic and m.partition() == 0 for m in got)


def test_consume_from_middle_offset(raftka):
    topic = unique_name("cf-mid")
    records = make_records(100, "mid")
    reports = produce_all(raftka.bootstrap, topic, records, **{"compression.type": "lz4"})
    assert [r[0] for r in reports] == [None] * 100
    got, _ = consume_assigned(raftka.bootstrap, topic, 58, start=42)
    assert [m.offset() for m in got] == list(range(42, 100))
    assert [m.value() for m in got] == [v for _, v, _ in records[42:]]


def test_admin_create_describe_alter_partitions_delete(admin):
    topic = unique_name("cf-admin")
    futs = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                         config={"retention.ms": "8640000", "cleanup.policy": "delete"})],
                               operation_timeout=10, request_timeout=15)
    futs[topic].result(timeout=20)

    md = admin.list_topics(timeout=10)
    assert topic in md.topics
    assert md.topics[topic].error is None
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert all(p.leader == 1 and list(p.replicas) == [1] and list(p.isrs) == [1]
               for p in md.topics[topic].partitions.values())

    def describe() -> dict:
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        return admin.describe_configs([res], request_timeout=15)[res].result(timeout=20)

    configs = describe()
    assert configs["retention.ms"].value == "8640000"
    assert ConfigSource(configs["retention.ms"].source) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert configs["cleanup.policy"].value == "delete"
    assert "max.message.bytes" in configs and "segment.bytes" in configs
    assert configs["min.insync.replicas"].is_default, configs["min.insync.replicas"]

    # Non-incremental AlterConfigs replaces the whole set: retention.ms is dropped here.
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"max.message.bytes": "2000000"})
    admin.alter_configs([res], request_timeout=15)[res].result(timeout=20)
    configs = describe()
    assert configs["max.message.bytes"].value == "2000000"
    assert ConfigSource(configs["retention.ms"].source) != ConfigSource.DYNAMIC_TOPIC_CONFIG, \
        "AlterConfigs (non-incremental) must reset configs that are not in the request"

    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7654321", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
    configs = describe()
    assert configs["retention.ms"].value == "7654321"
    assert ConfigSource(configs["max.message.bytes"].source) != ConfigSource.DYNAMIC_TOPIC_CONFIG

    admin.create_partitions([NewPartitions(topic, 6)], request_timeout=15)[topic].result(timeout=20)
    wait_until(lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 6,
               10, "6 partitions")

    admin.delete_topics([topic], operation_timeout=10, request_timeout=15)[topic].result(timeout=20)
    wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, 10, f"{topic} deleted")


def test_admin_errors(admin):
    topic = unique_name("cf-err")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=20)

    def create_error(new_topic: NewTopic) -> int:
        with pytest.raises(KafkaException) as exc:
            admin.create_topics([new_topic], request_timeout=15)[new_topic.topic].result(timeout=20)
        return exc.value.args[0].code()

    assert create_error(NewTopic(topic, num_partitions=1, replication_factor=1)) == KafkaError.TOPIC_ALREADY_EXISTS
    assert create_error(NewTopic("bad/name", num_partitions=1, replication_factor=1)) == KafkaError.TOPIC_EXCEPTION
    assert create_error(NewTopic(unique_name("cf-rf"), num_partitions=1, replication_factor=2)) == \
        KafkaError.INVALID_REPLICATION_FACTOR

    missing = unique_name("cf-missing")
    # Index the returned dict; do not pop from it: confluent-kafka resolves the futures through it.
    futs = admin.delete_topics([missing], request_timeout=15)
    with pytest.raises(KafkaException) as exc:
        futs[missing].result(timeout=20)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_list_topics_metadata(admin, raftka):
    md = admin.list_topics(timeout=10)
    assert list(md.brokers) == [1]
    broker = md.brokers[1]
    assert (broker.host, broker.port) == ("127.0.0.1", raftka.kafka_port)
    assert md.controller_id == 1
    assert md.cluster_id


def test_subscribe_with_group_and_commit(raftka):
    topic = unique_name("cf-group")
    records = make_records(50, "grp")
    produce_all(raftka.bootstrap, topic, records)
    consumer = Consumer({**common_conf(raftka.bootstrap), "group.id": unique_name("grp"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 50 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
        assert [m.offset() for m in got] == list(range(50))
        consumer.commit(asynchronous=False)
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert tp.offset == 50
    finally:
        consumer.close()

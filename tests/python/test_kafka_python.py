"""kafka-python 3.0.12 against one node, default api_version (ApiVersions v4 probe, idempotent
producer). The first test is the classic "numtest" tutorial, kept as written apart from the
sleeps and the group_id (the group tutorial runs in test_groups.py)."""

from __future__ import annotations

from json import dumps, loads

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
import kafka.errors as Errors

from raftka_harness import unique_name, wait_until

N = 1000


@pytest.fixture(scope="module")
def admin(raftka):
    client = KafkaAdminClient(bootstrap_servers=[raftka.bootstrap], request_timeout_ms=15000)
    yield client
    client.close()


def topic_configs(admin, topic: str) -> dict:
    """{key: {'value':..., 'config_source':..., ...}} for every config of `topic`."""
    result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    return result["topic"][topic]


def partition_count(admin, topic: str) -> int:
    (desc,) = admin.describe_topics([topic])
    assert desc["error_code"] == 0, desc
    return len(desc["partitions"])


def test_tutorial_numtest_produce_and_consume_without_group(bootstrap):
    producer = KafkaProducer(bootstrap_servers=[bootstrap],
                             value_serializer=lambda x: dumps(x).encode('utf-8'))
    futures = [producer.send('numtest', value={'number': n}) for n in range(N)]
    producer.flush(timeout=30)
    metadata = [f.get(timeout=10) for f in futures]

    # Default api_version must infer a broker >= 0.11 so the producer stays idempotent.
    assert producer.config["api_version"] >= (0, 11), producer.config["api_version"]
    assert producer.config["enable_idempotence"] is True
    assert producer._transaction_manager.producer_id_and_epoch.is_valid, \
        "InitProducerId did not give the idempotent producer a producer id"
    producer.close(timeout=10)

    assert {m.topic for m in metadata} == {"numtest"}
    assert {m.partition for m in metadata} == {0}, "auto-created topic should have num.partitions=1"
    assert [m.offset for m in metadata] == list(range(N))

    consumer = KafkaConsumer('numtest',
                             bootstrap_servers=[bootstrap],
                             auto_offset_reset='earliest',
                             value_deserializer=lambda x: loads(x.decode('utf-8')),
                             consumer_timeout_ms=15000)
    try:
        got = []
        for message in consumer:
            got.append(message)
            if len(got) == N:
                break
        assert len(got) == N, f"consumed {len(got)} of {N} records"
        assert [m.value for m in got] == [{"number": n} for n in range(N)]
        assert [(m.partition, m.offset) for m in got] == [(0, n) for n in range(N)]
        # Nothing beyond the N records (no duplicates).
        extra = consumer.poll(timeout_ms=1000)
        assert sum(len(v) for v in extra.values()) == 0, extra
    finally:
        consumer.close()


def test_consumer_assign_reads_keys_headers_and_timestamps(bootstrap, admin):
    topic = unique_name("kp-assign")
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all", linger_ms=5)
    sent = []
    for i in range(200):
        part = i % 2
        fut = producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=part,
                            headers=[("i", str(i).encode()), ("empty", b"")], timestamp_ms=1_700_000_000_000 + i)
        sent.append((part, i, fut))
    producer.flush(timeout=30)
    offsets = {}
    for part, i, fut in sent:
        md = fut.get(timeout=10)
        assert md.partition == part
        offsets[(part, md.offset)] = i
    producer.close(timeout=10)
    assert sorted(o for (p, o) in offsets if p == 0) == list(range(100))
    assert sorted(o for (p, o) in offsets if p == 1) == list(range(100))

    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], auto_offset_reset="earliest",
                             enable_auto_commit=False, request_timeout_ms=15000)
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        assert consumer.end_offsets(tps) == {tps[0]: 100, tps[1]: 100}
        assert consumer.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        consumer.seek_to_beginning()
        got = {}

        def poll_all():
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    assert (r.partition, r.offset) not in got, f"duplicate {r.partition}/{r.offset}"
                    got[(r.partition, r.offset)] = r
            return len(got) >= 200

        wait_until(poll_all, 30, "200 records")
        assert len(got) == 200
        for (part, off), r in got.items():
            i = offsets[(part, off)]
            assert r.key == f"k{i}".encode()
            assert r.value == f"v{i}".encode()
            assert list(r.headers) == [("i", str(i).encode()), ("empty", b"")]
            assert r.timestamp == 1_700_000_000_000 + i
    finally:
        consumer.close()


def test_admin_create_topic_with_config_and_describe(admin):
    topic = unique_name("kp-admin")
    # NewTopic is the classic (deprecated in 3.x, still supported) form of the call.
    admin.create_topics([NewTopic(name=topic, num_partitions=3, replication_factor=1,
                                  topic_configs={'retention.ms': '8640000'})])
    assert topic in admin.list_topics()
    assert partition_count(admin, topic) == 3
    (desc,) = admin.describe_topics([topic])
    for p in desc["partitions"]:
        assert p["leader_id"] == 1 and p["replica_nodes"] == [1] and p["isr_nodes"] == [1], p

    configs = topic_configs(admin, topic)
    assert configs["retention.ms"]["value"] == "8640000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    # Defaults are listed too, marked as such.
    for key, default in [("cleanup.policy", "delete"), ("min.insync.replicas", "1")]:
        assert key in configs, f"{key} missing from DescribeConfigs (got {sorted(configs)})"
        assert configs[key]["value"] == default, (key, configs[key])
        assert configs[key]["config_source"] in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG"), (key, configs[key])
    assert "max.message.bytes" in configs and "segment.bytes" in configs

    # Default filter ('modified') returns only the override.
    modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
    assert set(modified) == {"retention.ms"}, modified


def test_admin_alter_configs_full_and_incremental(admin):
    topic = unique_name("kp-alter")
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1,
                                 "configs": {"retention.ms": "8640000"}}})

    # Non-incremental AlterConfigs replaces the whole override set (kafka-python re-sends the
    # existing overrides itself, so retention.ms must survive).
    res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                              configs={"max.message.bytes": "2000000"})],
                              incremental=False)
    assert res == {"topic": {topic: "OK"}}, res
    configs = topic_configs(admin, topic)
    assert configs["max.message.bytes"]["value"] == "2000000"
    assert configs["retention.ms"]["value"] == "8640000"

    # IncrementalAlterConfigs: SET one, DELETE another (back to default).
    from kafka.admin._configs import AlterConfigOp
    res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                              configs={"retention.ms": (AlterConfigOp.SET, "1234567"),
                                                       "max.message.bytes": (AlterConfigOp.DELETE, None)})],
                              incremental=True)
    assert res == {"topic": {topic: "OK"}}, res
    configs = topic_configs(admin, topic)
    assert configs["retention.ms"]["value"] == "1234567"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["max.message.bytes"]["config_source"] != "DYNAMIC_TOPIC_CONFIG", configs["max.message.bytes"]


def test_admin_create_partitions_then_delete_topic(admin):
    topic = unique_name("kp-parts")
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    assert partition_count(admin, topic) == 2
    admin.create_partitions({topic: 5})
    wait_until(lambda: partition_count(admin, topic) == 5, 10, "5 partitions")

    with pytest.raises(Errors.InvalidPartitionsError):
        admin.create_partitions({topic: 3})  # cannot shrink

    admin.delete_topics([topic])
    wait_until(lambda: topic not in admin.list_topics(), 10, f"{topic} gone from list_topics")
    with pytest.raises(Errors.UnknownTopicOrPartitionError):
        admin.delete_topics([topic])


def test_admin_create_existing_topic_fails(admin):
    topic = unique_name("kp-dup")
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(Errors.TopicAlreadyExistsError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})


@pytest.mark.parametrize("name", ["bad/name", "bad name", "..", "x" * 250],
                         ids=["slash", "space", "dotdot", "250-chars"])
def test_admin_invalid_topic_name_fails(admin, name):
    with pytest.raises(Errors.InvalidTopicError):
        admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})
    assert name not in admin.list_topics()


def test_admin_replication_factor_above_broker_count_fails(admin):
    topic = unique_name("kp-rf2")
    with pytest.raises(Errors.InvalidReplicationFactorError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 2}})
    assert topic not in admin.list_topics()


def test_admin_invalid_partition_count_fails(admin):
    topic = unique_name("kp-p0")
    with pytest.raises(Errors.InvalidPartitionsError):
        admin.create_topics({topic: {"num_partitions": 0, "replication_factor": 1}})


def test_describe_cluster_lists_this_broker(admin, raftka):
    cluster = admin.describe_cluster()
    assert [(b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"]] == \
        [(1, "127.0.0.1", raftka.kafka_port)]
    assert cluster["controller_id"] == 1
    assert cluster["cluster_id"], cluster


def test_tutorial_consumer_with_group_commits(bootstrap):
    topic = unique_name("kp-group")
    producer = KafkaProducer(bootstrap_servers=[bootstrap], value_serializer=lambda x: dumps(x).encode('utf-8'))
    for n in range(100):
        producer.send(topic, value={'number': n})
    producer.flush(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=[bootstrap], auto_offset_reset='earliest',
                             enable_auto_commit=True, group_id='my-group',
                             value_deserializer=lambda x: loads(x.decode('utf-8')), consumer_timeout_ms=15000)
    got = []
    for message in consumer:
        got.append(message.value["number"])
        if len(got) == 100:
            break
    consumer.commit()
    assert got == list(range(100))
    assert consumer.committed(TopicPartition(topic, 0)) == 100
    consumer.close()


def test_describe_log_dirs_reports_real_partition_sizes(bootstrap, admin):
    """kafka-log-dirs.sh, kafka-ui and AKHQ read partition sizes with DescribeLogDirs."""
    topic = unique_name("logdirs")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=[bootstrap], linger_ms=0)
    for i in range(50):
        producer.send(topic, value=b"x" * 1000, partition=1).get(timeout=15)
    producer.close()

    def sizes() -> dict[int, int]:
        [broker] = admin.describe_log_dirs(topic_partitions=[topic])
        [log_dir] = broker["log_dirs"]
        assert log_dir["error_code"] == 0
        assert log_dir["log_dir"]
        return {
            p["partition_index"]: p["partition_size"]
            for t in log_dir["topics"]
            if t["name"] == topic
            for p in t["partitions"]
        }

    got = sizes()
    assert got[0] == 0
    # 50 records of 1000 bytes, each in its own batch: 50 x (61-byte header + ~1010-byte record).
    assert 50 * 1000 < got[1] < 50 * 1200, got
    # Only what was asked for: one partition.
    [broker] = admin.describe_log_dirs(topic_partitions={topic: [1]})
    [log_dir] = broker["log_dirs"]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in log_dir["topics"]] == [
        (topic, [1])
    ]

"""Segments, retention (time and size), DeleteRecords and disk reclamation, with real clients
against one node whose retention check runs every 500 ms."""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
import kafka.errors as Errors

from raftka_harness import unique_name, wait_until

CHECK_MS = 500


@pytest.fixture(scope="module")
def node(raftka_binary, tmp_path_factory):
    from conftest import _new_node, _release
    n = _new_node(raftka_binary, tmp_path_factory, "retention",
                  extra_args=["-o", f"log.retention.check.interval.ms={CHECK_MS}",
                              "-o", "log.retention.hours=48", "-o", "log.segment.bytes=536870912"])
    try:
        n.start()
        yield n
    finally:
        _release(n)


@pytest.fixture(scope="module")
def admin(node):
    client = KafkaAdminClient(bootstrap_servers=[node.bootstrap], request_timeout_ms=15000)
    yield client
    client.close()


def create(admin, configs: dict) -> str:
    topic = unique_name("ret")
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={k: str(v) for k, v in configs.items()})])
    return topic


def produce_batches(node, topic: str, values: list[bytes]) -> None:
    """One record batch per value (flush after each send)."""
    p = KafkaProducer(bootstrap_servers=[node.bootstrap], linger_ms=0, acks=1)
    try:
        for v in values:
            p.send(topic, value=v)
            p.flush()
    finally:
        p.close()


def offsets(node, topic: str) -> tuple[int, int]:
    c = KafkaConsumer(bootstrap_servers=[node.bootstrap])
    try:
        tp = TopicPartition(topic, 0)
        return c.beginning_offsets([tp])[tp], c.end_offsets([tp])[tp]
    finally:
        c.close()


def consume_all(node, topic: str, expected_last: int) -> list:
    c = KafkaConsumer(bootstrap_servers=[node.bootstrap], auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)  # below the log start: the reset policy takes over
        out = []
        for m in c:
            out.append(m)
            if m.offset >= expected_last:
                break
        return out
    finally:
        c.close()


def test_time_retention_deletes_old_segments_keeps_newest(node, admin):
    topic = create(admin, {"retention.ms": 2000, "segment.bytes": 1024})
    produce_batches(node, topic, [b"old-%03d" % i + b"x" * 100 for i in range(40)])
    time.sleep(2.5)
    produce_batches(node, topic, [b"new-%03d" % i for i in range(5)])
    earliest, end = wait_until(lambda: (lambda o: o if o[0] > 0 else None)(offsets(node, topic)),
                               20, "the log start offset to move")
    assert end == 45 and 0 < earliest <= 40
    # Old records are gone: a fetch below the log start is OFFSET_OUT_OF_RANGE.
    c = KafkaConsumer(bootstrap_servers=[node.bootstrap], auto_offset_reset="none", enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        with pytest.raises(Errors.OffsetOutOfRangeError):
            for _ in range(20):
                c.poll(timeout_ms=500)
    finally:
        c.close()
    msgs = consume_all(node, topic, 44)
    assert msgs and msgs[0].offset >= earliest
    assert [m.value for m in msgs[-5:]] == [b"new-%03d" % i for i in range(5)]
    assert "retention deleted segments" in node.log_text()


def test_size_retention_caps_partition(node, admin):
    seg, cap, value = 1024, 4096, b"v" * 200
    topic = create(admin, {"retention.bytes": cap, "segment.bytes": seg, "retention.ms": -1})
    produce_batches(node, topic, [value] * 100)

    def capped():
        earliest, end = offsets(node, topic)
        # ~270 stored bytes per one-record batch: what is left fits in cap + one segment.
        return (earliest, end) if earliest > 0 and (end - earliest) * 260 <= cap + seg else None

    earliest, end = wait_until(capped, 20, "size retention")
    assert end == 100 and end - earliest >= cap // 300
    msgs = consume_all(node, topic, 99)
    assert msgs[-1].offset == 99 and msgs[0].offset >= earliest


def test_retention_ms_forever_keeps_everything(node, admin):
    topic = create(admin, {"retention.ms": -1, "segment.bytes": 1024})
    produce_batches(node, topic, [b"x" * 200] * 30)
    time.sleep(3 * CHECK_MS / 1000)
    assert offsets(node, topic) == (0, 30)


def test_delete_records_kafka_python(node, admin):
    topic = create(admin, {})
    produce_batches(node, topic, [b"r%d" % i for i in range(10)])
    tp = TopicPartition(topic, 0)
    result = admin.delete_records({tp: 4})
    assert offsets(node, topic) == (4, 10), result
    msgs = consume_all(node, topic, 9)
    assert [m.offset for m in msgs] == list(range(4, 10))
    # Beyond the high watermark: OFFSET_OUT_OF_RANGE; nothing changes.
    with pytest.raises(Errors.OffsetOutOfRangeError):
        admin.delete_records({tp: 11})
    assert offsets(node, topic) == (4, 10)


def test_delete_records_confluent(node, admin):
    topic = create(admin, {})
    produce_batches(node, topic, [b"r%d" % i for i in range(10)])
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    futures = a.delete_records([CTopicPartition(topic, 0, 7)])
    (res,) = [f.result(timeout=15) for f in futures.values()]
    assert res.low_watermark == 7
    # -1 (OFFSET_END) = up to the high watermark.
    futures = a.delete_records([CTopicPartition(topic, 0, -1)])
    (res,) = [f.result(timeout=15) for f in futures.values()]
    assert res.low_watermark == 10
    assert offsets(node, topic) == (10, 10)


def test_disk_usage_shrinks(node, admin):
    seg, cap = 1 << 20, 2 << 20
    topic = create(admin, {"segment.bytes": seg, "retention.ms": -1})
    produce_batches(node, topic, [b"d" * 100_000] * 200)  # ~20 MB, all kept
    # Then cap the partition (AlterConfigs replaces the whole override set).
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={
        "segment.bytes": str(seg), "retention.ms": "-1", "retention.bytes": str(cap)})])

    def measured():
        for line in node.log_text().splitlines():
            if "retention deleted segments" in line and topic in line:
                before = int(re.search(r"part_log_bytes_before=(\d+)", line).group(1))
                after = int(re.search(r"part_log_bytes_after=(\d+)", line).group(1))
                if before > 15_000_000:
                    return before, after
        return None

    before, after = wait_until(measured, 30, "a retention pass on the big topic")
    print(f"part_log bytes before={before} after={after}")
    assert after < 6_000_000, (before, after)
    earliest, end = offsets(node, topic)
    assert end == 200 and (end - earliest) * 100_000 <= cap + seg + 100_000


def test_compaction_keeps_last_value_per_key_and_drops_old_tombstones(node, admin):
    topic = create(admin, {"cleanup.policy": "compact", "segment.bytes": 1024,
                           "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": 1000})
    p = KafkaProducer(bootstrap_servers=[node.bootstrap], linger_ms=0, acks=1, retries=0)
    try:
        for rnd in range(10):
            for k in range(5):
                p.send(topic, key=b"k%d" % k, value=b"v%d-%d" % (k, rnd))
                p.flush()
        p.send(topic, key=b"k4", value=None)  # tombstone
        p.flush()
        # A record without a key is refused on a compacted topic.
        with pytest.raises((Errors.InvalidRecordError, Errors.CorruptRecordError)):
            p.send(topic, value=b"no key").get(timeout=10)
        time.sleep(1.5)  # the tombstone is now older than delete.retention.ms
        for i in range(20):  # roll the segments holding the keys above out of the active one
            p.send(topic, key=b"filler-%d" % i, value=b"f" * 50)
            p.flush()
    finally:
        p.close()
    end = 50 + 1 + 20

    def compacted():
        msgs = consume_all(node, topic, end - 1)
        by_key: dict = {}
        for m in msgs:
            by_key.setdefault(m.key, []).append(m.value)
        ks = [by_key.get(b"k%d" % k, []) for k in range(5)]
        if ks[:4] == [[b"v%d-9" % k] for k in range(4)] and ks[4] == [] and msgs[-1].offset == end - 1:
            return msgs
        return None

    msgs = wait_until(compacted, 30, "compaction of the keyed records")
    fillers = [m for m in msgs if m.key.startswith(b"filler-")]
    assert len(fillers) == 20
    # Offsets are preserved (with gaps): the survivors keep their original offsets.
    assert [m.offset for m in msgs] == sorted(m.offset for m in msgs)
    assert "compacted segments" in node.log_text()


def test_compaction_of_transactions_drops_aborted_and_compacts_committed(node, admin):
    """A compacted topic written in transactions (a Kafka Streams changelog with exactly-once):
    committed records are compacted like any others, aborted ones are removed, so a
    read_uncommitted reader too ends up with the last committed value per key. Before, the
    cleaner left every transactional record (and marker) in place."""
    from confluent_kafka import Consumer, Producer
    topic = create(admin, {"cleanup.policy": "compact", "segment.bytes": 1024,
                           "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": 1000})
    conf = {"bootstrap.servers": node.bootstrap, "broker.address.family": "v4"}
    p = Producer({**conf, "transactional.id": unique_name("cmp-txn"), "linger.ms": 0})
    p.init_transactions(30)
    for rnd in range(6):
        p.begin_transaction()
        for k in range(5):
            p.produce(topic, key=b"k%d" % k, value=b"v%d-%d" % (k, rnd))
            p.flush(10)
        if rnd % 2:
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
    time.sleep(1.5)  # the markers are now older than delete.retention.ms
    filler = KafkaProducer(bootstrap_servers=[node.bootstrap], linger_ms=0, acks=1)
    for i in range(20):  # roll the transactions out of the active segment
        filler.send(topic, key=b"filler-%d" % i, value=b"f" * 50)
        filler.flush()
    filler.close()
    _, end = offsets(node, topic)

    def keyed(isolation: str) -> dict | None:
        c = Consumer({**conf, "group.id": unique_name("cmp-reader"), "isolation.level": isolation,
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "auto.offset.reset": "earliest"})
        try:
            c.assign([CTopicPartition(topic, 0, 0)])
            by_key: dict = {}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        return by_key
                    raise AssertionError(m.error())
                if m.key().startswith(b"k"):
                    by_key.setdefault(m.key(), []).append(m.value())
            return None
        finally:
            c.close()

    want = {b"k%d" % k: [b"v%d-4" % k] for k in range(5)}
    # Before compaction read_committed already hides the aborted rounds; read_uncommitted
    # sees them until the cleaner removes them.
    committed = keyed("read_committed")
    assert committed is not None
    assert all(committed[b"k%d" % k][-1] == b"v%d-4" % k for k in range(5))
    wait_until(lambda: keyed("read_uncommitted") == want, 30,
               "aborted records removed and committed ones compacted")
    assert keyed("read_committed") == want
    assert offsets(node, topic)[1] == end, "compaction keeps the offsets"


def test_log_append_time_overrides_producer_timestamps(node, admin):
    topic = create(admin, {"message.timestamp.type": "LogAppendTime"})
    p = KafkaProducer(bootstrap_servers=[node.bootstrap], linger_ms=0)
    before = int(time.time() * 1000)
    p.send(topic, value=b"x", timestamp_ms=1000).get(timeout=10)
    p.close()
    (m,) = consume_all(node, topic, 0)
    assert m.timestamp_type == 1 and before - 5000 <= m.timestamp <= int(time.time() * 1000) + 5000


def describe(a, topic: str) -> dict:
    from confluent_kafka.admin import ConfigResource as CRes, ResourceType
    (fut,) = a.describe_configs([CRes(ResourceType.TOPIC, topic)]).values()
    return fut.result(timeout=15)


def test_broker_defaults_sources_and_synonyms(node, admin):
    from confluent_kafka.admin import ConfigSource
    topic = create(admin, {"cleanup.policy": "compact"})
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    cfg = describe(a, topic)
    rms = cfg["retention.ms"]
    assert rms.value == str(48 * 3_600_000)
    assert rms.source == ConfigSource.STATIC_BROKER_CONFIG.value
    syn = {name: (e.value, e.source) for name, e in rms.synonyms.items()}
    assert syn["log.retention.hours"] == ("48", ConfigSource.STATIC_BROKER_CONFIG.value), syn
    assert cfg["segment.bytes"].value == "536870912"
    assert cfg["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["retention.bytes"].source == ConfigSource.DEFAULT_CONFIG.value


def test_invalid_configs_are_rejected_and_change_nothing(node, admin):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource as CRes, NewTopic as CNewTopic, ResourceType
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    bad = unique_name("bad")
    (fut,) = a.create_topics([CNewTopic(bad, 1, 1, config={"retention.ms": "abc"})]).values()
    with pytest.raises(KafkaException) as e:
        fut.result(timeout=15)
    assert e.value.args[0].name() == "INVALID_CONFIG"
    topic = create(admin, {"retention.ms": 5000})
    for key, value in [("retention.ms", "abc"), ("no.such.config", "1"), ("segment.bytes", "1")]:
        entries = [ConfigEntry("retention.bytes", "1000", incremental_operation=AlterConfigOpType.SET),
                   ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)]
        (fut,) = a.incremental_alter_configs([CRes(ResourceType.TOPIC, topic, incremental_configs=entries)]).values()
        with pytest.raises(KafkaException) as e:
            fut.result(timeout=15)
        assert e.value.args[0].name() == "INVALID_CONFIG", (key, e.value)
    cfg = describe(a, topic)
    assert cfg["retention.ms"].value == "5000"
    assert cfg["retention.bytes"].value == "-1"


@pytest.mark.cluster_args("-o", "replica.lag.time.max.ms=2000", "-o", "broker.session.timeout.ms=2000",
                          "-o", "broker.heartbeat.interval.ms=300", "-o", f"log.retention.check.interval.ms={CHECK_MS}")
def test_followers_adopt_log_start_so_failover_does_not_resurrect(cluster):
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic as CNewTopic, OffsetSpec
    from test_replication import full_isr, leader_of, wait_brokers
    boot = cluster.node(1).bootstrap
    wait_brokers(boot)
    a = AdminClient({"bootstrap.servers": boot})
    topic = unique_name("ret-rf3")
    a.create_topics([CNewTopic(topic, 1, 3)])[topic].result(timeout=20)
    wait_until(lambda: full_isr(boot, topic, 1), 15, "ISR of 3")
    p = Producer({"bootstrap.servers": boot, "acks": "all", "linger.ms": 0})
    for i in range(50):
        p.produce(topic, value=b"r%d" % i)
        p.flush(10)
    (f,) = a.delete_records([CTopicPartition(topic, 0, 30)]).values()
    assert f.result(timeout=15).low_watermark == 30
    # One more acks=all record: followers fetch it with the leader's new log start offset.
    p.produce(topic, value=b"after")
    assert p.flush(15) == 0
    victim = leader_of(boot, topic, 0)
    cluster.node(victim).kill()
    survivor = next(n for n in cluster.nodes if n.node_id != victim)
    sa = AdminClient({"bootstrap.servers": survivor.bootstrap})

    def earliest():
        if leader_of(survivor.bootstrap, topic, 0) in (-1, victim):
            return None
        (fut,) = sa.list_offsets({CTopicPartition(topic, 0): OffsetSpec.earliest()}).values()
        return fut.result(timeout=10).offset

    assert wait_until(earliest, 30, "a new leader") == 30


def test_log_start_offset_survives_restart(raftka_factory):
    n = raftka_factory("ret-restart", extra_args=["-o", f"log.retention.check.interval.ms={CHECK_MS}"])
    a = KafkaAdminClient(bootstrap_servers=[n.bootstrap], request_timeout_ms=15000)
    try:
        topic = create(a, {"retention.ms": 1000, "segment.bytes": 1024})
        produce_batches(n, topic, [b"x" * 200] * 30)
        earliest, _ = wait_until(lambda: (lambda o: o if o[0] > 0 else None)(offsets(n, topic)), 20, "retention")
    finally:
        a.close()
    n.restart()
    assert offsets(n, topic)[0] >= earliest
    assert offsets(n, topic)[1] == 30

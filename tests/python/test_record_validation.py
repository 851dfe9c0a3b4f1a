"""What is inside a record batch (issue 14, findings 1-4): hand-built Produce requests whose
batches are CRC-valid but lie about their records, decompression bombs from a real client
(librdkafka) and by hand, and the node's memory while it refuses them. Every bad batch gets
Kafka's error (CORRUPT_MESSAGE / INVALID_RECORD / MESSAGE_TOO_LARGE / INVALID_TIMESTAMP),
nothing of it is stored (the log end offset does not move), and the node keeps serving.

Layouts: record batch v2 and Produce v8 as in https://kafka.apache.org/protocol; CRC32C from
kafka-python's pure-Python implementation."""

from __future__ import annotations

import gzip
import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.record.util import calc_crc32c

from raftka_harness import wire
from cluster_util import create_topic
from raftka_harness import unique_name

PRODUCE = 0
LIST_OFFSETS = 2
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC = 17
INVALID_TIMESTAMP = 32
INVALID_RECORD = 87


def zigzag(n: int) -> bytes:
    return wire.uvarint((n << 1) ^ (n >> 63))


def record(offset_delta: int, key: bytes | None, value: bytes | None, headers: int | None = None,
           header_bytes: bytes = b"", ts_delta: int = 0) -> bytes:
    body = b"\x00" + zigzag(ts_delta) + zigzag(offset_delta)
    body += zigzag(-1) if key is None else zigzag(len(key)) + key
    body += zigzag(-1) if value is None else zigzag(len(value)) + value
    body += zigzag(0 if headers is None else headers) + header_bytes
    return zigzag(len(body)) + body


def batch(payload: bytes, count: int, last_delta: int | None = None, attributes: int = 0,
          base_ts: int | None = None, max_ts: int | None = None) -> bytes:
    now = int(time.time() * 1000) if base_ts is None else base_ts
    last_delta = count - 1 if last_delta is None else last_delta
    after_crc = struct.pack(">hiqqqhii", attributes, last_delta, now,
                            now if max_ts is None else max_ts, -1, -1, -1, count) + payload
    crc = calc_crc32c(after_crc)
    body = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def produce(node, topic: str, records: bytes, client_id: str = "raftka-tests",
            version: int = 8) -> tuple[int, list[int], str | None]:
    """Sends one Produce (acks=1) for partition 0; returns (error, record_error_indexes,
    error_message)."""
    name = topic.encode()
    body = struct.pack(">hhi", -1, 1, 10_000)  # null transactional id, acks=1, timeout
    body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(records)) + records
    req = wire.request_header(PRODUCE, version, 7, client_id=client_id) + body
    with socket.create_connection((node.host, node.kafka_port), timeout=30) as s:
        s.sendall(wire.frame(req))
        resp = wire.read_frame(s)
    pos = 4  # correlation id
    (n_topics,) = struct.unpack_from(">i", resp, pos)
    assert n_topics == 1
    pos += 4
    (tlen,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + tlen + 4  # name, partition count
    _index, err = struct.unpack_from(">ih", resp, pos)
    pos += 6 + 8 + 8 + 8
    indexes: list[int] = []
    message = None
    if version >= 8:
        (n, ) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(n):
            (idx, mlen) = struct.unpack_from(">ih", resp, pos)
            pos += 6 + max(mlen, 0)
            indexes.append(idx)
        (mlen,) = struct.unpack_from(">h", resp, pos)
        pos += 2
        if mlen >= 0:
            message = resp[pos:pos + mlen].decode()
    return err, indexes, message


def end_offset(node, topic: str) -> int:
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "x", "socket.timeout.ms": 5000})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def rss_hwm_kb(node) -> int:
    with open(f"/proc/{node.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def assert_serving(node, topic: str) -> None:
    assert node.is_running(), f"raftka died\n{node.log_tail()}"
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all"})
    p.produce(topic, key=b"k", value=b"still serving")
    assert p.flush(15) == 0


@pytest.fixture(autouse=True)
def revive(raftka):
    if not raftka.is_running():
        raftka.start()
    yield


@pytest.fixture()
def topics(raftka):
    delete, compact = unique_name("del"), unique_name("cmp")
    create_topic(raftka.bootstrap, delete, partitions=1, rf=1)
    create_topic(raftka.bootstrap, compact, partitions=1, rf=1, configs={"cleanup.policy": "compact"})
    return delete, compact


POISON_HEADERS = record(0, b"k", b"v", headers=2**31 - 1)


def test_the_69_byte_poison_is_refused_on_both_policies(raftka, topics):
    poison = batch(POISON_HEADERS, 1)
    for t in topics:
        err, _, msg = produce(raftka, t, poison)
        assert err == CORRUPT_MESSAGE, (t, err, msg)
        assert end_offset(raftka, t) == 0
    # Offsets-for-times and MAX_TIMESTAMP have nothing poisoned to decode either.
    c = Consumer({"bootstrap.servers": raftka.bootstrap, "group.id": "x"})
    try:
        got = c.offsets_for_times([TopicPartition(topics[0], 0, 0)], timeout=10)
        assert got[0].error is None
    finally:
        c.close()
    for t in topics:
        assert_serving(raftka, t)


@pytest.mark.parametrize("case", ["count_2^31-1", "count_too_high", "count_too_low", "lying_length",
                                  "short_length", "null_header_key", "random_gzip", "random_zstd",
                                  "random_lz4", "random_snappy", "unknown_codec", "trailing_bytes",
                                  "offset_deltas_not_consecutive", "control_batch"])
def test_lying_batches_get_kafka_errors_and_store_nothing(raftka, topics, case):
    one = record(0, b"k", b"value")
    two = one + record(1, b"k", b"value")
    rnd = bytes((i * 2654435761 >> 13) & 0xFF for i in range(600))
    lying = bytearray(one)
    lying[0] = 60  # zigzag 30: longer than the record
    short = bytearray(one)
    short[0] -= 2
    null_key_header = record(0, b"k", b"v", headers=1, header_bytes=zigzag(-1) + zigzag(-1))
    bad = {
        "count_2^31-1": batch(one, 2**31 - 1),
        "count_too_high": batch(one, 2),
        "count_too_low": batch(two, 1),
        "lying_length": batch(bytes(lying), 1),
        "short_length": batch(bytes(short), 1),
        "null_header_key": batch(null_key_header, 1),
        "random_gzip": batch(rnd, 1, attributes=1),
        "random_snappy": batch(rnd, 1, attributes=2),
        "random_lz4": batch(rnd, 1, attributes=3),
        "random_zstd": batch(rnd, 1, attributes=4),
        "unknown_codec": batch(one, 1, attributes=5),
        "trailing_bytes": batch(one + b"\x00\x00\x00", 1),
        "offset_deltas_not_consecutive": batch(one + record(5, b"k", b"v"), 2),
        "control_batch": batch(one, 1, attributes=0x20),
    }[case]
    for t in topics:
        err, _, msg = produce(raftka, t, bad)
        assert err in (CORRUPT_MESSAGE, INVALID_RECORD), (case, err, msg)
        assert end_offset(raftka, t) == 0, case
    assert_serving(raftka, topics[0])


def test_keyless_records_on_a_compacted_topic_are_listed_one_by_one(raftka, topics):
    """KIP-467: every keyless record is listed in record_errors (librdkafka marks the others
    INVALID_DIFFERENT_RECORD)."""
    payload = b"".join(record(i, None if i % 3 == 0 else b"k", b"v") for i in range(10))
    err, idx, msg = produce(raftka, topics[1], batch(payload, 10))
    assert err == INVALID_RECORD and idx == [0, 3, 6, 9], (err, idx, msg)
    assert "without key" in (msg or "")
    # v7 and older have no INVALID_RECORD: CORRUPT_MESSAGE.
    err, _, _ = produce(raftka, topics[1], batch(payload, 10), version=7)
    assert err == CORRUPT_MESSAGE
    # The same records are fine on a delete-policy topic.
    err, _, _ = produce(raftka, topics[0], batch(payload, 10))
    assert err == 0


def test_timestamps_follow_the_topic_limits(raftka):
    t = unique_name("ts")
    create_topic(raftka.bootstrap, t, partitions=1, rf=1,
                 configs={"message.timestamp.before.max.ms": "60000"})
    old = int(time.time() * 1000) - 3_600_000
    err, idx, _ = produce(raftka, t, batch(record(0, b"k", b"v"), 1, base_ts=old))
    assert (err, idx) == (INVALID_TIMESTAMP, [0])
    # A producer may not claim LogAppendTime.
    err, _, _ = produce(raftka, t, batch(record(0, b"k", b"v"), 1, attributes=0x08))
    assert err == INVALID_TIMESTAMP
    assert end_offset(raftka, t) == 0
    # A header max timestamp that lies is corrected to the records' real maximum.
    now = int(time.time() * 1000)
    payload = record(0, b"a", b"v") + record(1, b"b", b"v", ts_delta=500)
    assert produce(raftka, t, batch(payload, 2, base_ts=now, max_ts=now + 10**9))[0] == 0
    c = Consumer({"bootstrap.servers": raftka.bootstrap, "group.id": "x"})
    try:
        got = c.offsets_for_times([TopicPartition(t, 0, now + 400)], timeout=10)
        assert got[0].offset == 1
        got = c.offsets_for_times([TopicPartition(t, 0, now + 600)], timeout=10)
        assert got[0].offset == -1, "no record is newer than its real max timestamp"
    finally:
        c.close()


def test_produce_to_internal_topics_is_refused(raftka, topics):
    # Make sure __consumer_offsets exists (FindCoordinator creates it).
    c = Consumer({"bootstrap.servers": raftka.bootstrap, "group.id": unique_name("g"),
                  "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topics[0]])
        c.poll(3)
    finally:
        c.close()
    err, _, _ = produce(raftka, "__consumer_offsets", batch(record(0, b"k", b"v"), 1))
    assert err == INVALID_TOPIC


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip", "snappy"])
def test_decompression_bombs_from_librdkafka_stop_at_the_limit(raftka, topics, codec):
    """A 100 MiB record of zeros compresses to a few hundred KB; the node refuses it with
    MESSAGE_TOO_LARGE (message.decompressed.max.bytes = 64 MiB) without expanding it."""
    t = topics[0]
    before = rss_hwm_kb(raftka)
    p = Producer({"bootstrap.servers": raftka.bootstrap, "compression.type": codec,
                  "message.max.bytes": 200_000_000, "acks": "all", "message.timeout.ms": 30000,
                  "retries": 0})
    errors = []
    p.produce(t, key=b"k", value=bytes(100 << 20), on_delivery=lambda e, m: errors.append(e))
    p.flush(60)
    assert errors and errors[0] is not None, "the bomb must be refused"
    assert "MSG_SIZE_TOO_LARGE" in errors[0].name() or "TOO_LARGE" in str(errors[0]), errors[0]
    assert end_offset(raftka, t) == 0
    grown_mb = (rss_hwm_kb(raftka) - before) / 1024
    assert grown_mb < 150, f"peak RSS grew {grown_mb:.0f} MB while refusing a {codec} bomb"
    assert_serving(raftka, t)


def test_a_hand_made_gzip_bomb_is_refused_without_expanding(raftka, topics):
    # 10 000 records of 8 KiB zeros (80 MiB) in ~80 KB of gzip.
    inner = b"".join(record(i, b"k", bytes(8192)) for i in range(10_000))
    bomb = gzip.compress(inner, compresslevel=9)
    assert len(bomb) < 1 << 20
    before = rss_hwm_kb(raftka)
    started = time.monotonic()
    err, _, msg = produce(raftka, topics[0], batch(bomb, 10_000, attributes=1))
    took = time.monotonic() - started
    assert err == MESSAGE_TOO_LARGE, (err, msg)
    grown_mb = (rss_hwm_kb(raftka) - before) / 1024
    assert grown_mb < 100, f"peak RSS grew {grown_mb:.0f} MB"
    assert took < 10
    assert_serving(raftka, topics[0])


def test_compressed_batches_from_real_clients_still_work(raftka, topics):
    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        for t in topics:
            p = Producer({"bootstrap.servers": raftka.bootstrap, "compression.type": codec,
                          "linger.ms": 20, "enable.idempotence": True})
            for i in range(500):
                p.produce(t, key=f"k{i % 50}".encode(), value=(f"{codec}-{i}-" * 20).encode(),
                          headers=[("h", b"1"), ("h", b"2")])
            assert p.flush(30) == 0
    for t in topics:
        assert end_offset(raftka, t) == 2000
    c = Consumer({"bootstrap.servers": raftka.bootstrap, "group.id": unique_name("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topics[1], 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 2000 and time.monotonic() < deadline:
            m = c.poll(1)
            if m is not None and m.error() is None:
                got.append(m)
        assert len(got) == 2000
        assert got[-1].headers() == [("h", b"1"), ("h", b"2")]
    finally:
        c.close()

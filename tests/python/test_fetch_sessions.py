"""Fetch sessions (KIP-227) with the clients that use them: kafka-python 3.0.12 (Fetch up to
v12, topics by name; `enable_incremental_fetch_sessions` is on by default) and Kafka's Java
consumer 4.3 (Fetch v17, topics by id). Records are produced while the consumers read, so
their incremental fetches see partitions gain data one at a time; every record must arrive
exactly once, the node must report the sessions on /metrics, and kafka-python must not have
found an answer that breaks the session rules (it logs those and falls back to full fetches)."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from cluster_util import create_topic, java_probe
from raftka_harness import unique_name

PARTITIONS = 4
N = 2000


def metric(node, name: str) -> float:
    with urllib.request.urlopen(f"{node.http_url}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def produce_slowly(bootstrap: str, topic: str, n: int) -> threading.Thread:
    """Sends 0..n-1 (round-robin over the partitions) in small bursts, in the background."""
    def run() -> None:
        p = KafkaProducer(bootstrap_servers=[bootstrap], linger_ms=0)
        for i in range(n):
            p.send(topic, value=str(i).encode(), partition=i % PARTITIONS)
            if i % 50 == 49:
                p.flush(timeout=30)
                time.sleep(0.05)
        p.flush(timeout=30)
        p.close(timeout=10)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_kafka_python_reads_through_an_incremental_session(raftka, bootstrap):
    topic = unique_name("fsess-py")
    create_topic(bootstrap, topic, partitions=PARTITIONS, rf=1)
    log = logging.getLogger("kafka.consumer.fetcher")
    collect = Collect()
    log.addHandler(collect)
    old_level = log.level
    log.setLevel(logging.INFO)
    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_wait_ms=100,
                             max_partition_fetch_bytes=4096, request_timeout_ms=30000)
    try:
        assert consumer.config["enable_incremental_fetch_sessions"] is True
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        producer = produce_slowly(bootstrap, topic, N)
        seen: list[int] = []
        deadline = time.monotonic() + 90
        while len(set(seen)) < N and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                seen.extend(int(r.value) for r in records)
        producer.join(timeout=60)
        assert sorted(seen) == list(range(N)), \
            f"{len(seen)} records, {len(set(seen))} distinct of {N}"
        sessions = metric(raftka, "raftka_fetch_sessions")
        assert sessions >= 1, "kafka-python's session is not on /metrics"
        assert metric(raftka, "raftka_fetch_session_partitions") >= PARTITIONS
        # The session went on incrementally: its epoch moved far past the first full fetch.
        handlers = consumer._fetcher._session_handlers
        assert handlers, "kafka-python made no fetch session handler"
        epochs = [h.next_metadata.epoch for h in handlers.values()]
        assert max(epochs) > 10, f"incremental fetches did not continue the session: {epochs}"
        broken = [m for m in collect.lines if "invalid" in m or "unable to process" in m]
        assert not broken, broken
    finally:
        consumer.close()
        log.removeHandler(collect)
        log.setLevel(old_level)


def test_java_consumer_reads_through_an_incremental_session(raftka, bootstrap):
    topic = unique_name("fsess-java")
    create_topic(bootstrap, topic, partitions=PARTITIONS, rf=1)
    before = metric(raftka, "raftka_fetch_sessions")
    # The sessions the node holds while the probe reads (sampled).
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(metric(raftka, "raftka_fetch_sessions"))
            time.sleep(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    producer = produce_slowly(bootstrap, topic, N)
    try:
        out = java_probe("FetchSessionProbe", bootstrap, topic, str(PARTITIONS), str(N), "90000",
                         timeout=150)
    finally:
        done.set()
        sampler.join(timeout=10)
    producer.join(timeout=60)
    assert out.returncode == 0, f"probe failed:\n{out.stdout}\n{out.stderr[-4000:]}"
    fields = dict(kv.split("=") for kv in out.stdout.split())
    assert int(fields["distinct"]) == N and int(fields["records"]) == N, out.stdout
    assert max(peak) > before, "the Java consumer's session never showed on /metrics"
    # Its close sends a last fetch with epoch -1, which closes the session.
    assert metric(raftka, "raftka_fetch_sessions") == before

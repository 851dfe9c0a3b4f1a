"""Helpers shared by the multi-node fault tests (test_cluster_faults.py, test_netsplit.py):
admin/metadata probes, a continuously producing acks=all idempotent producer running in a
thread, and a reader that drains every partition up to its high watermark."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from raftka_harness import unique_name, wait_until

# Fast failure detection: fence after 2 s of silence, drop laggards after 2 s, rebalance
# preferred leaders every second.
FAST = ("-o", "replica.lag.time.max.ms=2000", "-o", "broker.session.timeout.ms=2000",
        "-o", "broker.heartbeat.interval.ms=300", "-o", "leader.imbalance.check.interval.seconds=1")


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000,
                        "socket.connection.setup.timeout.ms": 3000})


def brokers(bootstrap: str) -> set[int]:
    return set(admin(bootstrap).list_topics(timeout=5).brokers)


def wait_brokers(bootstrap: str, n: int = 3, timeout: float = 20) -> None:
    wait_until(lambda: len(brokers(bootstrap)) >= n, timeout, f"{n} live brokers via {bootstrap}")


def create_topic(bootstrap: str, topic: str, partitions: int | None = None, rf: int | None = None,
                 configs: dict | None = None, assignment: list[list[int]] | None = None) -> None:
    if assignment is not None:
        # confluent-kafka 2.16.1 refuses replica_assignment locally ("Specifying a default
        # partition count and a replica assignment are mutually exclusive"): kafka-python.
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic as KNewTopic
        ka = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=15000)
        try:
            ka.create_topics([KNewTopic(topic, replica_assignments=dict(enumerate(assignment)),
                                        topic_configs=configs or {})], timeout_ms=15000)
        finally:
            ka.close()
        return
    a = admin(bootstrap)
    nt = NewTopic(topic, num_partitions=partitions, replication_factor=rf, config=configs or {})
    a.create_topics([nt], operation_timeout=10, request_timeout=15)[topic].result(timeout=20)


def partitions_meta(bootstrap: str, topic: str):
    md = admin(bootstrap).list_topics(topic, timeout=5)
    t = md.topics[topic]
    if t.error is not None:
        raise RuntimeError(str(t.error))
    return t.partitions


def full_isr(bootstrap: str, topic: str, n: int, rf: int = 3) -> bool:
    parts = partitions_meta(bootstrap, topic)
    return len(parts) == n and all(len(p.isrs) == rf and p.leader >= 0 for p in parts.values())


def preferred_leaders(bootstrap: str, topic: str) -> bool:
    return all(p.leader == p.replicas[0] for p in partitions_meta(bootstrap, topic).values())


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    return {pid: p.leader for pid, p in partitions_meta(bootstrap, topic).items()}


def controller_id(bootstrap: str) -> int:
    return admin(bootstrap).list_topics(timeout=5).controller_id


def topic_names(bootstrap: str) -> set[str]:
    return set(admin(bootstrap).list_topics(timeout=5).topics)


class ContinuousProducer:
    """Produces `"<partition>:<seq>"` round-robin over the partitions from a thread until
    stopped, acks=all with idempotence, throttled to about `rate` records/s. Records every
    delivery report: `acked` [(partition, offset, value)], `failed` [(value, error)]."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: int = 2000, **conf):
        cfg = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
               "linger.ms": 5, "message.timeout.ms": 90000, "retry.backoff.ms": 100,
               "topic.metadata.refresh.interval.ms": 1000, "queue.buffering.max.messages": 20000,
               "socket.connection.setup.timeout.ms": 3000}
        cfg.update(conf)
        extra = {}
        if os.environ.get("RAFTKA_TEST_RDKAFKA_DEBUG"):  # e.g. "eos,msg,protocol,broker"
            cfg["debug"] = os.environ["RAFTKA_TEST_RDKAFKA_DEBUG"]
            log = logging.getLogger(f"rdkafka.{topic}")
            handler = logging.FileHandler(f"/tmp/rdkafka-{topic}.log")
            log.addHandler(handler)
            log.setLevel(logging.DEBUG)
            extra["logger"] = log
        self.producer = Producer(cfg, **extra)
        self.topic, self.partitions, self.rate = topic, partitions, rate
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed: list[tuple[bytes, str]] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"producer-{topic}", daemon=True)

    def _on_delivery(self, err, msg) -> None:
        with self._lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed.append((msg.value(), str(err)))

    def start(self) -> "ContinuousProducer":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            i = 0
            t0 = time.monotonic()
            while not self._stop.is_set():
                part = i % self.partitions
                value = f"{part}:{i:09d}".encode()
                try:
                    self.producer.produce(self.topic, value=value, partition=part,
                                          on_delivery=self._on_delivery)
                except BufferError:
                    self.producer.poll(0.05)
                    continue
                i += 1
                self.sent = i
                self.producer.poll(0)
                ahead = i / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.05))
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self._error = e

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_progress(self, n: int, timeout: float, what: str) -> None:
        """Waits until `n` more records than now are acknowledged."""
        base = self.acked_count()
        wait_until(lambda: self.acked_count() >= base + n, timeout, f"{n} more acks ({what})")

    def stop(self, flush_timeout: float = 90) -> int:
        """Stops producing and flushes; returns the number of undelivered records."""
        self._stop.set()
        self._thread.join(30)
        if self._error is not None:
            raise self._error
        return self.producer.flush(flush_timeout)


def drain(bootstrap: str, topic: str, partitions: int, timeout: float = 60):
    """Every record of every partition from offset 0 up to the high watermark, as
    {partition: [(offset, value)]} (assign, no group)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("drain"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "topic.metadata.refresh.interval.ms": 1000, "fetch.wait.max.ms": 100,
                  "socket.timeout.ms": 5000})
    try:
        highs = {}
        for p in range(partitions):
            _, hi = wait_until(lambda: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5),
                               30, f"watermarks of {topic}/{p}")
            highs[p] = hi
        drain.last_highs = dict(highs)  # for failure messages
        out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        todo = [TopicPartition(topic, p, 0) for p in range(partitions) if highs[p] > 0]
        if not todo:
            return out
        c.assign(todo)
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(todo):
            if time.monotonic() > deadline:
                got = {p: (out[p][-1][0] + 1 if out[p] else 0) for p in out}
                raise AssertionError(f"drain of {topic} timed out: read up to {got}, high watermarks {highs}")
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    continue
                p = m.partition()
                if m.offset() < highs[p]:
                    out[p].append((m.offset(), m.value()))
                if m.offset() + 1 >= highs[p]:
                    done.add(p)
        return out
    finally:
        c.close()


def check_log(got: dict[int, list[tuple[int, bytes]]], acked: list[tuple[int, int, bytes]]) -> None:
    """Every acknowledged record is in the log at its acknowledged offset; no value appears
    twice; offsets strictly increase; per partition the producer's sequence order is kept."""
    values = [v for recs in got.values() for _, v in recs]
    dups = len(values) - len(set(values))
    assert dups == 0, f"{dups} duplicated records in the log"
    by_pos = {(pt, off): v for pt, recs in got.items() for off, v in recs}
    missing = [(pt, off, v) for pt, off, v in acked if by_pos.get((pt, off)) != v]
    assert not missing, (f"{len(missing)} of {len(acked)} acknowledged records lost or moved, e.g. "
                         f"{[(pt, off, v, by_pos.get((pt, off))) for pt, off, v in missing[:5]]}; "
                         f"high watermarks the last drain read up to: {getattr(drain, 'last_highs', None)}")
    for pt, recs in got.items():
        offs = [o for o, _ in recs]
        assert offs == sorted(set(offs)), f"partition {pt}: offsets not strictly increasing"
        seqs = [int(v.split(b":")[1]) for _, v in recs if b":" in v]
        assert seqs == sorted(seqs), f"partition {pt}: producer order not kept"


def java_jars() -> Path:
    """The kafka-clients 4.3.0 jars `make deps` unpacks (deps-java in the Makefile)."""
    d = Path(os.environ.get("RAFTKA_JAVA_JARS", Path.home() / ".cache/raftka/java-jars"))
    assert (d / "kafka-clients-4.3.0.jar").is_file(), f"no kafka-clients jar in {d}: run make deps"
    return d


JAVA_DIR = Path(__file__).resolve().parents[1] / "java"


def java_probe(source: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs the probe tests/java/<source>.java with Kafka's jars on the class path.

    The probe is compiled once per content (javac into ~/.cache/raftka/java-classes/<name>-<hash>,
    shared by the pytest processes under a file lock) instead of by `java File.java` on every
    call: the source launcher compiles each time, ~2-4 s per call on a loaded 2-core machine,
    which pushed a test with twenty Admin calls past its 60 s limit."""
    jars = java_jars()
    src = JAVA_DIR / f"{source}.java"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    root = Path(os.environ.get("RAFTKA_JAVA_CLASSES", Path.home() / ".cache/raftka/java-classes"))
    classes = root / f"{source}-{digest}"
    if not (classes / ".complete").is_file():
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (classes / ".complete").is_file():
                tmp = Path(tempfile.mkdtemp(prefix=f"{source}-", dir=root))
                r = subprocess.run(["javac", "-nowarn", "-cp", f"{jars}/*", "-d", str(tmp), str(src)],
                                   capture_output=True, text=True, timeout=180)
                assert r.returncode == 0, f"javac {src} failed:\n{r.stdout}\n{r.stderr[-4000:]}"
                (tmp / ".complete").touch()
                shutil.rmtree(classes, ignore_errors=True)
                tmp.rename(classes)
    return subprocess.run(["java", "-cp", f"{classes}:{jars}/*", source, *args],
                          capture_output=True, text=True, timeout=timeout)


def admin_probe(bootstrap: str, *args: str) -> list[str]:
    """Runs tests/java/AdminProbe.java (Kafka's Java Admin client) and answers its lines."""
    out = java_probe("AdminProbe", bootstrap, *args)
    assert out.returncode == 0, f"probe {args} failed:\n{out.stdout}\n{out.stderr[-4000:]}"
    return out.stdout.splitlines()

"""Issue 16: the clients Kafka 2.2.1 serves, as Debian and PyPI ship them, against one node and
against a 3-node cluster with replication factor 3 (no mocks):

- sarama 1.22 (Debian `golang-github-shopify-sarama-dev`, Go 1.19 in GOPATH mode) at its
  default version 0.8.2 (Produce v0 with magic-0 gzip message sets, Fetch v0, ListOffsets v0,
  OffsetCommit v1) and at V2_2_0_0 (ClusterAdmin create / list / DescribeConfigs v0, a
  consumer group, OffsetCommit v1);
- kafka-go 0.2 (Debian `golang-github-segmentio-kafka-go-dev`): CreateTopics v0, Writer
  (Produce v2, magic 1), group Reader (Fetch v2) that resumes at its committed offsets;
- pykafka 2.8 (PyPI): Produce v0, simple consumer with OffsetCommit v1 / OffsetFetch v1, and the
  managed balanced consumer;
- Burrow 1.2 (Debian `burrow`): reads `__consumer_offsets` and ListOffsets v0 and reports the
  right lag over HTTP;
- cross-format round trips: what old clients wrote (magic 0/1) is read by confluent-kafka, what
  confluent-kafka wrote (v2, lz4) is read by sarama at Fetch v0, and offsets committed with
  v1 are visible through confluent-kafka's OffsetFetch (v8+) and, through the ZooKeeper facade,
  under `/consumers/<group>/offsets/<topic>/<partition>`.

- librdkafka in 0.9 / 0.10.1 mode: magic 0 / 1 with each codec in, confluent-kafka out, and
  current batches down-converted back to that magic (LZ4 at magic 0 with KAFKA-3160's checksum).

The Go probes live in tests/go/src and are built once per run into ~/.cache/raftka/go.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient
from pykafka import KafkaClient
from pykafka.common import OffsetType

from cluster_util import controller_id, wait_brokers
from raftka_harness import free_ports, unique_name, wait_until

REPO = Path(__file__).resolve().parents[2]
GO_SRC = REPO / "tests/go"
GO_CACHE = Path(os.environ.get("RAFTKA_GO_CACHE", Path.home() / ".cache/raftka/go"))
BURROW = "/usr/bin/Burrow"


@pytest.fixture(scope="module")
def probes() -> dict[str, Path]:
    go = shutil.which("go")
    assert go, "go is missing: `make deps` installs golang-go and the Debian Go sources"
    out = GO_CACHE / "bin"
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOPATH=f"/usr/share/gocode:{GO_SRC}",
               GOCACHE=str(GO_CACHE / "build-cache"))
    built = {}
    for name in ("sarama_probe", "kafkago_probe"):
        subprocess.run([go, "build", "-o", str(out / name), name], cwd=GO_SRC, env=env, check=True,
                       capture_output=True, timeout=600)
        built[name] = out / name
    return built


def run_probe(path: Path, *args: str, timeout: float = 240) -> dict:
    p = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{path.name} {' '.join(args)} failed:\n{p.stderr[-3000:]}"
    return json.loads(p.stdout)


def confluent_values(bootstrap: str, topic: str, n: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("reader"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(out) < n and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            out.append(m.value())
    c.close()
    return out


def confluent_committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
    c.close()
    return [tp.offset for tp in got]


def burrow_lag(bootstrap: str, zk: str, group: str, want: int, workdir: Path) -> dict:
    """Starts Burrow against the node (Kafka and the ZooKeeper facade) and waits until it reports
    `want` as the group's total lag."""
    assert os.path.exists(BURROW), "burrow is missing: `make deps` installs it"
    (http_port,) = free_ports(1)
    workdir.mkdir(parents=True, exist_ok=True)
    servers = ", ".join(f'"{b}"' for b in bootstrap.split(","))
    (workdir / "burrow.toml").write_text(f"""
[general]
pidfile="{workdir}/burrow.pid"
[logging]
filename="{workdir}/burrow.log"
level="info"
[zookeeper]
servers=["{zk}"]
timeout=6
root-path="/burrow"
[client-profile.p]
client-id="burrow-lag"
kafka-version="2.0.0"
[cluster.local]
class-name="kafka"
servers=[{servers}]
client-profile="p"
topic-refresh=5
offset-refresh=2
[consumer.local]
class-name="kafka"
cluster="local"
servers=[{servers}]
client-profile="p"
offsets-topic="__consumer_offsets"
start-latest=false
[httpserver.default]
address="127.0.0.1:{http_port}"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
""")
    proc = subprocess.Popen([BURROW, "-config-dir", str(workdir)], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    last: dict = {}
    try:
        def lag_reported() -> bool:
            nonlocal last
            try:
                url = f"http://127.0.0.1:{http_port}/v3/kafka/local/consumer/{group}/lag"
                last = json.loads(urllib.request.urlopen(url, timeout=5).read())
            except OSError:
                return False
            return not last.get("error") and last.get("status", {}).get("totallag") == want
        wait_until(lag_reported, 90, f"Burrow reports lag {want} for {group}")
        return last
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # Burrow's own shutdown waits on its ZooKeeper session
            proc.kill()
            proc.wait(10)
        # Offset commits must decode. (Burrow 1.2 reads group metadata only up to v1 and warns
        # about the v2 records Kafka 2.2.1 writes too; it needs only the offsets for lag.)
        log = workdir / "burrow.log"
        bad = [ln for ln in (log.read_text() if log.exists() else "").splitlines()
               if "failed to decode" in ln and '"message_type":"metadata"' not in ln]
        assert not bad, bad[:3]


def old_clients_round(bootstrap: str, zk: str, rf: int, probes: dict[str, Path], workdir: Path) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})

    # sarama at V2_2_0_0: admin, producer, consumer group, commits (OffsetCommit v1).
    topic, group = unique_name("sarama22"), unique_name("gsarama22")
    out = run_probe(probes["sarama_probe"], "-brokers", bootstrap, "-version", "2.2.0", "-topic", topic,
                    "-group", group, "-n", "60", "-rf", str(rf))
    assert (out["listed_partitions"], out["listed_rf"]) == (3, rf), out
    assert (out["retention_ms"], out["retention_ms_default"]) == ("3600000", False), out
    assert out["consumed"] == 60 and out["total_end"] == 60, out
    assert out["committed"] == out["end_offsets"], out
    # v1 commits through confluent-kafka's OffsetFetch (v8+).
    assert confluent_committed(bootstrap, group, topic, 3) == [out["end_offsets"][str(p)] for p in range(3)]
    assert sorted(confluent_values(bootstrap, topic, 60)) == sorted(b"v%d" % i for i in range(60))

    # Burrow sees the group's lag after 7 more records nobody consumed.
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(7):
        p.produce(topic, b"late%d" % i)
    assert p.flush(30) == 0
    burrow_lag(bootstrap, zk, group, 7, workdir / "burrow")

    # sarama at its default 0.8.2: magic-0 gzip message sets in, Fetch v0 out, v1 commits.
    topic, group = unique_name("sarama082"), unique_name("gsarama082")
    admin.create_topics([NewTopic(topic, 3, rf)])[topic].result(timeout=30)
    out = run_probe(probes["sarama_probe"], "-brokers", bootstrap, "-topic", topic, "-group", group,
                    "-n", "45", "-compression", "gzip")
    assert out["version"] == "0.8.2.0" and out["consumed"] == 45 and out["total_end"] == 45, out
    assert out["committed"] == out["end_offsets"], out
    assert sorted(confluent_values(bootstrap, topic, 45)) == sorted(b"v%d" % i for i in range(45))
    assert confluent_committed(bootstrap, group, topic, 3) == [out["end_offsets"][str(p)] for p in range(3)]

    # v2 batches (confluent-kafka, lz4) read by sarama 0.8.2 at Fetch v0 (down-converted).
    topic = unique_name("v2in")
    admin.create_topics([NewTopic(topic, 3, rf)])[topic].result(timeout=30)
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": "lz4", "linger.ms": 20})
    for i in range(30):
        p.produce(topic, b"v%d" % i, key=b"k%d" % i)
    assert p.flush(30) == 0
    out = run_probe(probes["sarama_probe"], "-brokers", bootstrap, "-topic", topic,
                    "-group", unique_name("gv2in"), "-n", "30", "-produce=false")
    assert out["consumed"] == 30 and out["total_end"] == 30, out

    # kafka-go: CreateTopics v0, Produce v2, its own group client resuming at its commits.
    topic, group = unique_name("kafkago"), unique_name("gkafkago")
    out = run_probe(probes["kafkago_probe"], "-brokers", bootstrap, "-topic", topic, "-group", group,
                    "-n", "40", "-rf", str(rf))
    assert out == {"partitions": 2, "first_round": 40, "second_round": 40, "second_round_repeats": 0}, out
    assert sorted(confluent_values(bootstrap, topic, 80)) == sorted(b"v%d" % i for i in range(80))

    # pykafka: Produce v0, ListOffsets v0, simple consumer commits, managed balanced consumer.
    topic = unique_name("pykafka")
    admin.create_topics([NewTopic(topic, 2, rf)])[topic].result(timeout=30)
    client = KafkaClient(hosts=bootstrap)
    wait_until(lambda: topic.encode() in client.topics or client.update_cluster() or False, 30,
               "pykafka sees the topic")
    t = client.topics[topic]
    with t.get_sync_producer() as prod:
        for i in range(30):
            prod.produce(b"v%d" % i, partition_key=b"k%d" % i)
    latest = t.latest_available_offsets()
    assert sum(r.offset[0] for r in latest.values()) == 30, latest
    simple_group = unique_name("gpyk")
    sc = t.get_simple_consumer(consumer_group=simple_group.encode(), auto_offset_reset=OffsetType.EARLIEST,
                               consumer_timeout_ms=5000, auto_commit_enable=False)
    got = [m.value for m in sc if m is not None]
    sc.commit_offsets()
    assert sorted(got) == sorted(b"v%d" % i for i in range(30))
    assert sum(r.offset for _, r in sc.fetch_offsets()) == 30
    sc.stop()
    assert sum(confluent_committed(bootstrap, simple_group, topic, 2)) == 30
    # ... and through the ZooKeeper facade, where Kafka 2.2.1 kept OffsetCommit v0's offsets.
    zkc = KazooClient(hosts=zk, timeout=15)
    zkc.start(timeout=15)
    try:
        base = f"/consumers/{simple_group}/offsets/{topic}"
        assert sum(int(zkc.get(f"{base}/{p}")[0]) for p in zkc.get_children(base)) == 30
    finally:
        zkc.stop()
        zkc.close()
    # A client of its own, as an application has per consumer: pykafka's balanced consumer
    # sends its group requests over the client's shared broker connections, which a stopped
    # simple consumer of the same client may have left closed (pykafka never reopens them).
    balanced_client = KafkaClient(hosts=bootstrap)  # pykafka's topics hold it only weakly
    t = balanced_client.topics[topic]
    bc = t.get_balanced_consumer(consumer_group=unique_name("gpykb").encode(), managed=True,
                                 auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=8000)
    got = [m.value for m in bc if m is not None]
    bc.stop()
    assert sorted(got) == sorted(b"v%d" % i for i in range(30))
    assert sorted(confluent_values(bootstrap, topic, 30)) == sorted(b"v%d" % i for i in range(30))


@pytest.mark.timeout(600)
def test_old_clients_on_one_node(raftka, probes, tmp_path):
    old_clients_round(raftka.bootstrap, raftka.zk_hosts, 1, probes, tmp_path)


@pytest.mark.timeout(900)
@pytest.mark.cluster_args("-o", "default.replication.factor=3", "-o", "offsets.topic.replication.factor=3")
def test_old_clients_on_three_nodes_rf3(cluster, probes, tmp_path):
    bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
    # As with a fresh Kafka cluster, tools need every broker registered and a controller elected
    # (sarama's ClusterAdmin asks for the controller once, without retrying).
    wait_brokers(bootstrap, 3, timeout=60)
    wait_until(lambda: controller_id(bootstrap) >= 0, 60, "a controller in Metadata")
    old_clients_round(bootstrap, cluster.nodes[0].zk_hosts, 3, probes, tmp_path)


@pytest.mark.parametrize("fallback,magic", [("0.9.0.1", 0), ("0.10.1.0", 1)])
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4"])
def test_librdkafka_old_message_formats_round_trip(raftka, fallback, magic, codec):
    """librdkafka told the broker is 0.9 / 0.10.1 (no ApiVersions) writes magic-0 / magic-1
    message sets with each codec (LZ4 at magic 0 with Kafka 0.8's wrong frame header checksum,
    KAFKA-3160): stored, and read back by a current client; a consumer in the same mode reads
    a current client's batches (v2, same codec) down-converted to its magic."""
    old = {"bootstrap.servers": raftka.bootstrap, "api.version.request": False,
           "broker.version.fallback": fallback}
    topic = unique_name(f"m{magic}{codec}")
    admin = AdminClient({"bootstrap.servers": raftka.bootstrap})  # alive until the result
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    p = Producer({**old, "compression.type": codec, "linger.ms": 20})
    for i in range(50):
        p.produce(topic, value=b"old-%d" % i, key=b"k%d" % i)
    assert p.flush(30) == 0
    new = Producer({"bootstrap.servers": raftka.bootstrap, "compression.type": codec,
                    "linger.ms": 20})
    for i in range(50):
        new.produce(topic, value=b"new-%d" % i)
    assert new.flush(30) == 0
    want = sorted([b"old-%d" % i for i in range(50)] + [b"new-%d" % i for i in range(50)])
    assert sorted(confluent_values(raftka.bootstrap, topic, 100)) == want
    c = Consumer({**old, "group.id": unique_name("oldfmt"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + 60
    while len(got) < 100 and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None:
            assert not m.error(), m.error()
            got.append((m.key(), m.value()))
            # Magic 0 has no timestamps; magic 1 carries the producer's.
            assert (m.timestamp()[1] > 0) == (magic == 1), m.timestamp()
    c.close()
    assert sorted(v for _, v in got) == want
    assert sorted(k for k, v in got if v.startswith(b"old-")) == sorted(b"k%d" % i for i in range(50))

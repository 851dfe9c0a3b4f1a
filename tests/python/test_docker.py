"""The container image and the 3-node docker compose cluster (deploy/), driven from the host.

Skipped when no Docker engine is reachable (`docker info` fails) or when the release binary
has not been built (`make test` builds it first whenever Docker is there). Otherwise the module
builds a fresh image from the FROM-scratch Dockerfile (`--no-cache`, a unique tag, removed at
the end), then:

- runs one container the way the README's two-command start does and talks to it from the host;
- brings up deploy/docker-compose.yml under a unique project name on free host ports, creates an
  RF=3 topic through the ZooKeeper facade of one node (the znodes `kafka-topics.sh --zookeeper`
  2.x writes) and another through the Kafka protocol on another node, produces (acks=all) and
  consumes from the host, stops a container, keeps producing and consuming, restarts it, waits
  for it to rejoin every ISR and checks that no acknowledged record was lost;
- rolls through the three containers (`docker stop` = SIGTERM, then `docker start`) under
  acks=all load on an RF=3 / min.insync.replicas=2 topic: every acknowledged record is consumed
  afterwards and the topic stays writable.

Everything it creates (containers, network, volumes, image) is removed in a finally.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from raftka_harness import free_ports, unique_name, wait_until

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
SERVICES = ("raftka1", "raftka2", "raftka3")
HEALTH_TIMEOUT_S = 90
# Longest a rolling restart may leave the topic without an acknowledged write (controlled
# shutdown moves leadership first, so this covers a leader move plus client retries).
MAX_UNWRITABLE_S = 5


# ---- environment checks ----------------------------------------------------------------------

def _docker_reachable() -> str | None:
    """None when a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    try:
        r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`docker info` failed: {e}"
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return f"`docker info` failed: {lines[-1] if lines else f'exit {r.returncode}'}"
    return None


def _compose_cmd() -> list[str] | None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _release_bin() -> Path:
    if os.environ.get("RAFTKA_RELEASE_BIN"):
        return Path(os.environ["RAFTKA_RELEASE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/raftka/target")
    return Path(target) / "release" / "raftka"


_why_not = _docker_reachable()
pytestmark = [
    pytest.mark.timeout(280),
    pytest.mark.skipif(_why_not is not None,
                       reason=f"no Docker engine reachable ({_why_not}); the image and compose "
                              "tests need one"),
]


def run(*cmd: str, timeout: float = 120, check: bool = True, env=None) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


# ---- image -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image():
    """A freshly built image (no build cache), tagged uniquely so `raftka:latest` is untouched."""
    binary = _release_bin()
    if not binary.is_file():
        pytest.skip(f"release binary {binary} not built; run `make release` (or `make test`, which "
                    "builds it when Docker is present)")
    tag = f"raftka-test:{uuid.uuid4().hex[:10]}"
    stage = Path(os.environ.get("TMPDIR", "/tmp")) / unique_name("raftka-image-stage")
    env = dict(os.environ, RAFTKA_RELEASE_BIN=str(binary), RAFTKA_IMAGE_STAGE=str(stage))
    t0 = time.monotonic()
    try:
        run(str(REPO / "deploy" / "build-image.sh"), tag, "--no-cache", timeout=300, env=env)
        print(f"image {tag} built in {time.monotonic() - t0:.1f}s")
        yield tag
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        run("docker", "image", "rm", "-f", tag, check=False)


def test_image_is_minimal_non_root_and_configured(image):
    cfg = json.loads(run("docker", "image", "inspect", image).stdout)[0]["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["/usr/local/bin/raftka"] and cfg["Cmd"] == ["serve"]
    assert set(cfg["ExposedPorts"]) == {"9092/tcp", "2181/tcp", "9193/tcp", "9644/tcp"}
    assert "/data" in cfg["Volumes"]
    assert cfg["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/raftka", "health"]
    size = json.loads(run("docker", "image", "inspect", image).stdout)[0]["Size"]
    assert size < 150 * 1024 * 1024, f"image is {size} bytes"


def test_single_node_docker_run_reachable_from_host(image):
    """`docker run -p 9092:9092 -p 2181:2181 raftka`, on free host ports (so the advertised
    listener is overridden to match)."""
    kport, zport = free_ports(2)
    name = unique_name("raftka-single")
    run("docker", "run", "-d", "--name", name, "-p", f"{kport}:9092", "-p", f"{zport}:2181",
        "-e", f"RAFTKA_ADVERTISED_LISTENERS=PLAINTEXT://localhost:{kport}", image)
    try:
        wait_healthy([name])
        bootstrap = f"localhost:{kport}"
        topic = unique_name("single")
        p = producer(bootstrap)
        acked = produce(p, topic, 0, 200)
        assert len(acked) == 200
        got = consume_all(bootstrap, topic, 1, 200)
        assert sorted(v for vals in got.values() for _, v in vals) == sorted(v for _, _, v in acked)
        zk = kazoo_client(f"localhost:{zport}")
        try:
            assert topic in zk.get_children("/brokers/topics")
            assert zk.get_children("/brokers/ids") == ["1"]
        finally:
            zk.stop()
            zk.close()
        # Runs as the non-root user and writes its data into the volume.
        top = run("docker", "top", name, "-o", "pid,uid,comm").stdout
        assert "10001" in top, top
    finally:
        print(run("docker", "logs", "--tail", "50", name, check=False).stderr[-5000:])
        run("docker", "rm", "-f", "-v", name, check=False)


# ---- compose cluster -------------------------------------------------------------------------

class ComposeCluster:
    def __init__(self, compose: list[str], project: str, env: dict, kafka_ports, zk_ports):
        self.compose = compose
        self.project = project
        self.env = env
        self.kafka_ports = kafka_ports
        self.zk_ports = zk_ports

    def cmd(self, *args: str, timeout: float = 180, check: bool = True):
        return run(*self.compose, "-p", self.project, "-f", str(COMPOSE_FILE), *args,
                   timeout=timeout, check=check, env=self.env)

    def container(self, service: str) -> str:
        cid = self.cmd("ps", "-q", service).stdout.strip()
        assert cid, f"no container for {service}"
        return cid

    def bootstrap(self, node: int | None = None) -> str:
        ports = self.kafka_ports if node is None else [self.kafka_ports[node - 1]]
        return ",".join(f"localhost:{p}" for p in ports)

    def zk(self, node: int) -> str:
        return f"localhost:{self.zk_ports[node - 1]}"

    def logs(self) -> str:
        r = self.cmd("logs", "--no-color", "--tail", "80", check=False)
        return r.stdout[-20000:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def compose_cluster(image):
    compose = _compose_cmd()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    ports = free_ports(9)
    kafka_ports, zk_ports, http_ports = ports[0:3], ports[3:6], ports[6:9]
    env = dict(os.environ, RAFTKA_IMAGE=image)
    for i in range(3):
        env[f"RAFTKA_HOST_PORT{i + 1}"] = str(kafka_ports[i])
        env[f"RAFTKA_ZK_HOST_PORT{i + 1}"] = str(zk_ports[i])
        env[f"RAFTKA_HTTP_HOST_PORT{i + 1}"] = str(http_ports[i])
    c = ComposeCluster(compose, f"raftkatest{uuid.uuid4().hex[:8]}", env, kafka_ports, zk_ports)
    try:
        c.cmd("up", "-d")
        wait_healthy([c.container(s) for s in SERVICES])
        wait_until(lambda: len(AdminClient({"bootstrap.servers": c.bootstrap()})
                               .list_topics(timeout=5).brokers) == 3, 30, "3 brokers in metadata")
        yield c
    finally:
        print(c.logs())
        c.cmd("down", "-v", "--remove-orphans", "-t", "30", check=False)


def health_status(container: str) -> str:
    return run("docker", "inspect", "-f", "{{.State.Status}}/{{.State.Health.Status}}",
               container).stdout.strip()


def wait_healthy(containers, timeout: float = HEALTH_TIMEOUT_S) -> None:
    for cid in containers:
        def ok():
            st = health_status(cid)
            assert not st.startswith(("exited", "dead")), f"container {cid} {st}"
            return st == "running/healthy"
        wait_until(ok, timeout, f"container {cid[:12]} healthy", interval=0.5)


# ---- clients ---------------------------------------------------------------------------------

def producer(bootstrap: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 60000, "retry.backoff.ms": 200,
            "topic.metadata.refresh.interval.ms": 1000}
    conf.update(extra)
    return Producer(conf)


def produce(p: Producer, topic: str, start: int, count: int, timeout: float = 70):
    """Produces values `start..start+count` and returns the acknowledged (partition, offset,
    value) triples. Asserts every one was acknowledged."""
    acked, failed = [], []

    def cb(err, msg):
        (failed if err is not None else acked).append(
            err if err is not None else (msg.partition(), msg.offset(), msg.value()))

    for i in range(start, start + count):
        while True:
            try:
                p.produce(topic, value=f"{topic}-{i}".encode(), key=str(i).encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(timeout) == 0, "records still in flight"
    assert not failed, f"{len(failed)} records not acknowledged, e.g. {failed[:3]}"
    return acked


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 60):
    """Every record of every partition from offset 0 (assign, no group): {partition: [(offset,
    value)]}; stops once `expected` records arrived."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "topic.metadata.refresh.interval.ms": 1000})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    total = 0
    deadline = time.monotonic() + timeout
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


def assert_all_acked_present(acked, got) -> None:
    have = {(p, o): v for p, vals in got.items() for o, v in vals}
    missing = [(p, o) for p, o, v in acked if have.get((p, o)) != v]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    values = [v for vals in got.values() for _, v in vals]
    assert len(values) == len(set(values)), "duplicated records"


def kazoo_client(hosts: str):
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=hosts, timeout=15)
    zk.start(timeout=15)
    return zk


def zk_create_topic(hosts: str, topic: str, partitions: int, rf: int) -> None:
    """What `kafka-topics.sh --zookeeper <hosts> --create --partitions P --replication-factor R`
    (Kafka 2.x AdminZkClient) writes: broker list, then /config/topics/<t>, then the replica
    assignment in /brokers/topics/<t>."""
    zk = kazoo_client(hosts)
    try:
        ids = sorted(int(b) for b in zk.get_children("/brokers/ids"))
        assert len(ids) >= rf, f"only brokers {ids}"
        for b in ids:
            info = json.loads(zk.get(f"/brokers/ids/{b}")[0])
            assert info["version"] == 4 and info["endpoints"], info
        assert zk.exists(f"/brokers/topics/{topic}") is None
        zk.create(f"/config/topics/{topic}",
                  json.dumps({"version": 1, "config": {}}, separators=(",", ":")).encode())
        assignment = {str(p): [ids[(p + r) % len(ids)] for r in range(rf)] for p in range(partitions)}
        zk.create(f"/brokers/topics/{topic}",
                  json.dumps({"version": 1, "partitions": assignment}, separators=(",", ":")).encode())
    finally:
        zk.stop()
        zk.close()


def zk_partition_states(hosts: str, topic: str) -> dict[int, dict]:
    """/brokers/topics/<t>/partitions/<p>/state of every partition (what --describe reads)."""
    zk = kazoo_client(hosts)
    try:
        return {int(p): json.loads(zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")[0])
                for p in zk.get_children(f"/brokers/topics/{topic}/partitions")}
    finally:
        zk.stop()
        zk.close()


def kafka_python_create_topic(bootstrap: str, topic: str, partitions: int, rf: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    try:
        a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
                        timeout_ms=20000)
    finally:
        a.close()


def isr_view(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=5)
    t = md.topics[topic]
    if t.error is not None:
        raise RuntimeError(str(t.error))
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


def full_isr(bootstrap: str, topic: str, partitions: int) -> bool:
    v = isr_view(bootstrap, topic)
    return len(v) == partitions and all(leader > 0 and isr == [1, 2, 3] for leader, isr in v.values())


# ---- tests -----------------------------------------------------------------------------------

@pytest.mark.timeout(280)
def test_compose_cluster_topics_failover_and_rejoin(compose_cluster):
    c = compose_cluster
    nparts = 3
    zk_topic, kp_topic = unique_name("dz"), unique_name("dk")
    # RF 3 topic through the ZooKeeper facade of node 1, another through Kafka on node 2.
    zk_create_topic(c.zk(1), zk_topic, nparts, 3)
    kafka_python_create_topic(c.bootstrap(2), kp_topic, nparts, 3)
    for t in (zk_topic, kp_topic):
        wait_until(lambda t=t: full_isr(c.bootstrap(3), t, nparts), 30, f"ISR 1,2,3 for {t}")
    if shutil.which("kcat"):
        out = run("kcat", "-b", c.bootstrap(1), "-L", "-t", zk_topic, timeout=30).stdout
        assert "3 brokers" in out and f"localhost:{c.kafka_ports[2]}" in out, out
    # The INTERNAL listener advertises the service names (what containers on the network use).
    # Reached here through the container's bridge address, which a Linux host can route to.
    ip = run("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
             c.container("raftka2")).stdout.strip()
    try:
        socket.create_connection((ip, 19092), timeout=2).close()
    except OSError:
        print(f"container address {ip} not reachable from the host; INTERNAL check skipped")
    else:
        brokers = AdminClient({"bootstrap.servers": f"{ip}:19092"}).list_topics(timeout=10).brokers
        assert sorted((b.id, b.host, b.port) for b in brokers.values()) == \
            [(1, "raftka1", 19092), (2, "raftka2", 19092), (3, "raftka3", 19092)]

    # Produce (acks=all) and consume from the host.
    p = producer(c.bootstrap())
    acked = {t: produce(p, t, 0, 1000) for t in (zk_topic, kp_topic)}
    for t in acked:
        assert_all_acked_present(acked[t], consume_all(c.bootstrap(), t, nparts, len(acked[t])))

    # Stop node 3 (SIGTERM); the other two keep the topics writable (min ISR 2).
    victim = c.container("raftka3")
    t0 = time.monotonic()
    run("docker", "stop", "-t", "30", victim, timeout=60)
    print(f"docker stop raftka3 took {time.monotonic() - t0:.1f}s")
    survivors = f"localhost:{c.kafka_ports[0]},localhost:{c.kafka_ports[1]}"
    wait_until(lambda: all(3 not in isr and leader in (1, 2)
                           for leader, isr in isr_view(survivors, kp_topic).values()),
               30, "node 3 out of every ISR")
    for t in acked:
        acked[t] += produce(p, t, 1000, 1000)
        assert_all_acked_present(acked[t], consume_all(survivors, t, nparts, len(acked[t])))

    # Restart it: healthy again, back in the ISR of every partition of both topics.
    run("docker", "start", victim)
    wait_healthy([victim])
    for t in acked:
        acked[t] += produce(p, t, 2000, 500)
    wait_until(lambda: full_isr(c.bootstrap(), kp_topic, nparts), 60, "node 3 back in the ISR")
    wait_until(lambda: all(sorted(s["isr"]) == [1, 2, 3] for s in zk_partition_states(c.zk(3), zk_topic).values())
               and len(zk_partition_states(c.zk(3), zk_topic)) == nparts,
               60, "node 3 back in the ISR (facade partition state)")
    assert full_isr(c.bootstrap(), zk_topic, nparts)
    for t in acked:
        got = consume_all(c.bootstrap(), t, nparts, len(acked[t]))
        assert sum(len(v) for v in got.values()) == len(acked[t]) == 2500
        assert_all_acked_present(acked[t], got)
    p.flush(10)


@pytest.mark.timeout(280)
def test_rolling_restart_keeps_topic_writable_and_loses_nothing(compose_cluster):
    c = compose_cluster
    topic, nparts = unique_name("roll"), 6
    kafka_python_create_topic(c.bootstrap(1), topic, nparts, 3)
    wait_until(lambda: full_isr(c.bootstrap(), topic, nparts), 30, "ISR of 3")

    p = producer(c.bootstrap())
    acked: list[tuple[int, int, bytes]] = []
    failed: list[str] = []
    ack_times: list[float] = []
    stop = threading.Event()
    lock = threading.Lock()

    def cb(err, msg):
        with lock:
            if err is None:
                acked.append((msg.partition(), msg.offset(), msg.value()))
                ack_times.append(time.monotonic())
            else:
                failed.append(str(err))

    def load():
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=f"r{i}".encode(), key=str(i).encode(), on_delivery=cb)
                i += 1
            except BufferError:
                pass
            p.poll(0.002 if i % 20 else 0.01)
        p.flush(60)

    windows: list[tuple[str, float, float]] = []  # (service, stop issued, back in every ISR)
    t_load = threading.Thread(target=load, daemon=True)
    t_start = time.monotonic()
    t_load.start()
    try:
        time.sleep(2)
        for svc in SERVICES:
            cid = c.container(svc)
            t0 = time.monotonic()
            run("docker", "stop", "-t", "30", cid, timeout=60)
            stopped = time.monotonic() - t0
            run("docker", "start", cid)
            wait_healthy([cid])
            wait_until(lambda: full_isr(c.bootstrap(), topic, nparts), 60, f"{svc} back in every ISR")
            windows.append((svc, t0, time.monotonic()))
            print(f"{svc}: stop {stopped:.1f}s, back in ISR after {time.monotonic() - t0:.1f}s, "
                  f"{len(acked)} acked so far")
        time.sleep(2)
    finally:
        stop.set()
        t_load.join(90)
    elapsed = time.monotonic() - t_start

    # Writable throughout: no long gap between acknowledgements (leader moves take a moment).
    times = [t_start] + sorted(ack_times)
    gaps = list(zip(times, times[1:]))
    max_gap = max(b - a for a, b in gaps)
    for svc, w0, w1 in windows:
        g = max((b - a for a, b in gaps if b >= w0 and a <= w1), default=w1 - w0)
        print(f"  while {svc} restarted: longest time without an ack {g:.2f}s")
    print(f"rolling restart: {len(acked)} acked, {len(failed)} failed, max ack gap {max_gap:.2f}s "
          f"over {elapsed:.0f}s")
    assert len(acked) > 1000
    assert max_gap < MAX_UNWRITABLE_S, f"topic not writable for {max_gap:.1f}s"
    assert len(failed) <= len(acked) // 100, f"{len(failed)} failed deliveries, e.g. {failed[:3]}"

    got = consume_all(c.bootstrap(), topic, nparts, len(acked), timeout=90)
    assert_all_acked_present(acked, got)
    # Offsets within a partition are dense and in order (nothing truncated after an ack).
    for part, vals in got.items():
        offs = [o for o, _ in vals]
        assert offs == sorted(offs)

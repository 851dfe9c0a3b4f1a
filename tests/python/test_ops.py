"""Operations basics on real processes: the HTTP listener (`/metrics` in the Prometheus text
format, `/health`), `raftka health`, the node id on every log line (text and JSON), and the
controlled shutdown on SIGTERM that moves leadership away before the node stops."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Producer

from raftka_harness import free_ports, unique_name, wait_until
from test_replication import FAST, consume_all, create_topic, partitions_meta

# One Prometheus sample line: name{labels} value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def http_get(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(node) -> dict[str, float]:
    """All samples of /metrics, keyed `name{labels}`; every line must be a sample or comment."""
    status, body = http_get(node.http_url + "/metrics")
    assert status == 200, body
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def test_metrics_and_health_endpoints(raftka, raftka_binary):
    # Serving Kafka comes first; healthy once the cluster is initialised and the broker
    # registered (a loaded machine shows the gap: 503 "cluster not initialised yet").
    wait_until(lambda: http_get(raftka.http_url + "/health") == (200, "ok\n"), 20, "healthy")
    before = scrape(raftka)
    assert before["raftka_node_id"] == raftka.node_id
    assert before["raftka_healthy"] == 1
    assert before["raftka_raft_is_leader"] == 1 and before["raftka_raft_voters"] == 1

    topic = unique_name("ops")
    p = Producer({"bootstrap.servers": raftka.bootstrap, "acks": "all"})
    for i in range(200):
        p.produce(topic, value=b"x" * 100, partition=0)
    assert p.flush(30) == 0

    after = scrape(raftka)
    produce_count = after['raftka_kafka_request_duration_seconds_count{api="Produce"}']
    assert produce_count >= 1
    assert after['raftka_kafka_request_duration_seconds_bucket{api="Produce",le="+Inf"}'] == produce_count
    assert after['raftka_kafka_request_duration_seconds_count{api="Metadata"}'] >= 1
    # Issue 18: every stage of these acks=all produces is timed; each request has one queue
    # and one response sample, each partition batch one append, fsync and replication sample.
    stage = lambda s, k: after[f'raftka_produce_stage_duration_seconds_{k}{{stage="{s}"}}'] - \
        before.get(f'raftka_produce_stage_duration_seconds_{k}{{stage="{s}"}}', 0)
    requests = produce_count - before.get('raftka_kafka_request_duration_seconds_count{api="Produce"}', 0)
    assert stage("queue", "count") == requests
    # The response stage ends once the write returned, which may be after the client read it.
    wait_until(lambda: scrape(raftka)['raftka_produce_stage_duration_seconds_count{stage="response"}']
               - before.get('raftka_produce_stage_duration_seconds_count{stage="response"}', 0) == requests,
               10, "every produce response timed")
    batches = stage("append", "count")
    assert 1 <= batches <= requests
    assert stage("leader_fsync", "count") == batches and stage("replication", "count") == batches
    for s in ("queue", "append", "leader_fsync", "replication", "response"):
        assert after[f'raftka_produce_stage_duration_seconds_bucket{{stage="{s}",le="+Inf"}}'] == \
            after[f'raftka_produce_stage_duration_seconds_count{{stage="{s}"}}']
        assert 0 <= stage(s, "sum") < 30 * max(1, stage(s, "count"))
    assert after["raftka_kafka_bytes_in_total"] >= before["raftka_kafka_bytes_in_total"] + 200 * 100
    assert after["raftka_kafka_bytes_out_total"] > before["raftka_kafka_bytes_out_total"]
    assert after["raftka_topics"] >= 1 and after["raftka_partition_leaders"] >= 1
    assert after["raftka_under_replicated_partitions"] == 0
    assert after["raftka_offline_partitions"] == 0
    assert after["raftka_raft_commit_index"] >= after["raftka_raft_applied_index"] > 0

    # ZooKeeper-facade sessions and connections show up.
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=raftka.zk_hosts, timeout=10)
    zk.start(timeout=10)
    try:
        m = scrape(raftka)
        assert m["raftka_zk_sessions"] >= 1
        assert m["raftka_zk_connections_active"] >= 1
    finally:
        zk.stop()
        zk.close()

    assert http_get(raftka.http_url + "/nope")[0] == 404
    assert http_get(raftka.http_url + "/health", method="POST")[0] == 405
    # Garbage and an oversize head get an error or a closed connection; the node keeps serving.
    host, port = "127.0.0.1", raftka.http_port
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"\x00\xff garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection((host, port), timeout=5) as s:
        try:
            s.sendall(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n")
            s.recv(100)
        except OSError:
            pass
    assert http_get(raftka.http_url + "/health")[0] == 200

    ok = subprocess.run([str(raftka_binary), "health", "--url", raftka.http_url + "/health"],
                        capture_output=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    (closed,) = free_ports(1)
    bad = subprocess.run([str(raftka_binary), "health", "--url", f"http://127.0.0.1:{closed}/health"],
                         capture_output=True, timeout=10)
    assert bad.returncode == 1 and b"connect" in bad.stderr


def test_every_log_line_carries_the_node_id(raftka_factory):
    text = raftka_factory("textlog", node_id=7)
    json_node = raftka_factory("jsonlog", node_id=8, extra_args=["--log-format", "json"])
    for n in (text, json_node):
        n.stop()
    lines = [l for l in text.log_text().splitlines() if l and not l.startswith("=====")]
    assert lines, "no log output"
    assert all(l.startswith("node=7 ") for l in lines), [l for l in lines if not l.startswith("node=7 ")][:5]
    jlines = [l for l in json_node.log_text().splitlines() if l and not l.startswith("=====")]
    assert jlines
    for l in jlines:
        obj = json.loads(l)
        assert obj["node_id"] == 8, l
        assert "level" in obj and "fields" in obj


@pytest.mark.cluster_args(*FAST)
def test_sigterm_moves_leadership_before_stopping(cluster):
    boot = cluster.bootstrap
    topic = unique_name("ctl")
    create_topic(boot, topic, 3, 3, {"min.insync.replicas": "2"})
    wait_until(lambda: all(len(p.isrs) == 3 for p in partitions_meta(boot, topic).values()),
               30, "full ISR")
    leaders = {pid: p.leader for pid, p in partitions_meta(boot, topic).items()}
    victim_id = max(set(leaders.values()), key=list(leaders.values()).count)
    victim = cluster.node(victim_id)
    others = [n for n in cluster.nodes if n.node_id != victim_id]

    p = Producer({"bootstrap.servers": ",".join(n.bootstrap for n in others), "acks": "all",
                  "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 30000,
                  "topic.metadata.refresh.interval.ms": 500})
    acked, errors = [], []

    def on_delivery(err, msg):
        (errors if err else acked).append(err or (msg.partition(), msg.value()))

    for i in range(300):
        p.produce(topic, value=f"a{i}".encode(), on_delivery=on_delivery)
    p.flush(30)

    started = time.monotonic()
    assert victim.stop() == 0
    stop_s = time.monotonic() - started
    log = victim.log_text()
    assert "controlled shutdown: leadership moved" in log, victim.log_tail()
    # The survivors see leadership moved at once (their images apply the committed fence within
    # a Raft heartbeat; the session timeout is 2 s) and the ISR without the stopped node.
    survivor_ids = {n.node_id for n in others}
    after = wait_until(
        lambda: (m := partitions_meta(others[0].bootstrap, topic)) and all(
            p_.leader in survivor_ids and victim_id not in p_.isrs and len(p_.isrs) == 2
            for p_ in m.values()) and m,
        1.0, "leadership and ISR moved off the stopped node", interval=0.05)
    assert len(after) == 3
    assert stop_s < 15

    for i in range(300):
        p.produce(topic, value=f"b{i}".encode(), on_delivery=on_delivery)
    assert p.flush(30) == 0
    assert not errors, errors[:5]

    victim.start()
    wait_until(lambda: all(len(p_.isrs) == 3 for p_ in partitions_meta(boot, topic).values()),
               40, "the restarted node back in every ISR")
    got = consume_all(cluster.bootstrap, topic, 3, len(acked))
    consumed = sorted(v for recs in got.values() for _, v in recs)
    assert consumed == sorted(v for _, v in acked), "acknowledged records lost or duplicated"


def test_killed_broker_is_fenced_before_its_session_expires(cluster):
    """Default settings (9 s session): a kill -9 is confirmed by the refused TCP probe after two
    missed heartbeats, so leadership moves long before the session timeout."""
    boot = cluster.bootstrap
    topic = unique_name("crash")
    create_topic(boot, topic, 3, 3)
    wait_until(lambda: all(len(p.isrs) == 3 for p in partitions_meta(boot, topic).values()),
               30, "full ISR")
    leaders = {pid: p.leader for pid, p in partitions_meta(boot, topic).items()}
    victim_id = leaders[0]
    others = [n for n in cluster.nodes if n.node_id != victim_id]
    cluster.node(victim_id).kill()
    killed = time.monotonic()
    survivor = others[0].bootstrap
    wait_until(lambda: all(p.leader in {n.node_id for n in others}
                           for p in partitions_meta(survivor, topic).values()),
               8, "leaders moved off the killed broker (session timeout is 9 s)", interval=0.05)
    moved_s = time.monotonic() - killed
    logs = "".join(n.log_text() for n in others)
    assert "its port refuses connections; fencing it" in logs
    assert moved_s < 8, moved_s


def test_killed_controller_leader_is_fenced_by_its_successor_at_once(cluster):
    """kill -9 of the node that leads the Raft quorum and a partition: the new controller
    leader probes every broker when it takes over, so the dead one is fenced right after the
    election instead of after two more missed heartbeats (or the 9 s session)."""
    boot = cluster.bootstrap
    wait_until(lambda: sum(scrape(n)["raftka_raft_is_leader"] for n in cluster.nodes) == 1,
               20, "one controller leader")
    ctrl = next(n for n in cluster.nodes if scrape(n)["raftka_raft_is_leader"] == 1)
    topic = unique_name("ctrlkill")
    create_topic(boot, topic, 3, 3)
    wait_until(lambda: all(len(p.isrs) == 3 for p in partitions_meta(boot, topic).values()),
               30, "full ISR")
    others = [n for n in cluster.nodes if n is not ctrl]
    ctrl.kill()
    survivor = others[0].bootstrap
    wait_until(lambda: all(p.leader in {n.node_id for n in others}
                           for p in partitions_meta(survivor, topic).values()),
               8, "leaders moved off the killed controller", interval=0.05)
    logs = "".join(n.log_text() for n in others)
    assert "its port refuses connections; fencing it" in logs

"""Client quotas (issue 21): DescribeClientQuotas / AlterClientQuotas through Kafka's Java Admin
client (kafka-clients 4.3.0), the znodes Kafka 2.2.1's `kafka-configs.sh --zookeeper
--entity-type clients|users` writes (through kazoo), and enforcement: a librdkafka producer
and consumer over their byte-rate quotas get throttle_time_ms and their rates converge to the
quotas (a benchmark-style check with a generous tolerance), while a client without a quota is
not held back."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from kazoo.client import KazooClient
from kazoo.exceptions import BadArgumentsError

from cluster_util import admin_probe, create_topic
from raftka_harness import unique_name

KB = 1024
PRODUCE_QUOTA = 100 * KB
FETCH_QUOTA = 100 * KB


def quotas(bootstrap: str, *filters: str) -> list[str]:
    return admin_probe(bootstrap, "quotas-describe", *filters)


def test_quota_apis_and_the_zookeeper_route(raftka):
    b = raftka.bootstrap
    assert admin_probe(b, "quotas-alter", "client-id=app", "producer_byte_rate=1024",
                       "request_percentage=12.5") == ["ok"]
    assert admin_probe(b, "quotas-alter", "user=alice,client-id=<default>",
                       "consumer_byte_rate=2048") == ["ok"]
    assert admin_probe(b, "quotas-alter", "user=<default>", "producer_byte_rate=4096") == ["ok"]
    assert quotas(b) == [
        "client-id=app producer_byte_rate=1024.0 request_percentage=12.5",
        "user=<default> producer_byte_rate=4096.0",
        "user=alice,client-id=<default> consumer_byte_rate=2048.0",
    ]
    assert quotas(b, "user=alice") == ["user=alice,client-id=<default> consumer_byte_rate=2048.0"]
    assert quotas(b, "user=default") == ["user=<default> producer_byte_rate=4096.0"]
    assert quotas(b, "client-id=any") == [
        "client-id=app producer_byte_rate=1024.0 request_percentage=12.5",
        "user=alice,client-id=<default> consumer_byte_rate=2048.0",
    ]

    # Bad input: Kafka's INVALID_REQUEST, nothing changed.
    before = quotas(b)
    for entity, op in [("client-id=x", "producer_byte_rate=-5"),
                       ("client-id=x", "producer_byte_rate=10.5"),
                       ("client-id=x", "retention.ms=5"),
                       ("ip=10.0.0.1", "connection_creation_rate=5")]:
        assert admin_probe(b, "quotas-alter", entity, op) == ["InvalidRequestException"], (entity, op)
    assert quotas(b) == before

    # The quotas as Kafka 2.2.1's tools read them from ZooKeeper.
    zk = KazooClient(hosts=raftka.zk_hosts, timeout=10)
    zk.start()
    try:
        assert "app" in zk.get_children("/config/clients")
        data, _ = zk.get("/config/clients/app")
        assert json.loads(data)["config"] == {"producer_byte_rate": "1024",
                                              "request_percentage": "12.5"}
        assert {"<default>", "alice"} <= set(zk.get_children("/config/users"))
        assert zk.get_children("/config/users/alice/clients") == ["<default>"]
        data, _ = zk.get("/config/users/alice/clients/<default>")
        assert json.loads(data)["config"] == {"consumer_byte_rate": "2048"}

        # What 2.2.1's kafka-configs.sh --zookeeper writes: create (parents made on the way,
        # as KafkaZkClient.createRecursive does), then setData, then a change notification.
        cfg = {"version": 1, "config": {"producer_byte_rate": "8192"}}
        zk.create("/config/users/bob%40corp/clients/tool", json.dumps(cfg).encode(),
                  makepath=True)
        zk.create("/config/changes/config_change_",
                  json.dumps({"version": 2, "entity_path": "users/bob%40corp/clients/tool"})
                  .encode(), sequence=True)
        zk.create("/config/clients/zkc", json.dumps(cfg).encode())
        assert "user=bob@corp,client-id=tool producer_byte_rate=8192.0" in quotas(b)
        assert "client-id=zkc producer_byte_rate=8192.0" in quotas(b)
        cfg["config"] = {"consumer_byte_rate": "100"}
        zk.set("/config/clients/zkc", json.dumps(cfg).encode())
        assert "client-id=zkc consumer_byte_rate=100.0" in quotas(b)
        # A user's own znode carries its quotas beside anything else.
        cfg["config"] = {"producer_byte_rate": "300"}
        zk.set("/config/users/alice", json.dumps(cfg).encode())
        assert "user=alice producer_byte_rate=300.0" in quotas(b)
        # Bad values are refused and change nothing.
        for bad in ("-1", "1.5", "lots"):
            with pytest.raises(BadArgumentsError):
                zk.set("/config/clients/zkc",
                       json.dumps({"version": 1, "config": {"consumer_byte_rate": bad}}).encode())
        with pytest.raises(BadArgumentsError):
            zk.set("/config/clients/zkc",
                   json.dumps({"version": 1, "config": {"segment.ms": "1"}}).encode())
        assert "client-id=zkc consumer_byte_rate=100.0" in quotas(b)
        # Emptied by the tool (--delete-config): the entity is gone.
        zk.set("/config/clients/zkc", json.dumps({"version": 1, "config": {}}).encode())
        assert not any(line.startswith("client-id=zkc") for line in quotas(b))
    finally:
        zk.stop()
        zk.close()
    for entity, key in [("client-id=app", "producer_byte_rate"),
                        ("client-id=app", "request_percentage"),
                        ("user=alice,client-id=<default>", "consumer_byte_rate"),
                        ("user=<default>", "producer_byte_rate"),
                        ("user=alice", "producer_byte_rate"),
                        ("user=bob@corp,client-id=tool", "producer_byte_rate")]:
        assert admin_probe(b, "quotas-alter", entity, f"{key}=remove") == ["ok"]
    assert quotas(b) == []


class Meter:
    """Bytes delivered, from delivery / consume callbacks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.total += n


def produce_for(bootstrap: str, topic: str, client_id: str, seconds: float, meter: Meter,
                throttles: list[int], value: bytes) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "acks": 1,
                  "linger.ms": 5, "batch.size": 64 * KB, "queue.buffering.max.kbytes": 256,
                  "compression.type": "none",
                  "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})

    def done(err, msg):
        if err is None:
            meter.add(len(msg.value()))

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            p.produce(topic, value, on_delivery=done)
            p.poll(0)
        except BufferError:
            p.poll(0.05)
    p.flush(30)


def test_byte_rate_quotas_are_enforced(raftka):
    """Produce and fetch quotas hold their clients near the quota over a 24 s run (within a
    factor of 2 of quota × run, allowing one window's burst); the same clients without a
    quota run many times faster.

    Kafka's rate is the sum of the last 11 one-second samples over at least 10 s, so a client
    that starts (or whose burst leaves the window) sends about quota × 10 s at once and is then
    held back until that burst ages out: the pace comes in waves one window long. A rate over
    any 11 s slice depends on where a wave falls; only the run's total is a fair measure."""
    b = raftka.bootstrap
    topic = unique_name("quota")
    backlog = unique_name("backlog")
    create_topic(b, topic, partitions=1, rf=1)
    create_topic(b, backlog, partitions=1, rf=1)
    value = b"v" * 1000

    # A backlog for the consumer, written by a client without a quota: the unthrottled pace.
    fast = Meter()
    produce_for(b, backlog, "unlimited", 3.0, fast, [], value)
    fast_rate = fast.total / 3.0
    assert fast.total >= 3 * 1000 * KB, fast.total
    assert fast_rate > 8 * PRODUCE_QUOTA, fast_rate

    assert admin_probe(b, "quotas-alter", "client-id=slow-producer",
                       f"producer_byte_rate={PRODUCE_QUOTA}") == ["ok"]
    assert admin_probe(b, "quotas-alter", "client-id=slow-consumer",
                       f"consumer_byte_rate={FETCH_QUOTA}") == ["ok"]

    run_s = 24.0
    prod_meter, prod_throttles = Meter(), []
    producer = threading.Thread(target=produce_for, args=(b, topic, "slow-producer", run_s,
                                                          prod_meter, prod_throttles, value))
    cons_meter, cons_throttles = Meter(), []
    c = Consumer({"bootstrap.servers": b, "group.id": unique_name("g"),
                  "client.id": "slow-consumer", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.max.bytes": 64 * KB,
                  "message.max.bytes": 32 * KB,
                  "max.partition.fetch.bytes": 64 * KB,
                  "throttle_cb": lambda ev: cons_throttles.append(ev.throttle_time)})
    c.subscribe([backlog])
    producer.start()
    end = time.monotonic() + run_s
    while time.monotonic() < end:
        for m in c.consume(100, 0.2):
            if m.error() is None:
                cons_meter.add(len(m.value()))
    c.close()
    producer.join(60)

    prod_rate = prod_meter.total / run_s
    cons_rate = cons_meter.total / run_s
    print(f"unthrottled {fast_rate / KB:.0f} KiB/s; producer {prod_rate / KB:.0f} KiB/s "
          f"(quota {PRODUCE_QUOTA // KB}, {len(prod_throttles)} throttles); consumer "
          f"{cons_rate / KB:.0f} KiB/s (quota {FETCH_QUOTA // KB}, {len(cons_throttles)} throttles)")
    assert prod_throttles and max(prod_throttles) > 0
    assert cons_throttles and max(cons_throttles) > 0
    # At least half the quota over the run, at most twice quota × (run + the first window).
    for total, quota in [(prod_meter.total, PRODUCE_QUOTA), (cons_meter.total, FETCH_QUOTA)]:
        assert 0.5 * quota * run_s <= total <= 2.0 * quota * (run_s + 11), (total, quota)

    # The throttles are counted on /metrics.
    text = urllib.request.urlopen(f"{raftka.http_url}/metrics", timeout=10).read().decode()
    throttled = [line for line in text.splitlines()
                 if line.startswith("raftka_kafka_quota_throttled_requests_total ")]
    assert throttled and float(throttled[0].split()[1]) > 0

    # Removing the quota lets the client run at full speed again.
    assert admin_probe(b, "quotas-alter", "client-id=slow-producer",
                       "producer_byte_rate=remove") == ["ok"]
    again = Meter()
    produce_for(b, topic, "slow-producer", 3.0, again, [], value)
    assert again.total / 3.0 > 4 * PRODUCE_QUOTA, again.total

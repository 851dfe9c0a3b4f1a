"""Partition reassignment on a real 4-node cluster (issue 21): replicas really move — the new
replica is added, catches up and joins the ISR, leadership moves off a removed leader, the
removed replica's data is deleted — under steady acks=all load with nothing acknowledged
lost; through Kafka's Java Admin client (AlterPartitionReassignments /
ListPartitionReassignments, kafka-clients 4.3.0) and through the znode Kafka 2.2.1's
`kafka-reassign-partitions.sh --zookeeper --execute` writes; cancelled half-way; held back by
a replication throttle. The same cluster answers the Java client's DescribeTopicPartitions
(paginated) and DescribeQuorum."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from cluster_util import (ContinuousProducer, admin, admin_probe, check_log, create_topic, drain,
                          partitions_meta, wait_brokers)
from raftka_harness import unique_name, wait_until

FAST = ("-o", "replica.lag.time.max.ms=2000", "-o", "broker.session.timeout.ms=2000",
        "-o", "broker.heartbeat.interval.ms=300", "-o", "auto.leader.rebalance.enable=false")


def probe(bootstrap: str, *args: str) -> list[str]:
    return admin_probe(bootstrap, *args)


def ongoing(bootstrap: str) -> dict[tuple[str, int], dict[str, str]]:
    out = {}
    for line in probe(bootstrap, "list"):
        topic, p, *kvs = line.split(" ")
        out[(topic, int(p))] = dict(kv.split("=", 1) for kv in kvs)
    return out


def hosted(bootstrap: str, broker: int) -> dict[tuple[str, int], int]:
    """The replicas DescribeLogDirs reports on `broker`, with their sizes."""
    out = {}
    for line in probe(bootstrap, "logdirs", str(broker)):
        topic, p, size = line.split(" ")
        out[(topic, int(p))] = int(size)
    return out


def replicas_isr(bootstrap: str, topic: str, p: int) -> tuple[list[int], list[int], int]:
    m = partitions_meta(bootstrap, topic)[p]
    return list(m.replicas), sorted(m.isrs), m.leader


def fill(bootstrap: str, topic: str, partition: int, n: int, size: int) -> None:
    prod = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    for i in range(n):
        prod.produce(topic, value=bytes([i % 251]) * size, partition=partition)
        if i % 500 == 0:
            prod.poll(0)
    assert prod.flush(60) == 0


def check_quorum(lines: list[str]) -> None:
    """The DescribeQuorum of a healthy 4-voter quorum: a leader among the voters, every
    voter's log end at most the leader's, and the leader's (and any caught-up voter's)
    timestamps recent."""
    head = dict(kv.split("=") for kv in lines[0].split(" "))
    leader, hw = int(head["leader"]), int(head["hw"])
    assert int(head["epoch"]) >= 1 and hw > 0, lines
    voters = {}
    for ln in lines[1:]:
        kind, node, *kvs = ln.split(" ")
        assert kind == "voter", lines
        voters[int(node)] = {k: int(v) for k, v in (kv.split("=") for kv in kvs)}
    assert sorted(voters) == [1, 2, 3, 4] and leader in voters, lines
    now_ms = time.time() * 1000
    assert voters[leader]["leo"] >= hw, lines
    assert abs(voters[leader]["fetch"] - now_ms) < 30_000, lines
    for v in voters.values():
        assert 0 < v["leo"] <= voters[leader]["leo"], lines
        if v["caughtup"] != -1:
            assert abs(v["caughtup"] - now_ms) < 30_000, lines


@pytest.mark.timeout(300)
@pytest.mark.cluster_args(*FAST)
def test_reassignment_moves_replicas_under_load_and_through_the_znode(cluster4):
    boot = cluster4.bootstrap
    wait_brokers(boot, 4)
    topic = unique_name("move")
    create_topic(boot, topic, assignment=[[1, 2, 3], [1, 2, 3]])
    wait_until(lambda: all(replicas_isr(boot, topic, p)[1] == [1, 2, 3] for p in (0, 1)), 30,
               "full ISR")
    load = ContinuousProducer(boot, topic, 2, rate=500).start()
    load.wait_progress(500, 30, "before the move")
    assert (topic, 0) in hosted(boot, 1)

    # Bad input first: unknown broker, duplicates, nothing to cancel, unknown partition.
    got = probe(boot, "alter", topic, "0=1,9", "1=2,2,3", "7=1,2,3")
    assert sorted(got) == ["0 InvalidReplicaAssignmentException",
                           "1 InvalidReplicaAssignmentException",
                           "7 UnknownTopicOrPartitionException"], got
    assert probe(boot, "alter", topic, "0=cancel") == ["0 NoReassignmentInProgressException"]

    # {1,2,3} -> {2,3,4}: node 1 leads partition 0 and leaves it.
    assert replicas_isr(boot, topic, 0)[2] == 1
    assert probe(boot, "alter", topic, "0=2,3,4") == ["0 ok"]
    wait_until(lambda: replicas_isr(boot, topic, 0)[:2] == ([2, 3, 4], [2, 3, 4]), 60,
               "partition 0 on {2,3,4}")
    assert replicas_isr(boot, topic, 0)[2] in (2, 3, 4)
    wait_until(lambda: (topic, 0) not in ongoing(boot), 10, "no longer listed")
    load.wait_progress(500, 60, "after the move")
    # The data left node 1 (DescribeLogDirs on node 1 no longer lists the replica); node 4
    # holds it.
    wait_until(lambda: (topic, 0) not in hosted(boot, 1), 30, "replica gone from node 1")
    assert (topic, 1) in hosted(boot, 1)
    assert (topic, 0) in hosted(boot, 4)

    # The same through the 2.2.1 tool's znode: partition 1 -> {4,1,2}; the controller carries
    # it out and deletes the znode (so --verify reports completion and the next run works).
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=cluster4.zk_hosts, timeout=10)
    zk.start()
    try:
        req = {"version": 1, "partitions": [
            {"topic": topic, "partition": 1, "replicas": [4, 1, 2], "log_dirs": ["any"] * 3}]}
        zk.create("/admin/reassign_partitions", json.dumps(req).encode())
        wait_until(lambda: zk.exists("/admin/reassign_partitions") is None, 60,
                   "the reassignment carried out and the znode removed")
        assert replicas_isr(boot, topic, 1)[:2] == ([4, 1, 2], [1, 2, 4])
        # What --verify reads: the topic's assignment znode shows the target.
        data, _ = zk.get(f"/brokers/topics/{topic}")
        assert json.loads(data)["partitions"]["1"] == [4, 1, 2]
    finally:
        zk.stop()
        zk.close()
    # What the Java 4.x tools show of the same cluster: DescribeTopicPartitions (KIP-966),
    # one partition per page, and DescribeQuorum (kafka-metadata-quorum.sh describe).
    got = probe(boot, "topics", "1", topic)
    assert [ln.split(" replicas=")[1] for ln in got] == ["2,3,4 isr=2,3,4", "4,1,2 isr=1,2,4"], got
    check_quorum(probe(boot, "quorum"))
    load.wait_progress(300, 60, "after the znode move")
    assert load.stop() == 0
    assert not load.failed, load.failed[:5]
    check_log(drain(boot, topic, 2), load.acked)
    wait_until(lambda: (topic, 1) not in hosted(boot, 3), 30, "partition 1 gone from node 3")


@pytest.mark.timeout(300)
@pytest.mark.cluster_args(*FAST)
def test_a_throttled_reassignment_holds_and_is_cancelled(cluster4):
    """With Kafka's throttle configs (what `--throttle` writes), an added replica catches up at
    about the throttled rate: ~4 MB at 200 kB/s cannot be copied within the first seconds
    (unthrottled it takes well under one). Cancelled half-way, the partition returns to its
    original replicas and the added replica's data is deleted."""
    boot = cluster4.bootstrap
    wait_brokers(boot, 4)
    topic = unique_name("throttled")
    create_topic(boot, topic, assignment=[[1, 2, 3]])
    wait_until(lambda: replicas_isr(boot, topic, 0)[1] == [1, 2, 3], 30, "full ISR")
    fill(boot, topic, 0, 4000, 1000)
    a = admin(boot)
    rate = "200000"
    brokers = [ConfigResource("broker", str(b), incremental_configs=[
        ConfigEntry("leader.replication.throttled.rate", rate,
                    incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("follower.replication.throttled.rate", rate,
                    incremental_operation=AlterConfigOpType.SET)]) for b in (1, 2, 3, 4)]
    t = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("leader.replication.throttled.replicas", "0:1,0:2,0:3",
                    incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("follower.replication.throttled.replicas", "0:4",
                    incremental_operation=AlterConfigOpType.SET)])
    for res in brokers + [t]:  # one broker resource per call (librdkafka's rule)
        for f in a.incremental_alter_configs([res]).values():
            f.result(30)
    time.sleep(1)  # every node applies the image with the new configs
    t0 = time.monotonic()
    assert probe(boot, "alter", topic, "0=1,2,3,4") == ["0 ok"]
    got = ongoing(boot)
    assert got[(topic, 0)] == {"replicas": "1,2,3,4", "adding": "4", "removing": ""}, got
    time.sleep(3)
    held = time.monotonic() - t0
    assert replicas_isr(boot, topic, 0)[1] == [1, 2, 3], "the throttle held node 4 back"
    size4 = hosted(boot, 4).get((topic, 0), 0)
    assert 0 < size4 < 4_000_000, f"node 4 copied {size4} bytes in {held:.1f} s"
    # Cancel half-way: back to {1,2,3}; node 4's copy is deleted.
    assert probe(boot, "alter", topic, "0=cancel") == ["0 ok"]
    wait_until(lambda: (topic, 0) not in ongoing(boot), 10, "cancelled")
    assert replicas_isr(boot, topic, 0)[:2] == ([1, 2, 3], [1, 2, 3])
    wait_until(lambda: (topic, 0) not in hosted(boot, 4), 30, "node 4's copy deleted")
    # Without the throttle the same move completes at once.
    for f in a.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("follower.replication.throttled.replicas", "",
                        incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry("leader.replication.throttled.replicas", "",
                        incremental_operation=AlterConfigOpType.DELETE)])]).values():
        f.result(30)
    time.sleep(1)
    assert probe(boot, "alter", topic, "0=1,2,3,4") == ["0 ok"]
    wait_until(lambda: replicas_isr(boot, topic, 0)[:2] == ([1, 2, 3, 4], [1, 2, 3, 4]), 30,
               "unthrottled move done")
    # Consumer lag on /metrics: a group that committed offset 1000 of the 4000 records, whose
    # coordinator is not the partition's leader (so the high watermark comes from the leader
    # over ReplicaService.Offsets). Summed over every node, the group appears once.
    leader = replicas_isr(boot, topic, 0)[2]
    for attempt in range(20):
        group = unique_name("lagging")
        c = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False})
        c.commit(offsets=[TopicPartition(topic, 0, 1000)], asynchronous=False)
        c.close()
        desc = a.describe_consumer_groups([group])[group].result(30)
        if desc.coordinator.id != leader:
            break
    else:
        pytest.fail("every group landed on the leader's coordinator")
    series = f'raftka_consumer_group_lag{{group="{group}",topic="{topic}",partition="0"}} '

    def lag_on_metrics() -> list[int]:
        found = []
        for n in cluster4.nodes:
            with urllib.request.urlopen(n.http_url + "/metrics", timeout=10) as r:
                body = r.read().decode()
            found += [int(ln.rsplit(" ", 1)[1]) for ln in body.splitlines() if ln.startswith(series)]
        return found

    wait_until(lambda: lag_on_metrics() == [3000], 30, "the group's lag on one node's /metrics")

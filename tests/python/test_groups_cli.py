"""`raftka groups` (issue 21), what `kafka-consumer-groups.sh --bootstrap-server` offers, on a
real 3-node cluster where the group's coordinator and the partitions' leaders are spread over
the nodes: list, describe with lag (committed offsets from the coordinator, log end offsets
from the leaders, the members' assignments), reset-offsets with Kafka's strategies (a dry run
unless --execute; refused while the group has active members), delete."""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster_util import FAST, create_topic, wait_brokers
from raftka_harness import unique_name, wait_until


def groups(binary, boot: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(binary), "groups", "--bootstrap-server", boot.split(",")[0], *args],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, f"raftka groups {args}: {out.stderr}"
    return out


def rows(out: str, group: str) -> dict[tuple[str, int], list[str]]:
    """The describe table's rows: (topic, partition) -> the remaining columns."""
    got = {}
    for ln in out.splitlines():
        f = ln.split(" ")
        if f[0] == group and len(f) >= 9 and f[2].isdigit():
            got[(f[1], int(f[2]))] = f[3:]
    return got


def committed(boot: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": boot, "group.id": group})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return [tp.offset for tp in got]
    finally:
        c.close()


@pytest.mark.timeout(240)
@pytest.mark.cluster_args(*FAST)
def test_list_describe_reset_and_delete(cluster, raftka_binary):
    boot = cluster.bootstrap
    wait_brokers(boot)
    topic, group = unique_name("gcli"), unique_name("gcli-group")
    create_topic(boot, topic, 3, 3)
    p = Producer({"bootstrap.servers": boot, "acks": "all"})
    t0 = int(time.time() * 1000)
    for i in range(300):
        p.produce(topic, value=f"v{i}".encode(), partition=i % 3)
    assert p.flush(30) == 0
    # Committed 10, 20, 30 of 100 per partition; no active member.
    c = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, i, 10 * (i + 1)) for i in range(3)], asynchronous=False)
    c.close()

    assert group in groups(raftka_binary, boot, "list").stdout.split()
    d = groups(raftka_binary, boot, "describe", "--group", group).stdout
    assert "has no active members" in d, d
    assert {k: v[:3] for k, v in rows(d, group).items()} == {
        (topic, 0): ["10", "100", "90"], (topic, 1): ["20", "100", "80"],
        (topic, 2): ["30", "100", "70"]}, d

    # Dry run: nothing changes.
    r = groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", topic,
               "--to-earliest").stdout
    assert f"{group} {topic} 0 0" in r and "dry run" in r, r
    assert committed(boot, group, topic, 3) == [10, 20, 30]
    # Strategies, executed.
    groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", f"{topic}:0,2",
           "--to-offset", "55", "--execute")
    assert committed(boot, group, topic, 3) == [55, 20, 55]
    groups(raftka_binary, boot, "reset-offsets", "--group", group, "--all-topics",
           "--shift-by", "-50", "--execute")
    assert committed(boot, group, topic, 3) == [5, 0, 5], "clamped at the log start"
    groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", topic,
           "--to-offset", "1000", "--execute")
    assert committed(boot, group, topic, 3) == [100, 100, 100], "clamped at the log end"
    groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", topic,
           "--to-datetime", time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 / 1000 - 60)) + "Z",
           "--execute")
    assert committed(boot, group, topic, 3) == [0, 0, 0], "every record is newer"
    groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", topic,
           "--by-duration", "PT0S", "--execute")
    assert committed(boot, group, topic, 3) == [100, 100, 100], "no record newer than now"
    bad = groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", topic,
                 "--to-earliest", "--to-latest", check=False)
    assert bad.returncode != 0

    # An active member: described with its assignment; resets are refused.
    member = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False,
                       "auto.offset.reset": "earliest", "client.id": "lagmeter"})
    member.subscribe([topic])
    try:
        wait_until(lambda: (member.poll(0.2), len(member.assignment()) == 3)[1], 30, "assigned")
        d = groups(raftka_binary, boot, "describe", "--group", group).stdout
        assert "STATE Stable" in d, d
        assert all(v[-1] == "lagmeter" for v in rows(d, group).values()), d
        refused = groups(raftka_binary, boot, "reset-offsets", "--group", group, "--topic", topic,
                         "--to-earliest", "--execute", check=False)
        assert refused.returncode == 1 and "inactive" in refused.stderr, refused.stderr
        refused = groups(raftka_binary, boot, "delete", "--group", group, check=False)
        assert refused.returncode == 1 and "NonEmptyGroup" in refused.stderr, refused.stderr
    finally:
        member.close()

    out = groups(raftka_binary, boot, "delete", "--group", group).stdout
    assert "was successful" in out, out
    gone = groups(raftka_binary, boot, "describe", "--group", group, check=False)
    assert gone.returncode == 1 and "does not exist" in gone.stderr, gone.stderr
    assert group not in groups(raftka_binary, boot, "list").stdout.split()

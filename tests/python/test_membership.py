"""Changing the controller quorum on a real cluster (`raftka quorum ...`):

- a 4th node started with `--controller-quorum` listing the three existing voters waits (never
  bootstraps), is added with `raftka quorum add-voter` (learner, caught up, then voter),
  registers as a broker, and replicates an RF=3 topic whose explicit assignment includes it,
  both as partition leader and as follower (the others reach it through its registered
  node-to-node address: it is in none of their `controller.quorum.voters`);
- `raftka quorum remove-voter` of the leader: it steps down and stays a learner;
- `raftka quorum remove-voter` node 1 leaves 3 voters; with node 1 killed, topic create and
  delete through nodes 2-4 still work and the partition node 4 followed is served intact;
- the CLI's errors: exit 1 with a clear message.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster_util import FAST, admin, brokers, create_topic, full_isr, leaders, topic_names
from raftka_harness import unique_name, wait_until

CLI_TIMEOUT_S = 60


def quorum(binary, bootstrap: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(binary), "quorum", "--bootstrap", bootstrap, "--timeout-ms", "20000", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def describe(binary, bootstrap: str) -> dict:
    return json.loads(quorum(binary, bootstrap, "describe", "--json").stdout)


def raft_addr(node) -> str:
    return f"127.0.0.1:{node.raft_port}"


def produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 20000})
    errors = []
    for v in values:
        p.produce(topic, v, partition=partition,
                  on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert p.flush(30) == 0, "not all records delivered"
    assert not errors, errors


def consume(bootstrap: str, topic: str, partition: int, n: int, timeout: float = 30) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        got: list[bytes] = []

        def more():
            for m in c.consume(num_messages=n, timeout=1):
                if m.error() is None:
                    got.append(m.value())
            return len(got) >= n

        wait_until(more, timeout, f"{n} records of {topic}-{partition}", interval=0)
        return got
    finally:
        c.close()


@pytest.mark.timeout(240)
@pytest.mark.cluster_args(*FAST)
def test_add_voter_then_remove_voter(cluster, raftka_factory, raftka_binary):
    n1, n2, n3 = cluster.nodes
    quorum_arg = ",".join(f"{n.node_id}@{raft_addr(n)}" for n in cluster.nodes)
    n4 = raftka_factory(name="c4", start=False, node_id=4)
    n4.extra_args = ["--controller-quorum", quorum_arg, *FAST]

    wait_until(lambda: brokers(n1.bootstrap) >= {1, 2, 3}, 30, "3 brokers")
    before = describe(raftka_binary, raft_addr(n2))
    assert sorted(v["node_id"] for v in before["voters"]) == [1, 2, 3]
    assert before["learners"] == []

    # Node 4 starts outside the quorum: it serves Kafka but neither bootstraps nor registers.
    n4.start()
    assert "outside the initial voters" in n4.log_text()
    assert 4 not in brokers(n1.bootstrap)

    # Added through a node that may not be the leader (the CLI follows the hint once).
    out = quorum(raftka_binary, raft_addr(n3), "add-voter", "--id", "4", "--addr", raft_addr(n4))
    assert "node 4 added as a voter; voters: 1, 2, 3, 4" in out.stdout, out.stdout
    after = describe(raftka_binary, raft_addr(n4))
    assert {v["node_id"]: v["addr"] for v in after["voters"]} == {
        1: raft_addr(n1), 2: raft_addr(n2), 3: raft_addr(n3), 4: raft_addr(n4)}
    table = quorum(raftka_binary, raft_addr(n1), "describe").stdout
    assert "NODE" in table and raft_addr(n4) in table, table
    # Adding it again is a no-op.
    again = quorum(raftka_binary, raft_addr(n1), "add-voter", "--id", "4", "--addr", raft_addr(n4))
    assert "already a voter" in again.stdout

    # Node 4 registers as a broker once it knows the leader.
    wait_until(lambda: 4 in brokers(n1.bootstrap) and 4 in brokers(n4.bootstrap), 30,
               "node 4 registered")

    # Partition 0 led by node 4 (fetched from by nodes 1 and 2), partition 1 followed by it.
    topic = unique_name("joined")
    create_topic(n4.bootstrap, topic, assignment=[[4, 1, 2], [1, 4, 3]])
    wait_until(lambda: full_isr(n1.bootstrap, topic, 2), 30, "ISR of 3 on both partitions")
    wait_until(lambda: leaders(n1.bootstrap, topic) == {0: 4, 1: 1}, 30, "preferred leaders")
    values = {p: [f"{p}-{i}".encode() for i in range(50)] for p in (0, 1)}
    boot = ",".join(n.bootstrap for n in (n1, n2, n3, n4))
    for p, vs in values.items():
        produce(boot, topic, p, vs)
    assert consume(n4.bootstrap, topic, 0, 50) == values[0]
    # Every replica, node 4 included, stays in sync after the writes.
    wait_until(lambda: full_isr(n2.bootstrap, topic, 2), 30, "ISR of 3 after producing")

    # Node 1 leaves the quorum; the others keep going without it.
    out = quorum(raftka_binary, raft_addr(n4), "remove-voter", "--id", "1")
    assert "node 1 removed from the voters" in out.stdout, out.stdout
    assert out.stdout.rstrip().endswith("voters: 2, 3, 4"), out.stdout
    assert "it stays a learner" in out.stdout, out.stdout
    d = describe(raftka_binary, raft_addr(n2))
    assert sorted(v["node_id"] for v in d["voters"]) == [2, 3, 4]
    assert d["leader_id"] in (2, 3, 4)
    # It stays a learner, so its broker keeps following the metadata log (a KRaft observer)
    # instead of serving a frozen image: a topic created afterwards shows up on node 1.
    assert [v["node_id"] for v in d["learners"]] == [1], (d, out.stdout)
    seen_by_observer = unique_name("observer")
    create_topic(n2.bootstrap, seen_by_observer, 1, 3)
    wait_until(lambda: seen_by_observer in topic_names(n1.bootstrap), 20,
               "a topic created after the removal visible on node 1")
    # A voter cannot be taken out of the membership directly.
    proc = quorum(raftka_binary, raft_addr(n2), "remove-node", "--id", "2", check=False)
    assert proc.returncode == 1 and "node 2 is a voter" in proc.stderr, proc.stderr

    n1.kill()
    survivors = [n2, n3, n4]
    wait_until(lambda: 1 not in brokers(n2.bootstrap), 30, "node 1 fenced")
    # Partition 1 moves to node 4 or 3 and the follower copy serves every record.
    wait_until(lambda: leaders(n3.bootstrap, topic)[1] in (3, 4), 30, "partition 1 moved off node 1")
    assert consume(n4.bootstrap, topic, 1, 50) == values[1]

    for via in survivors:
        t = unique_name(f"after-{via.node_id}")
        create_topic(via.bootstrap, t, 2, 3)
        wait_until(lambda: t in topic_names(n2.bootstrap) and t in topic_names(n4.bootstrap),
                   20, f"{t} visible")
        produce(via.bootstrap, t, 0, [b"x"])
        client = admin(via.bootstrap)  # kept alive until the future resolves
        client.delete_topics([t], operation_timeout=15)[t].result(20)
        wait_until(lambda: t not in topic_names(n3.bootstrap), 20, f"{t} deleted")

    # The removed node is not a voter any more; removing it again is refused.
    proc = quorum(raftka_binary, raft_addr(n2), "remove-voter", "--id", "1", check=False)
    assert proc.returncode == 1
    assert "node 1 is not a voter" in proc.stderr, proc.stderr
    # Decommissioned: the learner is taken out of the membership.
    out = quorum(raftka_binary, raft_addr(n3), "remove-node", "--id", "1")
    assert "node 1 removed from the membership" in out.stdout, out.stdout
    d = describe(raftka_binary, raft_addr(n2))
    assert d["learners"] == [] and sorted(v["node_id"] for v in d["voters"]) == [2, 3, 4]
    proc = quorum(raftka_binary, raft_addr(n2), "remove-node", "--id", "1", check=False)
    assert proc.returncode == 1 and "node 1 is not a member" in proc.stderr, proc.stderr


def test_removing_the_leader_keeps_it_as_a_learner(cluster, raftka_binary):
    """The leader leaves the membership to step down, then is added back as a learner through
    its successor. While it steps down it must not take that request itself: an entry it
    appends then is lost with its leadership, and the node would silently stay out."""
    nodes = {n.node_id: n for n in cluster.nodes}
    wait_until(lambda: brokers(cluster.nodes[0].bootstrap) >= {1, 2, 3}, 30, "3 brokers")
    boot = ",".join(raft_addr(n) for n in cluster.nodes)
    leader = describe(raftka_binary, raft_addr(cluster.nodes[0]))["leader_id"]
    others = sorted(set(nodes) - {leader})
    # Asked through the leader itself, the case where the CLI's next calls reach it first.
    out = quorum(raftka_binary, raft_addr(nodes[leader]), "remove-voter", "--id", str(leader))
    assert f"node {leader} removed from the voters" in out.stdout, out.stdout
    assert "it stays a learner" in out.stdout, out.stdout
    d = describe(raftka_binary, raft_addr(nodes[others[0]]))
    assert sorted(v["node_id"] for v in d["voters"]) == others, d
    assert [v["node_id"] for v in d["learners"]] == [leader], d
    assert d["leader_id"] in others, d
    # The old leader follows the metadata log as an observer.
    t = unique_name("after-leader-left")
    create_topic(nodes[others[1]].bootstrap, t, 1, 3)
    wait_until(lambda: t in topic_names(nodes[leader].bootstrap), 20,
               "a topic created afterwards visible on the old leader")


def test_quorum_cli_errors(raftka, raftka_binary):
    """A single node is its own quorum: describe works, the last voter cannot be removed, an
    unknown node cannot become a voter without an address that answers, and an unreachable
    bootstrap is a clear error."""
    boot = f"127.0.0.1:{raftka.raft_port}"
    d = describe(raftka_binary, boot)
    assert [v["node_id"] for v in d["voters"]] == [1] and d["leader_id"] == 1

    proc = quorum(raftka_binary, boot, "remove-voter", "--id", "1", check=False)
    assert proc.returncode == 1 and "last voter" in proc.stderr, proc.stderr

    proc = subprocess.run([str(raftka_binary), "quorum", "--bootstrap", boot, "--timeout-ms", "1500",
                           "add-voter", "--id", "9", "--addr", "127.0.0.1:1"],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 1, proc.stdout
    assert "did not catch up" in proc.stderr or "DeadlineExceeded" in proc.stderr, proc.stderr
    # The stuck learner does not block describe, and is listed as a learner.
    d = describe(raftka_binary, boot)
    assert [v["node_id"] for v in d["voters"]] == [1]
    assert [v["node_id"] for v in d["learners"]] == [9], d
    # ... and `remove-node` takes it out again.
    quorum(raftka_binary, boot, "remove-node", "--id", "9")
    assert describe(raftka_binary, boot)["learners"] == []

    proc = quorum(raftka_binary, "127.0.0.1:1", "describe", check=False)
    assert proc.returncode == 1 and "cannot connect to 127.0.0.1:1" in proc.stderr, proc.stderr

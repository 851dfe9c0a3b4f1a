"""Kafka 2.2 tools (`kafka-topics.sh --zookeeper`, `kafka-configs.sh --zookeeper`,
`kafka-preferred-replica-election.sh --zookeeper`) replayed at the wire level: each test opens one session, sends exactly the op sequence recorded in
`zookeeper-facade.md` §2, checks the recorded answers, closes the session, and then checks the
effect through the Kafka protocol (kafka-python's admin client)."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from cluster_util import FAST, full_isr, leaders, partitions_meta, wait_brokers
from raftka_harness import unique_name, wait_until
import zk_wire as w


@pytest.fixture(scope="module")
def admin(raftka):
    client = KafkaAdminClient(bootstrap_servers=[raftka.bootstrap], request_timeout_ms=15000)
    yield client
    client.close()


def tool(raftka, chroot: str = "") -> w.ZkWire:
    host, port = raftka.zk_hosts.split(":")
    s = w.ZkWire(host, int(port), timeout_ms=30000)
    assert s.timeout_ms == 30000 and s.session_id != 0
    s.chroot = chroot
    return s


def P(s, path):  # the client prefixes the chroot to every path
    return s.chroot + path


def brokers(s) -> dict:
    err, res = s.get_children2(P(s, "/brokers/ids"))
    assert err == w.OK
    out = {}
    for bid in res[0]:
        err, (data, _) = s.get_data(P(s, f"/brokers/ids/{bid}"))
        assert err == w.OK
        out[int(bid)] = json.loads(data)
    return out


def create_topic(s, topic, assignment=None, partitions=1, rf=1, configs=None, if_not_exists=False):
    """TopicCommand.createTopic through AdminZkClient, as recorded (§2.1). Returns the output."""
    if assignment is None:
        live = brokers(s)
        assert len(live) >= rf, "Replication factor larger than available brokers"
        ids = sorted(live)
        assignment = {str(p): [ids[(p + r) % len(ids)] for r in range(rf)] for p in range(partitions)}
        for b in live.values():
            assert b["version"] == 4 and b["jmx_port"] == -1 and b["endpoints"][0].startswith("PLAINTEXT://")
    err, _ = s.exists(P(s, f"/brokers/topics/{topic}"))
    if err == w.OK:
        return "" if if_not_exists else f"Topic '{topic}' already exists."
    assert err == w.NONODE
    if "." in topic or "_" in topic:
        assert s.get_children2(P(s, "/brokers/topics"))[0] == w.OK
    cfg = json.dumps({"version": 1, "config": configs or {}}, separators=(",", ":")).encode()
    assert s.set_data(P(s, f"/config/topics/{topic}"), cfg)[0] == w.NONODE
    assert s.create(P(s, f"/config/topics/{topic}"), cfg) == (w.OK, P(s, f"/config/topics/{topic}"))
    data = json.dumps({"version": 1, "partitions": assignment}, separators=(",", ":")).encode()
    assert s.create(P(s, f"/brokers/topics/{topic}"), data) == (w.OK, P(s, f"/brokers/topics/{topic}"))
    return f"Created topic {topic}."


def list_topics(s) -> list[str]:
    err, res = s.get_children2(P(s, "/brokers/topics"))
    if err == w.NONODE:
        return []
    out = []
    for t in sorted(res[0]):
        marked = s.exists(P(s, f"/admin/delete_topics/{t}"))[0] == w.OK
        out.append(f"{t} - marked for deletion" if marked else t)
    return out


def describe(s, topic) -> list[str]:
    err, res = s.get_children2(P(s, "/brokers/topics"))
    assert err == w.OK and topic in res[0]
    live = brokers(s)
    err, (data, _) = s.get_data(P(s, f"/brokers/topics/{topic}"))
    assignment = json.loads(data)["partitions"]
    marked = s.exists(P(s, f"/admin/delete_topics/{topic}"))[0] == w.OK
    err, (cdata, _) = s.get_data(P(s, f"/config/topics/{topic}"))
    assert err == w.OK
    configs = json.loads(cdata)["config"]
    rf = len(next(iter(assignment.values())))
    cfg = ",".join(f"{k}={v}" for k, v in configs.items())
    lines = [f"Topic:{topic}\tPartitionCount:{len(assignment)}\tReplicationFactor:{rf}\tConfigs:{cfg}"
             + ("\tMarkedForDeletion:true" if marked else "")]
    for p in sorted(assignment, key=int):
        replicas = ",".join(map(str, assignment[p]))
        err, res = s.get_data(P(s, f"/brokers/topics/{topic}/partitions/{p}/state"))
        if err == w.NONODE:
            lines.append(f"\tTopic: {topic}\tPartition: {p}\tLeader: none\tReplicas: {replicas}\tIsr: ")
            continue
        state = json.loads(res[0])
        assert state["version"] == 1 and "controller_epoch" in state and "leader_epoch" in state
        leader = state["leader"] if state["leader"] in live else "none"
        lines.append(f"\tTopic: {topic}\tPartition: {p}\tLeader: {leader}\tReplicas: {replicas}\t"
                     f"Isr: {','.join(map(str, state['isr']))}")
    return lines


def alter_config(s, topic, add: dict, delete=()):
    """kafka-configs --alter / kafka-topics --alter --config (§2.4 steps 2-6)."""
    err, (data, _) = s.get_data(P(s, f"/config/topics/{topic}"))
    assert err == w.OK
    configs = json.loads(data)["config"]
    configs.update(add)
    for k in delete:
        configs.pop(k, None)
    assert s.exists(P(s, f"/brokers/topics/{topic}"))[0] == w.OK
    body = json.dumps({"version": 1, "config": configs}, separators=(",", ":")).encode()
    assert s.set_data(P(s, f"/config/topics/{topic}"), body)[0] == w.OK
    assert s.create(P(s, "/config/changes"), None)[0] == w.NODEEXISTS
    err, name = s.create(P(s, "/config/changes/config_change_"),
                         json.dumps({"version": 2, "entity_path": f"topics/{topic}"}).encode(),
                         mode=w.PERSISTENT_SEQUENTIAL)
    assert err == w.OK and name.startswith(P(s, "/config/changes/config_change_"))
    assert len(name.rsplit("_", 1)[1]) == 10
    return name


def alter_partitions(s, topic, count):
    assert s.get_children2(P(s, "/brokers/topics"))[0] == w.OK
    assert s.get_data(P(s, f"/config/topics/{topic}"))[0] == w.OK
    err, (data, _) = s.get_data(P(s, f"/brokers/topics/{topic}"))
    assignment = json.loads(data)["partitions"]
    live = sorted(brokers(s))
    if count <= len(assignment):
        return (f"The number of partitions for a topic can only be increased. Topic {topic} currently has "
                f"{len(assignment)} partitions, {count} would not be an increase.")
    for p in range(len(assignment), count):
        assignment[str(p)] = [live[p % len(live)]]
    body = json.dumps({"version": 1, "partitions": assignment}, separators=(",", ":")).encode()
    assert s.set_data(P(s, f"/brokers/topics/{topic}"), body)[0] == w.OK
    return "Adding partitions succeeded!"


def delete_topic(s, topic):
    err, res = s.get_children2(P(s, "/brokers/topics"))
    assert err == w.OK and topic in res[0]
    err, _ = s.create(P(s, f"/admin/delete_topics/{topic}"), None)
    if err == w.NODEEXISTS:
        return f"Topic {topic} is already marked for deletion."
    assert err == w.OK
    return f"Topic {topic} is marked for deletion."


def kafka_topic(admin, topic):
    (desc,) = admin.describe_topics([topic])
    return desc


def kafka_configs(admin, topic):
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {k: v["value"] for k, v in res["topic"][topic].items()}


def test_create_auto_and_duplicate_and_if_not_exists(raftka, admin):
    topic = unique_name("zt-auto")
    s = tool(raftka)
    assert create_topic(s, topic, partitions=3) == f"Created topic {topic}."
    assert s.close_session() == w.OK
    desc = kafka_topic(admin, topic)
    assert desc["error_code"] == 0 and len(desc["partitions"]) == 3
    s = tool(raftka)
    assert create_topic(s, topic) == f"Topic '{topic}' already exists."
    assert create_topic(s, topic, if_not_exists=True) == ""
    s.close_session()


def test_create_with_assignment_and_config_then_describe(raftka, admin):
    topic = unique_name("zt_cfg")
    node = raftka.node_id
    s = tool(raftka)
    out = create_topic(s, topic, assignment={"0": [node], "1": [node]},
                       configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
    assert out == f"Created topic {topic}."
    s.close_session()
    desc = kafka_topic(admin, topic)
    assert [p["replica_nodes"] for p in sorted(desc["partitions"], key=lambda p: p.get("partition_index", p.get("partition", 0)))] == [[node], [node]]
    cfg = kafka_configs(admin, topic)
    assert cfg["retention.ms"] == "3600000" and cfg["cleanup.policy"] == "compact"
    s = tool(raftka)
    lines = describe(s, topic)
    s.close_session()
    assert lines[0] == (f"Topic:{topic}\tPartitionCount:2\tReplicationFactor:1\t"
                        "Configs:cleanup.policy=compact,retention.ms=3600000")
    assert lines[1] == f"\tTopic: {topic}\tPartition: 0\tLeader: {node}\tReplicas: {node}\tIsr: {node}"
    assert lines[2] == f"\tTopic: {topic}\tPartition: 1\tLeader: {node}\tReplicas: {node}\tIsr: {node}"


def test_alter_config_and_partitions(raftka, admin):
    topic = unique_name("zt-alter")
    s = tool(raftka)
    create_topic(s, topic, partitions=1, configs={"retention.ms": "1000"})
    s.close_session()
    s = tool(raftka)
    first = alter_config(s, topic, {"segment.ms": "600000"}, delete=["retention.ms"])
    second = alter_config(s, topic, {"retention.ms": "7200000"})
    assert int(second.rsplit("_", 1)[1]) == int(first.rsplit("_", 1)[1]) + 1
    s.close_session()
    cfg = kafka_configs(admin, topic)
    assert cfg["segment.ms"] == "600000" and cfg["retention.ms"] == "7200000"
    s = tool(raftka)
    assert alter_partitions(s, topic, 1).startswith("The number of partitions for a topic can only be increased.")
    assert alter_partitions(s, topic, 4) == "Adding partitions succeeded!"
    s.close_session()
    assert len(kafka_topic(admin, topic)["partitions"]) == 4
    # kafka-configs --describe reads only the config node
    s = tool(raftka)
    err, (data, _) = s.get_data(f"/config/topics/{topic}")
    s.close_session()
    assert json.loads(data) == {"version": 1, "config": {"retention.ms": "7200000", "segment.ms": "600000"}}


def test_list_and_delete(raftka, admin):
    topic = unique_name("zt-del")
    s = tool(raftka)
    create_topic(s, topic)
    assert topic in list_topics(s)
    assert delete_topic(s, topic) == f"Topic {topic} is marked for deletion."
    s.close_session()
    wait_until(lambda: topic not in admin.list_topics(), 10, "topic deleted through the marker")
    s = tool(raftka)
    wait_until(lambda: s.exists(f"/admin/delete_topics/{topic}")[0] == w.NONODE, 10, "marker removed")
    assert all(not line.startswith(topic) for line in list_topics(s))
    assert s.exists(f"/config/topics/{topic}")[0] == w.NONODE
    s.close_session()


def test_marked_for_deletion_is_listed_while_pending(raftka, admin):
    """A marker for a topic that is still there lists as marked; a second marker is NODEEXISTS."""
    topic = unique_name("zt-mark")
    s = tool(raftka)
    create_topic(s, topic)
    # Write the marker and read it back in the same burst, before the janitor's next sweep.
    assert s.create(f"/admin/delete_topics/{topic}", None)[0] == w.OK
    listed = list_topics(s)
    again = s.create(f"/admin/delete_topics/{topic}", None)[0]
    s.close_session()
    if f"{topic} - marked for deletion" not in listed:
        pytest.skip("the deletion finished before the listing (timing)")
    assert again in (w.NODEEXISTS, w.OK)
    wait_until(lambda: topic not in admin.list_topics(), 10, "topic deleted")


def test_state_node_and_broker_registration(raftka):
    topic = unique_name("zt-state")
    s = tool(raftka)
    create_topic(s, topic, partitions=2)
    err, (data, stat) = s.get_data(f"/brokers/topics/{topic}/partitions/1/state")
    assert err == w.OK
    state = json.loads(data)
    assert state == {"controller_epoch": 1, "leader": raftka.node_id, "version": 1, "leader_epoch": 0,
                     "isr": [raftka.node_id]}
    assert list(json.loads(data).keys()) == ["controller_epoch", "leader", "version", "leader_epoch", "isr"]
    err, (ctl, _) = s.get_data("/controller")
    assert err == w.OK and json.loads(ctl)["brokerid"] == raftka.node_id
    assert s.get_data("/controller_epoch")[1][0] == b"1"
    err, (cid, _) = s.get_data("/cluster/id")
    assert json.loads(cid)["version"] == "1"
    s.close_session()


def test_tools_under_a_chroot(raftka, admin):
    chroot = "/" + unique_name("kafka")
    s = tool(raftka)
    assert s.create(chroot, b"") == (w.OK, chroot)
    s.close_session()
    topic = unique_name("zt-chroot")
    s = tool(raftka, chroot)
    assert create_topic(s, topic, partitions=2, configs={"retention.ms": "5000"}) == f"Created topic {topic}."
    assert topic in list_topics(s)
    alter_config(s, topic, {"retention.ms": "6000"})
    s.close_session()
    assert kafka_configs(admin, topic)["retention.ms"] == "6000"
    s = tool(raftka, chroot)
    assert delete_topic(s, topic) == f"Topic {topic} is marked for deletion."
    s.close_session()
    wait_until(lambda: topic not in admin.list_topics(), 10, "topic deleted under chroot")


def test_bad_config_is_refused_and_nothing_is_created(raftka, admin):
    topic = unique_name("zt-bad")
    s = tool(raftka)
    cfg = json.dumps({"version": 1, "config": {"retention.ms": "not-a-number"}}).encode()
    assert s.create(f"/config/topics/{topic}", cfg)[0] == w.OK
    err, _ = s.create(f"/brokers/topics/{topic}", b'{"version":1,"partitions":{"0":[1]}}')
    assert err == w.BADARGUMENTS
    s.delete(f"/config/topics/{topic}")
    s.close_session()
    assert topic not in admin.list_topics()


@pytest.mark.timeout(180)
@pytest.mark.cluster_args("-o", "auto.leader.rebalance.enable=false", *FAST)
def test_preferred_replica_election_through_the_znode_and_elect_leaders(cluster):
    """`kafka-preferred-replica-election.sh --zookeeper` (2.2.1) writes
    /admin/preferred_replica_election and returns; the controller must elect the preferred
    replicas and delete the znode (else the next run fails with "already in progress").
    ElectLeaders (what `kafka-leader-election.sh` sends; here confluent-kafka's
    `elect_leaders`) does the same through the Kafka protocol. With automatic rebalancing
    off, leadership moves back only through these requests."""
    from confluent_kafka import ElectionType, TopicPartition
    from kazoo.client import KazooClient
    from cluster_util import admin, create_topic as create_topic_kafka
    boot = cluster.bootstrap
    wait_brokers(boot)
    topic = unique_name("pre")
    create_topic_kafka(boot, topic, 6, 3)
    wait_until(lambda: full_isr(boot, topic, 6), 30, "full ISR")
    preferred = {p: m.replicas[0] for p, m in partitions_meta(boot, topic).items()}
    victim = preferred[0]
    mine = sorted(p for p, n in preferred.items() if n == victim)
    assert len(mine) >= 2, f"the victim is preferred for two partitions: {preferred}"
    cluster.node(victim).kill()
    wait_until(lambda: all(leaders(boot, topic)[p] not in (victim, -1) for p in mine), 30,
               "leadership moved off")
    cluster.node(victim).start()
    wait_brokers(boot)
    wait_until(lambda: full_isr(boot, topic, 6), 60, "the restarted node back in the ISR")
    time.sleep(2)
    assert all(leaders(boot, topic)[p] != victim for p in mine), \
        "automatic rebalancing is off: the partitions stay off their preferred replica"
    zk = KazooClient(hosts=cluster.node(victim).zk_hosts, timeout=10)
    zk.start()
    try:
        # The tool's write: PreferredReplicaElectionZNode.encode, version 1.
        data = json.dumps({"version": 1, "partitions": [
            {"topic": topic, "partition": mine[0]}]}).encode()
        zk.create("/admin/preferred_replica_election", data)
        wait_until(lambda: zk.exists("/admin/preferred_replica_election") is None, 30,
                   "the request carried out and removed")
        wait_until(lambda: leaders(boot, topic)[mine[0]] == victim, 30, "preferred leader elected")
        assert leaders(boot, topic)[mine[1]] != victim, "only the listed partition moved"
        # A second run is accepted (no "election already in progress"), and removed too.
        zk.create("/admin/preferred_replica_election", data)
        wait_until(lambda: zk.exists("/admin/preferred_replica_election") is None, 30,
                   "the second request removed")
    finally:
        zk.stop()
        zk.close()
    a = admin(boot)
    tp = TopicPartition(topic, mine[1])
    got = a.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)
    assert list(got.values()) == [None], got
    # ElectLeaders is answered by the node that proposed the change once it has applied it;
    # the Metadata below may come from another node, which applies it a moment later (as
    # Kafka's brokers learn it from UpdateMetadata after the controller answers).
    wait_until(lambda: leaders(boot, topic)[mine[1]] == victim, 10, "the elected leader visible")
    again = a.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)
    err = list(again.values())[0]
    assert err is not None and err.name() == "ELECTION_NOT_NEEDED", again
    wait_until(lambda: leaders(boot, topic) == preferred, 10, "every preferred leader visible")

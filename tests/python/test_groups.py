"""Consumer groups and committed offsets with real clients (kafka-python 3.0.12, confluent-kafka
2.16.1) against one raftka node. The node runs with a short `group.initial.rebalance.delay.ms`
(500 ms) and a small `__consumer_offsets` so it is created quickly."""

from __future__ import annotations

import socket
import struct
import threading
import time
from json import dumps, loads

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition as CfTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

import conftest
from raftka_harness import wire
from raftka_harness import unique_name, wait_until

# A short initial rebalance delay (Kafka's default is 3000 ms): with 0 the first member's join
# completes before kafka-python 3.0.12 has metadata for its topic; that client then assigns
# nothing and does not rejoin when the metadata arrives (a client race Kafka's delay hides).
NODE_ARGS = ["-o", "group.initial.rebalance.delay.ms=500", "-o", "offsets.topic.num.partitions=8",
             "-o", "offsets.topic.replication.factor=1"]

# Kafka error codes.
NONE = 0
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
INVALID_REQUEST = 42
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82
NON_EMPTY_GROUP = 68


@pytest.fixture(scope="module")
def node(raftka_binary, tmp_path_factory):
    n = conftest._new_node(raftka_binary, tmp_path_factory, "groups", extra_args=NODE_ARGS)
    try:
        n.start()
        yield n
    finally:
        conftest._release(n)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout=20)


def produce_numbers(bootstrap: str, topic: str, numbers, partitions: int = 1) -> None:
    producer = KafkaProducer(bootstrap_servers=[bootstrap], value_serializer=lambda x: dumps(x).encode("utf-8"))
    for n in numbers:
        producer.send(topic, value={"number": n}, partition=n % partitions)
    producer.flush(timeout=30)
    producer.close()


# ---- raw protocol probes (non-flexible versions) --------------------------------------------

def _s(v: str | None) -> bytes:
    if v is None:
        return struct.pack(">h", -1)
    raw = v.encode()
    return struct.pack(">h", len(raw)) + raw


def _b(v: bytes) -> bytes:
    return struct.pack(">i", len(v)) + v


class Reader:
    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        v = self.buf[self.pos:self.pos + n].decode()
        self.pos += n
        return v

    def bytes(self):
        n = self.take(">i")
        v = self.buf[self.pos:self.pos + max(n, 0)]
        self.pos += max(n, 0)
        return v


def roundtrip(node, api_key: int, version: int, body: bytes, timeout: float = 30) -> Reader:
    with socket.create_connection((node.host, node.kafka_port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(wire.frame(wire.request_header(api_key, version, 7) + body))
        r = Reader(wire.read_frame(sock))
        assert r.take(">i") == 7
        return r


def find_coordinator(node, group: str) -> int:
    r = roundtrip(node, 10, 1, _s(group) + struct.pack(">b", 0))
    r.take(">i")
    return r.take(">h")


def join_v5(node, group, member_id="", instance=None, session_ms=10000, metadata=b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"):
    body = (_s(group) + struct.pack(">ii", session_ms, 30000) + _s(member_id) + _s(instance) + _s("consumer")
            + struct.pack(">i", 1) + _s("range") + _b(metadata))
    r = roundtrip(node, 11, 5, body)
    r.take(">i")
    return {"error": r.take(">h"), "generation": r.take(">i"), "protocol": r.str(), "leader": r.str(),
            "member_id": r.str()}


def sync_v3(node, group, generation, member_id, instance=None, assignments=()):
    body = _s(group) + struct.pack(">i", generation) + _s(member_id) + _s(instance) + struct.pack(">i", len(assignments))
    for m, a in assignments:
        body += _s(m) + _b(a)
    r = roundtrip(node, 14, 3, body)
    r.take(">i")
    return r.take(">h"), r.bytes()


def heartbeat_v3(node, group, generation, member_id, instance=None) -> int:
    r = roundtrip(node, 12, 3, _s(group) + struct.pack(">i", generation) + _s(member_id) + _s(instance))
    r.take(">i")
    return r.take(">h")


def commit_v7(node, group, generation, member_id, instance, topic, partition, offset) -> int:
    body = (_s(group) + struct.pack(">i", generation) + _s(member_id) + _s(instance) + struct.pack(">i", 1) + _s(topic)
            + struct.pack(">iiqi", 1, partition, offset, -1) + _s(""))
    r = roundtrip(node, 8, 7, body)
    r.take(">i")
    assert r.take(">i") == 1
    r.str()
    assert r.take(">i") == 1
    r.take(">i")
    return r.take(">h")


def wait_coordinator(node, group):
    wait_until(lambda: find_coordinator(node, group) == NONE, 20, f"coordinator for {group}")


# ---- the tutorial consumer --------------------------------------------------------------------

def test_tutorial_consumer_resumes_from_committed_offsets(node):
    bootstrap = node.bootstrap
    produce_numbers(bootstrap, "numtest", range(1000))

    def consume(expected: int) -> list[int]:
        consumer = KafkaConsumer(
            'numtest',
            bootstrap_servers=[bootstrap],
            auto_offset_reset='earliest',
            enable_auto_commit=True,
            group_id='my-group',
            value_deserializer=lambda x: loads(x.decode('utf-8')),
            consumer_timeout_ms=5000)
        got = []
        for message in consumer:
            got.append(message.value['number'])
            if len(got) == expected:
                break
        # Nothing beyond what was expected.
        extra = consumer.poll(timeout_ms=2000)
        got.extend(r.value['number'] for rs in extra.values() for r in rs)
        consumer.close()  # auto-commit commits the consumed position on close
        return got

    assert consume(1000) == list(range(1000))
    produce_numbers(bootstrap, "numtest", range(1000, 2000))
    assert consume(1000) == list(range(1000, 2000))


def test_latest_with_new_group_sees_only_new_messages(node):
    topic = unique_name("latest")
    produce_numbers(node.bootstrap, topic, range(100))
    consumer = KafkaConsumer(topic, bootstrap_servers=[node.bootstrap], auto_offset_reset='latest',
                             enable_auto_commit=True, group_id=unique_name("g-latest"),
                             value_deserializer=lambda x: loads(x.decode('utf-8')))
    try:
        wait_until(lambda: consumer.poll(timeout_ms=200) is not None and consumer.assignment(), 30, "assignment")
        tp = TopicPartition(topic, 0)
        assert consumer.position(tp) == 100
        produce_numbers(node.bootstrap, topic, range(100, 110))
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            for rs in consumer.poll(timeout_ms=500).values():
                got.extend(r.value['number'] for r in rs)
        assert got == list(range(100, 110))
    finally:
        consumer.close()


# ---- two members splitting a topic -------------------------------------------------------------

def test_confluent_two_consumers_split_and_take_over(node):
    topic = unique_name("cf-split")
    create_topic(node.bootstrap, topic, 4)
    group = unique_name("cf-g")
    assigned: dict[str, set] = {"a": set(), "b": set()}

    def make(name):
        c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                      "partition.assignment.strategy": "range"})

        def on_assign(_c, parts):
            assigned[name] = {p.partition for p in parts}

        def on_revoke(_c, parts):
            assigned[name] = set()

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        return c

    a, b = make("a"), make("b")
    seen: list[tuple[int, int]] = []

    def pump(consumers, until, what, timeout=40):
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {assigned} seen={len(seen)}"
            for c in consumers:
                msg = c.poll(0.1)
                if msg is None or msg.error():
                    continue
                seen.append((msg.partition(), msg.offset()))
                c.commit(message=msg, asynchronous=False)

    try:
        pump([a, b], lambda: len(assigned["a"]) == 2 and len(assigned["b"]) == 2, "an even split")
        assert assigned["a"] | assigned["b"] == {0, 1, 2, 3}
        produce_numbers(node.bootstrap, topic, range(200), partitions=4)
        pump([a, b], lambda: len(seen) >= 200, "200 records")
        b.close()
        b = None
        pump([a], lambda: len(assigned["a"]) == 4, "a to own all 4 partitions", timeout=20)
        produce_numbers(node.bootstrap, topic, range(200, 400), partitions=4)
        pump([a], lambda: len(seen) >= 400, "400 records")
        for c in [a]:
            c.poll(1.0)
        assert len(seen) == 400 and len(set(seen)) == 400, "every record exactly once"
    finally:
        a.close()
        if b is not None:
            b.close()


def test_kafka_python_two_consumers_split_and_take_over(node):
    """kafka-python consumers block inside poll() while they rejoin, so each runs in its own
    thread (as applications do)."""
    topic = unique_name("kp-split")
    create_topic(node.bootstrap, topic, 4)
    group = unique_name("kp-g")
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    class Member(threading.Thread):
        def __init__(self):
            super().__init__(daemon=True)
            self.stop = threading.Event()
            self.assignment: set = set()
            self.error = None

        def run(self):
            c = KafkaConsumer(topic, bootstrap_servers=[node.bootstrap], group_id=group, auto_offset_reset='earliest',
                              enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
            try:
                while not self.stop.is_set():
                    batch = c.poll(timeout_ms=100)
                    with lock:
                        for rs in batch.values():
                            seen.extend((r.partition, r.offset) for r in rs)
                    if batch:
                        c.commit()
                    self.assignment = {tp.partition for tp in c.assignment()}
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.error = e
            finally:
                c.close()

    a, b = Member(), Member()
    a.start()
    b.start()
    try:
        wait_until(lambda: len(a.assignment) == 2 and len(b.assignment) == 2, 40, "an even split")
        assert a.assignment | b.assignment == {0, 1, 2, 3}
        produce_numbers(node.bootstrap, topic, range(200), partitions=4)
        wait_until(lambda: len(seen) >= 200, 40, "200 records")
        b.stop.set()
        b.join(20)
        wait_until(lambda: len(a.assignment) == 4, 20, "a to own all 4 partitions")
        produce_numbers(node.bootstrap, topic, range(200, 400), partitions=4)
        wait_until(lambda: len(seen) >= 400, 40, "400 records")
        time.sleep(1)  # give duplicates, if any, a chance to show up
        assert a.error is None and b.error is None, (a.error, b.error)
        with lock:
            assert len(seen) == 400 and len(set(seen)) == 400, "every record exactly once"
    finally:
        a.stop.set()
        b.stop.set()
        a.join(20)
        b.join(20)


# ---- static membership ------------------------------------------------------------------------------

def test_static_member_restart_keeps_generation(node):
    topic = unique_name("static")
    create_topic(node.bootstrap, topic, 2)
    group = unique_name("static-g")

    def start():
        c = KafkaConsumer(topic, bootstrap_servers=[node.bootstrap], group_id=group, group_instance_id="inst-1",
                          auto_offset_reset='earliest', session_timeout_ms=10000)
        wait_until(lambda: c.poll(timeout_ms=200) is not None and len(c.assignment()) == 2, 30, "assignment")
        gen = c._coordinator._generation
        return c, gen.generation_id, gen.member_id

    c1, gen1, member1 = start()
    c1.close()  # static members do not leave on close (KIP-345)
    c2, gen2, member2 = start()
    try:
        assert member2 != member1
        assert gen2 == gen1, "a static member restarting within its session timeout must not cause a rebalance"
        # The old member id is fenced.
        assert heartbeat_v3(node, group, gen1, member1, "inst-1") == FENCED_INSTANCE_ID
        assert commit_v7(node, group, gen1, member1, "inst-1", topic, 0, 0) == FENCED_INSTANCE_ID
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        desc = admin.describe_consumer_groups([group])[group].result(timeout=20)
        assert [m.group_instance_id for m in desc.members] == ["inst-1"]
        assert desc.members[0].member_id == member2
    finally:
        c2.close()


def test_a_member_that_never_syncs_expires_during_completing_rebalance(node):
    """librdkafka 0084: a member gets its JoinGroup answer and vanishes (no SyncGroup, no
    LeaveGroup, no heartbeat). It is expired after its session timeout although the group is
    CompletingRebalance; the member waiting in SyncGroup is told to rejoin and the next generation
    forms without it (before: the SyncGroup waited for the whole rebalance timeout)."""
    group = unique_name("nosync-g")
    wait_coordinator(node, group)
    a = join_v5(node, group, instance="a", session_ms=6000)
    assert a["error"] == NONE, a
    assert sync_v3(node, group, a["generation"], a["member_id"], "a", [(a["member_id"], b"")])[0] == NONE
    # b joins; a rejoins: generation 2, a leads, both answered.
    answers = {}
    tb = threading.Thread(target=lambda: answers.update(b=join_v5(node, group, instance="b", session_ms=6000)))
    tb.start()
    time.sleep(0.5)
    a2 = join_v5(node, group, member_id=a["member_id"], instance="a", session_ms=6000)
    tb.join(timeout=30)
    b = answers["b"]
    assert (a2["error"], b["error"]) == (NONE, NONE), (a2, b)
    assert a2["generation"] == b["generation"] and a2["leader"] == a["member_id"]
    # b syncs and waits for the leader's assignment; the leader is gone.
    start = time.monotonic()
    err, _ = sync_v3(node, group, b["generation"], b["member_id"], "b")
    took = time.monotonic() - start
    assert err == REBALANCE_IN_PROGRESS, err
    assert took < 15, f"the SyncGroup waited {took:.1f}s (a 6 s session should end it)"
    b2 = join_v5(node, group, member_id=b["member_id"], instance="b", session_ms=6000)
    assert b2["error"] == NONE and b2["leader"] == b["member_id"], b2
    assert b2["generation"] == b["generation"] + 1


def test_closed_static_members_expire_and_the_group_can_be_deleted(node):
    """librdkafka 0081: static members (group.instance.id) closed without LeaveGroup are removed
    when their session times out; DeleteGroups then succeeds."""
    topic = unique_name("static-del")
    create_topic(node.bootstrap, topic, 1)
    produce_numbers(node.bootstrap, topic, range(5))
    groups = [unique_name("static-del-g") for _ in range(3)]
    consumers = []
    for i, g in enumerate(groups):
        c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": g, "group.instance.id": f"inst-{i}",
                      "client.id": f"client-{i}", "session.timeout.ms": 6000, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < 5 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        assert got == 5, f"consumer {i} read {got}"
        consumers.append(c)
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    for g in groups:
        assert len(admin.describe_consumer_groups([g])[g].result(timeout=20).members) == 1
    for c in consumers:
        c.close()
    time.sleep(7.5)
    for g, f in admin.delete_consumer_groups(groups, request_timeout=20).items():
        f.result(timeout=20)  # raises on "group not empty"


def test_async_commits_keep_the_newest(node):
    """librdkafka 0030: asynchronous commits pipelined on one connection apply in the order they
    were sent ("Expected committed() offset 50, got 49" before)."""
    topic = unique_name("async-commit")
    create_topic(node.bootstrap, topic, 2)
    for round_ in range(5):
        group = unique_name("async-commit-g")
        done = []
        c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "on_commit": lambda err, parts: done.append(err)})
        try:
            last = 50
            for i in range(1, last + 1):
                c.commit(offsets=[CfTopicPartition(topic, 0, i), CfTopicPartition(topic, 1, i)],
                         asynchronous=True)
            deadline = time.monotonic() + 30
            while len(done) < last and time.monotonic() < deadline:
                c.poll(0.1)
            assert done == [None] * last, done
            got = c.committed([CfTopicPartition(topic, 0), CfTopicPartition(topic, 1)], timeout=20)
            assert [tp.offset for tp in got] == [last, last], f"round {round_}: {got}"
        finally:
            c.close()


# ---- administration ---------------------------------------------------------------------------------

def test_admin_list_describe_offsets_delete(node):
    topic = unique_name("adm")
    produce_numbers(node.bootstrap, topic, range(30))
    group = unique_name("adm-g")
    consumer = KafkaConsumer(topic, bootstrap_servers=[node.bootstrap], group_id=group, auto_offset_reset='earliest',
                             enable_auto_commit=False)
    got = 0
    deadline = time.monotonic() + 30
    while got < 30 and time.monotonic() < deadline:
        got += sum(len(rs) for rs in consumer.poll(timeout_ms=300).values())
    assert got == 30
    consumer.commit()

    kadmin = KafkaAdminClient(bootstrap_servers=[node.bootstrap])
    cadmin = AdminClient({"bootstrap.servers": node.bootstrap})
    try:
        listed = kadmin.list_groups()
        assert group in [g["group_id"] for g in listed], listed
        cf_listed = cadmin.list_consumer_groups().result(timeout=20)
        assert group in [g.group_id for g in cf_listed.valid]
        desc = kadmin.describe_groups([group])
        assert desc[group]["group_state"] == "Stable" and len(desc[group]["members"]) == 1, desc
        cdesc = cadmin.describe_consumer_groups([group])[group].result(timeout=20)
        assert str(cdesc.state).endswith("STABLE") and len(cdesc.members) == 1
        assert cdesc.members[0].assignment.topic_partitions[0].topic == topic
        offsets = kadmin.list_group_offsets(group)[group]
        assert offsets[TopicPartition(topic, 0)].offset == 30
        from confluent_kafka import ConsumerGroupTopicPartitions
        res = cadmin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=20)
        assert [(p.topic, p.partition, p.offset) for p in res.topic_partitions] == [(topic, 0, 30)]

        # Deleting a group with members fails; after the member leaves it succeeds.
        with pytest.raises(Exception) as e:
            cadmin.delete_consumer_groups([group])[group].result(timeout=20)
        assert e.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
        consumer.close()
        wait_until(lambda: kadmin.describe_groups([group])[group]["group_state"] == "Empty", 20, "group empty")
        cadmin.delete_consumer_groups([group])[group].result(timeout=20)
        assert group not in [g["group_id"] for g in kadmin.list_groups()]
        assert kadmin.list_group_offsets(group)[group] == {}
    finally:
        kadmin.close()


def test_committed_offsets_survive_restart(raftka_binary, tmp_path_factory):
    n = conftest._new_node(raftka_binary, tmp_path_factory, "groups-restart", extra_args=NODE_ARGS)
    try:
        n.start()
        topic = unique_name("durable")
        produce_numbers(n.bootstrap, topic, range(20))
        c = Consumer({"bootstrap.servers": n.bootstrap, "group.id": "durable-g", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < 20 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got += 1
        assert got == 20
        c.commit(offsets=[CfTopicPartition(topic, 0, 17, metadata="hello")], asynchronous=False)
        c.close()
        n.restart(graceful=False)  # kill -9: the commit was acknowledged only after fsync
        admin = KafkaAdminClient(bootstrap_servers=[n.bootstrap])
        try:
            offsets = wait_until(lambda: admin.list_group_offsets("durable-g")["durable-g"], 30, "offsets after restart")
            assert offsets[TopicPartition(topic, 0)].offset == 17
            # confluent-kafka sends the C string's terminating NUL as part of the metadata;
            # the broker returns exactly the bytes it was given.
            assert offsets[TopicPartition(topic, 0)].metadata.rstrip("\x00") == "hello"
        finally:
            admin.close()
    finally:
        conftest._release(n)


# ---- bad input --------------------------------------------------------------------------------------

def test_bad_input_gets_the_right_codes(node):
    group = unique_name("bad")
    topic = unique_name("bad-t")
    create_topic(node.bootstrap, topic, 1)
    wait_coordinator(node, group)
    # Unknown group / member.
    assert heartbeat_v3(node, group, 1, "nobody") == UNKNOWN_MEMBER_ID
    assert sync_v3(node, group, 1, "nobody")[0] == UNKNOWN_MEMBER_ID
    # Session timeout outside [6000, 1800000].
    assert join_v5(node, group, session_ms=10)["error"] == INVALID_SESSION_TIMEOUT
    # MEMBER_ID_REQUIRED, then a real join.
    first = join_v5(node, group)
    assert first["error"] == MEMBER_ID_REQUIRED and first["member_id"]
    joined = join_v5(node, group, member_id=first["member_id"])
    assert joined["error"] == NONE and joined["leader"] == first["member_id"]
    gen, me = joined["generation"], joined["member_id"]
    # Wrong generation.
    assert heartbeat_v3(node, group, gen + 5, me) == ILLEGAL_GENERATION
    assert sync_v3(node, group, gen + 5, me)[0] == ILLEGAL_GENERATION
    assert commit_v7(node, group, gen + 5, me, None, topic, 0, 1) == ILLEGAL_GENERATION
    assert sync_v3(node, group, gen, me, assignments=[(me, b"assigned")]) == (NONE, b"assigned")
    assert heartbeat_v3(node, group, gen, me) == NONE
    assert commit_v7(node, group, gen, me, None, topic, 0, 1) == NONE
    # Oversize protocol metadata (above group.member.metadata.max.bytes = 1 MiB).
    assert join_v5(node, unique_name("big"), instance="i", metadata=b"x" * (1 << 20 + 1))["error"] == INVALID_REQUEST
    # Static member fencing.
    sgroup = unique_name("fence")
    s1 = join_v5(node, sgroup, instance="inst")
    assert s1["error"] == NONE
    assert sync_v3(node, sgroup, s1["generation"], s1["member_id"], "inst", [(s1["member_id"], b"a")])[0] == NONE
    s2 = join_v5(node, sgroup, instance="inst")
    assert s2["error"] == NONE and s2["generation"] == s1["generation"]
    assert heartbeat_v3(node, sgroup, s1["generation"], s1["member_id"], "inst") == FENCED_INSTANCE_ID
    assert join_v5(node, sgroup, member_id=s1["member_id"], instance="inst")["error"] == FENCED_INSTANCE_ID
    assert sync_v3(node, sgroup, s2["generation"], s2["member_id"], "inst") == (NONE, b"a")
    # Unknown groups in admin APIs.
    cadmin = AdminClient({"bootstrap.servers": node.bootstrap})
    with pytest.raises(Exception) as e:
        cadmin.delete_consumer_groups(["no-such-group"])["no-such-group"].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND
    # The node is still healthy.
    assert wire.api_versions_roundtrip(node.host, node.kafka_port)

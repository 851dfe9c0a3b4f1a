"""Transactions (issue 17) with real clients: confluent-kafka 2.16.1 (librdkafka 2.16.0)
transactional producers and read_committed / read_uncommitted consumers, a
consume-transform-produce loop with send_offsets_to_transaction, zombie fencing, the
coordinator's abort of a transaction open past its timeout, kafka-python's and aiokafka's
transactional APIs, and Kafka's own Java client (kafka-clients 4.3.0)."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster_util import java_probe
from raftka_harness import unique_name, wait_until


def conf(bootstrap: str, **extra) -> dict:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000,
            "broker.address.family": "v4", **extra}


@pytest.fixture(scope="module")
def raftka(raftka_binary, tmp_path_factory):
    """One node whose coordinator looks for timed-out transactions every 500 ms."""
    from conftest import _new_node, _release
    node = _new_node(raftka_binary, tmp_path_factory, "txn", extra_args=[
        "-o", "transaction.abort.timed.out.transaction.cleanup.interval.ms=500"])
    try:
        node.start()
        yield node
    finally:
        _release(node)


def create_topic(bootstrap: str, partitions: int = 1) -> str:
    name = unique_name("txn")
    admin = AdminClient(conf(bootstrap))
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(30)
    return name


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    p = Producer(conf(bootstrap, **{"transactional.id": txn_id, "linger.ms": 5,
                                    "message.timeout.ms": 30000, **extra}))
    p.init_transactions(30)
    return p


def read_all(bootstrap: str, topic: str, isolation: str, partitions: int = 1,
             expect: int | None = None, timeout: float = 20) -> list:
    """Every record of `topic` visible under `isolation`, read until end of partition (or
    until `expect` records are seen)."""
    c = Consumer(conf(bootstrap, **{"group.id": unique_name("reader"),
                                    "isolation.level": isolation,
                                    "enable.auto.commit": False,
                                    "enable.partition.eof": True,
                                    "auto.offset.reset": "earliest"}))
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got, eof = [], set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    if len(eof) == partitions and (expect is None or len(got) >= expect):
                        break
                    continue
                raise AssertionError(m.error())
            got.append(m)
        return got
    finally:
        c.close()


def metrics(node) -> dict[str, float]:
    import urllib.request
    text = urllib.request.urlopen(node.http_url + "/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def values(msgs) -> list[bytes]:
    return [m.value() for m in msgs]


def test_committed_visible_aborted_only_to_read_uncommitted(raftka):
    b = raftka.bootstrap
    topic = create_topic(b)
    p = txn_producer(b, unique_name("tid"))
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=b"c1-%d" % i, partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=b"a-%d" % i, partition=0)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(2):
        p.produce(topic, value=b"c2-%d" % i, partition=0)
    p.commit_transaction(30)
    committed = [b"c1-%d" % i for i in range(5)] + [b"c2-%d" % i for i in range(2)]
    assert values(read_all(b, topic, "read_committed")) == committed
    # read_uncommitted sees the aborted records too; neither sees the markers.
    assert values(read_all(b, topic, "read_uncommitted")) == (
        [b"c1-%d" % i for i in range(5)] + [b"a-%d" % i for i in range(3)]
        + [b"c2-%d" % i for i in range(2)])
    # 10 records and 3 markers: the log end is 13.
    c = Consumer(conf(b, **{"group.id": unique_name("wm")}))
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 13)
    finally:
        c.close()


def test_open_transaction_holds_back_read_committed(raftka):
    b = raftka.bootstrap
    topic = create_topic(b)
    plain = Producer(conf(b, acks="all"))
    plain.produce(topic, value=b"before", partition=0)
    plain.flush(10)
    p = txn_producer(b, unique_name("tid"))
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(30)
    # A non-transactional record after the open one: stable only once the transaction ends.
    plain.produce(topic, value=b"after", partition=0)
    plain.flush(10)
    assert values(read_all(b, topic, "read_committed")) == [b"before"]
    assert values(read_all(b, topic, "read_uncommitted")) == [b"before", b"open", b"after"]
    # The LSO lag and the open transaction are on /metrics.
    m = metrics(raftka)
    assert m["raftka_open_transactions"] >= 1 and m["raftka_lso_lag_max"] >= 2, m
    assert m["raftka_txn_coordinator_open_transactions"] >= 1, m
    p.commit_transaction(30)
    assert values(read_all(b, topic, "read_committed", expect=3)) == [b"before", b"open", b"after"]


def test_zombie_is_fenced(raftka):
    b = raftka.bootstrap
    topic = create_topic(b)
    tid = unique_name("tid")
    zombie = txn_producer(b, tid)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie", partition=0)
    zombie.flush(30)
    # A new instance with the same id aborts the zombie's open transaction and fences it.
    fresh = txn_producer(b, tid)
    fresh.begin_transaction()
    fresh.produce(topic, value=b"fresh", partition=0)
    fresh.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        zombie.commit_transaction(10)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort(), e.value
    assert values(read_all(b, topic, "read_committed")) == [b"fresh"]


def test_consume_transform_produce_exactly_once(raftka):
    b = raftka.bootstrap
    src, dst = create_topic(b, partitions=2), create_topic(b)
    group = unique_name("ctp")
    plain = Producer(conf(b, acks="all"))
    n = 200
    for i in range(n):
        plain.produce(src, value=b"%d" % i, partition=i % 2)
    plain.flush(10)
    p = txn_producer(b, unique_name("tid"))
    c = Consumer(conf(b, **{"group.id": group, "isolation.level": "read_committed",
                            "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    c.subscribe([src])
    done, aborted_once = 0, False
    deadline = time.monotonic() + 60
    try:
        while done < n and time.monotonic() < deadline:
            msgs = c.consume(50, 1.0)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, value=b"out-" + m.value(), partition=0)
            p.send_offsets_to_transaction(
                c.position(c.assignment()), c.consumer_group_metadata(), 30)
            if not aborted_once:
                # The first batch is aborted: neither its output nor its offsets count, so
                # it is consumed again from the last committed offsets.
                aborted_once = True
                p.abort_transaction(30)
                committed = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], 10)
                assert all(tp.offset < 0 for tp in committed), committed
                for tp in c.assignment():
                    c.seek(TopicPartition(src, tp.partition, 0))
                continue
            p.commit_transaction(30)
            done += len(msgs)
    finally:
        c.close()
    assert done == n
    out = sorted(values(read_all(b, dst, "read_committed", expect=n)))
    assert out == sorted(b"out-%d" % i for i in range(n)), "each input exactly once"
    check = Consumer(conf(b, **{"group.id": group}))
    try:
        committed = check.committed([TopicPartition(src, 0), TopicPartition(src, 1)], 10)
        assert sum(tp.offset for tp in committed) == n, committed
    finally:
        check.close()


def test_coordinator_aborts_a_transaction_past_its_timeout(raftka):
    b = raftka.bootstrap
    topic = create_topic(b)
    p = txn_producer(b, unique_name("tid"), **{"transaction.timeout.ms": 2000,
                                              "socket.timeout.ms": 2000,
                                              "message.timeout.ms": 2000})
    p.begin_transaction()
    p.produce(topic, value=b"left-open", partition=0)
    p.flush(30)
    # Nobody ends it: the coordinator aborts it and the partition becomes stable again.
    plain = Producer(conf(b, acks="all"))
    plain.produce(topic, value=b"later", partition=0)
    plain.flush(10)
    wait_until(lambda: values(read_all(b, topic, "read_committed", timeout=3)) == [b"later"],
               timeout=20, what="the timed-out transaction to be aborted")
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


def test_kafka_python_transactions(raftka):
    from kafka import KafkaConsumer, KafkaProducer
    b = raftka.bootstrap
    topic = create_topic(b)
    p = KafkaProducer(bootstrap_servers=b, transactional_id=unique_name("kp"))
    p.init_transactions()
    p.begin_transaction()
    p.send(topic, b"kp-commit", partition=0)
    p.commit_transaction()
    p.begin_transaction()
    p.send(topic, b"kp-abort", partition=0)
    p.flush()
    p.abort_transaction()
    p.close()
    c = KafkaConsumer(bootstrap_servers=b, isolation_level="read_committed",
                      auto_offset_reset="earliest", consumer_timeout_ms=3000)
    c.assign([__import__("kafka").TopicPartition(topic, 0)])
    got = [m.value for m in c]
    c.close()
    assert got == [b"kp-commit"]


def test_aiokafka_transactions(raftka):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as ATP
    b = raftka.bootstrap
    topic = create_topic(b)

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=b, transactional_id=unique_name("aio"))
        await p.start()
        try:
            async with p.transaction():
                await p.send_and_wait(topic, b"aio-commit", partition=0)
            await p.begin_transaction()
            await p.send_and_wait(topic, b"aio-abort", partition=0)
            await p.abort_transaction()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=b, isolation_level="read_committed",
                             auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            c.assign([ATP(topic, 0)])
            got = []
            end = time.monotonic() + 10
            while time.monotonic() < end:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    got.extend(m.value for m in msgs)
                if got:
                    break
            return got
        finally:
            await c.stop()

    assert asyncio.run(run()) == [b"aio-commit"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("transaction_version", [2, 1])
def test_java_client_transactions(raftka, raftka_binary, tmp_path_factory, transaction_version):
    """Kafka's own Java client (kafka-clients 4.3.0): commit, abort, sendOffsetsToTransaction
    with group metadata, a zombie fenced by a second initTransactions, read_committed vs
    read_uncommitted (tests/java/TxnProbe.java). With `transaction.version` 2 (the default)
    the client uses KIP-890's transaction version 2 — no AddPartitionsToTxn or
    AddOffsetsToTxn, EndTxn v5 bumping the epoch on every end — and with 1 the protocol of
    Kafka 2.2.1–3.x. The final epoch tells which ran: 7 at version 2 (0 at init, 1–3 after
    three ends, 4–5 for the fence and its abort, 6 at the new producer's init, 7 after its
    commit) and 2 at version 1 (only the fence and the new init bump it)."""
    node = raftka
    if transaction_version != 2:
        from conftest import _new_node, _release
        node = _new_node(raftka_binary, tmp_path_factory, "txn-tv1",
                         extra_args=["-o", f"transaction.version={transaction_version}"])
    try:
        if node is not raftka:
            node.start()
        b = node.bootstrap
        topic = create_topic(b)
        group, tid = unique_name("jgroup"), unique_name("jtxn")
        out = java_probe("TxnProbe", b, topic, group, tid, timeout=200)
    finally:
        if node is not raftka:
            _release(node)
    assert out.returncode == 0, f"probe failed:\n{out.stdout}\n{out.stderr[-4000:]}"
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    fields = dict(kv.split("=", 1) for kv in line[len("RESULT "):].split(" "))
    committed = fields["read_committed"].split(",")
    everything = fields["read_uncommitted"].split(",")
    assert committed == [f"c{i}" for i in range(10)] + ["o0", "o1", "o2", "f0"], fields
    assert all(f"a{i}" in everything for i in range(5)), fields
    assert fields["fenced"] in ("ProducerFencedException", "InvalidProducerEpochException"), fields
    assert fields["group_offset"] == "42/probe", fields
    assert fields["state"] == "CompleteCommit", fields
    assert fields["epoch"] == ("7" if transaction_version == 2 else "2"), fields

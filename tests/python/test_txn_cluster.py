"""Transactions on a 3-node cluster (issue 17): a consume-transform-produce loop with
confluent-kafka's transactional producer and send_offsets_to_transaction, with kill -9 of the
transaction coordinator's node and later of the output partition's leader mid-run (each
restarted a few seconds later). The output
topic must hold every input record exactly once (read_committed), and the group's committed
offsets must match what was produced."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from cluster_util import FAST, create_topic, leaders, wait_brokers
from raftka_harness import unique_name, wait_until

N = 3000
PARTS = 3


def java_partition(key: str, n: int) -> int:
    """Kafka's abs(key.hashCode()) % n (ASCII keys)."""
    h = 0
    for ch in key:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    h = 0 if h == -(1 << 31) else abs(h)
    return h % n


def conf(bootstrap: str, **extra) -> dict:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000,
            "broker.address.family": "v4", "topic.metadata.refresh.interval.ms": 1000, **extra}


class Loop:
    """The consume-transform-produce application, restarting its producer when fenced or
    failed, and rewinding to the committed offsets after every failed transaction."""

    def __init__(self, bootstrap: str, src: str, dst: str, group: str, tid: str):
        self.bootstrap, self.src, self.dst, self.group, self.tid = bootstrap, src, dst, group, tid
        self.tps = [TopicPartition(src, p) for p in range(PARTS)]
        self.consumer = Consumer(conf(bootstrap, **{
            "group.id": group, "isolation.level": "read_committed", "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}))
        self.consumer.assign([TopicPartition(src, p, 0) for p in range(PARTS)])
        self.producer = None
        self.committed = 0
        self.failures = 0
        self.new_producer()
        self.rewind()

    def new_producer(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            p = Producer(conf(self.bootstrap, **{"transactional.id": self.tid, "linger.ms": 5,
                                                 "message.timeout.ms": 60000,
                                                 "transaction.timeout.ms": 60000}))
            try:
                p.init_transactions(30)
                self.producer = p
                return
            except KafkaException as e:
                assert time.monotonic() < deadline, f"init_transactions keeps failing: {e}"
                time.sleep(1)

    def rewind(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                got = self.consumer.committed(self.tps, timeout=10)
                if all(tp.error is None for tp in got):
                    break
            except KafkaException:
                pass
            assert time.monotonic() < deadline, "committed offsets unavailable"
            time.sleep(0.5)
        offsets = {tp.partition: max(tp.offset, 0) for tp in got}
        self.committed = sum(offsets.values())
        print(f"{time.strftime('%H:%M:%S')} rewound to {offsets}")
        for p, off in offsets.items():
            self.consumer.seek(TopicPartition(self.src, p, off))

    def step(self) -> None:
        msgs = [m for m in self.consumer.consume(200, 1.0) if m.error() is None]
        if not msgs:
            return
        p = self.producer
        try:
            p.begin_transaction()
            for m in msgs:
                p.produce(self.dst, key=m.key(), value=b"out:" + m.value())
            positions = self.consumer.position(self.tps)
            p.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), 30)
            p.commit_transaction(60)
        except KafkaException as e:
            self.failures += 1
            err = e.args[0]
            print(f"{time.strftime('%H:%M:%S')} transaction failed after {self.committed}: {err}")
            if err.txn_requires_abort():
                try:
                    p.abort_transaction(60)
                except KafkaException:
                    self.new_producer()
            else:
                self.new_producer()
            self.rewind()
            return
        self.committed += len(msgs)

    def describe(self) -> str:
        """Where the loop stands, for a failure message: positions, committed offsets."""
        try:
            pos = {tp.partition: tp.offset for tp in self.consumer.position(self.tps)}
            got = self.consumer.committed(self.tps, timeout=10)
            com = {tp.partition: (tp.offset, str(tp.error) if tp.error else None) for tp in got}
        except KafkaException as e:
            return f"cannot describe: {e}"
        return f"positions {pos}, committed {com}, {self.failures} failed transactions"

    def close(self) -> None:
        self.consumer.close()


def restart_later(node, delay: float) -> threading.Thread:
    """Restarts a killed node after `delay` seconds, as a supervisor would, whatever the
    client is doing meanwhile (see RESTART_AFTER)."""
    def run() -> None:
        time.sleep(delay)
        node.start()
    t = threading.Thread(target=run, name=f"restart-{node.name}", daemon=True)
    t.start()
    return t


# A killed node comes back this long after its kill, as under a supervisor; the loop must run
# through the outage meanwhile (coordinators and leaders move, the open transaction fails and
# is retried). The group's coordinator is placed on the node that is never killed (`place`):
# librdkafka (2.16) cannot survive the loss of the group coordinator it has cached — its
# coordinator requests (TxnOffsetCommit) wait for that broker to come back up, with no
# timeout (`creq_ts_timeout` in rdkafka_coord.c is never checked), and once the dead broker
# has left the Metadata responses (as Kafka's fenced brokers do) the client decommissions it
# and keeps waiting on the old handle even after the node returns, so
# send_offsets_to_transaction blocks forever (docs/transactions.md). The same client hangs
# the same way against Kafka.
RESTART_AFTER = 8.0


def place(boot: str, src: str, dst: str, tid: str) -> tuple[int, int, int, str]:
    """Where the run's coordinators are: the node of `tid`'s transaction coordinator, the
    leader of output partition 0, and a group id whose coordinator is on neither (so the
    group coordinator survives both kills; see RESTART_AFTER for why librdkafka needs it)."""
    first = Producer(conf(boot, **{"transactional.id": tid}))
    first.init_transactions(30)  # creates __transaction_state; the loop's producer fences it
    txn = leaders(boot, "__transaction_state")[java_partition(tid, len(leaders(boot, "__transaction_state")))]
    out = leaders(boot, dst)[0]
    probe = Consumer(conf(boot, **{"group.id": unique_name("probe")}))
    try:
        wait_until(lambda: probe.committed([TopicPartition(src, 0)], timeout=5), 30,
                   "__consumer_offsets created")
    finally:
        probe.close()
    offsets = wait_until(lambda: (lambda m: m if m and min(m.values()) >= 0 else None)(
        leaders(boot, "__consumer_offsets")), 30, "__consumer_offsets leaders")
    for _ in range(10_000):
        group = unique_name("eos-g")
        node = offsets[java_partition(group, len(offsets))]
        if node not in (txn, out):
            return txn, out, node, group
    raise AssertionError(f"no group id placed off nodes {txn} and {out}: {offsets}")


@pytest.mark.timeout(300, method="thread")
@pytest.mark.cluster_args(*FAST)
def test_exactly_once_through_coordinator_and_leader_kills(cluster):
    boot = cluster.bootstrap
    wait_brokers(boot)
    src, dst = unique_name("eos-in"), unique_name("eos-out")
    create_topic(boot, src, PARTS, 3, {"min.insync.replicas": "2"})
    create_topic(boot, dst, PARTS, 3, {"min.insync.replicas": "2"})
    inp = Producer(conf(boot, acks="all", **{"enable.idempotence": True}))
    for i in range(N):
        inp.produce(src, key=b"%d" % i, value=b"%d" % i, partition=i % PARTS)
    assert inp.flush(60) == 0
    tid = unique_name("eos-t")
    txn_node, out_node, group_node, group = place(boot, src, dst, tid)
    print(f"transaction coordinator on {txn_node}, output partition 0 on {out_node}, "
          f"group coordinator on {group_node}")
    loop = Loop(boot, src, dst, group, tid)
    killed: list[int] = []
    restarts: list[threading.Thread] = []
    try:
        deadline = time.monotonic() + 240
        # The transaction coordinator's node dies at a third of the input; the output
        # partition 0's leader at two thirds, once the first is back. Each returns
        # RESTART_AFTER seconds after its kill.
        while loop.committed < N:
            assert time.monotonic() < deadline, \
                f"stuck at {loop.committed} of {N} after {killed}: {loop.describe()}"
            if len(killed) == 1 and loop.committed >= 2 * N // 3:
                if restarts[0].is_alive():
                    time.sleep(0.2)  # the second fault waits for the first node's return
                    continue
                wait_brokers(boot)
                # Output partition 0's leader (or, should it have moved to the group
                # coordinator's node, the first output partition led elsewhere).
                leader = next(n for _, n in sorted(leaders(boot, dst).items())
                              if n not in (group_node, -1))
                cluster.node(leader).kill()
                killed.append(leader)
                restarts.append(restart_later(cluster.node(leader), RESTART_AFTER))
            loop.step()
            if not killed and loop.committed >= N // 3:
                tpart = java_partition(tid, 50)
                coord = leaders(boot, "__transaction_state")[tpart]
                assert coord != group_node, "the transaction coordinator moved onto the group's node"
                cluster.node(coord).kill()
                killed.append(coord)
                restarts.append(restart_later(cluster.node(coord), RESTART_AFTER))
        assert len(killed) == 2, f"the run ended before every fault: {killed}"
        print(f"killed {killed}; {loop.failures} failed transactions")
    finally:
        loop.close()
        for t in restarts:
            t.join(60)
    wait_brokers(boot)
    # Every input exactly once in the committed output.
    c = Consumer(conf(boot, **{"group.id": unique_name("check"), "isolation.level": "read_committed",
                               "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    seen: list[bytes] = []
    try:
        c.assign([TopicPartition(dst, p, 0) for p in range(PARTS)])
        end = time.monotonic() + 60
        while len(seen) < N and time.monotonic() < end:
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    seen.append(m.value())
        extra_end = time.monotonic() + 3
        while time.monotonic() < extra_end:
            seen.extend(m.value() for m in c.consume(500, 0.5) if m.error() is None)
    finally:
        c.close()
    assert len(seen) == N and sorted(seen) == sorted(b"out:%d" % i for i in range(N)), \
        f"{len(seen)} outputs, {len(set(seen))} distinct, for {N} inputs ({loop.failures} failed transactions)"
    check = Consumer(conf(boot, **{"group.id": group}))
    try:
        got = wait_until(lambda: check.committed([TopicPartition(src, p) for p in range(PARTS)], timeout=10),
                         30, "committed offsets")
        assert sum(tp.offset for tp in got) == N
    finally:
        check.close()

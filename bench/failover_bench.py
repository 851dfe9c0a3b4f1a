"""Failover time on a local 3-process cluster: kill -9 the leader of a partition, measure the
time until the first acks=all produce to that partition succeeds again.

Not a timed test: it prints figures. Starts its own cluster (the shared harness,
`raftka_harness`) on free loopback ports with fresh data dirs. `make bench BENCH_ONLY=failover`
measures the same with a loaded cluster and records it in the benchmark table.
Usage: RAFTKA_BIN=... .venv/bin/python bench/failover_bench.py [rounds] [broker.session.timeout.ms]
"""
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from raftka_harness import Cluster, default_binary, overrides, wait_until

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
session_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 3000


def leader_of(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=5)
    return md.topics[topic].partitions[0].leader


def main():
    root = Path(tempfile.mkdtemp(prefix="raftka-failover-"))
    cluster = Cluster.local(default_binary(), root, 3, overrides({
        "broker.session.timeout.ms": session_ms,
        "broker.heartbeat.interval.ms": max(50, session_ms // 6),
        "replica.lag.time.max.ms": 2000}))
    nodes = cluster.nodes
    cluster.start()
    try:
        topic = "failover-" + uuid.uuid4().hex[:8]
        a = AdminClient({"bootstrap.servers": cluster.bootstrap})
        wait_until(lambda: len(a.list_topics(timeout=5).brokers) == 3, 20, "3 brokers")
        a.create_topics([NewTopic(topic, 1, 3)])[topic].result(20)
        times = []
        for r in range(rounds):
            wait_until(lambda: len(a.list_topics(topic, timeout=5).topics[topic].partitions[0].isrs) == 3,
                       60, "full ISR")
            p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                          "linger.ms": 0, "topic.metadata.refresh.interval.ms": 200,
                          "retry.backoff.ms": 20, "retry.backoff.max.ms": 100})
            p.produce(topic, b"warmup", partition=0)
            p.flush(10)
            victim = next(n for n in nodes if n.node_id == leader_of(cluster.bootstrap, topic))
            victim.kill()
            t0 = time.perf_counter()
            done = []
            p.produce(topic, b"after", partition=0, on_delivery=lambda err, _m: done.append(err))
            while not done:
                p.poll(0.01)
            elapsed = time.perf_counter() - t0
            ok = done[0] is None
            times.append(elapsed)
            print(f"round {r + 1}: killed node {victim.node_id}; first acks=all produce "
                  f"{'succeeded' if ok else 'FAILED: ' + str(done[0])} after {elapsed * 1000:.0f} ms")
            victim.start()
        print(f"failover (session timeout {session_ms} ms): min {min(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

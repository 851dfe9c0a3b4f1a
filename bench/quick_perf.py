"""Rough single-node produce/consume throughput with confluent-kafka (librdkafka 2.16).

Not a test and not the benchmark harness (that is `make bench`, issue 9): a first figure.
Usage: quick_perf.py BOOTSTRAP [records] [record_bytes] [acks]
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
acks = sys.argv[4] if len(sys.argv) > 4 else "1"
topic = "perf-" + uuid.uuid4().hex[:8]
payload = b"x" * size

p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
              "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
              "enable.idempotence": acks == "all"})
p.produce(topic, b"warmup")
p.flush(30)
errors = 0


def cb(err, _msg):
    global errors
    if err:
        errors += 1


t0 = time.perf_counter()
for _ in range(n):
    while True:
        try:
            p.produce(topic, payload, on_delivery=cb)
            break
        except BufferError:
            p.poll(0.01)
p.flush(60)
dt = time.perf_counter() - t0
print(f"produce: {n} x {size} B acks={acks}: {n / dt:,.0f} records/s, {n * size / dt / 1e6:.1f} MB/s, errors={errors}")

c = Consumer({"bootstrap.servers": bootstrap, "group.id": "perf", "enable.auto.commit": False,
              "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
c.assign([TopicPartition(topic, 0, 0)])
got = 0
t0 = time.perf_counter()
while got < n + 1 and time.perf_counter() - t0 < 120:
    for m in c.consume(num_messages=10_000, timeout=1.0):
        if not m.error():
            got += 1
dt = time.perf_counter() - t0
print(f"consume: {got} records: {got / dt:,.0f} records/s")
c.close()

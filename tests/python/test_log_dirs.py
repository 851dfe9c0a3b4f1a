"""DescribeLogDirs (issue 21): the size each replica reports matches the data on disk within
5 %: the bytes of the stored batches that `raftka check` reads back from the stopped node's
store, partition by partition, and the record payload the producer sent."""

from __future__ import annotations

import os
import re
import subprocess

from confluent_kafka import Producer

from cluster_util import admin_probe, create_topic
from raftka_harness import unique_name


def test_describe_log_dirs_sizes_match_the_data_on_disk(raftka_factory, raftka_binary):
    node = raftka_factory()
    b = node.bootstrap
    topic = unique_name("sized")
    create_topic(b, topic, partitions=3, rf=1)
    p = Producer({"bootstrap.servers": b, "acks": "all", "linger.ms": 5,
                  "compression.type": "none"})
    payload = {0: 0, 1: 0, 2: 0}
    for i in range(6000):
        part = i % 3
        value = os.urandom(500 + (i % 7) * 300)  # incompressible, 500..2300 bytes
        p.produce(topic, value, key=b"k%d" % i, partition=part)
        payload[part] += len(value)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0

    reported = {}
    for line in admin_probe(b, "logdirs", "1"):
        t, part, size = line.split(" ")
        if t == topic:
            reported[int(part)] = int(size)
    assert sorted(reported) == [0, 1, 2]

    node.stop()
    out = subprocess.run([str(raftka_binary), "check", str(node.data_dir)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    on_disk = {}
    for line in out.stdout.splitlines():
        m = re.match(rf"\s+{re.escape(topic)}-(\d+)\s+(\d+) batches\s+(\d+) bytes", line)
        if m:
            on_disk[int(m.group(1))] = int(m.group(3))
    assert sorted(on_disk) == [0, 1, 2], out.stdout
    for part in range(3):
        print(f"partition {part}: DescribeLogDirs {reported[part]} B, stored batches "
              f"{on_disk[part]} B, payload {payload[part]} B")
        assert abs(reported[part] - on_disk[part]) <= 0.05 * on_disk[part]
        # Batches hold the payload plus keys and per-record / per-batch overhead (a few %).
        assert payload[part] <= reported[part] <= 1.05 * payload[part]

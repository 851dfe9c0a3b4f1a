"""The cost of TLS and SASL on one node (issue 15): the same client (confluent-kafka, whose
librdkafka is built with TLS; `make bench` has its own SASL_SSL rows, group `secure`) produces and then
consumes the same volume over PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512) listeners of one
release node. Prints one JSON line per run and a table; `docs/benchmarks.md` records them.

    .venv/bin/python bench/tls_bench.py --raftka ~/.cache/raftka/target/release/raftka \
        [--records 200000] [--sizes 1024,16384]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from raftka_harness import Node, free_ports
from raftka_harness.pki import make_ca, make_cert

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";'


def make_pki(d: Path) -> None:
    make_ca(d, "ca")
    make_cert(d, "server", "/CN=raftka", "ca")


def produce(conf: dict, topic: str, size: int, n: int) -> float:
    p = Producer({**conf, "acks": "1", "linger.ms": 5, "batch.size": 1000000,
                  "queue.buffering.max.kbytes": 1048576, "compression.type": "none"})
    payload = os.urandom(size)
    t0 = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, payload)
                break
            except BufferError:
                p.poll(0.005)
    assert p.flush(120) == 0
    return time.perf_counter() - t0


def consume(conf: dict, topic: str, n: int) -> float:
    c = Consumer({**conf, "group.id": f"bench-{time.time_ns()}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800,
                  "max.partition.fetch.bytes": 10485760, "queued.max.messages.kbytes": 1048576})
    c.subscribe([topic])
    got, t0 = 0, None
    deadline = time.monotonic() + 300
    while got < n and time.monotonic() < deadline:
        for m in c.consume(10000, 0.5):
            if m.error() is None:
                if t0 is None:
                    t0 = time.perf_counter()
                got += 1
    c.close()
    assert got >= n, (got, n)
    return time.perf_counter() - (t0 or time.perf_counter())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raftka", type=Path, required=True)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--sizes", default="1024,16384")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="raftka-tls-bench-"))
    make_pki(root)
    ssl_port, sasl_port = free_ports(2)
    node = Node(args.raftka, root / "node", name="tls-bench",
                listeners=("PLAINTEXT://{host}:{kafka_port},SSL://{host}:" + str(ssl_port)
                           + ",SASL_SSL://{host}:" + str(sasl_port)),
                extra_args=["-o", f"ssl.keystore.location={root / 'server.pem'}",
                            "-o", f"listener.name.sasl_ssl.plain.sasl.jaas.config={JAAS}"])
    node.start()
    try:
        plain = {"bootstrap.servers": node.bootstrap}
        a = AdminClient(plain)
        a.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "bench", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"bench-secret")])["bench"].result(30)
        tls = {"ssl.ca.location": str(root / "ca.crt")}
        confs = {
            "PLAINTEXT": plain,
            "SSL": {"bootstrap.servers": f"127.0.0.1:{ssl_port}", "security.protocol": "SSL", **tls},
            "SASL_SSL": {"bootstrap.servers": f"127.0.0.1:{sasl_port}", "security.protocol": "SASL_SSL",
                         "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "bench",
                         "sasl.password": "bench-secret", **tls},
        }
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            n = max(1000, args.records * 1024 // max(size, 1024))
            for proto, conf in confs.items():
                topic = f"tls-{proto.lower()}-{size}"
                a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
                tp = produce(conf, topic, size, n)
                tc = consume(conf, topic, n)
                row = {"protocol": proto, "size": size, "records": n,
                       "produce_mb_s": round(n * size / tp / 1e6, 1), "produce_rec_s": round(n / tp),
                       "consume_mb_s": round(n * size / tc / 1e6, 1), "consume_rec_s": round(n / tc),
                       "loadavg": os.getloadavg()[0]}
                rows.append(row)
                print(json.dumps(row), flush=True)
        print("\n| protocol | size | produce MB/s | consume MB/s |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['protocol']} | {r['size']} | {r['produce_mb_s']} | {r['consume_mb_s']} |")
    finally:
        node.stop(check=False)


if __name__ == "__main__":
    sys.exit(main())

"""The cost of ACL authorization on one node (issue 15): the same client (confluent-kafka)
produces and then consumes the same volume of small records (where a per-request cost shows
most) over a SASL_PLAINTEXT listener (PLAIN), with:

  off       no authorizer (`--raftka-before` also runs this with the build before the ACL
            step, to show what the checks cost when authorization is off)
  super     Kafka's authorizer on, the client a super user (no ACL lookup)
  acls      Kafka's authorizer on, the client granted WRITE/READ through a PREFIXED ACL and its
            group by a LITERAL one, among `--extra-acls` unrelated ACLs

Prints one JSON line per run and a table; `docs/benchmarks.md` records them.

    .venv/bin/python bench/authz_bench.py --raftka ~/.cache/raftka/target/release/raftka \
        [--raftka-before /path/to/old/raftka] [--records 400000] [--size 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from raftka_harness import Node

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tls_bench import consume, produce  # noqa: E402  (same client settings as the TLS rows)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret" user_bench="bench-secret";')
AUTHZ = ["-o", "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
         "-o", "super.users=User:admin"]


def conf(node: Node, user: str) -> dict:
    return {"bootstrap.servers": node.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-secret"}


def run(binary: Path, root: Path, label: str, authz: bool, user: str, extra_acls: int,
        records: int, size: int) -> dict:
    node = Node(binary, root / label, name=f"authz-{label}",
                listeners="SASL_PLAINTEXT://{host}:{kafka_port}",
                extra_args=["-o", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
                            *(AUTHZ if authz else [])])
    node.start()
    try:
        a = AdminClient(conf(node, "admin"))
        topic = "bench-authz"
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        if authz and user != "admin":
            acls = [AclBinding(ResourceType.TOPIC, "bench-", ResourcePatternType.PREFIXED, "User:bench",
                               "*", op, AclPermissionType.ALLOW)
                    for op in (AclOperation.WRITE, AclOperation.READ)]
            acls.append(AclBinding(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, "User:bench",
                                   "*", AclOperation.READ, AclPermissionType.ALLOW))
            acls += [AclBinding(ResourceType.TOPIC, f"other-{i}", ResourcePatternType.LITERAL,
                                f"User:u{i}", "*", AclOperation.READ, AclPermissionType.ALLOW)
                     for i in range(extra_acls)]
            for f in a.create_acls(acls).values():
                f.result(60)
        c = conf(node, user)
        tp = produce(c, topic, size, records)
        tc = consume(c, topic, records)
        return {"case": label, "size": size, "records": records,
                "produce_rec_s": round(records / tp), "consume_rec_s": round(records / tc),
                "loadavg": os.getloadavg()[0]}
    finally:
        node.stop(check=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raftka", type=Path, required=True)
    ap.add_argument("--raftka-before", type=Path)
    ap.add_argument("--records", type=int, default=400_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--extra-acls", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="raftka-authz-bench-"))
    cases = [("off", args.raftka, False, "bench")]
    if args.raftka_before:
        cases.insert(0, ("off-before", args.raftka_before, False, "bench"))
    cases += [("super", args.raftka, True, "admin"), ("acls", args.raftka, True, "bench")]
    rows = []
    for r in range(args.rounds):
        for label, binary, authz, user in cases:
            row = run(binary, root, f"{label}-{r}", authz, user, args.extra_acls, args.records,
                      args.size)
            row["case"] = label
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| case | produce rec/s | consume rec/s | load |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['produce_rec_s']:,} | {row['consume_rec_s']:,} | {row['loadavg']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())

"""Mutual TLS between nodes (issue 15): with `raft.ssl.keystore.location` and
`raft.ssl.truststore.location`, the Raft, replication, forwarding and group gRPC traffic of a
3-node cluster runs over TLS with client certificates (openssl-made CA). An RF 3 acks=all
topic replicates; `raftka quorum` needs a client certificate too; a 4th node whose certificate
comes from a foreign CA cannot join (add-voter fails, the voters stay 1, 2, 3)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster_util import FAST, brokers, create_topic, full_isr
from raftka_harness import Cluster, unique_name, wait_until
from raftka_harness.pki import make_ca, make_cert


def raft_addr(node) -> str:
    return f"127.0.0.1:{node.raft_port}"


def quorum(binary, addr: str, *args: str, tls: Path | None = None, timeout_ms: int = 20000):
    cmd = [str(binary), "quorum", "--bootstrap", addr, "--timeout-ms", str(timeout_ms)]
    if tls is not None:
        cmd += ["--ssl-ca", str(tls / "ca.crt"), "--ssl-cert", str(tls / "admin.crt"),
                "--ssl-key", str(tls / "admin.key")]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(300)
def test_nodes_need_a_trusted_certificate(raftka_binary, tmp_path_factory, raftka_factory):
    from conftest import _new_node, _release
    pki = tmp_path_factory.mktemp("raftpki")
    make_ca(pki, "ca")
    make_ca(pki, "foreign")
    node_pem = make_cert(pki, "node", "/CN=node", "ca", usage="both")
    make_cert(pki, "admin", "/CN=admin", "ca", usage="both")
    intruder_pem = make_cert(pki, "intruder", "/CN=intruder", "foreign", usage="both")
    tls_args = ["-o", f"raft.ssl.keystore.location={node_pem}",
                "-o", f"raft.ssl.truststore.location={pki / 'ca.crt'}", *FAST]
    nodes = [_new_node(raftka_binary, tmp_path_factory, f"t{i}", node_id=i, extra_args=tls_args)
             for i in (1, 2, 3)]
    c = Cluster(nodes)
    try:
        c.start()
        n1, n2, n3 = nodes
        wait_until(lambda: brokers(n1.bootstrap) >= {1, 2, 3}, 60, "3 brokers over mTLS")
        assert "tls=true" in n1.log_text()

        # Replication (and the metadata Raft) over mTLS: RF 3, acks=all.
        topic = unique_name("mtls")
        create_topic(n1.bootstrap, topic, 1, 3)
        wait_until(lambda: full_isr(n1.bootstrap, topic, 1), 30, "a full ISR")
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True})
        for i in range(50):
            p.produce(topic, f"v{i}".encode(), partition=0)
        assert p.flush(30) == 0
        cons = Consumer({"bootstrap.servers": n3.bootstrap, "group.id": unique_name("g"),
                         "auto.offset.reset": "earliest"})
        cons.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []

        def more() -> bool:
            got.extend(m.value() for m in cons.consume(50, 1) if m.error() is None)
            return len(got) >= 50

        wait_until(more, 30, "50 records")
        cons.close()
        assert got == [f"v{i}".encode() for i in range(50)]

        # The quorum CLI: refused in plaintext, served with a trusted client certificate.
        plain = quorum(raftka_binary, raft_addr(n2), "describe", timeout_ms=3000)
        assert plain.returncode == 1, plain.stdout
        ok = quorum(raftka_binary, raft_addr(n2), "describe", "--json", tls=pki)
        assert ok.returncode == 0, ok.stderr
        assert '"node_id":1' in ok.stdout.replace(" ", "")

        # An intruder with a certificate of another CA cannot join.
        quorum_arg = ",".join(f"{n.node_id}@{raft_addr(n)}" for n in nodes)
        n4 = raftka_factory(name="t4", start=False, node_id=4)
        n4.extra_args = ["--controller-quorum", quorum_arg,
                         "-o", f"raft.ssl.keystore.location={intruder_pem}",
                         "-o", f"raft.ssl.truststore.location={pki / 'ca.crt'}", *FAST]
        n4.start()
        out = quorum(raftka_binary, raft_addr(n1), "add-voter", "--id", "4", "--addr", raft_addr(n4),
                     tls=pki, timeout_ms=8000)
        assert out.returncode == 1, out.stdout
        # It became a learner that never catches up (the leader cannot reach it: its
        # certificate is not trusted); the operator takes it out again.
        assert "did not catch up" in out.stderr, out.stderr
        rm = quorum(raftka_binary, raft_addr(n1), "remove-node", "--id", "4", tls=pki)
        assert rm.returncode == 0, rm.stderr
        assert "UnknownIssuer" in n1.log_text()
        d = quorum(raftka_binary, raft_addr(n1), "describe", "--json", tls=pki)
        assert d.returncode == 0, d.stderr
        desc = json.loads(d.stdout)
        assert sorted(v["node_id"] for v in desc["voters"]) == [1, 2, 3]
        assert desc["learners"] == []
        assert 4 not in brokers(n1.bootstrap)
        # The cluster still serves.
        p.produce(topic, b"after", partition=0)
        assert p.flush(30) == 0
    finally:
        for n in nodes:
            _release(n)

"""`--secure` runs (issue 15): every node serves Kafka on a SASL_SSL listener only (PLAIN user
`jepsen`), the node-to-node port speaks mutual TLS (`raft.ssl.*`), and every client — the
workload's producers and consumers, the admin clients, `raftka quorum` — authenticates. The
CA and one certificate (server and client auth, with every address a node of any netns slot
can have) are made here with Debian's openssl, once per run, in `<results>/pki`.
"""

from __future__ import annotations

from pathlib import Path

from raftka_harness.pki import make_ca, make_cert

USER, PASSWORD = "jepsen", "jepsen-secret"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        f'user_{USER}="{PASSWORD}";')
LISTENERS = "SASL_SSL://{host}:{kafka_port}"


class Security:
    def __init__(self, out: Path):
        self.dir = out / "pki"
        self.dir.mkdir(parents=True, exist_ok=True)
        make_ca(self.dir, "ca")
        # 127.0.0.1 (local topology) and 10.77.<slot>.<i> (netns.py's addresses).
        ips = ["127.0.0.1"] + [f"10.77.{s}.{i}" for s in range(8) for i in range(1, 10)]
        make_cert(self.dir, "node", "/CN=raftka", "ca", usage="both",
                  names=["DNS:localhost", *(f"IP:{ip}" for ip in ips)])

    def node_args(self) -> list[str]:
        return ["-o", f"ssl.keystore.location={self.dir / 'node.pem'}",
                "-o", f"listener.name.sasl_ssl.plain.sasl.jaas.config={JAAS}",
                "-o", f"raft.ssl.keystore.location={self.dir / 'node.pem'}",
                "-o", f"raft.ssl.truststore.location={self.dir / 'ca.crt'}"]

    def client_conf(self) -> dict:
        return {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                "sasl.username": USER, "sasl.password": PASSWORD,
                "ssl.ca.location": str(self.dir / "ca.crt")}

    def quorum_args(self) -> list[str]:
        return ["--ssl-ca", str(self.dir / "ca.crt"), "--ssl-cert", str(self.dir / "node.crt"),
                "--ssl-key", str(self.dir / "node.key")]

"""TLS listeners (issue 15): SSL with mutual TLS and SASL_SSL with SCRAM and PLAIN, the key
stores in PKCS#12 and PEM as Kafka's `ssl.keystore.*` keys name them, certificates made with
Debian's openssl. Real clients: confluent-kafka, kcat, kafka-python, aiokafka, Python's ssl.

Refusals: a client certificate from a foreign CA, an expired one, none where
`ssl.client.auth=required`, plaintext Kafka bytes or garbage on a TLS port — the handshake
fails, the connection is closed, the node keeps serving, and it is counted. The server
certificate is reloaded when its key store file changes, without a restart."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from raftka_harness import free_ports, unique_name, wait_until
from raftka_harness.pki import make_ca, make_cert, make_pkcs12

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret";')
KS_PASSWORD = "keystore-secret"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "foreign")
    make_cert(d, "server", "/CN=raftka-server", "ca")
    make_cert(d, "server2", "/CN=raftka-reloaded", "ca")
    make_cert(d, "alice", "/C=US/O=acme/OU=eng/CN=alice", "ca", usage="client")
    make_cert(d, "expired", "/CN=expired", "ca", days=-1, usage="client")
    make_cert(d, "mallory", "/CN=mallory", "foreign", usage="client")
    for name in ("server", "server2"):
        make_pkcs12(d, name, KS_PASSWORD)
    return d


@pytest.fixture(scope="module")
def node(raftka_binary, tmp_path_factory, pki):
    from conftest import _new_node, _release
    ssl_port, sasl_ssl_port = free_ports(2)
    live = pki / "live.p12"
    shutil.copy(pki / "server.p12", live)
    n = _new_node(
        raftka_binary, tmp_path_factory, "tls",
        listeners=("PLAINTEXT://{host}:{kafka_port},SSL://{host}:" + str(ssl_port)
                   + ",SASL_SSL://{host}:" + str(sasl_ssl_port)),
        env={"RUST_LOG": "info,raftka::kafka::connection=debug"},
        extra_args=[
            # The SSL listener: PKCS#12 key store (reloaded when it changes), mutual TLS.
            "-o", "listener.name.ssl.ssl.keystore.type=PKCS12",
            "-o", f"listener.name.ssl.ssl.keystore.location={live}",
            "-o", f"listener.name.ssl.ssl.keystore.password={KS_PASSWORD}",
            "-o", "listener.name.ssl.ssl.client.auth=required",
            "-o", f"ssl.truststore.location={pki / 'ca.crt'}",
            "-o", "listener.name.ssl.ssl.principal.mapping.rules=RULE:^CN=([a-z]+),OU=.*$/$1/L,DEFAULT",
            "-o", "ssl.keystore.reload.interval.ms=300",
            # The SASL_SSL listener: a PEM key store, no client certificates.
            "-o", "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            "-o", f"listener.name.sasl_ssl.ssl.keystore.location={pki / 'server.pem'}",
            "-o", f"listener.name.sasl_ssl.plain.sasl.jaas.config={JAAS}",
        ])
    n.ssl_bootstrap = f"{n.host}:{ssl_port}"
    n.sasl_ssl_bootstrap = f"{n.host}:{sasl_ssl_port}"
    n.live_keystore = live
    try:
        n.start()
        yield n
    finally:
        _release(n)


def mtls_conf(node, pki: Path, client: str = "alice") -> dict:
    return {"bootstrap.servers": node.ssl_bootstrap, "security.protocol": "SSL",
            "ssl.ca.location": str(pki / "ca.crt"),
            "ssl.certificate.location": str(pki / f"{client}.crt"),
            "ssl.key.location": str(pki / f"{client}.key")}


def sasl_ssl_conf(node, pki: Path, mechanism: str, user: str, password: str) -> dict:
    return {"bootstrap.servers": node.sasl_ssl_bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(pki / "ca.crt"), "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}


def roundtrip(conf: dict, topic: str, n: int = 10) -> list[bytes]:
    p = Producer({**conf, "acks": "all"})
    for i in range(n):
        p.produce(topic, f"t{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": unique_name("g"), "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    return got


def create_topic(node, topic: str) -> None:
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def refused(conf: dict) -> list[str]:
    errors: list[str] = []
    p = Producer({**conf, "error_cb": lambda e: errors.append(str(e))})
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    del p
    assert errors, "expected the connection to be refused"
    return errors


def metric(node, name: str) -> int:
    with urllib.request.urlopen(node.http_url + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise AssertionError(name)


def test_mutual_tls_with_confluent_kafka(node, pki):
    topic = unique_name("mtls")
    create_topic(node, topic)
    assert roundtrip(mtls_conf(node, pki), topic) == [f"t{i}".encode() for i in range(10)]
    # The principal is the certificate's DN through the mapping rules.
    wait_until(lambda: "TLS connection established" in node.log_path.read_text(errors="replace")
                      and "principal=User:alice" in node.log_path.read_text(errors="replace"), 10, "the mTLS principal logged")


def test_sasl_ssl_with_scram_and_plain(node, pki):
    a = AdminClient(sasl_ssl_conf(node, pki, "PLAIN", "admin", "admin-secret"))
    a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "sam", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"sam-secret")])["sam"].result(30)
    topic = unique_name("saslssl")
    create_topic(node, topic)
    assert len(roundtrip(sasl_ssl_conf(node, pki, "SCRAM-SHA-512", "sam", "sam-secret"), topic, 5)) == 5
    errs = refused(sasl_ssl_conf(node, pki, "SCRAM-SHA-512", "sam", "wrong-password"))
    assert any("uthentication" in e for e in errs), errs


def test_kafka_python_and_aiokafka_over_tls(node, pki):
    from kafka import KafkaConsumer, KafkaProducer
    topic = unique_name("kptls")
    create_topic(node, topic)
    opts = dict(bootstrap_servers=node.sasl_ssl_bootstrap, security_protocol="SASL_SSL",
                ssl_cafile=str(pki / "ca.crt"), sasl_mechanism="PLAIN",
                sasl_plain_username="admin", sasl_plain_password="admin-secret")
    p = KafkaProducer(acks="all", **opts)
    for i in range(3):
        p.send(topic, f"kp{i}".encode()).get(30)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **opts)
    assert [m.value for m in c][:3] == [b"kp0", b"kp1", b"kp2"]
    c.close()

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    async def run() -> list[bytes]:
        ctx = create_ssl_context(cafile=str(pki / "ca.crt"), certfile=str(pki / "alice.crt"),
                                 keyfile=str(pki / "alice.key"))
        kw = dict(bootstrap_servers=node.ssl_bootstrap, security_protocol="SSL", ssl_context=ctx)
        prod = AIOKafkaProducer(**kw)
        await prod.start()
        try:
            await prod.send_and_wait(topic, b"ai")
        finally:
            await prod.stop()
        cons = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **kw)
        await cons.start()
        out: list[bytes] = []
        try:
            while len(out) < 4:
                batch = await asyncio.wait_for(cons.getmany(timeout_ms=1000), 20)
                for msgs in batch.values():
                    out.extend(m.value for m in msgs)
        finally:
            await cons.stop()
        return out

    assert asyncio.run(run())[3] == b"ai"


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_over_mutual_tls(node, pki):
    topic = unique_name("kcattls")
    create_topic(node, topic)
    base = ["kcat", "-b", node.ssl_bootstrap, "-X", "security.protocol=SSL",
            "-X", f"ssl.ca.location={pki / 'ca.crt'}",
            "-X", f"ssl.certificate.location={pki / 'alice.crt'}",
            "-X", f"ssl.key.location={pki / 'alice.key'}"]
    r = subprocess.run([*base, "-P", "-t", topic, "-p", "0"], input="a\nb\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*base, "-C", "-t", topic, "-e", "-o", "beginning"], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["a", "b"], r.stderr


def test_bad_certificates_and_bytes_are_refused(node, pki):
    before = metric(node, "raftka_kafka_tls_handshake_failures_total")
    for client in ("mallory", "expired"):
        refused(mtls_conf(node, pki, client))
    no_cert = {k: v for k, v in mtls_conf(node, pki).items() if not k.startswith("ssl.certificate") and not k.startswith("ssl.key")}
    refused(no_cert)
    host, port = node.ssl_bootstrap.rsplit(":", 1)
    # Plaintext Kafka (ApiVersions v0) and garbage on the TLS port: closed without an answer.
    for payload in (struct.pack(">ihhih", 10, 18, 0, 1, 0), b"\x16\x03\x01\xff\xff" + b"\x00" * 64):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(10)
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            assert not data.startswith(b"\x00\x00\x00"), data
    # The client's view: a TLS client that does not trust the node's CA fails too.
    ctx = ssl.create_default_context(cafile=str(pki / "foreign.crt"))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname="localhost")
    wait_until(lambda: metric(node, "raftka_kafka_tls_handshake_failures_total") >= before + 4, 10, "failures counted")
    assert node.responsive()
    log = node.log_path.read_text(errors="replace")
    assert "TLS handshake failed" in log
    assert KS_PASSWORD not in "\n".join(l for l in log.splitlines() if not l.startswith("===== start"))


def served_subject(node, pki: Path) -> str:
    host, port = node.ssl_bootstrap.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "alice.crt"), str(pki / "alice.key"))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            cert = s.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_keystore_reload_without_restart(node, pki):
    assert served_subject(node, pki) == "raftka-server"
    reloads = metric(node, "raftka_kafka_tls_reloads_total")
    tmp = node.live_keystore.with_suffix(".tmp")
    shutil.copy(pki / "server2.p12", tmp)
    tmp.replace(node.live_keystore)
    # The check runs on accept, at most every 300 ms: the first connection after it may still
    # get the old certificate.
    wait_until(lambda: served_subject(node, pki) == "raftka-reloaded", 10, "the new certificate served")
    assert metric(node, "raftka_kafka_tls_reloads_total") == reloads + 1
    # A broken store is not taken: the reloaded certificate stays in use.
    node.live_keystore.write_bytes(b"not a key store")
    time.sleep(0.5)
    assert served_subject(node, pki) == "raftka-reloaded"
    assert served_subject(node, pki) == "raftka-reloaded"
    assert "do not load; keeping the previous ones" in node.log_path.read_text(errors="replace")
    shutil.copy(pki / "server.p12", node.live_keystore)


def test_tls_config_errors(raftka_binary, tmp_path, pki):
    """A TLS listener without a key store, a wrong PKCS#12 password, a JKS store, TLS 1.1,
    client auth without a trust store: the node refuses to start and says why (no secret)."""
    base = [str(raftka_binary), "serve", "--data-dir", str(tmp_path / "d"), "--http-listen", "none",
            "--zk-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0"]
    ks = ["-o", f"ssl.keystore.location={pki / 'server.p12'}"]
    cases = [
        (["--listeners", "SSL://127.0.0.1:0"], "needs a key store"),
        (["--listeners", "SSL://127.0.0.1:0", *ks, "-o", "ssl.keystore.password=wrong-pass-123"], "wrong ssl.keystore.password"),
        (["--listeners", "SSL://127.0.0.1:0", *ks, "-o", "ssl.keystore.type=JKS"], "JKS is not supported"),
        (["--listeners", "SSL://127.0.0.1:0", *ks, "-o", "ssl.enabled.protocols=TLSv1.1"], "TLSv1.2 and TLSv1.3"),
        (["--listeners", "SSL://127.0.0.1:0", *ks, "-o", "ssl.client.auth=required"], "no trust store"),
    ]
    for args, want in cases:
        r = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode != 0 and want in out, (args, r.returncode, out[-2000:])
        assert "wrong-pass-123" not in out


def test_zookeeper_secure_client_port(raftka_factory, pki):
    """ZooKeeper's `secureClientPort`: `zk.secure.listen` serves the facade over TLS (stores
    from zk.ssl.*, here with client certificates required); kazoo with `use_ssl` reads and
    writes there, a client without a certificate and a plaintext client are refused, and the
    plain port keeps working."""
    from kazoo.client import KazooClient
    (port,) = free_ports(1)
    n = raftka_factory("zktls", extra_args=[
        "-o", f"zk.secure.listen=127.0.0.1:{port}",
        "-o", f"zk.ssl.keystore.location={pki / 'server.pem'}",
        "-o", f"zk.ssl.truststore.location={pki / 'ca.crt'}",
        "-o", "zk.ssl.client.auth=required"])
    z = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10, use_ssl=True, verify_certs=True,
                    ca=str(pki / "ca.crt"), certfile=str(pki / "alice.crt"), keyfile=str(pki / "alice.key"))
    z.start(timeout=15)
    try:
        z.create("/over-tls", b"secret")
        assert z.get("/over-tls")[0] == b"secret"
        assert "1" in z.get_children("/brokers/ids")
    finally:
        z.stop()
        z.close()
    plain = KazooClient(hosts=n.zk_hosts, timeout=10)
    plain.start(timeout=15)
    assert plain.get("/over-tls")[0] == b"secret"
    plain.stop()
    plain.close()
    # A TLS client without a certificate, and plaintext on the secure port: no session.
    for kw in ({"use_ssl": True, "verify_certs": True, "ca": str(pki / "ca.crt")}, {}):
        c = KazooClient(hosts=f"127.0.0.1:{port}", timeout=3, connection_retry={"max_tries": 1}, **kw)
        with pytest.raises(Exception):
            c.start(timeout=4)
        c.stop()
        c.close()
    assert n.responsive()

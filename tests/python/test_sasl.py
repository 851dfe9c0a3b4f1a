"""SASL on a SASL_PLAINTEXT listener (issue 15): PLAIN users from the listener's JAAS config,
SCRAM-SHA-256/512 credentials kept in the metadata Raft and managed by
AlterUserScramCredentials / DescribeUserScramCredentials (confluent-kafka's AdminClient) and by
`/config/users/<u>` through the ZooKeeper facade, written as Kafka 2.2.1's
`kafka-configs.sh --zookeeper --alter --add-config 'SCRAM-SHA-256=[...]' --entity-type users`
writes it (kazoo). Real clients authenticate: confluent-kafka (SaslAuthenticate, and the v0
raw-token framing when it cannot ask for API versions), kafka-python, aiokafka, kcat.

Refusals: a wrong password, an unknown user, a mechanism the listener does not enable, a
request before the handshake, SaslAuthenticate before SaslHandshake: the connection is closed
(a failed authentication only after `connection.failed.authentication.delay.ms`), the node
keeps serving, the failure is counted on /metrics and logged at WARN, and no secret appears in
the log, /metrics or /health."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from raftka_harness import Node, free_ports, unique_name, wait_until

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" '
        'user_admin="admin-secret" user_alice="alice-plain-secret";')
SECRETS = ["admin-secret", "alice-plain-secret", "bob-scram-secret", "carol-zk-secret",
           "wrong-password-xyz"]
DELAY_MS = 400


@pytest.fixture(scope="module")
def node(raftka_binary, tmp_path_factory):
    from conftest import _new_node, _release
    (plain_port,) = free_ports(1)
    n = _new_node(
        raftka_binary, tmp_path_factory, "sasl",
        listeners="SASL_PLAINTEXT://{host}:{kafka_port},PLAINTEXT://{host}:" + str(plain_port),
        extra_args=["-o", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
                    "-o", f"connection.failed.authentication.delay.ms={DELAY_MS}"])
    n.plain_bootstrap = f"{n.host}:{plain_port}"
    try:
        n.start()
        yield n
    finally:
        _release(n)


def sasl_conf(node, mechanism: str, user: str, password: str, **extra) -> dict:
    return {"bootstrap.servers": node.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
            **extra}


def admin(node) -> AdminClient:
    return AdminClient(sasl_conf(node, "PLAIN", "admin", "admin-secret"))


def produce_consume(conf: dict, topic: str, n: int = 20) -> list[bytes]:
    p = Producer({**conf, "acks": "all"})
    for i in range(n):
        p.produce(topic, f"m{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": unique_name("g"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
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
    a = admin(node)
    fs = a.create_topics([NewTopic(topic, 1, 1)])
    fs[topic].result(30)


def auth_fails(conf: dict) -> str:
    """A client with `conf` (which connects at once) must be refused with an authentication
    error; returns the errors it reported."""
    errors: list[str] = []
    p = Producer({**conf, "error_cb": lambda e: errors.append(str(e))})
    deadline = time.monotonic() + 10
    while not any("uthentication" in e for e in errors) and time.monotonic() < deadline:
        p.poll(0.2)
    assert any("uthentication" in e for e in errors), errors
    del p  # destroyed now, so it stops reconnecting
    return " ".join(errors)


# ---- PLAIN and SCRAM with confluent-kafka ------------------------------------------------

def test_plain_users_from_the_jaas_config(node):
    topic = unique_name("plain")
    create_topic(node, topic)
    got = produce_consume(sasl_conf(node, "PLAIN", "alice", "alice-plain-secret"), topic)
    assert got == [f"m{i}".encode() for i in range(20)]


def test_scram_credentials_by_admin_api(node):
    a = admin(node)
    for mech, m in ((ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-256"),
                    (ScramMechanism.SCRAM_SHA_512, "SCRAM-SHA-512")):
        fs = a.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "bob", ScramCredentialInfo(mech, 8192), b"bob-scram-secret")])
        fs["bob"].result(30)
    desc = a.describe_user_scram_credentials(["bob"])["bob"].result(30)
    infos = sorted((i.mechanism, i.iterations) for i in desc.scram_credential_infos)
    assert infos == sorted([(ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 8192)])

    topic = unique_name("scram")
    create_topic(node, topic)
    for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        got = produce_consume(sasl_conf(node, m, "bob", "bob-scram-secret"), topic, 5)
        assert len(got) >= 5
    msg = auth_fails(sasl_conf(node, "SCRAM-SHA-512", "bob", "wrong-password-xyz"))
    assert "invalid credentials" in msg, msg

    # Kafka's checks: too few iterations, deleting what is not there.
    bad = a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "weak", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000), b"x")])
    with pytest.raises(KafkaException, match="(?i)iterations"):
        bad["weak"].result(30)
    gone = a.alter_user_scram_credentials([UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_256)])
    with pytest.raises(KafkaException):
        gone["nobody"].result(30)

    # Deleting the SHA-512 credential: that mechanism no longer authenticates bob.
    a.alter_user_scram_credentials([UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_512)])["bob"].result(30)
    auth_fails(sasl_conf(node, "SCRAM-SHA-512", "bob", "bob-scram-secret"))


def test_wrong_password_unknown_user_and_disabled_mechanism(node):
    t0 = time.monotonic()
    msg = auth_fails(sasl_conf(node, "PLAIN", "alice", "wrong-password-xyz"))
    assert "Invalid username or password" in msg, msg
    assert time.monotonic() - t0 >= DELAY_MS / 1000
    auth_fails(sasl_conf(node, "PLAIN", "mallory", "alice-plain-secret"))
    auth_fails(sasl_conf(node, "SCRAM-SHA-256", "mallory", "x"))
    # Kerberos is not enabled on the listener: UNSUPPORTED_SASL_MECHANISM, then closed.
    corr, err, mechs = handshake(node, "GSSAPI", version=1)
    assert err == 33 and set(mechs) == {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
    assert node.api_versions_ok()


def test_v0_raw_token_framing_by_an_old_librdkafka_setup(node):
    """Without ApiVersions (`api.version.request=false`, broker 0.10.0), librdkafka sends
    SaslHandshake v0 and then the bare PLAIN token, as clients before KIP-152 do."""
    topic = unique_name("v0sasl")
    create_topic(node, topic)
    old = {"api.version.request": False, "broker.version.fallback": "0.10.0.0"}
    got = produce_consume(sasl_conf(node, "PLAIN", "alice", "alice-plain-secret", **old), topic, 5)
    assert got == [f"m{i}".encode() for i in range(5)]
    auth_fails(sasl_conf(node, "PLAIN", "alice", "wrong-password-xyz", **old))


# ---- other clients ------------------------------------------------------------------------

def test_kafka_python_and_aiokafka_with_scram(node):
    from kafka import KafkaConsumer, KafkaProducer
    a = admin(node)
    a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "dora", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"dora-secret")])["dora"].result(30)
    topic = unique_name("kp")
    create_topic(node, topic)
    opts = dict(bootstrap_servers=node.bootstrap, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="dora",
                sasl_plain_password="dora-secret")
    p = KafkaProducer(acks="all", **opts)
    for i in range(5):
        p.send(topic, f"kp{i}".encode()).get(30)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **opts)
    assert [m.value for m in c][:5] == [f"kp{i}".encode() for i in range(5)]
    c.close()

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> list[bytes]:
        kw = dict(bootstrap_servers=node.bootstrap, security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism="PLAIN", sasl_plain_username="alice",
                  sasl_plain_password="alice-plain-secret")
        prod = AIOKafkaProducer(**kw)
        await prod.start()
        try:
            for i in range(3):
                await prod.send_and_wait(topic, f"ai{i}".encode())
        finally:
            await prod.stop()
        cons = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **kw)
        await cons.start()
        out: list[bytes] = []
        try:
            while len(out) < 8:
                batch = await asyncio.wait_for(cons.getmany(timeout_ms=1000), 20)
                for msgs in batch.values():
                    out.extend(m.value for m in msgs)
        finally:
            await cons.stop()
        return out

    assert asyncio.run(run())[5:8] == [b"ai0", b"ai1", b"ai2"]


@pytest.mark.skipif(shutil.which("kcat") is None and not os.environ.get("CI"), reason="kcat not installed")
def test_kcat_with_scram_and_a_wrong_password(node):
    a = admin(node)  # referenced until its futures resolve
    a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"erin-secret")])["erin"].result(30)
    topic = unique_name("kcat")
    create_topic(node, topic)
    base = ["kcat", "-b", node.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
            "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=erin"]
    ok = subprocess.run([*base, "-X", "sasl.password=erin-secret", "-P", "-t", topic, "-p", "0"],
                        input="k1\nk2\n", capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    out = subprocess.run([*base, "-X", "sasl.password=erin-secret", "-C", "-t", topic, "-e", "-o", "beginning"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["k1", "k2"], out.stderr
    bad = subprocess.run([*base, "-X", "sasl.password=wrong-password-xyz", "-L", "-m", "5"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "uthentication" in bad.stderr, bad.stderr


# ---- the ZooKeeper route, as Kafka 2.2.1's kafka-configs.sh writes it ------------------

def kafka_scram_string(mechanism: str, password: str, iterations: int) -> str:
    """Kafka 2.2.1 `ScramFormatter.generateCredential` + `ScramCredentialUtils.credentialToString`
    (the salt is the UTF-8 of a random base-36 string)."""
    h = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    salt = format(int.from_bytes(os.urandom(17), "big"), "x").encode()
    salted = hashlib.pbkdf2_hmac(h, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored = hashlib.new(h, client_key).digest()
    server = hmac.new(salted, b"Server Key", h).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"salt={b64(salt)},stored_key={b64(stored)},server_key={b64(server)},iterations={iterations}"


def test_kafka_2_2_1_configs_tool_through_the_facade(node):
    zk = KazooClient(hosts=node.zk_hosts, timeout=10)
    zk.start(timeout=15)
    try:
        cred = kafka_scram_string("SCRAM-SHA-256", "carol-zk-secret", 8192)
        data = json.dumps({"version": 1, "config": {"SCRAM-SHA-256": cred}}).encode()
        # AdminZkClient.changeUserOrUserClientIdConfig: read (absent), set-or-create, notify.
        with pytest.raises(NoNodeError):
            zk.get("/config/users/carol")
        try:
            zk.set("/config/users/carol", data)
        except NoNodeError:
            zk.create("/config/users/carol", data, makepath=True)
        zk.create("/config/changes/config_change_",
                  json.dumps({"version": 2, "entity_path": "users/carol"}).encode(), sequence=True)
        # --describe reads it back as written.
        got, _ = zk.get("/config/users/carol")
        assert json.loads(got)["config"]["SCRAM-SHA-256"] == cred
        assert "carol" in zk.get_children("/config/users")
        # The credential authenticates, and the admin API sees it.
        topic = unique_name("zkscram")
        create_topic(node, topic)
        assert len(produce_consume(sasl_conf(node, "SCRAM-SHA-256", "carol", "carol-zk-secret"), topic, 3)) == 3
        a = admin(node)
        desc = a.describe_user_scram_credentials(["carol"])["carol"].result(30)
        assert [(i.mechanism, i.iterations) for i in desc.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
        # --delete-config SCRAM-SHA-256: the user's config is emptied; carol no longer authenticates.
        zk.set("/config/users/carol", json.dumps({"version": 1, "config": {}}).encode())
        auth_fails(sasl_conf(node, "SCRAM-SHA-256", "carol", "carol-zk-secret"))
        # A malformed credential is refused, not stored.
        from kazoo.exceptions import BadArgumentsError
        with pytest.raises(BadArgumentsError):
            zk.set("/config/users/carol", b'{"version":1,"config":{"SCRAM-SHA-256":"salt=AA=="}}')
    finally:
        zk.stop()
        zk.close()


# ---- bad input on the wire ---------------------------------------------------------------

def _frame(api_key: int, version: int, corr: int, body: bytes, client_id: bytes = b"t") -> bytes:
    head = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    return struct.pack(">i", len(head) + len(body)) + head + body


def _read_frame(sock) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    (n,) = struct.unpack(">i", head)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def _closed(sock, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def handshake(node, mechanism: str, version: int = 1, sock=None):
    own = sock is None
    s = sock or socket.create_connection((node.host, node.kafka_port), timeout=5)
    try:
        m = mechanism.encode()
        s.sendall(_frame(17, version, 7, struct.pack(">h", len(m)) + m))
        r = _read_frame(s)
        corr, err, n = struct.unpack_from(">ihi", r, 0)
        at, mechs = 10, []
        for _ in range(n):
            (ln,) = struct.unpack_from(">h", r, at)
            mechs.append(r[at + 2:at + 2 + ln].decode())
            at += 2 + ln
        if own and err != 0:
            assert _closed(s), "closed after an unsupported mechanism"
        return corr, err, mechs
    finally:
        if own:
            s.close()


def test_requests_out_of_order_close_the_connection(node):
    # A Metadata request before authenticating.
    with socket.create_connection((node.host, node.kafka_port), timeout=5) as s:
        s.sendall(_frame(3, 1, 1, struct.pack(">i", -1)))
        assert _closed(s)
    # SaslAuthenticate before SaslHandshake.
    with socket.create_connection((node.host, node.kafka_port), timeout=5) as s:
        token = b"\0alice\0alice-plain-secret"
        s.sendall(_frame(36, 0, 2, struct.pack(">i", len(token)) + token))
        assert _closed(s)
    # Garbage instead of a request.
    with socket.create_connection((node.host, node.kafka_port), timeout=5) as s:
        s.sendall(struct.pack(">i", 6) + b"\xff\xff\xff\xff\xff\xff")
        assert _closed(s)
    # A frame larger than sasl.server.max.receive.size before authentication.
    with socket.create_connection((node.host, node.kafka_port), timeout=5) as s:
        s.sendall(struct.pack(">i", 600_000) + b"\0" * 1024)
        assert _closed(s)
    # The v0 raw-token exchange by hand: handshake v0, bare PLAIN token, then requests.
    with socket.create_connection((node.host, node.kafka_port), timeout=5) as s:
        corr, err, mechs = handshake(node, "PLAIN", version=0, sock=s)
        assert (corr, err) == (7, 0) and "PLAIN" in mechs
        token = b"\0alice\0alice-plain-secret"
        s.sendall(struct.pack(">i", len(token)) + token)
        assert _read_frame(s) == b""  # PLAIN's empty server token
        s.sendall(_frame(18, 0, 9, b""))  # ApiVersions v0 now served as a request
        assert struct.unpack_from(">ih", _read_frame(s), 0) == (9, 0)
    # An authenticated connection that sends SaslHandshake again (no re-authentication
    # configured) gets ILLEGAL_SASL_STATE, as from Kafka.
    with socket.create_connection((node.host, node.kafka_port), timeout=5) as s:
        handshake(node, "PLAIN", version=0, sock=s)
        token = b"\0alice\0alice-plain-secret"
        s.sendall(struct.pack(">i", len(token)) + token)
        _read_frame(s)
        _, err, _ = handshake(node, "PLAIN", version=1, sock=s)
        assert err == 34
    # The PLAINTEXT listener next to it needs no authentication.
    host, port = node.plain_bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(_frame(18, 0, 11, b""))
        assert struct.unpack_from(">ih", _read_frame(s), 0) == (11, 0)
    assert node.responsive()


def test_failures_counted_logged_without_secrets(node):
    auth_fails(sasl_conf(node, "PLAIN", "alice", "wrong-password-xyz"))
    with urllib.request.urlopen(node.http_url + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    with urllib.request.urlopen(node.http_url + "/health", timeout=5) as r:
        health = r.read().decode()
    fails = [l for l in metrics.splitlines() if l.startswith("raftka_kafka_authentication_failures_total ")]
    assert fails and int(float(fails[0].split()[1])) > 0, metrics
    oks = [l for l in metrics.splitlines() if l.startswith("raftka_kafka_authentications_total ")]
    assert oks and int(float(oks[0].split()[1])) > 0
    # The node's own lines (the harness writes the command line, with the JAAS option, first).
    log = "\n".join(l for l in node.log_path.read_text(errors="replace").splitlines()
                    if not l.startswith("===== start"))
    assert "failed authentication" in log and "WARN" in log
    for secret in SECRETS:
        for where, text in (("log", log), ("metrics", metrics), ("health", health)):
            assert secret not in text, f"{secret!r} appears in the {where}"
    # DescribeConfigs shows the JAAS config as sensitive, without its value.
    a = AdminClient({"bootstrap.servers": node.plain_bootstrap})
    from confluent_kafka.admin import ConfigResource, ResourceType
    res = a.describe_configs([ConfigResource(ResourceType.BROKER, "1")])
    entries = list(res.values())[0].result(30)
    jaas = entries["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert jaas.is_sensitive and jaas.value is None


def test_sasl_listener_config_errors(raftka_binary, tmp_path):
    """A SASL listener enabling PLAIN without users, or an unsupported mechanism, or a listener
    name without a protocol: the node refuses to start and says why."""
    cases = [
        (["--listeners", "SASL_PLAINTEXT://127.0.0.1:0"], "neither"),
        (["--listeners", "SASL_PLAINTEXT://127.0.0.1:0", "-o", "sasl.enabled.mechanisms=GSSAPI"], "GSSAPI"),
        (["--listeners", "INTERNAL://127.0.0.1:0"], "no security protocol for listener INTERNAL"),
        (["--listeners", "SSL://127.0.0.1:0"], "needs a key store"),
    ]
    for args, want in cases:
        r = subprocess.run([str(raftka_binary), "serve", "--data-dir", str(tmp_path / "d"), *args],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and want in r.stderr, (args, r.returncode, r.stderr)


def test_raftka_users_command(node, raftka_binary):
    """`raftka users` salts the password locally and sends AlterUserScramCredentials, over
    the SASL listener (authenticated as the PLAIN admin, or with SCRAM)."""
    env = {**os.environ, "RAFTKA_SASL_PASSWORD": "admin-secret", "RAFTKA_USER_PASSWORD": "frank-secret"}
    base = [str(raftka_binary), "users", "--bootstrap-server", node.bootstrap,
            "--sasl-mechanism", "PLAIN", "--sasl-username", "admin"]
    r = subprocess.run([*base, "set", "--user", "frank", "--mechanism", "SCRAM-SHA-256"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "frank-secret" not in r.stdout + r.stderr
    r = subprocess.run([*base, "list", "--user", "frank"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "frank SCRAM-SHA-256=[iterations=8192]", (r.stdout, r.stderr)
    topic = unique_name("cli")
    create_topic(node, topic)
    assert len(produce_consume(sasl_conf(node, "SCRAM-SHA-256", "frank", "frank-secret"), topic, 2)) == 2
    # frank, authenticated with SCRAM, deletes his own credential.
    scram = [str(raftka_binary), "users", "--bootstrap-server", node.bootstrap,
             "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", "frank"]
    env2 = {**os.environ, "RAFTKA_SASL_PASSWORD": "frank-secret"}
    r = subprocess.run([*scram, "delete", "--user", "frank", "--mechanism", "SCRAM-SHA-256"],
                       env=env2, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*base, "list", "--user", "frank"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "does not exist" in r.stderr, (r.stdout, r.stderr)
    # Refusals: a wrong admin password, too few iterations.
    bad = {**env, "RAFTKA_SASL_PASSWORD": "wrong-password-xyz"}
    r = subprocess.run([*base, "list"], env=bad, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Invalid username or password" in r.stderr, r.stderr
    r = subprocess.run([*base, "set", "--user", "g", "--iterations", "10"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Too few iterations" in r.stderr, r.stderr


def _metric(node, name: str) -> int:
    with urllib.request.urlopen(node.http_url + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise AssertionError(f"{name} not on /metrics")


def test_reauthentication_kip_368(raftka_factory):
    """With `connections.max.reauth.ms`, librdkafka is told the session lifetime and
    re-authenticates on the same connection while producing; a connection that lets its
    session expire is closed at its next request."""
    n = raftka_factory(
        "reauth", listeners="SASL_PLAINTEXT://{host}:{kafka_port}",
        extra_args=["-o", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
                    "-o", "connections.max.reauth.ms=2000"])
    conf = sasl_conf(n, "PLAIN", "alice", "alice-plain-secret")
    topic = unique_name("reauth")
    create_topic(n, topic)
    p = Producer({**conf, "acks": "all"})
    sent = 0
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        p.produce(topic, f"r{sent}".encode())
        sent += 1
        p.poll(0.1)
    assert p.flush(30) == 0
    assert _metric(n, "raftka_kafka_reauthentications_total") > 0
    # A raw client that authenticates (v1 handshake + SaslAuthenticate v1 with the lifetime),
    # then sends a request after the lifetime without re-authenticating: closed.
    with socket.create_connection((n.host, n.kafka_port), timeout=5) as s:
        _, err, _ = handshake(n, "PLAIN", version=1, sock=s)
        assert err == 0
        token = b"\0alice\0alice-plain-secret"
        s.sendall(_frame(36, 1, 8, struct.pack(">i", len(token)) + token))
        r = _read_frame(s)
        corr, err = struct.unpack_from(">ih", r, 0)
        assert (corr, err) == (8, 0)
        # error_message (null: -1), auth_bytes (empty), session_lifetime_ms
        (lifetime,) = struct.unpack_from(">q", r, 6 + 2 + 4)
        assert lifetime == 2000
        before = _metric(n, "raftka_kafka_expired_sessions_total")
        time.sleep(2.3)
        s.sendall(_frame(18, 0, 9, b""))
        assert _closed(s)
    assert _metric(n, "raftka_kafka_expired_sessions_total") == before + 1

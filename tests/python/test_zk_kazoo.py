"""The ZooKeeper facade against real clients: kazoo 2.11.0, zkCli.sh (ZooKeeper 3.8), and a raw
jute client for what kazoo hides (session expiry by a vanished client, malformed frames)."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoChildrenForEphemeralsError, NodeExistsError,
                              NoNodeError, NotEmptyError, RolledBackError, RuntimeInconsistency)
from kazoo.protocol.states import EventType

from raftka_harness import unique_name, wait_until
import zk_wire

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


@pytest.fixture
def zk(raftka):
    client = KazooClient(hosts=raftka.zk_hosts, timeout=10)
    client.start(timeout=15)
    yield client
    client.stop()
    client.close()


@pytest.fixture
def base(zk):
    path = "/" + unique_name("kz")
    zk.create(path, b"root")
    yield path
    zk.delete(path, recursive=True)


def test_create_get_set_delete_and_versions(zk, base):
    assert zk.create(f"{base}/a", b"v1") == f"{base}/a"
    with pytest.raises(NodeExistsError):
        zk.create(f"{base}/a", b"again")
    data, stat = zk.get(f"{base}/a")
    assert data == b"v1" and stat.version == 0 and stat.numChildren == 0 and stat.dataLength == 2
    stat2 = zk.set(f"{base}/a", b"v2", version=0)
    assert stat2.version == 1 and stat2.czxid == stat.czxid and stat2.mzxid > stat.mzxid
    with pytest.raises(BadVersionError):
        zk.set(f"{base}/a", b"v3", version=0)
    with pytest.raises(BadVersionError):
        zk.delete(f"{base}/a", version=5)
    with pytest.raises(NoNodeError):
        zk.get(f"{base}/missing")
    with pytest.raises(NoNodeError):
        zk.create(f"{base}/no/parent", b"")
    zk.create(f"{base}/a/child", b"")
    with pytest.raises(NotEmptyError):
        zk.delete(f"{base}/a")
    zk.delete(f"{base}/a/child")
    zk.delete(f"{base}/a", version=1)
    assert zk.exists(f"{base}/a") is None
    # null data stays null; create2 returns a Stat
    zk.create(f"{base}/null", None)
    assert zk.get(f"{base}/null")[0] in (b"", None)
    path, stat = zk.create(f"{base}/c2", b"xyz", include_data=True)
    assert path == f"{base}/c2" and stat.dataLength == 3


def test_children_and_cversion(zk, base):
    for n in ["x", "y", "z"]:
        zk.create(f"{base}/{n}", b"")
    assert sorted(zk.get_children(base)) == ["x", "y", "z"]
    children, stat = zk.get_children(base, include_data=True)
    assert stat.numChildren == 3 and stat.cversion == 3
    zk.delete(f"{base}/y")
    after = zk.exists(base)
    assert after.cversion == 4 and after.numChildren == 2
    assert after.pzxid > stat.pzxid


def test_sequential_numbering(zk, base):
    zk.create(f"{base}/a", b"")
    assert zk.create(f"{base}/s-", b"", sequence=True) == f"{base}/s-0000000001"
    assert zk.create(f"{base}/s-", b"", sequence=True) == f"{base}/s-0000000002"
    # like ZooKeeper, sequence numbers count creates only, while cversion also counts deletes
    zk.delete(f"{base}/a")
    assert zk.exists(base).cversion == 4
    assert zk.create(f"{base}/s-", b"", sequence=True) == f"{base}/s-0000000003"
    eph = zk.create(f"{base}/e-", b"", sequence=True, ephemeral=True)
    assert eph == f"{base}/e-0000000004"


def test_ephemerals_go_with_closed_session(raftka, zk, base):
    other = KazooClient(hosts=raftka.zk_hosts, timeout=10)
    other.start(timeout=15)
    other.create(f"{base}/eph", b"mine", ephemeral=True)
    assert zk.exists(f"{base}/eph").ephemeralOwner == other.client_id[0]
    with pytest.raises(NoChildrenForEphemeralsError):
        other.create(f"{base}/eph/kid", b"")
    other.stop()
    other.close()
    wait_until(lambda: zk.exists(f"{base}/eph") is None, 5, "ephemeral removed on closeSession")


def test_ephemerals_go_when_session_expires(raftka, zk, base):
    """A client that vanishes without closeSession: the session expires after its timeout
    (negotiated up to at least 4 s) and its ephemeral node disappears."""
    host, port = raftka.zk_hosts.split(":")
    raw = zk_wire.ZkWire(host, int(port), timeout_ms=1000)
    assert raw.timeout_ms == 4000, "timeouts are clamped to 2x..20x tickTime (2000 ms)"
    assert raw.create(f"{base}/gone", b"", mode=zk_wire.EPHEMERAL) == (0, f"{base}/gone")
    raw.drop()
    assert zk.exists(f"{base}/gone") is not None
    start = time.monotonic()
    wait_until(lambda: zk.exists(f"{base}/gone") is None, 20, "ephemeral removed on expiry")
    assert time.monotonic() - start >= 2.5
    # resuming the expired session is refused (session id 0, timeout 0)
    again = zk_wire.ZkWire(host, int(port), session_id=raw.session_id, passwd=raw.passwd)
    assert again.session_id == 0 and again.timeout_ms == 0


def test_session_resume_keeps_ephemerals(raftka, zk, base):
    host, port = raftka.zk_hosts.split(":")
    first = zk_wire.ZkWire(host, int(port), timeout_ms=10000)
    first.create(f"{base}/keep", b"", mode=zk_wire.EPHEMERAL)
    first.drop()
    second = zk_wire.ZkWire(host, int(port), timeout_ms=10000, session_id=first.session_id, passwd=first.passwd)
    assert second.session_id == first.session_id
    assert second.exists(f"{base}/keep")[0] == 0
    assert second.close_session() == 0
    wait_until(lambda: zk.exists(f"{base}/keep") is None, 5, "ephemeral removed after close")


def test_watches_fire_with_the_right_types(zk, base):
    events = []
    lock = threading.Lock()

    def record(e):
        with lock:
            events.append((e.type, e.path))

    zk.create(f"{base}/w", b"1")
    zk.get(f"{base}/w", watch=record)
    zk.get_children(base, watch=record)
    zk.exists(f"{base}/new", watch=record)
    zk.set(f"{base}/w", b"2")
    zk.create(f"{base}/new", b"")
    wait_until(lambda: len(events) >= 3, 5, "three events")
    assert (EventType.CHANGED, f"{base}/w") in events
    assert (EventType.CREATED, f"{base}/new") in events
    assert (EventType.CHILD, base) in events
    # one-shot: nothing more for another change
    zk.set(f"{base}/w", b"3")
    time.sleep(0.3)
    assert len(events) == 3
    zk.get(f"{base}/w", watch=record)
    zk.delete(f"{base}/w")
    wait_until(lambda: (EventType.DELETED, f"{base}/w") in events, 5, "delete event")


def test_watch_fires_for_a_write_from_another_session(raftka, zk, base):
    other = KazooClient(hosts=raftka.zk_hosts, timeout=10)
    other.start(timeout=15)
    try:
        got = threading.Event()
        zk.get_children(base, watch=lambda e: got.set())
        other.create(f"{base}/from-other", b"")
        assert got.wait(5)
    finally:
        other.stop()
        other.close()


def test_multi_commits_and_rolls_back(zk, base):
    zk.create(f"{base}/a", b"")
    tx = zk.transaction()
    tx.create(f"{base}/t1", b"x")
    tx.check(f"{base}/a", 0)
    tx.set_data(f"{base}/a", b"y")
    assert tx.commit()[0] == f"{base}/t1"
    tx = zk.transaction()
    tx.create(f"{base}/t2", b"x")
    tx.check(f"{base}/a", 0)  # stale: a is at version 1 now
    tx.delete(f"{base}/t1")
    results = tx.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], BadVersionError)
    assert isinstance(results[2], RuntimeInconsistency)
    assert zk.exists(f"{base}/t2") is None and zk.exists(f"{base}/t1") is not None


def test_acl_sync_and_four_letter_words(raftka, zk, base):
    acls, stat = zk.get_acls(base)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "world", "anyone")]
    zk.set_acls(base, acls)
    zk.sync(base)
    host, port = raftka.zk_hosts.split(":")
    assert zk_wire.four_letter(host, int(port), "ruok") == "imok"
    assert "Mode:" in zk_wire.four_letter(host, int(port), "srvr")
    assert "Clients:" in zk_wire.four_letter(host, int(port), "stat")
    assert "zk_znode_count" in zk_wire.four_letter(host, int(port), "mntr")
    assert "maxSessionTimeout=40000" in zk_wire.four_letter(host, int(port), "conf")
    assert zk.server_version()[:2] == (3, 8)


def test_kafka_tree_is_visible(raftka, zk):
    assert str(raftka.node_id) in zk.get_children("/brokers/ids")
    data, stat = zk.get(f"/brokers/ids/{raftka.node_id}")
    assert b'"version":4' in data and stat.ephemeralOwner != 0
    assert b'"id":' in zk.get("/cluster/id")[0]
    assert zk.exists("/config/changes") is not None and zk.exists("/zookeeper") is not None


def test_malformed_frames_close_the_connection(raftka, zk):
    host, port = raftka.zk_hosts.split(":")
    for payload in [struct.pack(">i", -5), struct.pack(">i", 2_000_000_000), struct.pack(">i", 3) + b"abc",
                    b"\xff" * 64]:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                assert s.recv(100) == b""
            except (ConnectionResetError, OSError) as e:  # closed by the server first: fine
                assert not isinstance(e, socket.timeout), "server kept a malformed connection open"
    raw = zk_wire.ZkWire(host, int(port))
    raw._send(struct.pack(">ii", 1, 4) + struct.pack(">i", 1_000_000))  # getData, path length lies
    with pytest.raises((ConnectionError, OSError)):
        raw._recv()
    assert zk.exists("/") is not None  # the server is fine


def _zkcli(raftka, *args):
    if not os.path.exists(ZKCLI) or shutil.which("java") is None:
        pytest.skip("zkCli.sh or java missing (apt-get install zookeeper zookeeper-bin)")
    cmd = [ZKCLI, "-server", raftka.zk_hosts, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_zkcli_smoke(raftka, zk):
    p = "/" + unique_name("cli")
    r = _zkcli(raftka, "create", p, "hello")
    assert r.returncode == 0 and f"Created {p}" in r.stdout + r.stderr, r.stdout + r.stderr
    r = _zkcli(raftka, "get", p)
    assert r.returncode == 0 and "hello" in r.stdout
    r = _zkcli(raftka, "ls", "/")
    assert r.returncode == 0 and p[1:] in r.stdout
    r = _zkcli(raftka, "set", p, "bye")
    assert r.returncode == 0
    r = _zkcli(raftka, "stat", p)
    assert r.returncode == 0 and "dataVersion = 1" in r.stdout
    r = _zkcli(raftka, "delete", p)
    assert r.returncode == 0
    r = _zkcli(raftka, "get", p)
    assert r.returncode != 0 and "Node does not exist" in r.stdout + r.stderr

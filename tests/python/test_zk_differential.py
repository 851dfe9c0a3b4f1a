"""Differential test (zetcd-style): the same kazoo script against Debian's real ZooKeeper 3.8
and against the facade; the observable results must be equal for generic paths.

Compared: data, versions (data, child, ACL), numChildren, dataLength, whether a node is
ephemeral, error types, sequence names, multi results and watch events. Not compared: zxids and
times (they differ between any two servers), only their relations (mzxid moves on set, czxid not).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient

from raftka_harness import free_ports, unique_name, wait_until

ZK_JAR = "/usr/share/java/zookeeper.jar"
SLF4J = "/usr/share/java/slf4j-simple.jar"


@pytest.fixture(scope="module")
def real_zk(tmp_path_factory):
    if shutil.which("java") is None or not os.path.exists(ZK_JAR):
        pytest.skip("java or the ZooKeeper 3.8 jar is missing (apt-get install zookeeper zookeeper-bin)")
    d = tmp_path_factory.mktemp("realzk")
    (d / "data").mkdir()
    (port,) = free_ports(1)
    (d / "zoo.cfg").write_text(
        f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={d / 'data'}\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n")
    cp = ZK_JAR + (":" + SLF4J if os.path.exists(SLF4J) else "")
    log = open(d / "zk.log", "wb")
    proc = subprocess.Popen(
        ["java", "-Xmx256m", "-cp", cp, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
         "org.apache.zookeeper.server.ZooKeeperServerMain", str(d / "zoo.cfg")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def ruok():
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(4) == b"imok"

    try:
        wait_until(ruok, 30, "real ZooKeeper to answer ruok")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def stat_view(s):
    return None if s is None else {
        "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
        "numChildren": s.numChildren, "dataLength": s.dataLength, "ephemeral": s.ephemeralOwner != 0,
        "czxid_eq_mzxid": s.czxid == s.mzxid,
    }


def script(hosts: str, base: str) -> list:
    """Runs the scenario and returns a transcript of normalized observations."""
    out: list = []
    events: list = []
    lock = threading.Lock()

    def watcher(e):
        with lock:
            events.append((e.type, e.path.replace(base, "$B")))

    def rec(label, fn):
        try:
            r = fn()
        except Exception as e:  # noqa: BLE001 - the exception type is the observation
            out.append((label, "error", type(e).__name__))
            return None
        out.append((label, "ok", normalize(r)))
        return r

    def normalize(r):
        if isinstance(r, str):
            return r.replace(base, "$B")
        if hasattr(r, "czxid"):
            return stat_view(r)
        if isinstance(r, tuple) and len(r) == 2 and hasattr(r[1], "czxid"):
            return (normalize(r[0]) if isinstance(r[0], str) else r[0], stat_view(r[1]))
        if isinstance(r, list):
            return [type(x).__name__ if isinstance(x, Exception) else normalize(x) for x in r]
        return r

    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=15)
    other = KazooClient(hosts=hosts, timeout=10)
    other.start(timeout=15)
    try:
        rec("create base", lambda: zk.create(base, b"base"))
        rec("create a", lambda: zk.create(f"{base}/a", b"v1"))
        rec("create a again", lambda: zk.create(f"{base}/a", b"v1"))
        rec("create orphan", lambda: zk.create(f"{base}/x/y", b""))
        rec("get a", lambda: zk.get(f"{base}/a"))
        rec("set a v0", lambda: zk.set(f"{base}/a", b"v2", version=0))
        rec("set a stale", lambda: zk.set(f"{base}/a", b"v3", version=0))
        rec("get a after set", lambda: zk.get(f"{base}/a"))
        rec("seq 1", lambda: zk.create(f"{base}/s-", b"", sequence=True))
        rec("seq 2", lambda: zk.create(f"{base}/s-", b"", sequence=True))
        rec("null data", lambda: zk.create(f"{base}/n", None))
        rec("get null", lambda: zk.get(f"{base}/n"))
        rec("empty data", lambda: zk.create(f"{base}/e", b""))
        rec("create2", lambda: zk.create(f"{base}/c2", b"abc", include_data=True))
        rec("children", lambda: sorted(zk.get_children(f"{base}")))
        rec("children2 stat", lambda: zk.get_children(f"{base}", include_data=True)[1])
        rec("exists missing", lambda: zk.exists(f"{base}/missing"))
        rec("delete missing", lambda: zk.delete(f"{base}/missing"))
        rec("delete stale", lambda: zk.delete(f"{base}/a", version=7))
        rec("create under a", lambda: zk.create(f"{base}/a/k", b""))
        rec("delete nonempty", lambda: zk.delete(f"{base}/a"))
        rec("ephemeral", lambda: other.create(f"{base}/eph", b"", ephemeral=True))
        rec("child of ephemeral", lambda: other.create(f"{base}/eph/k", b""))
        rec("eph seq", lambda: other.create(f"{base}/es-", b"", ephemeral=True, sequence=True))
        rec("stat eph", lambda: zk.exists(f"{base}/eph"))
        # watches
        zk.get(f"{base}/a", watch=watcher)
        zk.get_children(f"{base}", watch=watcher)
        zk.exists(f"{base}/w", watch=watcher)
        zk.get_children(f"{base}/a", watch=watcher)
        rec("set a (fires data)", lambda: zk.set(f"{base}/a", b"v9"))
        rec("create w (fires exists+child)", lambda: zk.create(f"{base}/w", b""))
        rec("delete a/k (fires child)", lambda: zk.delete(f"{base}/a/k"))
        time.sleep(0.5)
        with lock:
            out.append(("events", sorted(events)))
            events.clear()
        zk.get(f"{base}/w", watch=watcher)
        rec("delete w (fires deleted)", lambda: zk.delete(f"{base}/w"))
        # multi
        def tx_ok():
            t = zk.transaction()
            t.create(f"{base}/t1", b"x")
            t.check(f"{base}/a", 2)
            t.set_data(f"{base}/a", b"y", version=2)
            t.delete(f"{base}/e")
            return t.commit()
        rec("multi ok", tx_ok)
        def tx_fail():
            t = zk.transaction()
            t.create(f"{base}/t2", b"x")
            t.delete(f"{base}/t1")
            t.check(f"{base}/a", 0)
            t.create(f"{base}/t3", b"x")
            return t.commit()
        rec("multi fails", tx_fail)
        rec("t2 absent", lambda: zk.exists(f"{base}/t2"))
        rec("t1 present", lambda: zk.exists(f"{base}/t1"))
        rec("acl", lambda: [(a.perms, a.id.scheme, a.id.id) for a in zk.get_acls(f"{base}/a")[0]])
        rec("sync", lambda: zk.sync(f"{base}"))
        rec("seq 3", lambda: zk.create(f"{base}/s-", b"", sequence=True))
        other.stop()
        other.close()
        time.sleep(0.3)
        rec("eph gone", lambda: zk.exists(f"{base}/eph"))
        rec("children final", lambda: sorted(zk.get_children(f"{base}")))
        rec("base stat final", lambda: zk.exists(f"{base}"))
        time.sleep(0.3)
        with lock:
            out.append(("events 2", sorted(events)))
        zk.delete(base, recursive=True)
    finally:
        zk.stop()
        zk.close()
    return out


def test_facade_matches_real_zookeeper(raftka, real_zk):
    name = "/" + unique_name("diff")
    expected = script(real_zk, name)
    got = script(raftka.zk_hosts, name)
    mismatches = [(e, g) for e, g in zip(expected, got) if e != g]
    assert len(expected) == len(got)
    assert not mismatches, "\n".join(f"real: {e}\nfake: {g}" for e, g in mismatches)


def acl_script(hosts: str, base: str) -> list:
    """ZooKeeper ACLs (world, auth, digest, ip) as two sessions see them: alice (addauth
    digest alice:pw) and anonymous b. Every observable result is recorded, errors by type."""
    from kazoo.security import make_acl, make_digest_acl

    out: list = []

    def rec(label, fn):
        try:
            out.append((label, fn()))
        except Exception as e:  # the error type is the observable
            out.append((label, type(e).__name__))

    def acls(client, path):
        return [(a.perms, a.id.scheme, a.id.id) for a in client.get_acls(path)[0]]

    a = KazooClient(hosts=hosts, timeout=10, auth_data=[("digest", "alice:pw")])
    b = KazooClient(hosts=hosts, timeout=10)
    a.start()
    b.start()
    try:
        a.create(base, b"")
        mine = [make_digest_acl("alice", "pw", all=True)]
        rec("create alice-only", lambda: a.create(f"{base}/a", b"x", acl=mine))
        rec("b get", lambda: b.get(f"{base}/a")[0])
        rec("a get", lambda: a.get(f"{base}/a")[0])
        rec("b set", lambda: stat_view(b.set(f"{base}/a", b"y")))
        rec("b children", lambda: b.get_children(f"{base}/a"))
        rec("b exists", lambda: stat_view(b.exists(f"{base}/a")))
        rec("b create child", lambda: b.create(f"{base}/a/c", b""))
        rec("a create child", lambda: a.create(f"{base}/a/c", b""))
        rec("b delete child", lambda: b.delete(f"{base}/a/c"))
        rec("b acls", lambda: acls(b, f"{base}/a"))
        rec("a acls", lambda: acls(a, f"{base}/a"))
        mixed = [make_acl("world", "anyone", read=True), make_digest_acl("alice", "pw", all=True)]
        rec("create mixed", lambda: a.create(f"{base}/m", b"m", acl=mixed))
        rec("b acls masked", lambda: acls(b, f"{base}/m"))
        rec("b get mixed", lambda: b.get(f"{base}/m")[0])
        rec("b set mixed", lambda: stat_view(b.set(f"{base}/m", b"z")))
        rec("auth by alice", lambda: a.create(f"{base}/au", b"", acl=[make_acl("auth", "", all=True)]))
        rec("auth acls", lambda: acls(a, f"{base}/au"))
        rec("auth by b", lambda: b.create(f"{base}/ab", b"", acl=[make_acl("auth", "", all=True)]))
        rec("ip mine", lambda: a.create(f"{base}/ip", b"i", acl=[make_acl("ip", "127.0.0.0/8", read=True)]))
        rec("b get ip", lambda: b.get(f"{base}/ip")[0])
        rec("b set ip", lambda: stat_view(b.set(f"{base}/ip", b"j")))
        rec("ip other", lambda: a.create(f"{base}/ip2", b"", acl=[make_acl("ip", "10.0.0.0/8", read=True)]))
        rec("b get ip2", lambda: b.get(f"{base}/ip2")[0])
        for n, bad in enumerate([make_acl("ip", "300.0.0.1", read=True), make_acl("digest", "nocolon", read=True),
                                 make_acl("world", "nobody", read=True), make_acl("bogus", "x", read=True)]):
            rec(f"invalid {n}", lambda bad=bad: a.create(f"{base}/bad{n}", b"", acl=[bad]))
        rec("b set_acls", lambda: stat_view(b.set_acls(f"{base}/a", [make_acl("world", "anyone", all=True)])))
        rec("a set_acls stale", lambda: stat_view(a.set_acls(f"{base}/a", mine, version=5)))
        rec("a set_acls", lambda: stat_view(a.set_acls(f"{base}/a", mixed, version=0)))
        rec("a acls after", lambda: acls(a, f"{base}/a"))
        rec("b get after", lambda: b.get(f"{base}/a")[0])

        def txn():
            t = b.transaction()
            t.create(f"{base}/open", b"")
            t.create(f"{base}/a/x", b"")
            return [type(r).__name__ if isinstance(r, Exception) else r for r in t.commit()]
        rec("b multi", txn)
        rec("b open after multi", lambda: stat_view(b.exists(f"{base}/open")))

        c = KazooClient(hosts=hosts, timeout=10)
        c.start()
        try:
            rec("addauth bogus", lambda: c.add_auth("bogus", "x"))
        finally:
            c.stop()
            c.close()
        # (No recursive delete: it lists children, which /ip2's ACL does not let anyone do.)
        for n in ["a/c", "a/x", "a", "m", "au", "ip", "ip2", "open", ""]:
            rec(f"delete {n}", lambda n=n: a.delete(f"{base}/{n}".rstrip("/")))
    finally:
        for z in (a, b):
            z.stop()
            z.close()
    return out


def test_zookeeper_acls_match_real_zookeeper(raftka, real_zk):
    name = "/" + unique_name("acldiff")
    expected = acl_script(real_zk, name)
    got = acl_script(raftka.zk_hosts, name)
    assert len(expected) == len(got)
    mismatches = [(e, g) for e, g in zip(expected, got) if e != g]
    assert not mismatches, "\n".join(f"real: {e}\nfake: {g}" for e, g in mismatches)

"""Disk faults (issue 14, findings 7 and 8): a full disk and a corrupted SST block.

Disk full: the node's data dir sits on a small tmpfs (`mount -t tmpfs`; skipped when mounting
is not possible). Filling it must not abort the node: appends answer KAFKA_STORAGE_ERROR,
`/health` is 503 with the reason, reads keep working, and once space is freed the node recovers
without a restart; after a restart every acknowledged record is still there.

Corruption: bytes of a stored record batch are flipped inside an SST file of a stopped node.
`raftka check` finds it (exit 1; 0 on the clean directory). At start the scrubber finds it too,
the node rebuilds its partition log without the bad block, reports the partition in the log
(error level, with topic, partition and offset), on `/health` and `/metrics`, and a Fetch inside
the lost range answers KAFKA_STORAGE_ERROR instead of stalling. In a 3-node cluster the
corrupt follower re-fetches the range from the leader, and a consumer reading from it (once it
leads again) sees every acknowledged record.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer

import cluster_util as cu
from raftka_harness import wire
from raftka_harness import default_binary
from raftka_harness import unique_name, wait_until

MIB = 1 << 20
KAFKA_STORAGE_ERROR = 56
FETCH = 1


# ---- helpers ------------------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int):
    """A tmpfs of `size_mb` MiB mounted at `path` for the duration (skips if not possible)."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount): {r.stderr.strip()}")
    try:
        yield path
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave_bytes: int = 0) -> Path:
    """Writes a filler file until only about `leave_bytes` are free (0: until ENOSPC)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        chunk = b"\0" * MIB
        while free_bytes(path) - len(chunk) >= leave_bytes:
            os.write(fd, chunk)
        if leave_bytes == 0:
            for size in (MIB, 4096, 1):
                while True:
                    os.write(fd, b"\0" * size)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def health(node) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{node.http_url}/health", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(node) -> dict[str, float]:
    with urllib.request.urlopen(f"{node.http_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def producer(node, **conf) -> Producer:
    cfg = {"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 2,
           "message.timeout.ms": 20000, "socket.connection.setup.timeout.ms": 3000}
    cfg.update(conf)
    return Producer(cfg)


def produce(p: Producer, topic: str, values: list[bytes]) -> tuple[list[tuple[int, int, bytes]], list[int]]:
    """Produces `values` to partition 0; returns (acked (partition, offset, value), error codes)."""
    acked, errors = [], []

    def cb(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            errors.append(err.code())

    for v in values:
        while True:
            try:
                p.produce(topic, v, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(60)
    return acked, errors


def fetch_raw(node, topic: str, partition: int, offset: int) -> tuple[int, bytes]:
    """One Fetch v4 (hand-built) for one partition: (error code, records bytes)."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 500, 1, 1 << 20, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 1 << 20)
    corr = 0x5EED
    frame = wire.frame(wire.request_header(FETCH, 4, corr) + body)
    with socket.create_connection((node.host, node.kafka_port), timeout=10) as s:
        s.settimeout(10)
        s.sendall(frame)
        resp = wire.read_frame(s)
    pos = 0
    (got_corr, _throttle, n_topics) = struct.unpack_from(">iii", resp, pos)
    assert got_corr == corr and n_topics == 1
    pos += 12
    (tlen,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + tlen
    (n_parts,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    assert n_parts == 1
    _p, err, _hw, _lso = struct.unpack_from(">ihqq", resp, pos)
    pos += 4 + 2 + 8 + 8
    (n_aborted,) = struct.unpack_from(">i", resp, pos)
    pos += 4 + max(n_aborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    return err, resp[pos:pos + max(rlen, 0)]


def raftka_check(data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(default_binary()), "check", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def corrupt_batch_in_sst(data_dir: Path, needle: bytes) -> str:
    """Flips 64 bytes inside the stored record batch holding `needle` (in place, same size)."""
    for f in sorted(glob.glob(str(data_dir / "raftka.db" / "*.sst"))):
        data = bytearray(Path(f).read_bytes())
        i = data.find(needle)
        if i >= 0:
            for j in range(64):
                data[i + 64 + j] ^= 0xFF
            Path(f).write_bytes(bytes(data))
            return f
    raise AssertionError(f"{needle!r} is in no SST file of {data_dir}")


def payloads(n: int, tag: str, size: int = 400) -> list[bytes]:
    # Uncompressed and distinctive, so the bytes can be found in an SST file.
    return [((f"{tag}:{i:06d}:".encode()) * (size // 10 + 1))[:size] for i in range(n)]


def big(n: int, tag: str) -> list[bytes]:
    return payloads(n, tag, 8192)


def create_topic(bootstrap: str, topic: str, **kw) -> None:
    """Creates a topic once the node(s) know a controller (right after a start they may not)."""
    def attempt():
        try:
            cu.create_topic(bootstrap, topic, **kw)
            return True
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            if "already exists" in str(e).lower() or "TOPIC_ALREADY_EXISTS" in str(e):
                return True
            raise
    wait_until(attempt, 60, f"creating {topic}", interval=1)


def read_all(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    return cu.drain(bootstrap, topic, 1, timeout=60)[0]


def assert_acked_intact(bootstrap: str, topic: str, acked: list[tuple[int, int, bytes]]) -> None:
    got = read_all(bootstrap, topic)
    by_offset = dict(got)
    missing = [(o, v[:20]) for _, o, v in acked if by_offset.get(o) != v]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records lost, e.g. {missing[:3]}"
    offsets = [o for o, _ in got]
    assert offsets == sorted(set(offsets))


# ---- disk full ----------------------------------------------------------------------------

DISK_ARGS = ["-o", "log.dir.free.check.interval.ms=200", "-o", "log.retention.check.interval.ms=600000"]


@pytest.mark.timeout(300)
def test_disk_nearly_full_refuses_appends_then_recovers_without_restart(raftka_factory):
    """Below log.dir.free.bytes.min appends get KAFKA_STORAGE_ERROR (a warning came first),
    /health is 503 with the reason, reads still work; freeing space brings it back."""
    # RocksDB's own working space (a new preallocated WAL and a 64 MiB flush at each memtable
    # switch, compaction output) must fit above the refuse threshold: 256 MiB here.
    min_b, warn_b = 256 * MIB, 300 * MIB
    node = raftka_factory("dfull", start=False, extra_args=[
        *DISK_ARGS, "-o", f"log.dir.free.bytes.min={min_b}", "-o", f"log.dir.free.bytes.warn={warn_b}"])
    with tmpfs(node.data_dir, 512):
        node.start()
        topic = unique_name("full")
        create_topic(node.bootstrap, topic, partitions=1, rf=1)
        p = producer(node, **{"enable.idempotence": True})
        acked, errors = produce(p, topic, big(500, "a"))
        assert not errors and len(acked) == 500
        # Another process takes the space down to 30 MiB above the refuse threshold.
        filler = fill(node.data_dir, leave_bytes=min_b + 30 * MIB)
        refusing = producer(node, **{"retries": 0, "enable.idempotence": False})
        codes: list[int] = []
        for round_ in range(60):
            a, e = produce(refusing, topic, big(200, f"b{round_}"))
            acked += a
            codes += e
            if e:
                break
        assert codes and set(codes) == {KafkaError.KAFKA_STORAGE_ERROR}, codes[:10]
        assert node.is_running(), node.log_tail()
        status, body = health(node)
        assert status == 503 and "nearly full" in body, (status, body)
        m = metrics(node)
        assert m["raftka_log_dir_appends_refused"] == 1
        assert m["raftka_appends_refused_no_space_total"] >= 1
        assert m["raftka_log_dir_free_bytes_min"] == min_b
        log = node.log_text()
        assert "log dir free space is low" in log, "a warning before appends were refused"
        assert "refusing appends" in log
        # Reads keep working while appends are refused.
        assert_acked_intact(node.bootstrap, topic, acked)
        # Space comes back: no restart needed.
        filler.unlink()
        wait_until(lambda: health(node)[0] == 200, 30, "healthy again after freeing space")
        a, e = produce(p, topic, big(200, "c"))
        assert not e and len(a) == 200
        acked += a
        node.restart()
        assert_acked_intact(node.bootstrap, topic, acked)
        node.stop()


@pytest.mark.timeout(300)
def test_disk_filled_to_the_last_byte_does_not_abort_the_node(raftka_factory):
    """With no refuse threshold the disk fills under RocksDB itself (its WAL write fails with
    ENOSPC). This aborted the node (an assertion in Debian's librocksdb). Now: alive,
    KAFKA_STORAGE_ERROR, /health 503; RocksDB recovers by itself once space is freed."""
    node = raftka_factory("dfull0", start=False, extra_args=[
        *DISK_ARGS, "-o", "log.dir.free.bytes.min=0", "-o", "log.dir.free.bytes.warn=0"])
    with tmpfs(node.data_dir, 256):
        node.start()
        topic = unique_name("full0")
        create_topic(node.bootstrap, topic, partitions=1, rf=1)
        acked, errors = produce(producer(node, **{"enable.idempotence": True}), topic, big(500, "a"))
        assert not errors and len(acked) == 500
        filler = fill(node.data_dir)
        assert free_bytes(node.data_dir) < MIB
        refusing = producer(node, **{"retries": 0, "enable.idempotence": False, "message.timeout.ms": 10000})
        codes: list[int] = []
        # RocksDB preallocates its WAL: it takes a few dozen MiB before a write fails.
        for round_ in range(60):
            a, e = produce(refusing, topic, big(500, f"b{round_}"))
            acked += a
            codes += e
            if e:
                break
        assert KafkaError.KAFKA_STORAGE_ERROR in codes, codes[:10]
        time.sleep(1)
        assert node.is_running(), node.log_tail()
        status, body = health(node)
        assert status == 503 and "no space left" in body, (status, body)
        assert metrics(node)["raftka_storage_writes_failing"] == 1
        filler.unlink()
        wait_until(lambda: health(node)[0] == 200, 60, "healthy again after freeing space")
        a, e = produce(producer(node, **{"enable.idempotence": True}), topic, big(100, "c"))
        assert not e and len(a) == 100, e[:5]
        acked += a
        assert node.is_running()
        node.restart()
        assert_acked_intact(node.bootstrap, topic, acked)
        node.stop()


# ---- corruption ---------------------------------------------------------------------------

def produce_batches(node_or_bootstrap, topic: str, n: int, tag: str, per_batch: int = 100,
                    **conf) -> list[tuple[int, int, bytes]]:
    bs = getattr(node_or_bootstrap, "bootstrap", node_or_bootstrap)
    cfg = {"bootstrap.servers": bs, "acks": "all", "enable.idempotence": True, "linger.ms": 1000,
           "batch.num.messages": per_batch, "compression.type": "none", "message.timeout.ms": 30000}
    cfg.update(conf)
    p = Producer(cfg)
    acked = []
    vals = payloads(n, tag)
    for i in range(0, n, per_batch):
        a, e = produce(p, topic, vals[i:i + per_batch])
        assert not e, e[:5]
        acked += a
    return acked


@pytest.mark.timeout(240)
def test_corrupt_sst_block_single_node_is_reported_and_fetch_gets_storage_error(raftka_factory):
    node = raftka_factory("corrupt1", extra_args=["-o", "log.retention.check.interval.ms=600000"])
    topic = unique_name("ct")
    create_topic(node.bootstrap, topic, partitions=1, rf=1)
    acked = produce_batches(node, topic, 3000, "p")
    assert node.stop() == 0
    clean_copy = node.workdir / "clean-copy"
    shutil.copytree(node.data_dir, clean_copy)
    corrupt_batch_in_sst(node.data_dir, b"p:001500:")
    corrupt_copy = node.workdir / "corrupt-copy"
    shutil.copytree(node.data_dir, corrupt_copy)

    node.start()
    # The scrubber finds the block at start, the node rebuilds its partition log without it
    # (an in-process restart) and reports the lost range.
    wait_until(lambda: "partition log rebuilt" in node.log_text(), 60, "the partition log rebuild")
    node.wait_ready()
    log = node.log_text()
    lines = [l for l in log.splitlines() if "ERROR" in l and "corrupt replica" in l]
    assert lines and f"topic={topic}" in lines[0] and "partition=0" in lines[0] \
        and "offset=" in lines[0], log[-3000:]
    status, body = wait_until(lambda: (lambda h: h if h[0] == 503 and f"{topic}-0" in h[1] else None)(health(node)),
                              30, "/health naming the damaged partition")
    m = re.search(rf"{re.escape(topic)}-0 offsets (\d+)\.\.(\d+)", body)
    assert m, body
    lost_from, lost_to = int(m.group(1)), int(m.group(2))
    assert lost_from <= 1500 < lost_to, body
    mt = metrics(node)
    assert mt["raftka_partitions_damaged"] == 1
    assert mt["raftka_storage_corruptions_total"] >= 1
    # A Fetch inside the lost range is answered, with KAFKA_STORAGE_ERROR (not a stall).
    for off in (lost_from, (lost_from + lost_to) // 2):
        err, records = fetch_raw(node, topic, 0, off)
        assert err == KAFKA_STORAGE_ERROR and not records, (off, err)
    # Around it, everything is served.
    err, records = fetch_raw(node, topic, 0, 0)
    assert err == 0 and records
    err, records = fetch_raw(node, topic, 0, lost_to)
    assert err == 0 and records
    assert node.is_running()
    node.stop()
    # `raftka check`: clean before, the bad block found after corrupting, and after the rebuild
    # a physically clean partition log with the lost range still recorded (no other replica).
    clean = raftka_check(clean_copy)
    assert clean.returncode == 0 and "OK" in clean.stdout, clean.stdout + clean.stderr
    bad = raftka_check(corrupt_copy)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "unreadable" in bad.stdout and f"{topic}-0" in bad.stdout, bad.stdout
    after = raftka_check(node.data_dir)
    assert after.returncode == 1 and "lost to corrupt storage" in after.stdout, after.stdout
    assert "unreadable" not in after.stdout, after.stdout


@pytest.mark.timeout(360)
@pytest.mark.cluster_args(*cu.FAST, "-o", "log.retention.check.interval.ms=600000")
def test_corrupt_follower_repairs_from_the_leader(cluster):
    cu.wait_brokers(cluster.bootstrap, 3)
    topic = unique_name("rt")
    # Node 2 is the preferred leader: once repaired and in sync it leads again, so the final
    # read comes from its log.
    create_topic(cluster.bootstrap, topic, assignment=[[2, 1, 3]], configs={"min.insync.replicas": "2"})
    wait_until(lambda: cu.full_isr(cluster.bootstrap, topic, 1), 30, "full ISR")
    acked = produce_batches(cluster.bootstrap, topic, 3000, "r")
    wait_until(lambda: cu.full_isr(cluster.bootstrap, topic, 1), 30, "full ISR after produce")
    victim = cluster.node(2)
    assert victim.stop() == 0
    wait_until(lambda: cu.leaders(cluster.bootstrap, topic)[0] in (1, 3), 30, "leader moved away")
    corrupt_batch_in_sst(victim.data_dir, b"r:001500:")
    corrupt_copy = victim.workdir / "corrupt-copy"
    shutil.copytree(victim.data_dir, corrupt_copy)
    # More records while it is down: the repair has to catch up past them too.
    acked += produce_batches(cluster.bootstrap, topic, 300, "s")

    victim.start()
    wait_until(lambda: "repairing a damaged replica" in victim.log_text(), 90, "the follower repair")
    wait_until(lambda: cu.full_isr(cluster.bootstrap, topic, 1), 60, "the repaired follower back in the ISR")
    wait_until(lambda: cu.leaders(cluster.bootstrap, topic)[0] == 2, 60, "node 2 leads again")
    wait_until(lambda: health(victim)[0] == 200, 30, "the repaired node healthy")
    assert_acked_intact(cluster.bootstrap, topic, acked)
    assert metrics(victim)["raftka_replica_repairs_total"] >= 1
    assert victim.stop() == 0
    assert raftka_check(corrupt_copy).returncode == 1
    after = raftka_check(victim.data_dir)
    assert after.returncode == 0, after.stdout

"""Connection and request-memory limits under abuse (issue 14, findings 5, 6 and 10), with small
limits set through `-o` so each test runs in seconds:

- slowloris: sockets that send 2 bytes of a size prefix are refused past
  `max.connections.per.ip` and closed by `connections.first.request.timeout.ms`; a normal client
  gets through even while they hold every `max.connections` slot;
- idle and half-sent requests after the first: `connections.max.idle.ms` and
  `connections.request.read.timeout.ms`;
- request memory: 20 connections each sending most of a near-maximum frame keep the node's RSS
  near `queued.max.request.bytes`, and a normal client still produces and consumes;
- the HTTP listener: `/health` answers promptly while hundreds of idle sockets are open.

The node must be alive and serving after each. Hogs connect from other loopback addresses
(127.0.0.2, 127.0.0.3: Linux routes all of 127/8 to `lo`) so the per-address limit of the test
client (127.0.0.1) is not the one they exhaust, except where that is the point.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition

from raftka_harness import wire
from raftka_harness import unique_name, wait_until
from test_ops import http_get, scrape

MiB = 1024 * 1024


def hog(node, source: str, data: bytes = b"\x00\x00") -> socket.socket | None:
    """A socket from `source` to the node's Kafka port that sent `data` and nothing else;
    None if the node reset it before that (over the per-address limit)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    try:
        s.connect((node.host, node.kafka_port))
        if data:
            s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        s.close()
        return None
    return s


def closed_within(sock: socket.socket | None, timeout: float) -> bool:
    """True if the peer closes (EOF or reset) within `timeout` seconds."""
    if sock is None:
        return True
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def vm_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def produce_and_consume(node, n: int = 20, timeout: float = 15.0) -> float:
    """A normal confluent-kafka client round trip; returns its duration in seconds."""
    started = time.monotonic()
    topic = unique_name("limits")
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all",
                  "message.timeout.ms": int(timeout * 1000)})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    assert p.flush(timeout) == 0, "normal producer could not deliver"
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": unique_name("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        assert got == [f"v{i}".encode() for i in range(n)], f"consumed {len(got)} of {n}"
    finally:
        c.close()
    return time.monotonic() - started


def assert_serving(node) -> None:
    assert node.is_running(), f"raftka died (exit {node.proc.returncode})\n{node.log_tail()}"
    resp = wire.api_versions_roundtrip(node.host, node.kafka_port, version=3)
    assert resp["error_code"] == 0


# ---- finding 5: connection slots ----------------------------------------------------------

def test_slowloris_is_refused_per_ip_and_closed_by_the_first_request_deadline(raftka_factory):
    node = raftka_factory(name="slowloris", extra_args=[
        "-o", "max.connections=40",
        "-o", "max.connections.per.ip=20",
        "-o", "connections.first.request.timeout.ms=2000",
    ])
    # 30 from one address: 20 take a slot, the 10 over the limit are closed at once.
    first = [hog(node, "127.0.0.2") for _ in range(30)]
    t0 = time.monotonic()
    refused = [s for s in first[20:] if closed_within(s, 1.0)]
    assert len(refused) == 10, f"only {len(refused)} of 10 excess connections closed at once"
    # 20 more from another address: every max.connections slot is now held by a hog.
    second = [hog(node, "127.0.0.3") for _ in range(20)]
    held = first[:20] + second
    # A normal client still gets through: the hogs are closed by the first-request deadline.
    took = produce_and_consume(node)
    assert took < 12, f"normal client took {took:.1f}s"
    assert all(closed_within(s, max(0.5, 6 - (time.monotonic() - t0))) for s in held), \
        "hogs still open past the first-request deadline"
    m = scrape(node)
    assert m["raftka_kafka_connections_refused_per_ip_total"] >= 10
    assert m["raftka_kafka_first_request_timeouts_total"] >= 40
    assert m["raftka_kafka_connections_max_waits_total"] >= 1
    for s in first + second:
        if s is not None:
            s.close()
    assert_serving(node)


def test_idle_and_half_sent_requests_are_closed(raftka_factory):
    node = raftka_factory(name="idle", extra_args=[
        "-o", "connections.max.idle.ms=3000",
        "-o", "connections.first.request.timeout.ms=2000",
        "-o", "connections.request.read.timeout.ms=1000",
    ])
    before = scrape(node)

    def after_one_request() -> socket.socket:
        s = socket.create_connection((node.host, node.kafka_port), timeout=5)
        s.sendall(wire.api_versions_request(1, version=0))
        wire.read_frame(s)
        return s

    # Two bytes of the next size prefix: closed by the request read deadline, not the idle one.
    half_prefix = after_one_request()
    half_prefix.sendall(b"\x00\x00")
    # A size and part of a body.
    half_body = after_one_request()
    half_body.sendall(struct.pack(">i", 1000) + b"\x00" * 100)
    t0 = time.monotonic()
    assert closed_within(half_prefix, 3.0), "2 bytes of a size prefix held the connection"
    assert closed_within(half_body, 3.0), "a half-sent request held the connection"
    assert time.monotonic() - t0 < 3.0
    # Silence after a request: closed by connections.max.idle.ms, and not before.
    idle = after_one_request()
    t0 = time.monotonic()
    assert not closed_within(idle, 2.0), "closed before connections.max.idle.ms"
    assert closed_within(idle, 3.0), "idle connection not closed after connections.max.idle.ms"
    assert 2.5 < time.monotonic() - t0 < 5.0
    after = scrape(node)
    assert after["raftka_kafka_request_read_timeouts_total"] - \
        before.get("raftka_kafka_request_read_timeouts_total", 0) >= 2
    assert after["raftka_kafka_idle_timeouts_total"] - \
        before.get("raftka_kafka_idle_timeouts_total", 0) >= 1
    for s in (half_prefix, half_body, idle):
        s.close()
    assert_serving(node)


# ---- finding 6: request memory ------------------------------------------------------------

def test_partly_sent_large_requests_stay_within_the_request_byte_budget(raftka_factory):
    frame_max = 32 * MiB
    budget = 64 * MiB
    node = raftka_factory(name="membudget", extra_args=[
        "-o", f"socket.request.max.bytes={frame_max}",
        "-o", f"queued.max.request.bytes={budget}",
        "-o", "queued.max.request.stall.ms=1000",
        "-o", "connections.request.read.timeout.ms=15000",
    ])
    rss_before = vm_rss_bytes(node.proc.pid)
    conns = 20
    size = frame_max - 8  # declared; a Metadata request header, then filler
    send_each = size - 1  # everything but the last byte (the finding's case)
    stop = threading.Event()
    sent = [0] * conns
    socks: list[socket.socket] = []

    def push(i: int, s: socket.socket) -> None:
        header = wire.request_header(wire.METADATA, 1, i)
        chunk = memoryview(b"\x00" * MiB)
        try:
            s.sendall(struct.pack(">i", size) + header)
            sent[i] = len(header)
            while sent[i] < send_each and not stop.is_set():
                try:
                    sent[i] += s.send(chunk[:min(len(chunk), send_each - sent[i])])
                except socket.timeout:
                    continue  # back-pressure: the node stopped reading
        except OSError:
            pass  # closed by the node (evicted or timed out)

    threads = []
    for i in range(conns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        s.connect((node.host, node.kafka_port))
        s.settimeout(0.5)
        socks.append(s)
        t = threading.Thread(target=push, args=(i, s), daemon=True)
        t.start()
        threads.append(t)
    peak = rss_before
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            peak = max(peak, vm_rss_bytes(node.proc.pid))
            time.sleep(0.1)
        # A normal client still produces and consumes while the hogs push.
        took = produce_and_consume(node)
        peak = max(peak, vm_rss_bytes(node.proc.pid))
        m = scrape(node)
    finally:
        stop.set()
        for s in socks:
            s.close()
        for t in threads:
            t.join(5)
    total_sent = sum(sent)
    growth = peak - rss_before
    print(f"RSS before {rss_before / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB "
          f"(+{growth / MiB:.0f} MiB) with {total_sent / MiB:.0f} MiB pushed by {conns} "
          f"connections; normal client round trip {took:.1f}s; "
          f"budget waits {m.get('raftka_kafka_request_bytes_waits_total', -1):.0f}, "
          f"evicted {m.get('raftka_kafka_requests_evicted_total', -1):.0f}")
    assert total_sent > budget + 32 * MiB, f"the hogs pushed only {total_sent / MiB:.0f} MiB"
    # The budget plus allocator and buffer slack (without the budget: +640 MiB).
    assert growth < budget + 96 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"
    assert m["raftka_kafka_request_bytes_queued"] <= budget
    assert m["raftka_kafka_request_bytes_waits_total"] >= 1
    assert took < 10, f"normal client round trip took {took:.1f}s"
    wait_until(lambda: scrape(node)["raftka_kafka_request_bytes_queued"] == 0, 10,
               "request bytes released after the hogs left")
    assert_serving(node)


# ---- issue 18: fetch answers held in memory ------------------------------------------------

def backlog_fetch_peak(node, consumers: int = 4, records: int = 1024, size: int = 16 * 1024):
    """Writes `records` of `size` bytes over 4 partitions, then has `consumers` consumers (each
    in its own group, asking for up to 48 MiB per fetch) read the backlog at once; returns
    the node's peak of fetch answer bytes held and its budget waits."""
    from confluent_kafka.admin import AdminClient, NewTopic
    topic = unique_name("backlog")
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 20,
                  "batch.size": 1024 * 1024, "compression.type": "none"})
    value = b"x" * size
    for i in range(records):
        while True:
            try:
                p.produce(topic, value, partition=i % 4)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0
    counts = [0] * consumers

    def consume(i: int) -> None:
        c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": unique_name("g"),
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "fetch.max.bytes": 48 * MiB, "max.partition.fetch.bytes": 16 * MiB,
                      "receive.message.max.bytes": 64 * MiB, "queued.max.messages.kbytes": 256 * 1024})
        try:
            c.assign([TopicPartition(topic, part, 0) for part in range(4)])
            deadline = time.monotonic() + 60
            while counts[i] < records and time.monotonic() < deadline:
                for m in c.consume(1000, 0.5):
                    if m.error() is None:
                        counts[i] += 1
        finally:
            c.close()

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert counts == [records] * consumers, counts
    m = scrape(node)
    return m["raftka_fetch_response_bytes_held_max"], m["raftka_fetch_response_bytes_waits_total"]


def test_backlog_fetches_stay_within_the_fetch_memory_budget(raftka_factory):
    """`fetch.response.memory.max.bytes` bounds the consumer fetch answers held at once: four
    consumers reading a 16 MiB backlog together with 48 MiB fetches hold at most the budget
    plus one batch per fetch (KIP-74's first batch, ≤ 1 MiB here), every record still
    arrives, and answers are released once written. Unbounded (-1), the same reads hold
    several times more — the scenario does press on the bound."""
    budget = 4 * MiB
    node = raftka_factory(name="fetchmem", extra_args=[
        "-o", f"fetch.response.memory.max.bytes={budget}"])
    peak, waits = backlog_fetch_peak(node)
    print(f"fetch answers held at most {peak / MiB:.1f} MiB (budget {budget / MiB:.0f} MiB), "
          f"{waits:.0f} waits")
    assert peak <= budget + 4 * (MiB + 64 * 1024), peak
    assert waits >= 1
    wait_until(lambda: scrape(node)["raftka_fetch_response_bytes_held"] == 0, 10,
               "fetch answer bytes released")
    free = raftka_factory(name="fetchmem-free", extra_args=[
        "-o", "fetch.response.memory.max.bytes=-1"])
    free_peak, free_waits = backlog_fetch_peak(free)
    print(f"unbounded: {free_peak / MiB:.1f} MiB held at most")
    assert free_waits == 0
    assert free_peak > 2 * (budget + 4 * (MiB + 64 * 1024)), free_peak
    assert_serving(node)


# ---- finding 10: /health under an idle-socket flood ---------------------------------------

def test_health_answers_while_hundreds_of_idle_http_sockets_are_open(raftka_factory):
    node = raftka_factory(name="httpflood")
    wait_until(lambda: http_get(node.http_url + "/health") == (200, "ok\n"), 20, "healthy")
    idle = []
    try:
        for _ in range(400):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect((node.host, node.http_port))
            idle.append(s)
        # Also sockets that sent part of a head and stopped.
        for _ in range(50):
            s = socket.create_connection((node.host, node.http_port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHo")
            idle.append(s)
        worst = 0.0
        for _ in range(5):
            t0 = time.monotonic()
            with urllib.request.urlopen(node.http_url + "/health", timeout=10) as r:
                assert r.status == 200 and r.read() == b"ok\n"
            worst = max(worst, time.monotonic() - t0)
        print(f"/health worst latency with {len(idle)} idle sockets open: {worst * 1000:.0f} ms")
        assert worst < 2.0, f"/health took {worst:.1f}s"
        m = scrape(node)
        assert m["raftka_http_connections_evicted_total"] >= 1
    finally:
        for s in idle:
            s.close()
    assert_serving(node)

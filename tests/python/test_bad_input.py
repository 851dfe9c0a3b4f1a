"""Malformed Kafka frames on raw sockets. Each bad input must close that connection (or, for an
unsupported ApiVersions version, produce the exact KIP-511 fallback), and the node must keep
serving normal clients afterwards. Frame layouts: see wire.py."""

from __future__ import annotations

import socket
import struct

import pytest
from kafka import KafkaConsumer

from raftka_harness import wire

CLOSE_TIMEOUT_S = 10
# The broker's ApiVersions range (v0-v4): what the KIP-511 fallback must advertise.
API_VERSIONS_MAX = 4


@pytest.fixture(autouse=True)
def revive_after_crash(raftka):
    """A crash fails the test that caused it (assert_still_serving); restart the node so the
    following tests still check their own input instead of failing in cascade."""
    if not raftka.is_running():
        raftka.start()
    yield


def connect(node) -> socket.socket:
    sock = socket.create_connection((node.host, node.kafka_port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def assert_still_serving(node) -> None:
    assert node.is_running(), f"raftka died (exit {node.proc.returncode})\n{node.log_tail()}"
    resp = wire.api_versions_roundtrip(node.host, node.kafka_port, version=3)
    assert resp["error_code"] == 0
    consumer = KafkaConsumer(bootstrap_servers=[node.bootstrap], request_timeout_ms=10000,
                             bootstrap_timeout_ms=15000)
    try:
        assert isinstance(consumer.topics(), set)
    finally:
        consumer.close()


def send_and_expect_close(node, data: bytes, half_close: bool = False) -> None:
    with connect(node) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        wire.wait_closed(sock, CLOSE_TIMEOUT_S)
    assert_still_serving(node)


# ---- controls: well-formed requests parse exactly ---------------------------------------

@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_supported_versions_parse_exactly(raftka, version):
    resp = wire.api_versions_roundtrip(raftka.host, raftka.kafka_port, version=version)
    assert resp["error_code"] == 0
    apis = resp["apis"]
    assert apis[wire.API_VERSIONS] == (0, API_VERSIONS_MAX)
    for key in (0, 1, 2, 3):  # Produce, Fetch, ListOffsets, Metadata
        assert key in apis, f"api key {key} not advertised: {sorted(apis)}"
    assert all(lo <= hi for lo, hi in apis.values()), apis


def test_pipelined_requests_answered_in_order(raftka):
    with connect(raftka) as sock:
        sock.sendall(b"".join(wire.api_versions_request(corr, version=corr % 5) for corr in range(1, 11)))
        for corr in range(1, 11):
            resp = wire.parse_api_versions(wire.read_frame(sock), corr % 5)
            assert resp["correlation_id"] == corr and resp["error_code"] == 0


# ---- KIP-511 fallback ---------------------------------------------------------------------

@pytest.mark.parametrize("version", [API_VERSIONS_MAX + 1, 127, 32767])
def test_api_versions_unsupported_version_gets_exact_v0_fallback(raftka, version):
    corr = 0x01020304
    # What kafka-python 3 / Java 4 send: flexible header v2 and a v3+-style body.
    body = wire.compact_string("raftka-tests") + wire.compact_string("9.9") + b"\x00"
    request = wire.frame(wire.request_header(wire.API_VERSIONS, version, corr, flexible=True) + body)
    expected = struct.pack(">i" "i" "h" "i" "hhh",
                           16,             # size: 4 + 2 + 4 + 6
                           corr,           # response header v0
                           wire.UNSUPPORTED_VERSION,
                           1,              # one entry ...
                           wire.API_VERSIONS, 0, API_VERSIONS_MAX)  # ... ApiVersions only
    with connect(raftka) as sock:
        sock.sendall(request)
        got = wire.recv_exact(sock, len(expected))
        assert got == expected, f"got {got.hex()} want {expected.hex()}"
        # Nothing else follows: the next bytes are the answer to the next request.
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            extra = sock.recv(1)
            raise AssertionError(f"unexpected byte after the fallback response: {extra!r}")
        sock.settimeout(5)
        # The connection stays usable; a client retries with v0.
        sock.sendall(wire.api_versions_request(corr + 1, version=0))
        resp = wire.parse_api_versions(wire.read_frame(sock), 0)
        assert resp["correlation_id"] == corr + 1 and resp["error_code"] == 0
    assert_still_serving(raftka)


# ---- bad frames: connection closed, node keeps serving ------------------------------------

def test_oversize_frame_length_closes_connection(raftka):
    header = wire.request_header(wire.METADATA, 1, 7)
    send_and_expect_close(raftka, struct.pack(">i", 200 * 1024 * 1024) + header)


@pytest.mark.parametrize("length", [-1, -(2 ** 31)])
def test_negative_frame_length_closes_connection(raftka, length):
    send_and_expect_close(raftka, struct.pack(">i", length) + b"\x00" * 16)


def test_zero_length_frame_closes_connection(raftka):
    send_and_expect_close(raftka, struct.pack(">i", 0))


@pytest.mark.parametrize("api_key", [9999, 32767, -1])
def test_unknown_api_key_closes_connection(raftka, api_key):
    send_and_expect_close(raftka, wire.frame(wire.request_header(api_key, 0, 11)))


def test_unsupported_version_of_other_api_closes_connection(raftka):
    # Only ApiVersions gets the KIP-511 treatment; Metadata v999 is a protocol error.
    send_and_expect_close(raftka, wire.frame(wire.request_header(wire.METADATA, 999, 12) + b"\x00\x00\x00\x00"))


def test_refusals_are_visible_in_the_log_and_metrics(raftka):
    """Issue 16: a version or API this node does not serve closes the connection (as Kafka does)
    and leaves a WARN line naming the client (address, client id, API, version) plus a counter,
    so an operator sees more than the client's EOF. The WARN is rate-limited per client."""
    import urllib.request

    def unsupported() -> int:
        text = urllib.request.urlopen(f"{raftka.http_url}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith("raftka_kafka_unsupported_requests_total "):
                return int(float(line.split()[1]))
        raise AssertionError("raftka_kafka_unsupported_requests_total is not exported")

    before = unsupported()
    for _ in range(3):
        send_and_expect_close(raftka, wire.frame(wire.request_header(wire.METADATA, 999, 21, client_id="old-sarama")
                                                 + b"\x00\x00\x00\x00"))
    send_and_expect_close(raftka, wire.frame(wire.request_header(57, 0, 22, client_id="feature-tool")))
    assert unsupported() == before + 4
    log = raftka.log_text()
    lines = [ln for ln in log.splitlines() if "does not serve" in ln and "old-sarama" in ln]
    assert len(lines) == 1, lines  # once a minute per client
    assert "api=Metadata" in lines[0] and "version=999" in lines[0] and "127.0.0.1" in lines[0], lines[0]
    assert any("feature-tool" in ln and "UpdateFeatures" in ln for ln in log.splitlines()), log[-2000:]


def test_length_prefix_longer_than_data_then_eof_closes_connection(raftka):
    payload = wire.request_header(wire.METADATA, 1, 13) + struct.pack(">i", 0)
    # Claim 100 bytes, send fewer, then half-close: the body never completes.
    send_and_expect_close(raftka, struct.pack(">i", 100) + payload, half_close=True)


def test_truncated_header_closes_connection(raftka):
    # A complete 3-byte frame: api_key plus one byte of api_version.
    send_and_expect_close(raftka, wire.frame(struct.pack(">hb", wire.METADATA, 0)))


def test_client_id_longer_than_frame_closes_connection(raftka):
    header = struct.pack(">hhih", wire.METADATA, 1, 14, 100) + b"short"
    send_and_expect_close(raftka, wire.frame(header))


def test_truncated_metadata_body_closes_connection(raftka):
    # Metadata v1 body = array[int32] of string topics. Claim 3 topics, send one.
    body = struct.pack(">i", 3) + struct.pack(">h", 3) + b"abc"
    send_and_expect_close(raftka, wire.frame(wire.request_header(wire.METADATA, 1, 15) + body))


def test_negative_array_length_in_body_closes_connection(raftka):
    # CreateTopics v0: array count -2 (only -1 means null, and not even that for topics).
    body = struct.pack(">i", -2) + struct.pack(">i", 1000)
    send_and_expect_close(raftka, wire.frame(wire.request_header(19, 0, 16) + body))


def test_huge_array_count_in_small_frame_closes_connection(raftka):
    # Metadata v1 with 2^31-1 topics claimed in a 20-byte frame: must not preallocate.
    body = struct.pack(">i", 2 ** 31 - 1) + struct.pack(">h", 1) + b"a"
    send_and_expect_close(raftka, wire.frame(wire.request_header(wire.METADATA, 1, 17) + body))


def test_garbage_bytes_close_connection(raftka):
    send_and_expect_close(raftka, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_requests_over_the_topic_and_partition_limits_close_the_connection(raftka):
    """The route table checks every request's size in topics and partitions once, before any
    handler (topics_per_request_max 10000, partitions_per_request_max 100000)."""
    name = b"t"
    topics = struct.pack(">i", 10_001) + (struct.pack(">h", len(name)) + name) * 10_001
    send_and_expect_close(raftka, wire.frame(wire.request_header(wire.METADATA, 1, 1) + topics))
    # Produce v3: 1 topic with 100 001 partitions of null records.
    parts = struct.pack(">i", 100_001) + (struct.pack(">ii", 0, -1)) * 100_001
    body = struct.pack(">hhi", -1, 1, 1000) + struct.pack(">i", 1) + struct.pack(">h", 1) + name + parts
    send_and_expect_close(raftka, wire.frame(wire.request_header(0, 3, 2) + body))
    # Within the limits the same shapes are answered.
    ok = struct.pack(">i", 2) + (struct.pack(">h", len(name)) + name) * 2
    with connect(raftka) as s:
        s.sendall(wire.frame(wire.request_header(wire.METADATA, 1, 3) + ok))
        assert struct.unpack(">i", wire.read_frame(s)[:4])[0] == 3
    assert_still_serving(raftka)

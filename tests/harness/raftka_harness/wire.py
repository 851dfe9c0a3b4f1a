"""Hand-built Kafka frames for readiness probes and malformed-input tests.

Layouts follow the Kafka protocol guide (https://kafka.apache.org/protocol):

    frame            = int32 size, then `size` bytes of header + body
    request header   v1 = int16 api_key, int16 api_version, int32 correlation_id,
                          nullable_string client_id (int16 length, -1 = null)
                     v2 = v1 + tagged fields (unsigned varint count, 0 = none)
    response header  v0 = int32 correlation_id   (ApiVersions responses always use v0)

Metadata v1, CreateTopics v2 and DeleteTopics v1 (all header v1 / response header v0) are
built and parsed below for tests that must ask one particular node: a Kafka client bootstraps
from the node it is given, learns every broker from the reply and then sends its requests to
any of them, so its answers are not that node's view.

ApiVersions response bodies:
    v0   = int16 error_code, array[int32 count] of (int16 api_key, int16 min, int16 max)
    v1-2 = v0 + int32 throttle_time_ms
    v3+  = int16 error_code, compact array (uvarint count+1) of
           (int16 api_key, int16 min, int16 max, tagged fields), int32 throttle_time_ms,
           tagged fields
"""

from __future__ import annotations

import socket
import struct
import time

API_VERSIONS = 18
METADATA = 3
CREATE_TOPICS = 19
DELETE_TOPICS = 20
UNSUPPORTED_VERSION = 35


def request_header(api_key: int, api_version: int, correlation_id: int,
                   client_id: str | None = "raftka-tests", flexible: bool = False) -> bytes:
    out = struct.pack(">hhi", api_key, api_version, correlation_id)
    if client_id is None:
        out += struct.pack(">h", -1)
    else:
        raw = client_id.encode()
        out += struct.pack(">h", len(raw)) + raw
    if flexible:
        out += b"\x00"  # empty tagged fields
    return out


def string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def compact_string(s: str) -> bytes:
    raw = s.encode()
    return uvarint(len(raw) + 1) + raw


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def api_versions_request(correlation_id: int, version: int = 0) -> bytes:
    """A complete, well-formed ApiVersions request frame (v0-v2 header v1; v3+ header v2)."""
    if version >= 3:
        body = compact_string("raftka-tests") + compact_string("0.1") + b"\x00"
        return frame(request_header(API_VERSIONS, version, correlation_id, flexible=True) + body)
    return frame(request_header(API_VERSIONS, version, correlation_id))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    assert 0 <= size < 64 * 1024 * 1024, f"implausible response size {size}"
    return recv_exact(sock, size)


def parse_api_versions(payload: bytes, version: int) -> dict:
    """Parse a full ApiVersions response (header v0 + body). Asserts no trailing bytes."""
    (corr, err) = struct.unpack_from(">ih", payload, 0)
    pos = 6
    apis = {}
    if version >= 3:
        count, pos = read_uvarint(payload, pos)
        count -= 1
        for _ in range(count):
            key, lo, hi = struct.unpack_from(">hhh", payload, pos)
            pos += 6
            ntags, pos = read_uvarint(payload, pos)
            assert ntags == 0, "unexpected tagged fields in an ApiVersions entry"
            apis[key] = (lo, hi)
        (throttle,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        # Top-level tagged fields (v3+ brokers may send SupportedFeatures etc.): skip them.
        ntags, pos = read_uvarint(payload, pos)
        for _ in range(ntags):
            _tag, pos = read_uvarint(payload, pos)
            size, pos = read_uvarint(payload, pos)
            pos += size
    else:
        (count,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(count):
            key, lo, hi = struct.unpack_from(">hhh", payload, pos)
            pos += 6
            apis[key] = (lo, hi)
        throttle = None
        if version >= 1:
            (throttle,) = struct.unpack_from(">i", payload, pos)
            pos += 4
    assert pos == len(payload), f"{len(payload) - pos} trailing bytes in ApiVersions v{version} response"
    return {"correlation_id": corr, "error_code": err, "apis": apis, "throttle_time_ms": throttle}


def api_versions_roundtrip(host: str, port: int, version: int = 0, timeout: float = 5.0) -> dict:
    """Connect, send ApiVersions, return the parsed response."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        corr = 0x5EED
        sock.sendall(api_versions_request(corr, version))
        resp = parse_api_versions(read_frame(sock), version)
        assert resp["correlation_id"] == corr, resp
        return resp


def wait_closed(sock: socket.socket, timeout: float) -> bytes:
    """Read until the peer closes the connection. Returns whatever bytes arrived before the close.

    Raises AssertionError if the connection is still open after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"server kept the connection open for {timeout}s after bad input "
                f"(received {len(got)} bytes: {bytes(got[:64])!r})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return bytes(got)
        except socket.timeout:
            continue
        if not chunk:
            return bytes(got)
        got += chunk


class _Reader:
    """Reads the non-flexible primitives of a response, front to back."""

    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def int8(self) -> int:
        (v,) = struct.unpack_from(">b", self.buf, self.pos)
        self.pos += 1
        return v

    def int16(self) -> int:
        (v,) = struct.unpack_from(">h", self.buf, self.pos)
        self.pos += 2
        return v

    def int32(self) -> int:
        (v,) = struct.unpack_from(">i", self.buf, self.pos)
        self.pos += 4
        return v

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        v = self.buf[self.pos:self.pos + n].decode()
        self.pos += n
        return v

    def array(self, item) -> list:
        n = self.int32()
        return [item() for _ in range(max(n, 0))]

    def end(self, what: str) -> None:
        assert self.pos == len(self.buf), f"{len(self.buf) - self.pos} trailing bytes in {what}"


def metadata_request(correlation_id: int) -> bytes:
    """Metadata v1 for all topics (a null topic array)."""
    return frame(request_header(METADATA, 1, correlation_id) + struct.pack(">i", -1))


def parse_metadata_v1(payload: bytes) -> dict:
    """{"correlation_id", "brokers": {id: (host, port)}, "controller_id",
    "topics": {name: {"error_code", "partitions": {index: {"error_code", "leader", "replicas",
    "isr"}}}}}"""
    r = _Reader(payload)
    corr = r.int32()
    brokers = {}
    for node_id, host, port, _rack in r.array(lambda: (r.int32(), r.string(), r.int32(), r.string())):
        brokers[node_id] = (host, port)
    controller_id = r.int32()
    topics = {}

    def partition():
        return {"error_code": r.int16(), "index": r.int32(), "leader": r.int32(),
                "replicas": r.array(r.int32), "isr": r.array(r.int32)}

    for err, name, _internal, parts in r.array(lambda: (r.int16(), r.string(), r.int8(), r.array(partition))):
        topics[name] = {"error_code": err, "partitions": {p["index"]: p for p in parts}}
    r.end("Metadata v1 response")
    return {"correlation_id": corr, "brokers": brokers, "controller_id": controller_id, "topics": topics}


def create_topics_request(correlation_id: int, name: str, partitions: int, replication_factor: int,
                          timeout_ms: int) -> bytes:
    """CreateTopics v2 for one topic, no explicit assignment, no configs."""
    body = (struct.pack(">i", 1) + string(name) + struct.pack(">ih", partitions, replication_factor)
            + struct.pack(">ii", 0, 0) + struct.pack(">ib", timeout_ms, 0))
    return frame(request_header(CREATE_TOPICS, 2, correlation_id) + body)


def delete_topics_request(correlation_id: int, name: str, timeout_ms: int) -> bytes:
    """DeleteTopics v1 for one topic."""
    body = struct.pack(">i", 1) + string(name) + struct.pack(">i", timeout_ms)
    return frame(request_header(DELETE_TOPICS, 1, correlation_id) + body)


def parse_topic_results(payload: bytes, with_message: bool) -> dict:
    """CreateTopics v2 (`with_message`) or DeleteTopics v1 response:
    {"correlation_id", "topics": {name: (error_code, error_message or None)}}"""
    r = _Reader(payload)
    corr = r.int32()
    r.int32()  # throttle_time_ms
    results = r.array(lambda: (r.string(), r.int16(), r.string() if with_message else None))
    r.end("CreateTopics/DeleteTopics response")
    return {"correlation_id": corr, "topics": {name: (err, msg) for name, err, msg in results}}


def roundtrip(host: str, port: int, request: bytes, timeout: float) -> bytes:
    """Sends one request frame over a new connection to exactly `host:port` and returns the
    response payload. Raises OSError (socket.timeout included) when there is no answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        return read_frame(sock)


def metadata_roundtrip(host: str, port: int, timeout: float = 5.0) -> dict:
    """This node's own metadata (its image), not another node's."""
    corr = 0x3E7A
    resp = parse_metadata_v1(roundtrip(host, port, metadata_request(corr), timeout))
    assert resp["correlation_id"] == corr, resp
    return resp


def create_topic_roundtrip(host: str, port: int, name: str, partitions: int, replication_factor: int,
                           timeout: float) -> tuple[int, str | None]:
    """CreateTopics sent to this node (which forwards the proposal to the controller leader):
    (error_code, error_message)."""
    corr = 0xC4EA
    req = create_topics_request(corr, name, partitions, replication_factor, int(timeout * 1000))
    resp = parse_topic_results(roundtrip(host, port, req, timeout + 5), with_message=True)
    assert resp["correlation_id"] == corr and list(resp["topics"]) == [name], resp
    return resp["topics"][name]


def delete_topic_roundtrip(host: str, port: int, name: str, timeout: float) -> int:
    """DeleteTopics sent to this node: the error code."""
    corr = 0xDE1E
    req = delete_topics_request(corr, name, int(timeout * 1000))
    resp = parse_topic_results(roundtrip(host, port, req, timeout + 5), with_message=False)
    assert resp["correlation_id"] == corr and list(resp["topics"]) == [name], resp
    return resp["topics"][name][0]


FIND_COORDINATOR = 10


def find_coordinator_roundtrip(host: str, port: int, group: str, timeout: float = 5.0) -> tuple[int, int]:
    """FindCoordinator v1 (key type 0, a group) sent to exactly this node: (error_code,
    coordinator node id). Used instead of librdkafka's DescribeConsumerGroups while a node is
    being killed: librdkafka 2.12 can abort the process there (use-after-free in
    `rd_kafka_admin_coord_request`, confluentinc/librdkafka#4605, PR #5397)."""
    corr = 0xF1C0
    req = frame(request_header(FIND_COORDINATOR, 1, corr) + string(group) + struct.pack(">b", 0))
    r = _Reader(roundtrip(host, port, req, timeout))
    assert r.int32() == corr
    r.int32()  # throttle_time_ms
    error = r.int16()
    r.string()  # error_message
    node_id = r.int32()
    r.string()  # host
    r.int32()  # port
    r.end("FindCoordinator v1")
    return error, node_id

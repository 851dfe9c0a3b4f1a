"""Hand-built Kafka frames for readiness probes and malformed-input tests.

Layouts follow the Kafka protocol guide (https://kafka.apache.org/protocol):

    frame            = int32 size, then `size` bytes of header + body
    request header   v1 = int16 api_key, int16 api_version, int32 correlation_id,
                          nullable_string client_id (int16 length, -1 = null)
                     v2 = v1 + tagged fields (unsigned varint count, 0 = none)
    response header  v0 = int32 correlation_id   (ApiVersions responses always use v0)

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

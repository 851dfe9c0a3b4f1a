"""Writes the seed corpora of the fuzz targets (committed under seeds/<target>/): the inputs of
issue 14 (the 69-byte poison, lying counts and lengths, random compressed payloads, small
decompression bombs) and well-formed frames of each protocol. Run from anywhere with the
test venv: `.venv/bin/python tests/fuzz/make_seeds.py`."""

from __future__ import annotations

import gzip
import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "python"))

import raftka_wire as wire  # noqa: E402
from test_record_validation import batch, record, zigzag  # noqa: E402


def write(target: str, name: str, data: bytes) -> None:
    d = HERE / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def record_batches() -> dict[str, bytes]:
    one = record(0, b"k", b"value")
    two = one + record(1, b"k2", b"v2", headers=1, header_bytes=zigzag(1) + b"h" + zigzag(1) + b"x")
    rnd = bytes((i * 2654435761 >> 13) & 0xFF for i in range(600))
    lying = bytearray(one)
    lying[0] = 60
    ten = b"".join(record(i, b"k%d" % i, b"v" * 20) for i in range(10))
    bomb_inner = b"".join(record(i, b"k", bytes(4096)) for i in range(512))  # 2 MiB
    return {
        "valid_two.bin": batch(two, 2, base_ts=1_700_000_000_000),
        "valid_gzip.bin": batch(gzip.compress(ten), 10, attributes=1, base_ts=1_700_000_000_000),
        "poison_headers.bin": batch(record(0, b"k", b"v", headers=2**31 - 1), 1),
        "count_2g.bin": batch(one, 2**31 - 1),
        "count_low.bin": batch(two, 1),
        "lying_length.bin": batch(bytes(lying), 1),
        "random_gzip.bin": batch(rnd, 1, attributes=1),
        "random_snappy.bin": batch(rnd, 1, attributes=2),
        "random_lz4.bin": batch(rnd, 1, attributes=3),
        "random_zstd.bin": batch(rnd, 1, attributes=4),
        "gzip_bomb_2mib.bin": batch(gzip.compress(bomb_inner, 9), 512, attributes=1),
    }


def kafka_requests(batches: dict[str, bytes]) -> dict[str, bytes]:
    out = {"api_versions_v3.bin": wire.api_versions_request(1, 3)[4:]}
    name = b"t"
    for seed, rec in [("poison", batches["poison_headers.bin"]), ("valid", batches["valid_two.bin"])]:
        body = struct.pack(">hhi", -1, 1, 1000) + struct.pack(">i", 1) + struct.pack(">h", 1) + name
        body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(rec)) + rec
        out[f"produce_v8_{seed}.bin"] = wire.request_header(0, 8, 3) + body
    # Metadata v1 for topic "t", and a huge array count in a small frame.
    out["metadata_v1.bin"] = wire.request_header(3, 1, 4) + struct.pack(">ih", 1, 1) + name
    out["metadata_huge_count.bin"] = wire.request_header(3, 1, 5) + struct.pack(">i", 2**31 - 1)
    return out


def jute_string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">i", len(raw)) + raw


def jute_requests() -> dict[str, bytes]:
    connect = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + bytes(16) + b"\x00"
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jute_string("world") + jute_string("anyone")
    create = struct.pack(">ii", 1, 1) + jute_string("/a") + struct.pack(">i", 3) + b"abc" + acl + struct.pack(">i", 0)
    get = struct.pack(">ii", 2, 4) + jute_string("/a") + b"\x00"
    multi = struct.pack(">ii", 3, 14) + struct.pack(">i?i", 1, False, -1) + jute_string("/a")
    multi += struct.pack(">i", 3) + b"abc" + acl + struct.pack(">i", 0) + struct.pack(">i?i", -1, True, -1)
    huge = struct.pack(">ii", 4, 1) + jute_string("/b") + struct.pack(">i", 2**31 - 1)
    return {"connect.bin": connect, "create.bin": create, "get_data.bin": get, "multi.bin": multi,
            "huge_length.bin": huge}


def node_messages() -> dict[str, bytes]:
    cmd = {"format": 1, "command": {"ZkMulti": {"session_id": 1, "now_ms": 5, "data_bytes_max": 1000,
                                               "ops": [{"Create": {"path": "/a", "data": "YWJj",
                                                                   "ephemeral": False,
                                                                   "sequential": False}}]}}}
    return {"zk_multi.json": json.dumps(cmd).encode(),
            "zk_multi_old_bytes.json": json.dumps(cmd).replace('"YWJj"', "[97,98,99]").encode()}


def main() -> None:
    b = record_batches()
    for n, d in b.items():
        write("record_batch", n, d)
    for n, d in kafka_requests(b).items():
        write("kafka_request", n, d)
    for n, d in jute_requests().items():
        write("jute_request", n, d)
    for n, d in node_messages().items():
        write("node_messages", n, d)


if __name__ == "__main__":
    main()

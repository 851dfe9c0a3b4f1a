"""kcat 1.7.1 (librdkafka 2.0.2) smoke tests: metadata, produce from stdin, consume to EOF."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from raftka_harness import unique_name

# Outside CI a missing kcat skips this module; in CI (`make test` installs it) it must fail.
pytestmark = pytest.mark.skipif(shutil.which("kcat") is None and not os.environ.get("CI"),
                                reason="kcat not installed (make deps)")


def kcat(node, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = ["kcat", "-b", node.bootstrap, "-m", "10", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc


def test_metadata_list(raftka):
    text = kcat(raftka, "-L").stdout
    assert re.search(r"^ 1 brokers:$", text, re.M), text
    assert re.search(rf"^  broker 1 at 127\.0\.0\.1:{raftka.kafka_port}\b", text, re.M), text

    meta = json.loads(kcat(raftka, "-L", "-J").stdout)
    assert meta["brokers"] == [{"id": 1, "name": f"127.0.0.1:{raftka.kafka_port}"}]
    assert meta["controllerid"] == 1


def test_produce_stdin_then_consume_from_beginning(raftka):
    topic = unique_name("kcat")
    lines = [f"line {i} of the kcat test" for i in range(200)]
    kcat(raftka, "-P", "-t", topic, "-p", "0", "-X", "topic.request.required.acks=-1",
         stdin="".join(line + "\n" for line in lines))

    out = kcat(raftka, "-C", "-t", topic, "-o", "beginning", "-e").stdout
    assert out.splitlines() == lines

    meta = json.loads(kcat(raftka, "-L", "-J", "-t", topic).stdout)
    (t,) = meta["topics"]
    assert t["topic"] == topic
    assert [p["partition"] for p in t["partitions"]] == [0]
    assert t["partitions"][0]["leader"] == 1


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_keyed_compressed_produce_and_offset_consume(raftka, codec):
    topic = unique_name(f"kcat-{codec}")
    pairs = [(f"k{i}", f"value-{i}-" + "x" * 50) for i in range(100)]
    kcat(raftka, "-P", "-t", topic, "-p", "0", "-K", ":", "-X", f"compression.codec={codec}",
         "-X", "topic.request.required.acks=-1", "-H", "origin=kcat",
         stdin="".join(f"{k}:{v}\n" for k, v in pairs))

    out = kcat(raftka, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%p|%o|%k|%s|%h\n").stdout
    assert out.splitlines() == [f"0|{i}|{k}|{v}|origin=kcat" for i, (k, v) in enumerate(pairs)]

    # Absolute and relative start offsets.
    out = kcat(raftka, "-C", "-t", topic, "-p", "0", "-o", "90", "-e", "-f", "%o\n").stdout
    assert out.splitlines() == [str(i) for i in range(90, 100)]
    out = kcat(raftka, "-C", "-t", topic, "-p", "0", "-o", "-5", "-e", "-f", "%o\n").stdout
    assert out.splitlines() == [str(i) for i in range(95, 100)]

"""The `raftka serve` CLI contract: invalid config exits 2 with a message on stderr; config file,
`-o` overrides and their precedence; SIGINT shuts down with exit 0; JSON log format."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from kafka import KafkaAdminClient, KafkaProducer
import kafka.errors as Errors

from raftka_harness import free_ports, unique_name, write_config


def run_serve(binary, tmp_path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    kafka_port, zk_port, raft_port = free_ports(3)
    cmd = [str(binary), "serve", "--listeners", f"PLAINTEXT://127.0.0.1:{kafka_port}",
           "--zk-listen", f"127.0.0.1:{zk_port}", "--raft-listen", f"127.0.0.1:{raft_port}",
           "--data-dir", str(tmp_path / "data"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [
    ["-o", "num.partitions=notanumber"],
    ["-o", "log.retention.ms=-5"],
    ["--listeners", "garbage"],
    ["--log-format", "xml"],
    ["-c", "/nonexistent/server.properties"],
], ids=["bad-int", "out-of-range", "bad-listener", "bad-log-format", "missing-config-file"])
def test_invalid_config_exits_2_with_message(raftka_binary, tmp_path, args):
    proc = run_serve(raftka_binary, tmp_path, *args)
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert proc.stderr.strip(), "expected an explanation on stderr"


def partitions_of_auto_created_topic(node) -> int:
    topic = unique_name("cli-auto")
    producer = KafkaProducer(bootstrap_servers=[node.bootstrap], max_block_ms=10000)
    try:
        producer.send(topic, b"x").get(timeout=10)
        return len(producer.partitions_for(topic))
    finally:
        producer.close(timeout=5)


def test_config_file_and_set_override(raftka_factory, tmp_path):
    props = write_config(tmp_path / "server.properties",
                         {"num.partitions": 3, "auto.create.topics.enable": "true"}, comment="comment")
    node = raftka_factory("cli-file", extra_args=["-c", str(props)])
    assert partitions_of_auto_created_topic(node) == 3
    node.stop()

    # A -o flag beats the file.
    node2 = raftka_factory("cli-override", extra_args=["-c", str(props), "-o", "num.partitions=2"])
    assert partitions_of_auto_created_topic(node2) == 2


def test_auto_create_disabled(raftka_factory):
    node = raftka_factory("cli-noauto", extra_args=["-o", "auto.create.topics.enable=false"])
    topic = unique_name("cli-missing")
    producer = KafkaProducer(bootstrap_servers=[node.bootstrap], max_block_ms=3000)
    try:
        with pytest.raises(Errors.KafkaTimeoutError):
            producer.send(topic, b"x").get(timeout=10)
    finally:
        producer.close(timeout=5)
    admin = KafkaAdminClient(bootstrap_servers=[node.bootstrap])
    try:
        assert topic not in admin.list_topics()
    finally:
        admin.close()


def test_sigint_shuts_down_with_exit_0(raftka_factory):
    node = raftka_factory("cli-sigint")
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(20) == 0
    # And it comes back on the same data dir and ports.
    node.start()


def test_json_log_format(raftka_factory):
    node = raftka_factory("cli-json", extra_args=["--log-format", "json"])
    assert node.stop() == 0
    lines = [line for line in node.log_text().splitlines() if line and not line.startswith("=====")]
    assert lines, "no log output"
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert "level" in record and "timestamp" in record, record

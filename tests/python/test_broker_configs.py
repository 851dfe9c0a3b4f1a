"""Dynamic broker configs (KIP-226) with confluent-kafka's AdminClient against one raftka node:
per broker and cluster default, applied live to topic defaults, described with their source,
read-only keys refused, and kept across a restart (they live in the metadata Raft)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic)

import socket
import struct

from raftka_harness import wire
from raftka_harness import unique_name, wait_until

INVALID_REQUEST = 42


def admin_for(node) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap, "broker.address.family": "v4"})


def describe(admin: AdminClient, kind, name: str) -> dict:
    res = ConfigResource(kind, name)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=20)


def alter(admin: AdminClient, name: str, *entries: ConfigEntry) -> None:
    res = ConfigResource(ConfigResource.Type.BROKER, name, incremental_configs=list(entries))
    admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)


def _s(v: str | None) -> bytes:
    if v is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(v.encode())) + v.encode()


def alter_default_raw(node, key: str, value: str) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v0 SET on the cluster-default BROKER resource (empty name)."""
    body = (struct.pack(">i", 1) + struct.pack(">b", 4) + _s("") + struct.pack(">i", 1) + _s(key)
            + struct.pack(">b", 0) + _s(value) + struct.pack(">b", 0))
    with socket.create_connection((node.host, node.kafka_port), timeout=20) as sock:
        sock.sendall(wire.frame(wire.request_header(44, 0, 7) + body))
        buf = wire.read_frame(sock)
    corr, _throttle, n, err, mlen = struct.unpack_from(">iiihh", buf, 0)
    assert (corr, n) == (7, 1)
    msg = None if mlen < 0 else buf[18:18 + mlen].decode()
    return err, msg


def test_dynamic_broker_configs(raftka_factory):
    node = raftka_factory("dyncfg")
    admin = admin_for(node)
    topic = unique_name("dyncfg")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=20)

    # The cluster default (the empty name, which neither librdkafka nor kafka-python address;
    # Kafka's own kafka-configs.sh --entity-default does), then this broker's own value on top.
    assert alter_default_raw(node, "log.retention.ms", "7000")[0] == 0
    b = describe(admin, ConfigResource.Type.BROKER, "1")
    assert b["log.retention.ms"].value == "7000"
    assert ConfigSource(b["log.retention.ms"].source) == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert not b["log.retention.ms"].is_read_only
    assert b["broker.id"].is_read_only
    t = describe(admin, ConfigResource.Type.TOPIC, topic)
    assert t["retention.ms"].value == "7000"
    assert ConfigSource(t["retention.ms"].source) == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG

    alter(admin, "1", ConfigEntry("log.retention.ms", "9000", incremental_operation=AlterConfigOpType.SET),
          ConfigEntry("message.max.bytes", "2000000", incremental_operation=AlterConfigOpType.SET))
    b = describe(admin, ConfigResource.Type.BROKER, "1")
    assert b["log.retention.ms"].value == "9000"
    assert ConfigSource(b["log.retention.ms"].source) == ConfigSource.DYNAMIC_BROKER_CONFIG
    t = describe(admin, ConfigResource.Type.TOPIC, topic)
    assert (t["retention.ms"].value, t["max.message.bytes"].value) == ("9000", "2000000")

    # A key that needs a restart is refused with Kafka's error, and nothing changes.
    with pytest.raises(KafkaException) as exc:
        alter(admin, "1", ConfigEntry("log.dirs", "/elsewhere", incremental_operation=AlterConfigOpType.SET))
    err = exc.value.args[0]
    assert err.code() == INVALID_REQUEST, err
    assert "Cannot update these configs dynamically" in err.str(), err
    # Legacy AlterConfigs replaces the broker's set.
    res = ConfigResource(ConfigResource.Type.BROKER, "1", set_config={"log.retention.hours": "3"})
    admin.alter_configs([res], request_timeout=15)[res].result(timeout=20)
    t = describe(admin, ConfigResource.Type.TOPIC, topic)
    # log.retention.ms (cluster default) is more specific than this broker's log.retention.hours.
    assert t["retention.ms"].value == "7000"
    assert t["max.message.bytes"].value != "2000000"

    # Stored in the metadata Raft: still there after a restart.
    node.restart()
    admin = admin_for(node)
    wait_until(lambda: describe(admin, ConfigResource.Type.BROKER, "1")["log.retention.hours"].value == "3",
               30, "dynamic config after restart")
    assert describe(admin, ConfigResource.Type.TOPIC, topic)["retention.ms"].value == "7000"


def test_sasl_kerberos_keys_are_per_broker(raftka_factory):
    """Kafka reconfigures its SASL Kerberos keys per broker (DynamicListenerConfig), so
    `kafka-configs.sh --entity-type brokers --entity-name 1` and librdkafka's admin test
    (0081, `sasl.kerberos.min.time.before.relogin`) succeed; at the cluster default Kafka refuses
    them with INVALID_REQUEST. raftka stores and describes them (it has no GSSAPI to apply them to)."""
    node = raftka_factory("dynsasl")
    admin = admin_for(node)
    key = "sasl.kerberos.min.time.before.relogin"
    b = describe(admin, ConfigResource.Type.BROKER, "1")
    assert b[key].value == "60000" and ConfigSource(b[key].source) == ConfigSource.DEFAULT_CONFIG
    assert not b[key].is_read_only
    alter(admin, "1", ConfigEntry(key, "58000", incremental_operation=AlterConfigOpType.SET))
    res = ConfigResource(ConfigResource.Type.BROKER, "1", set_config={key: "57000"})
    admin.alter_configs([res], request_timeout=15)[res].result(timeout=20)
    b = describe(admin, ConfigResource.Type.BROKER, "1")
    assert b[key].value == "57000"
    assert ConfigSource(b[key].source) == ConfigSource.DYNAMIC_BROKER_CONFIG
    err, msg = alter_default_raw(node, key, "58000")
    assert err == INVALID_REQUEST and "broker id must be specified" in (msg or ""), (err, msg)
    with pytest.raises(KafkaException) as exc:
        alter(admin, "1", ConfigEntry(key, "soon", incremental_operation=AlterConfigOpType.SET))
    assert exc.value.args[0].code() == 40, exc.value.args[0]  # INVALID_CONFIG

"""ACL authorization (issue 15): Kafka's authorizer (`authorizer.class.name`, `super.users`) on a
SASL_PLAINTEXT listener with PLAIN users, ACLs kept in the metadata Raft and managed by
CreateAcls / DescribeAcls / DeleteAcls (confluent-kafka's and kafka-python's admin clients) and
by Kafka 2.2.1's ZooKeeper ACL store through the facade (`/kafka-acl/<Type>/<name>`, written as
`kafka-acls.sh --authorizer-properties zookeeper.connect=... --add` writes it: kazoo). Real
clients are refused with Kafka's errors where the ACLs do not allow them (confluent-kafka
producer and consumer, kafka-python, kcat's metadata listing) and served once granted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError

from raftka_harness import free_ports, unique_name, wait_until

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture(scope="module")
def node(raftka_binary, tmp_path_factory):
    from conftest import _new_node, _release
    (plain_port,) = free_ports(1)
    n = _new_node(
        raftka_binary, tmp_path_factory, "acls",
        listeners="SASL_PLAINTEXT://{host}:{kafka_port},PLAINTEXT://{host}:" + str(plain_port),
        extra_args=["-o", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
                    "-o", "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
                    "-o", "super.users=User:admin",
                    "-o", "connection.failed.authentication.delay.ms=0"])
    n.plain_bootstrap = f"{n.host}:{plain_port}"
    try:
        n.start()
        yield n
    finally:
        _release(n)


def conf(node, user: str, **extra) -> dict:
    return {"bootstrap.servers": node.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-secret",
            **extra}


def admin(node, user: str = "admin") -> AdminClient:
    return AdminClient(conf(node, user))


def create_topic(a: AdminClient, topic: str) -> None:
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def acl(rt, name, who, op, perm=AclPermissionType.ALLOW, pattern=ResourcePatternType.LITERAL):
    return AclBinding(rt, name, pattern, who, "*", op, perm)


def grant(a: AdminClient, *bindings: AclBinding) -> None:
    for f in a.create_acls(list(bindings)).values():
        f.result(30)


ANY = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                       AclOperation.ANY, AclPermissionType.ANY)


def produce_error(c: dict, topic: str) -> KafkaError | None:
    errors: list = []
    p = Producer({**c, "message.timeout.ms": 8000, "acks": "all"})
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors, "no delivery report"
    return errors[0]


def consume(c: dict, topic: str, group: str, want: int, timeout: float = 20) -> tuple[list, list]:
    cons = Consumer({**c, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    cons.subscribe([topic])
    got: list[bytes] = []
    errors: list[int] = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and len(got) < want and not errors:
            m = cons.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    errors.append(m.error().code())
                continue
            got.append(m.value())
    finally:
        cons.close()
    return got, errors


def test_acl_apis_with_confluent_admin(node):
    a = admin(node)
    t = unique_name("orders")
    grant(a, acl(ResourceType.TOPIC, t, "User:alice", AclOperation.READ),
          acl(ResourceType.TOPIC, "logs-", "User:bob", AclOperation.WRITE,
              pattern=ResourcePatternType.PREFIXED),
          acl(ResourceType.GROUP, "*", "User:*", AclOperation.ALL, AclPermissionType.DENY))
    listed = a.describe_acls(ANY).result(30)
    mine = [b for b in listed if b.name in (t, "logs-", "*")]
    assert len(mine) == 3, listed
    prefixed = a.describe_acls(AclBindingFilter(ResourceType.TOPIC, "logs-app", ResourcePatternType.MATCH,
                                                None, None, AclOperation.ANY,
                                                AclPermissionType.ANY)).result(30)
    assert [(b.name, b.resource_pattern_type) for b in prefixed] == [("logs-", ResourcePatternType.PREFIXED)]
    # Bad bindings are refused one by one, with Kafka's text.
    bad = a.create_acls([acl(ResourceType.BROKER, "not-the-cluster", "User:alice", AclOperation.ALTER)])
    with pytest.raises(KafkaException, match="kafka-cluster"):
        list(bad.values())[0].result(30)
    # Delete what a filter matches; the answer lists it.
    deny_filter = AclBindingFilter(ResourceType.GROUP, None, ResourcePatternType.ANY, None, None,
                                   AclOperation.ANY, AclPermissionType.DENY)
    deleted = a.delete_acls([deny_filter])[deny_filter].result(30)
    assert [(b.name, b.permission_type) for b in deleted] == [("*", AclPermissionType.DENY)]
    assert not a.delete_acls([deny_filter])[deny_filter].result(30)


def test_clients_are_refused_until_granted(node):
    a = admin(node)
    t = unique_name("orders")
    secret = unique_name("secret")
    create_topic(a, t)
    create_topic(a, secret)
    alice = conf(node, "alice")

    # Nothing granted: producing is refused, the topics are hidden from metadata.
    err = produce_error(alice, t)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    topics = set(AdminClient(alice).list_topics(timeout=10).topics)
    assert t not in topics and secret not in topics

    # WRITE on the topic (through a prefix): produce works; DESCRIBE is implied.
    grant(a, acl(ResourceType.TOPIC, t[:-3], "User:alice", AclOperation.WRITE,
                 pattern=ResourcePatternType.PREFIXED))
    assert produce_error(alice, t) is None
    topics = set(AdminClient(alice).list_topics(timeout=10).topics)
    assert t in topics and secret not in topics

    # Consuming needs READ on the topic and on the group.
    group = unique_name("g")
    grant(a, acl(ResourceType.TOPIC, t, "User:alice", AclOperation.READ))
    got, errors = consume(alice, t, group, 1)
    assert errors and errors[0] == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, errors)
    grant(a, acl(ResourceType.GROUP, group, "User:alice", AclOperation.READ))
    got, errors = consume(alice, t, group, 1)
    assert got == [b"v"] and not errors

    # DENY wins over ALLOW.
    grant(a, acl(ResourceType.TOPIC, t, "User:alice", AclOperation.WRITE, AclPermissionType.DENY))
    err = produce_error(alice, t)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err

    # alice may not manage ACLs or create topics; ANONYMOUS (the PLAINTEXT listener) nothing.
    # (librdkafka 2.12's describe_acls drops DescribeAcls' top-level error, so it is asked
    # with kafka-python: kafka_python_describe_error.)
    assert kafka_python_describe_error(node, "alice") == "ClusterAuthorizationFailedError"
    alice_admin = AdminClient(alice)  # referenced until its futures resolve
    fs = alice_admin.create_acls([acl(ResourceType.TOPIC, t, "User:alice", AclOperation.ALL)])
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        list(fs.values())[0].result(30)
    fut = alice_admin.create_topics([NewTopic(unique_name("no"), 1, 1)])
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        list(fut.values())[0].result(30)
    anon = {"bootstrap.servers": node.plain_bootstrap}
    err = produce_error(anon, t)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_kafka_python_admin_acls(node):
    from kafka import KafkaProducer
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, KafkaAdminClient, ResourcePattern,
                             ResourcePatternFilter)
    from kafka.admin import ResourceType as KRT
    from kafka.errors import TopicAuthorizationFailedError

    def opts(user):
        return dict(bootstrap_servers=node.bootstrap, security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="PLAIN", sasl_plain_username=user,
                    sasl_plain_password=f"{user}-secret")

    a = admin(node)
    t = unique_name("kp")
    create_topic(a, t)
    ka = KafkaAdminClient(**opts("admin"))
    try:
        pattern = ResourcePattern(KRT.TOPIC, t, ACLResourcePatternType.LITERAL)
        res = ka.create_acls([ACL("User:bob", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW, pattern)])
        assert not res["failed"], res
        flt = ACLFilter(principal="User:bob", host="*", operation=ACLOperation.ANY,
                        permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(KRT.TOPIC, t, ACLResourcePatternType.LITERAL))
        found, err = ka.describe_acls(flt)
        assert err.errno == 0 and [x.operation for x in found] == [ACLOperation.WRITE], (found, err)

        p = KafkaProducer(acks="all", **opts("bob"))
        p.send(t, b"kp").get(30)
        p.close()

        deleted = ka.delete_acls([flt])
        assert len(deleted[0][1]) == 1, deleted
        p = KafkaProducer(acks="all", max_block_ms=5000, **opts("bob"))
        with pytest.raises(Exception) as e:
            p.send(t, b"kp2").get(10)
        assert isinstance(e.value, TopicAuthorizationFailedError) or "uthoriz" in str(e.value), e.value
        p.close(timeout=5)
    finally:
        ka.close()


@pytest.mark.skipif(shutil.which("kcat") is None and not os.environ.get("CI"), reason="kcat not installed")
def test_kcat_lists_only_what_it_may_describe(node):
    a = admin(node)
    seen, hidden = unique_name("seen"), unique_name("hidden")
    create_topic(a, seen)
    create_topic(a, hidden)
    grant(a, acl(ResourceType.TOPIC, seen, "User:bob", AclOperation.DESCRIBE))
    out = subprocess.run(["kcat", "-b", node.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                          "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=bob",
                          "-X", "sasl.password=bob-secret", "-L", "-J"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    names = {x["topic"] for x in json.loads(out.stdout)["topics"]}
    assert seen in names and hidden not in names, names


# ---- Kafka 2.2.1's kafka-acls.sh through the ZooKeeper facade ------------------------------

def test_kafka_2_2_1_acl_tool_through_the_facade(node):
    """The znode traffic of `kafka-acls.sh --authorizer-properties zookeeper.connect=...
    --add --allow-principal User:alice --operation Read --topic <t>` (SimpleAclAuthorizer),
    then `--list` and `--remove`."""
    a = admin(node)
    t = unique_name("zkacl")
    create_topic(a, t)
    zk = KazooClient(hosts=node.zk_hosts, timeout=10)
    zk.start()
    try:
        # configure(): the store's paths (already there).
        for p in ["/kafka-acl", "/kafka-acl-changes", "/kafka-acl-extended/prefixed",
                  "/kafka-acl-extended-changes", *[f"/kafka-acl/{rt}" for rt in
                                                   ("Topic", "Group", "Cluster", "TransactionalId",
                                                    "DelegationToken")]]:
            with pytest.raises(NodeExistsError):
                zk.create(p, b"")
        # loadCache(): resource types and names.
        assert set(zk.get_children("/kafka-acl")) >= {"Topic", "Group", "Cluster"}
        with pytest.raises(NoNodeError):
            zk.get(f"/kafka-acl/Topic/{t}")
        # addAcls: create the resource's znode, then a change notification.
        entry = {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"}
        zk.create(f"/kafka-acl/Topic/{t}", json.dumps({"version": 1, "acls": [entry]}).encode())
        change = zk.create("/kafka-acl-changes/acl_changes_", f"Topic:{t}".encode(), sequence=True)
        assert change.startswith("/kafka-acl-changes/acl_changes_")

        # The Kafka API sees it, and alice may now read and describe the topic.
        flt = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None,
                               AclOperation.ANY, AclPermissionType.ANY)
        found = a.describe_acls(flt).result(30)
        assert [(b.principal, b.operation) for b in found] == [("User:alice", AclOperation.READ)]
        assert t in AdminClient(conf(node, "alice")).list_topics(timeout=10).topics

        # A second --add: read the version, conditional setData; a stale version is refused.
        data, stat = zk.get(f"/kafka-acl/Topic/{t}")
        acls = json.loads(data)["acls"]
        acls.append({"principal": "User:bob", "permissionType": "Allow", "operation": "Write", "host": "*"})
        with pytest.raises(BadVersionError):
            zk.set(f"/kafka-acl/Topic/{t}", json.dumps({"version": 1, "acls": acls}).encode(),
                   version=stat.version + 1)
        zk.set(f"/kafka-acl/Topic/{t}", json.dumps({"version": 1, "acls": acls}).encode(),
               version=stat.version)
        assert len(a.describe_acls(flt).result(30)) == 2

        # An ACL made through the Kafka API reads back in Kafka's znode format.
        grant(a, acl(ResourceType.GROUP, "app-", "User:carol", AclOperation.READ,
                     pattern=ResourcePatternType.PREFIXED))
        data, _ = zk.get("/kafka-acl-extended/prefixed/Group/app-")
        assert json.loads(data) == {"version": 1, "acls": [
            {"principal": "User:carol", "permissionType": "Allow", "operation": "Read", "host": "*"}]}

        # --remove of the last ACLs: a versioned delete.
        _, stat = zk.get(f"/kafka-acl/Topic/{t}")
        zk.delete(f"/kafka-acl/Topic/{t}", version=stat.version)
        assert a.describe_acls(flt).result(30) == []
        assert t not in zk.get_children("/kafka-acl/Topic")
        wait_until(lambda: t not in AdminClient(conf(node, "alice")).list_topics(timeout=10).topics,
                   10, "alice loses the topic")
    finally:
        zk.stop()
        zk.close()


def kafka_python_describe_error(node, user: str | None) -> str | None:
    """The error kafka-python's describe_acls raises for `user` (None: PLAINTEXT), or None."""
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KRT
    if user is None:
        opts = dict(bootstrap_servers=node.bootstrap)
    else:
        opts = dict(bootstrap_servers=node.bootstrap, security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="PLAIN", sasl_plain_username=user,
                    sasl_plain_password=f"{user}-secret")
    ka = KafkaAdminClient(**opts)
    flt = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                    permission_type=ACLPermissionType.ANY,
                    resource_pattern=ResourcePatternFilter(KRT.ANY, None, ACLResourcePatternType.ANY))
    try:
        ka.describe_acls(flt)
        return None
    except Exception as e:  # the error class names Kafka's error code
        return type(e).__name__
    finally:
        ka.close()


def test_security_disabled_without_an_authorizer(raftka):
    assert kafka_python_describe_error(raftka, None) == "SecurityDisabledError"
    a = AdminClient({"bootstrap.servers": raftka.bootstrap})
    fs = a.create_acls([acl(ResourceType.TOPIC, "t", "User:a", AclOperation.READ)])
    with pytest.raises(KafkaException, match="(?i)security.?disabled|no authorizer"):
        list(fs.values())[0].result(30)


SUPER_DIGEST = "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="  # super:superpw, as ZooKeeper computes it


def test_zookeeper_set_acl_guards_kafka_paths(raftka_factory):
    """Kafka's `zookeeper.set.acl=true`: Kafka-owned znodes are read by anyone (credentials by
    nobody) and changed only by an authenticated super user (`addauth digest` with the
    `zookeeper.DigestAuthenticationProvider.superDigest` password); `/consumers` and free-form
    znodes keep their own ACLs."""
    from kazoo.exceptions import NoAuthError
    n = raftka_factory("setacl", extra_args=[
        "-o", "zookeeper.set.acl=true",
        "-o", f"zookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"])
    anon = KazooClient(hosts=n.zk_hosts, timeout=10)
    sup = KazooClient(hosts=n.zk_hosts, timeout=10, auth_data=[("digest", "super:superpw")])
    anon.start()
    sup.start()
    try:
        assert anon.get_children("/brokers/ids") == ["1"]
        assert [(a.perms, a.id.scheme) for a in anon.get_acls("/brokers/ids")[0]][0] == (1, "world")
        assignment = json.dumps({"version": 1, "partitions": {"0": [1]}}).encode()
        with pytest.raises(NoAuthError):
            anon.create("/brokers/topics/zk-t", assignment)
        with pytest.raises(NoAuthError):
            anon.create("/admin/delete_topics/zk-t", b"")
        entry = {"principal": "User:a", "permissionType": "Allow", "operation": "Read", "host": "*"}
        with pytest.raises(NoAuthError):
            anon.create("/kafka-acl/Topic/zk-t", json.dumps({"version": 1, "acls": [entry]}).encode())
        sup.create("/brokers/topics/zk-t", assignment)
        wait_until(lambda: anon.exists("/brokers/topics/zk-t/partitions/0/state") is not None, 10,
                   "the topic created by the super user")
        with pytest.raises(NoAuthError):
            anon.set("/config/topics/zk-t", json.dumps({"version": 1, "config": {"retention.ms": "1"}}).encode())
        sup.set("/config/topics/zk-t", json.dumps({"version": 1, "config": {"retention.ms": "5000"}}).encode())
        # Credentials are not readable without the super digest.
        sup.create("/config/users/zk-u", json.dumps({"version": 1, "config": {}}).encode())
        with pytest.raises(NoAuthError):
            anon.get("/config/users/zk-u")
        assert sup.get("/config/users/zk-u")[0]
        # /consumers and free-form znodes stay as their creators made them.
        anon.ensure_path("/consumers/zk-g/ids")
        anon.create("/free", b"x")
        anon.set("/free", b"y")
    finally:
        for z in (anon, sup):
            z.stop()
            z.close()

//! rust-rdkafka (librdkafka 2.12.1, statically built) against one real `raftka` process:
//! idempotent acks=all produce, assign()-based consume, metadata, watermarks, admin, restart.

mod common;

use std::time::{Duration, Instant};

use common::Node;
use futures::executor::block_on;
use futures::future::join_all;
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const N: i64 = 1000;
const TIMEOUT: Duration = Duration::from_secs(15);
/// librdkafka wants a group.id for any consumer; only assign() is used, so no group APIs.
const ASSIGN_ONLY_GROUP: &str = "raftka-rdkafka-assign-only";

fn client_config(node: &Node) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", node.bootstrap())
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    config
}

fn key_of(i: i64) -> String {
    format!("key-{i}")
}

fn value_of(i: i64) -> String {
    format!("value-{i:06}-{}", "abcdefgh".repeat(8))
}

/// Produces records `from..to` to partition 0 with acks=all and idempotence; returns the
/// acknowledged (partition, offset) of each, in send order.
fn produce(node: &Node, topic: &str, from: i64, to: i64) -> Vec<(i32, i64)> {
    let producer: FutureProducer = client_config(node)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("create producer");
    let deliveries: Vec<_> = (from..to)
        .map(|i| {
            let key = key_of(i);
            let value = value_of(i);
            let index = i.to_string();
            let record = FutureRecord::to(topic)
                .partition(0)
                .key(&key)
                .payload(&value)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "i",
                    value: Some(&index),
                }));
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue a record")
        })
        .collect();
    let results = block_on(join_all(deliveries));
    producer.flush(TIMEOUT).expect("flush");
    results
        .into_iter()
        .map(|r| {
            let delivery = r
                .expect("delivery future not cancelled")
                .map_err(|(e, _)| e)
                .expect("record acknowledged");
            (delivery.partition, delivery.offset)
        })
        .collect()
}

/// Reads partition 0 from offset `from` with assign() until `count` records arrived.
fn consume(
    node: &Node,
    topic: &str,
    from: i64,
    count: usize,
) -> Vec<(i64, String, String, String)> {
    let consumer: BaseConsumer = client_config(node)
        .set("group.id", ASSIGN_ONLY_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .create()
        .expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(from))
        .expect("build assignment");
    consumer.assign(&assignment).expect("assign");

    let mut got = Vec::with_capacity(count);
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count} in 30 s",
            got.len()
        );
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = result.expect("fetch without error");
        assert_eq!((msg.topic(), msg.partition()), (topic, 0));
        let text =
            |b: Option<&[u8]>| String::from_utf8(b.expect("present").to_vec()).expect("utf-8");
        let headers = msg.headers().expect("headers present");
        assert_eq!(headers.count(), 1);
        let header = headers.get(0);
        assert_eq!(header.key, "i");
        got.push((
            msg.offset(),
            text(msg.key()),
            text(msg.payload()),
            text(header.value),
        ));
    }
    // Nothing beyond `count`.
    if let Some(extra) = consumer.poll(Duration::from_secs(1)) {
        panic!("unexpected extra message: {:?}", extra.map(|m| m.offset()));
    }
    got
}

fn expected_records(from: i64, to: i64) -> Vec<(i64, String, String, String)> {
    (from..to)
        .map(|i| (i, key_of(i), value_of(i), i.to_string()))
        .collect()
}

fn admin(node: &Node) -> AdminClient<DefaultClientContext> {
    client_config(node).create().expect("create admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

#[test]
fn produce_idempotent_acks_all_then_assign_consume_with_metadata_and_watermarks() {
    let node = Node::start();
    let topic = "rdkafka-roundtrip";

    let acks = produce(&node, topic, 0, N);
    let expected_acks: Vec<(i32, i64)> = (0..N).map(|o| (0, o)).collect();
    assert_eq!(
        acks, expected_acks,
        "acks in order, offsets 0..N on partition 0"
    );

    let got = consume(&node, topic, 0, N as usize);
    assert_eq!(
        got,
        expected_records(0, N),
        "every record exactly once, in order"
    );

    let consumer: BaseConsumer = client_config(&node)
        .set("group.id", ASSIGN_ONLY_GROUP)
        .create()
        .expect("create consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("fetch_metadata");
    let brokers: Vec<(i32, &str, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host(), b.port()))
        .collect();
    assert_eq!(brokers, vec![(1, "127.0.0.1", i32::from(node.kafka_port))]);
    assert_eq!(metadata.topics().len(), 1);
    let t = &metadata.topics()[0];
    assert_eq!((t.name(), t.error()), (topic, None));
    assert_eq!(t.partitions().len(), 1);
    let p = &t.partitions()[0];
    assert_eq!((p.id(), p.leader(), p.error()), (0, 1, None));
    assert_eq!((p.replicas(), p.isr()), (&[1][..], &[1][..]));

    assert_eq!(
        consumer
            .fetch_watermarks(topic, 0, TIMEOUT)
            .expect("fetch_watermarks"),
        (0, N)
    );
}

/// A client that connects the moment the port is bound gets a Metadata answer that lists the
/// node and names it controller (the listener serves only once the node's registration is
/// applied), and an admin CreateTopics sent at once succeeds: before, a Metadata answered in
/// the few milliseconds between the two said "no controller" and librdkafka's admin client
/// waited out its request timeout (`Failed while waiting for controller`).
#[test]
fn a_node_answers_its_first_metadata_with_itself_as_controller() {
    for round in 0..5 {
        let mut node = Node::spawn_single();
        let (brokers, controller) =
            common::metadata_v1_brokers(node.kafka_addr(), Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("round {round}: Metadata v1: {e}"));
        assert_eq!(
            (brokers, controller),
            (vec![1], 1),
            "round {round}: the first Metadata answer"
        );
        node.stop();
        let node = Node::spawn_single();
        let admin = admin(&node);
        let opts = admin_options().request_timeout(Some(Duration::from_secs(10)));
        let topic = NewTopic::new("at-once", 1, TopicReplication::Fixed(1));
        let res = block_on(admin.create_topics([&topic], &opts)).expect("create_topics");
        assert!(res.iter().all(Result::is_ok), "round {round}: {res:?}");
    }
}

#[test]
fn admin_create_topic_with_config_then_describe() {
    let node = Node::start();
    let admin = admin(&node);
    let topic = "rdkafka-admin";
    let new_topic =
        NewTopic::new(topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "8640000");
    let results =
        block_on(admin.create_topics([&new_topic], &admin_options())).expect("create_topics");
    assert_eq!(results, vec![Ok(topic.to_string())]);

    let dup = block_on(admin.create_topics([&new_topic], &admin_options())).expect("create_topics");
    assert_eq!(
        dup,
        vec![Err((
            topic.to_string(),
            rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let resource = ResourceSpecifier::Topic(topic);
    let described =
        block_on(admin.describe_configs([&resource], &admin_options())).expect("describe_configs");
    let config = described
        .into_iter()
        .next()
        .expect("one resource")
        .expect("describe ok");
    let retention = config.get("retention.ms").expect("retention.ms listed");
    assert_eq!(retention.value.as_deref(), Some("8640000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let cleanup = config.get("cleanup.policy").expect("cleanup.policy listed");
    assert_eq!(cleanup.value.as_deref(), Some("delete"));
    assert!(cleanup.is_default, "{cleanup:?}");

    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("fetch_metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
}

#[test]
fn records_survive_sigterm_and_sigkill_restarts() {
    let mut node = Node::start();
    let topic = "rdkafka-restart";

    produce(&node, topic, 0, 300);
    let status = node.restart(true);
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    assert_eq!(consume(&node, topic, 0, 300), expected_records(0, 300));

    let acks = produce(&node, topic, 300, 600);
    assert_eq!(acks.last(), Some(&(0, 599)));
    node.restart(false); // kill -9 right after the acknowledgements
    assert_eq!(consume(&node, topic, 0, 600), expected_records(0, 600));
}

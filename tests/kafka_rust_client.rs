//! kafka-rust (the `kafka` crate 0.10, crates.io) against one real `raftka` process and a
//! 3-node cluster with replication factor 3: the
//! protocol of Kafka 0.8/0.9 — Produce v0 with magic-0 message sets (gzip and snappy wrappers),
//! Fetch v0, ListOffsets v0, Metadata v0, GroupCoordinator v0, OffsetCommit v0 ("ZooKeeper")
//! and v1 ("Kafka") with OffsetFetch v0/v1. What it writes is read back by librdkafka (v2
//! batches) and the reverse; its commits resume a second consumer of the same group.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Node;
use futures::executor::block_on;
use kafka::client::{FetchOffset, GroupOffsetStorage, KafkaClient, RequiredAcks};
use kafka::consumer::Consumer;
use kafka::producer::{Compression, Producer, Record};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(15);
const PARTITIONS: i32 = 2;

fn rdkafka_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    c
}

fn create_topic(bootstrap: &str, topic: &str, rf: i32) {
    let admin: AdminClient<DefaultClientContext> =
        rdkafka_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(rf));
    let res = block_on(admin.create_topics([&new], &opts)).expect("create_topics");
    assert!(res.iter().all(Result::is_ok), "{res:?}");
}

/// Every (key, value) of `topic` as librdkafka reads it (assign from the beginning).
fn rdkafka_read(bootstrap: &str, topic: &str, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = rdkafka_config(bootstrap)
        .set("group.id", "kafka-rust-crosscheck")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    common::wait_until(TIMEOUT, "librdkafka reads every record", || {
        while let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            out.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
        (out.len() >= n).then_some(())
    });
    out.sort();
    out
}

/// Consumes with a kafka-rust group consumer until three polls have come back empty; commits.
fn group_consume(
    hosts: &[String],
    topic: &str,
    group: &str,
    storage: GroupOffsetStorage,
) -> Vec<Vec<u8>> {
    let mut consumer = Consumer::from_hosts(hosts.to_vec())
        .with_topic(topic.to_owned())
        .with_group(group.to_owned())
        .with_fallback_offset(FetchOffset::Earliest)
        .with_offset_storage(Some(storage))
        .with_fetch_max_wait_time(Duration::from_millis(200))
        .create()
        .expect("kafka-rust consumer");
    let mut got = Vec::new();
    let mut empty = 0;
    while empty < 3 {
        let sets = consumer.poll().expect("poll");
        if sets.is_empty() {
            empty += 1;
            continue;
        }
        for ms in sets.iter() {
            for m in ms.messages() {
                got.push(m.value.to_vec());
            }
            consumer.consume_messageset(ms).expect("mark consumed");
        }
        consumer.commit_consumed().expect("commit");
    }
    got.sort();
    got
}

fn sum_offsets(offsets: &[kafka::client::PartitionOffset]) -> i64 {
    offsets.iter().map(|p| p.offset).sum()
}

#[test]
fn kafka_rust_on_one_node() {
    let node = Node::start();
    // The listener answers as soon as it is bound; the broker is registered a moment later
    // (a client that asked in between would wait for a controller it cannot find yet).
    wait_registered(&node.bootstrap(), 1);
    old_protocol_round(&[node.bootstrap()], 1);
}

/// Waits until Metadata lists `n` brokers.
fn wait_registered(bootstrap: &str, n: usize) {
    let probe: BaseConsumer = rdkafka_config(bootstrap)
        .set("group.id", "kafka-rust-probe")
        .create()
        .expect("consumer");
    common::wait_until(Duration::from_secs(60), "brokers registered", || {
        let md = probe.fetch_metadata(None, Duration::from_secs(2)).ok()?;
        (md.brokers().len() == n).then_some(())
    });
}

#[test]
fn kafka_rust_on_three_nodes_rf3() {
    let nodes = Node::cluster(
        3,
        &[
            "-o",
            "default.replication.factor=3",
            "-o",
            "offsets.topic.replication.factor=3",
        ],
    );
    let hosts: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    // Every broker registered before an RF 3 topic can be placed.
    wait_registered(&hosts.join(","), 3);
    old_protocol_round(&hosts, 3);
}

/// Produce with each codec, ListOffsets, cross-reads with librdkafka, and group consumers
/// with each offset storage, through `hosts`.
fn old_protocol_round(hosts: &[String], rf: i32) {
    let bootstrap = hosts.join(",");
    let topic = "kafka-rust";
    create_topic(&bootstrap, topic, rf);

    // Produce v0: one gzip wrapper per send_all, then snappy, then uncompressed singles.
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (round, compression) in [Compression::GZIP, Compression::SNAPPY, Compression::NONE]
        .into_iter()
        .enumerate()
    {
        let mut producer = Producer::from_hosts(hosts.to_vec())
            .with_ack_timeout(Duration::from_secs(5))
            .with_required_acks(RequiredAcks::All)
            .with_compression(compression)
            .create()
            .expect("kafka-rust producer");
        let keys: Vec<String> = (0..20).map(|i| format!("k{round}-{i}")).collect();
        let values: Vec<String> = (0..20).map(|i| format!("v{round}-{i}")).collect();
        if round < 2 {
            let recs: Vec<_> = keys
                .iter()
                .zip(&values)
                .enumerate()
                .map(|(i, (k, v))| {
                    Record::from_key_value(topic, k.as_bytes(), v.as_bytes())
                        .with_partition(i as i32 % PARTITIONS)
                })
                .collect();
            for confirm in producer.send_all(&recs).expect("send_all") {
                assert!(
                    confirm.partition_confirms.iter().all(|p| p.offset.is_ok()),
                    "{confirm:?}"
                );
            }
        } else {
            for (k, v) in keys.iter().zip(&values) {
                producer
                    .send(&Record::from_key_value(topic, k.as_bytes(), v.as_bytes()))
                    .expect("send");
            }
        }
        want.extend(
            keys.iter()
                .zip(&values)
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
    }
    want.sort();
    let total = want.len() as i64;

    // ListOffsets v0, latest and earliest.
    let mut client = KafkaClient::new(hosts.to_vec());
    client.load_metadata_all().expect("metadata");
    let latest = client
        .fetch_offsets(&[topic], FetchOffset::Latest)
        .expect("latest offsets");
    assert_eq!(sum_offsets(&latest[topic]), total, "{latest:?}");
    let earliest = client
        .fetch_offsets(&[topic], FetchOffset::Earliest)
        .expect("earliest offsets");
    assert_eq!(sum_offsets(&earliest[topic]), 0, "{earliest:?}");

    // What kafka-rust wrote (magic 0, compressed wrappers) is read by librdkafka.
    assert_eq!(rdkafka_read(&bootstrap, topic, want.len()), want);

    // And what librdkafka writes (v2 batches, lz4) is read by kafka-rust at Fetch v0.
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka_config(&bootstrap)
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .expect("rdkafka producer");
    for i in 0..10 {
        let (k, v) = (format!("rk-{i}"), format!("rv-{i}"));
        producer
            .send(
                BaseRecord::to(topic)
                    .key(&k)
                    .payload(&v)
                    .partition(i % PARTITIONS),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        want.push((k.into_bytes(), v.into_bytes()));
    }
    producer.flush(TIMEOUT).expect("flush");
    let all_values: Vec<Vec<u8>> = {
        let mut v: Vec<Vec<u8>> = want.iter().map(|(_, v)| v.clone()).collect();
        v.sort();
        v
    };

    for (group, storage) in [
        ("kafka-rust-kafka", GroupOffsetStorage::Kafka),
        ("kafka-rust-zk", GroupOffsetStorage::Zookeeper),
    ] {
        assert_eq!(
            group_consume(hosts, topic, group, storage),
            all_values,
            "{group}"
        );
        // The commits (OffsetCommit v1 / v0) resume the next consumer of the group at the end.
        assert!(
            group_consume(hosts, topic, group, storage).is_empty(),
            "{group} resumed at its commits"
        );
        // ... and are what OffsetFetch (v1 / v0) and librdkafka (v8+) see.
        client.set_group_offset_storage(Some(storage));
        let committed = client
            .fetch_group_topic_offset(group, topic)
            .expect("fetch group offsets");
        let end = sum_offsets(&latest[topic]) + 10;
        assert_eq!(sum_offsets(&committed), end, "{group}: {committed:?}");
        let consumer: BaseConsumer = rdkafka_config(&bootstrap)
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(topic, p);
        }
        let seen: BTreeMap<i32, i64> = consumer
            .committed_offsets(tpl, TIMEOUT)
            .expect("committed")
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
            .collect();
        assert_eq!(seen.values().sum::<i64>(), end, "{group}: {seen:?}");
    }
}

//! Helpers shared by the handler tests: contexts, deferred replies, the encoding check and
//! produce.

use super::{produce, topic_name};
use crate::broker::testing::Fixture;
use crate::kafka::context::RequestContext;
use crate::kafka::reply::Reply;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// A request context at `v` on the fixture's broker.
pub(crate) fn ctx(f: &Fixture, v: i16) -> RequestContext {
    RequestContext::test(&f.broker, v)
}

/// Asserts that `m` encodes at `v`: a field set at a version that lacks it fails here, as it
/// would when the connection writes the response.
pub(crate) fn assert_encodes<M: Encodable + std::fmt::Debug>(m: &M, v: i16) {
    let mut buf = bytes::BytesMut::new();
    if let Err(e) = m.encode(&mut buf, v) {
        panic!("does not encode at v{v}: {e}\n{m:?}");
    }
}

/// The response of a deferred reply.
pub(crate) async fn later(reply: Reply) -> ResponseKind {
    match reply {
        Reply::Later(h) => h.await.expect("reply task").expect("a response"),
        Reply::Now(r) => panic!("expected a deferred reply, got {r:?}"),
        Reply::None => panic!("expected a deferred reply, got none"),
    }
}

/// Appends `batch` to `topic`-`partition` through the Produce handler (acks=-1) and returns
/// the base offset.
pub(crate) async fn produce(f: &Fixture, topic: &str, partition: i32, batch: Vec<u8>) -> i64 {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(batch.into());
    let mut td = TopicProduceData::default();
    td.name = topic_name(topic);
    td.partition_data = vec![pd];
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5_000;
    r.topic_data = vec![td];
    match later(produce::handle(ctx(f, 9), r).await).await {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "produce to {topic}-{partition}: {p:?}");
            p.base_offset
        }
        other => panic!("not a produce response: {other:?}"),
    }
}

/// A v2 batch of `n` records whose timestamps are all `ts`.
pub(crate) fn batch_at(n: i32, ts: i64) -> Vec<u8> {
    let mut b = crate::codec::kafka::batch::tests::make_batch(n, -1, -1, -1);
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Creates `__consumer_offsets` and waits until this node coordinates `group` and has loaded
/// every offsets partition (so any other group id is served too).
pub(crate) async fn coordinator(f: &Fixture, group: &str) {
    f.broker
        .find_coordinator(0, group, "PLAINTEXT")
        .await
        .expect("this node coordinates the group");
    let partitions = f.broker.config().defaults.offsets_topic_num_partitions;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !(0..partitions).all(|p| f.broker.groups().is_loaded(p)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offsets partitions never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

//! Produce (key 0), v0–v13: appends in request order, then acknowledges per `acks` from a
//! deferred task (the connection reads on meanwhile). `acks=0` sends no response.
//!
//! v0–v2 carry message sets of magic 0 or 1: they are validated and up-converted into one v2
//! batch per partition (`codec::kafka::legacy`), as Kafka ≥ 3.0 does on write; a v2 batch in
//! an old request is taken as it is (Kafka never checked the magic below v3).
//!
//! Authorization (Kafka's): WRITE on the transactional id, if any, else every partition gets
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED; WRITE on each topic, else its partitions get
//! TOPIC_AUTHORIZATION_FAILED (before the topic's existence is looked at).

use super::topic_name;
use crate::broker::{is_internal_topic, BrokerError, ProducePending, ProduceTxn, ADMIN_CLIENT_ID};
use crate::codec::kafka::legacy;
use crate::codec::kafka::records::RecordError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::produce_code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use crate::txn::TxnSupport;
use crate::types::TopicId;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

struct TopicResult {
    name: Option<String>,
    topic_id: uuid::Uuid,
    partitions: Vec<(i32, Result<ProducePending, BrokerError>)>,
}

/// The versions of Produce this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 13);

/// The v2 batch to append for one partition's records: old message sets (v0–v2 requests)
/// are validated and up-converted, anything else is passed on unchanged.
fn records_to_append(
    ctx: &RequestContext,
    records: Option<bytes::Bytes>,
) -> Result<Option<bytes::Bytes>, BrokerError> {
    let Some(raw) = records else {
        return Ok(None);
    };
    if ctx.api_version >= 3 || !legacy::is_legacy(&raw) {
        return Ok(Some(raw));
    }
    let budget = ctx.broker.config().limits.decompressed_batch_bytes_max;
    match legacy::up_convert(&raw, budget) {
        Ok(up) => Ok(Some(bytes::Bytes::from(up.batch))),
        Err(e) => {
            let m = crate::metrics::global();
            crate::metrics::inc(&m.produce_rejected_batches, 1);
            Err(match e {
                RecordError::TooLarge { .. } => BrokerError::MessageTooLarge,
                RecordError::Corrupt(_) | RecordError::Compression { .. } => {
                    BrokerError::CorruptMessage(e.to_string())
                }
            })
        }
    }
}

pub(crate) async fn handle(ctx: RequestContext, req: ProduceRequest) -> Reply {
    let v = ctx.api_version;
    let acks = req.acks;
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let image = ctx.broker.metadata_view();
    let authz = Authz::new(&ctx);
    let txn_denied = req
        .transactional_id
        .as_ref()
        .is_some_and(|id| !authz.transactional_id(Operation::Write, id));
    let txn = req.transactional_id.as_ref().map(|t| ProduceTxn {
        id: t.0.as_str(),
        support: TxnSupport::for_produce(v),
    });
    let mut results = Vec::with_capacity(req.topic_data.len());
    for td in req.topic_data {
        let name = if v >= 13 {
            image
                .topic_by_id(&TopicId(td.topic_id))
                .map(|t| t.name.to_string())
        } else {
            Some(td.name.0.to_string())
        };
        let mut partitions = Vec::with_capacity(td.partition_data.len());
        for pd in td.partition_data {
            let res = match &name {
                _ if txn_denied => Err(BrokerError::TransactionalIdAuthorizationFailed),
                None => Err(BrokerError::UnknownTopicId),
                Some(n) if !authz.topic(Operation::Write, n) => {
                    Err(BrokerError::TopicAuthorizationFailed)
                }
                // Kafka lets only its own admin client write to internal topics: a record
                // there is state the coordinators load, not data.
                Some(n) if is_internal_topic(n) && ctx.client_id != ADMIN_CLIENT_ID => Err(
                    BrokerError::InvalidTopic(format!("Cannot append to internal topic {n}")),
                ),
                Some(n) => match records_to_append(&ctx, pd.records) {
                    Ok(records) => {
                        ctx.broker
                            .produce_append(n, pd.index, records, acks, timeout, txn)
                            .await
                    }
                    Err(e) => Err(e),
                },
            };
            partitions.push((pd.index, res));
        }
        results.push(TopicResult {
            name: if v >= 13 { None } else { name },
            topic_id: td.topic_id,
            partitions,
        });
    }
    if acks == 0 {
        return Reply::None;
    }
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::Produce(respond(v, results).await))
    }))
}

async fn respond(v: i16, results: Vec<TopicResult>) -> ProduceResponse {
    let mut r = ProduceResponse::default();
    for t in results {
        let mut tr = TopicProduceResponse::default();
        if v >= 13 {
            tr.topic_id = t.topic_id;
        } else if let Some(n) = &t.name {
            tr.name = topic_name(n);
        }
        for (index, res) in t.partitions {
            let res = match res {
                Ok(pending) => pending.wait().await,
                Err(e) => Err(e),
            };
            let mut pr = PartitionProduceResponse::default();
            pr.index = index;
            match res {
                Ok(ack) => {
                    pr.base_offset = ack.base_offset;
                    if v >= 2 {
                        pr.log_append_time_ms = ack.log_append_time;
                    }
                    if v >= 5 {
                        pr.log_start_offset = ack.log_start_offset;
                    }
                }
                Err(e) => {
                    pr.error_code = produce_code(&e, v);
                    pr.base_offset = -1;
                    if v >= 5 {
                        pr.log_start_offset = -1;
                    }
                    if v >= 8 {
                        pr.error_message = Some(StrBytes::from_string(e.to_string()));
                        if let BrokerError::InvalidRecords(list)
                        | BrokerError::InvalidTimestamps(list) = &e
                        {
                            pr.record_errors = list
                                .records
                                .iter()
                                .map(|(index, msg)| {
                                    let mut be = BatchIndexAndErrorMessage::default();
                                    be.batch_index = *index;
                                    be.batch_index_error_message =
                                        Some(StrBytes::from_string(msg.clone()));
                                    be
                                })
                                .collect();
                        }
                    }
                }
            }
            tr.partition_responses.push(pr);
        }
        r.responses.push(tr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::codec::kafka::batch::tests::make_batch;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::protocol::Message;
    use kafka_protocol::ResponseError as E;

    fn request(topic: &str, partition: i32, records: Vec<u8>, acks: i16) -> ProduceRequest {
        let mut pd = PartitionProduceData::default();
        pd.index = partition;
        pd.records = Some(records.into());
        let mut td = TopicProduceData::default();
        td.name = topic_name(topic);
        td.partition_data = vec![pd];
        let mut r = ProduceRequest::default();
        r.acks = acks;
        r.timeout_ms = 5_000;
        r.topic_data = vec![td];
        r
    }

    async fn produce(f: &Fixture, v: i16, req: ProduceRequest) -> PartitionProduceResponse {
        let reply = handle(RequestContext::test(&f.broker, v), req).await;
        let Reply::Later(h) = reply else {
            panic!("acks != 0 answers later");
        };
        match h.await.expect("task") {
            Some(ResponseKind::Produce(r)) => {
                // Every version's answer encodes (v0 has no throttle time, v2 adds the
                // log append time, v8 record errors).
                crate::kafka::handlers::test_util::assert_encodes(&r, v);
                r.responses[0].partition_responses[0].clone()
            }
            other => panic!("not a produce response: {other:?}"),
        }
    }

    #[test]
    fn versions_are_within_the_codec() {
        let codec = ProduceRequest::VERSIONS;
        assert!(VERSIONS.min >= codec.min && VERSIONS.max <= codec.max);
    }

    #[tokio::test]
    async fn appends_answer_offsets_and_errors_carry_kafka_codes() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let r = produce(&f, 9, request("t", 0, make_batch(3, -1, -1, -1), -1)).await;
        assert_eq!((r.error_code, r.base_offset), (0, 0));
        let r = produce(&f, 9, request("t", 0, make_batch(2, -1, -1, -1), 1)).await;
        assert_eq!((r.error_code, r.base_offset), (0, 3));
        // Unknown topic / partition.
        let r = produce(&f, 9, request("nope", 0, make_batch(1, -1, -1, -1), 1)).await;
        assert_eq!(r.error_code, E::UnknownTopicOrPartition.code());
        let r = produce(&f, 9, request("t", 7, make_batch(1, -1, -1, -1), 1)).await;
        assert_eq!(r.error_code, E::UnknownTopicOrPartition.code());
        // A corrupted batch, and bad acks.
        let mut bad = make_batch(1, -1, -1, -1);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let r = produce(&f, 9, request("t", 0, bad, 1)).await;
        assert_eq!(r.error_code, E::CorruptMessage.code());
        let r = produce(&f, 9, request("t", 0, make_batch(1, -1, -1, -1), 5)).await;
        assert_eq!(r.error_code, E::InvalidRequiredAcks.code());
        // acks=0: no response at all.
        let reply = handle(
            RequestContext::test(&f.broker, 9),
            request("t", 0, make_batch(1, -1, -1, -1), 0),
        )
        .await;
        assert!(matches!(reply, Reply::None));
    }

    /// A message of magic `magic` (log overhead included), as old producers write it.
    fn old_message(offset: i64, magic: u8, codec: u8, value: &[u8]) -> Vec<u8> {
        let mut body = vec![magic, codec];
        if magic == 1 {
            body.extend_from_slice(&1_000i64.to_be_bytes());
        }
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&(value.len() as i32).to_be_bytes());
        body.extend_from_slice(value);
        let mut m = offset.to_be_bytes().to_vec();
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        m.extend_from_slice(&body);
        m
    }

    #[tokio::test]
    async fn old_message_sets_are_up_converted_and_bad_ones_refused() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let mut set = old_message(0, 0, 0, b"a");
        set.extend(old_message(1, 0, 0, b"b"));
        let r = produce(&f, 0, request("t", 0, set, 1)).await;
        assert_eq!((r.error_code, r.base_offset), (0, 0));
        let mut inner = old_message(0, 1, 0, b"c");
        inner.extend(old_message(1, 1, 0, b"d"));
        let wrapped = old_message(
            1,
            1,
            1,
            &crate::codec::kafka::records::compress(1, &inner).expect("gzip"),
        );
        let r = produce(&f, 2, request("t", 0, wrapped, -1)).await;
        assert_eq!(
            (r.error_code, r.base_offset, r.log_append_time_ms),
            (0, 2, -1)
        );
        // A v2 batch in an old request is taken as it is.
        let r = produce(&f, 1, request("t", 0, make_batch(1, -1, -1, -1), 1)).await;
        assert_eq!((r.error_code, r.base_offset), (0, 4));
        // Stored as v2 batches with the same values.
        let mut values = Vec::new();
        for b in crate::kafka::handlers::test_util::read_all(&f, "t", 0).await {
            crate::codec::kafka::records::walk_records(&b, 1 << 20, |_, rec| {
                values.push(rec.value.unwrap_or_default().to_vec());
                std::ops::ControlFlow::Continue(())
            })
            .expect("v2 records");
        }
        assert_eq!(
            values,
            vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"d".to_vec(),
                b"x".to_vec()
            ]
        );
        // A bad CRC, nested compression: CORRUPT_MESSAGE, nothing stored.
        let mut bad = old_message(0, 1, 0, b"e");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let r = produce(&f, 2, request("t", 0, bad, 1)).await;
        assert_eq!(r.error_code, E::CorruptMessage.code());
        let nested = old_message(
            0,
            1,
            1,
            &crate::codec::kafka::records::compress(1, &old_message(0, 1, 1, b"zz")).expect("gzip"),
        );
        let r = produce(&f, 2, request("t", 0, nested, 1)).await;
        assert_eq!(r.error_code, E::CorruptMessage.code());
        let r = produce(&f, 1, request("t", 0, old_message(0, 0, 0, b"f"), 1)).await;
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, 5),
            "nothing stored by the refused ones"
        );
    }

    #[tokio::test]
    async fn keyless_records_on_compacted_topics_are_listed_per_record() {
        let f = Fixture::new().await;
        f.topic("c", 1, &[("cleanup.policy", "compact")]).await;
        // make_batch writes keyless records.
        let r = produce(&f, 9, request("c", 0, make_batch(3, -1, -1, -1), 1)).await;
        assert_eq!(r.error_code, E::InvalidRecord.code());
        let idx: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(idx, vec![0, 1, 2]);
        // Before v8 there is no INVALID_RECORD.
        let r = produce(&f, 7, request("c", 0, make_batch(3, -1, -1, -1), 1)).await;
        assert_eq!(r.error_code, E::CorruptMessage.code());
    }

    /// librdkafka 0011_produce_batch: 100 records, every tenth without a key, to a compacted
    /// topic. Kafka lists exactly the 10 keyless ones (the client fails the other 90 as
    /// INVALID_DIFFERENT_RECORD), with LogValidator's partition-level message.
    #[tokio::test]
    async fn only_the_bad_records_of_a_batch_are_listed() {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let f = Fixture::new().await;
        f.topic("c", 1, &[("cleanup.policy", "compact")]).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let records: Vec<Record> = (0..100i64)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: now,
                key: (i % 10 != 0).then(|| bytes::Bytes::from(format!("k{i}"))),
                value: Some(bytes::Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut batch = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        let r = produce(&f, 9, request("c", 0, batch.to_vec(), -1)).await;
        assert_eq!(r.error_code, E::InvalidRecord.code());
        let idx: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(idx, (0..10).map(|i| i * 10).collect::<Vec<_>>());
        let msg = r
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert!(
            msg.starts_with(
                "One or more records have been rejected due to 10 record errors in total, and \
                 only showing the first three errors at most: [RecordError(batchIndex=0, "
            ),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn internal_topics_refuse_client_writes() {
        let f = Fixture::new().await;
        f.topic("__consumer_offsets", 1, &[]).await;
        let r = produce(
            &f,
            9,
            request("__consumer_offsets", 0, make_batch(1, -1, -1, -1), 1),
        )
        .await;
        assert_eq!(r.error_code, E::InvalidTopicException.code());
    }
}

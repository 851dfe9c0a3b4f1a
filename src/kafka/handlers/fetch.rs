//! Fetch (key 1), v0–v17, consumer fetches: whole batches below the high watermark (below the
//! last stable offset for `isolation_level` READ_COMMITTED, with the aborted transactions among
//! them, from v4), long-poll with max_wait/min_bytes, response and partition byte limits, topic
//! ids from v13.
//! Fetch sessions (KIP-227, v7+): `broker::fetch_sessions` keeps them; a full fetch with epoch
//! 0 gets a session id if the cache has room, an incremental one is answered with the
//! session's partitions that changed (records, high watermark, log start offset, errors).
//!
//! Clients of v0–v3 cannot read v2 batches: they get the same records down-converted into
//! message sets of magic 0 (v0, v1) or magic 1 (v2, v3) by `codec::kafka::legacy`, within the
//! byte limits as Kafka applies them to those versions (v0–v2: each partition's
//! `partition_max_bytes` is a hard limit, so a first message larger than it arrives cut, the
//! partial message by which those clients detect it; v3: the response's `max_bytes` too, and
//! the first partition with data always gets one whole message). zstd batches cannot be
//! down-converted: UNSUPPORTED_COMPRESSION_TYPE, as Kafka answers below v10. A topic with
//! `message.downconversion.enable=false` answers those clients UNSUPPORTED_VERSION instead.
//!
//! Authorization (Kafka's): READ on each topic, else TOPIC_AUTHORIZATION_FAILED for its
//! partitions; a fetch that names a replica (a follower's) needs CLUSTER_ACTION on the
//! cluster, else every partition is refused so.

use super::topic_name;
use crate::broker::fetch_sessions::{
    Answered, Begin, PartitionFetch, SessionError, SessionPartition, SessionTopic,
};
use crate::broker::{BrokerError, FetchParams, FetchPartitionRequest, FetchPartitionResult};
use crate::codec::kafka::legacy::{self, DownConvertError};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use crate::types::TopicId;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The versions of Fetch this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 17);

/// Byte limits of a down-converting (v0–v3) response.
struct LegacyBudget {
    magic: i8,
    /// What is left of the response's `max_bytes` (v3; unbounded before).
    response_left: usize,
    /// Whether a partition with data was already answered.
    any_data: bool,
    min_one_message: bool,
    decompressed_max: usize,
}

impl LegacyBudget {
    fn new(v: i16, max_bytes: i32, decompressed_max: usize) -> Self {
        Self {
            magic: if v <= 1 { 0 } else { 1 },
            response_left: if v >= 3 {
                usize::try_from(max_bytes).unwrap_or(0)
            } else {
                usize::MAX
            },
            any_data: false,
            min_one_message: v >= 3,
            decompressed_max,
        }
    }

    /// Replaces `res.records` (stored v2 batches) with their down-converted message set, or
    /// with UNSUPPORTED_VERSION where the topic disabled down-conversion.
    fn convert(
        &mut self,
        res: &mut FetchPartitionResult,
        fetch_offset: i64,
        partition_max: i32,
        allowed: bool,
    ) {
        if res.error.is_none() && !allowed {
            res.records = bytes::Bytes::new();
            res.error = Some(BrokerError::UnsupportedVersion(
                "down-conversion is disabled for this topic (message.downconversion.enable=false)"
                    .into(),
            ));
            return;
        }
        if res.records.is_empty() {
            return;
        }
        let limit = usize::try_from(partition_max)
            .unwrap_or(0)
            .min(self.response_left);
        let min_one = self.min_one_message && !self.any_data;
        match legacy::down_convert(
            &res.records,
            self.magic,
            fetch_offset,
            limit,
            min_one,
            self.decompressed_max,
        ) {
            Ok(d) => {
                self.response_left = self.response_left.saturating_sub(d.bytes.len());
                self.any_data |= !d.bytes.is_empty();
                res.records = bytes::Bytes::from(d.bytes);
            }
            Err(e) => {
                res.records = bytes::Bytes::new();
                res.error = Some(match e {
                    DownConvertError::Zstd(_) => {
                        BrokerError::UnsupportedCompressionType(e.to_string())
                    }
                    DownConvertError::Records(r) => BrokerError::Storage(r.to_string()),
                });
            }
        }
    }
}

/// Answers one Fetch request.
pub(crate) async fn handle(ctx: RequestContext, req: FetchRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: FetchRequest) -> FetchResponse {
    let v = ctx.api_version;
    let mut r = FetchResponse::default();
    let image = ctx.broker.metadata_view();
    let authz = Authz::new(ctx);
    let replica_id = if v >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let replica_denied = replica_id >= 0 && !authz.cluster(Operation::ClusterAction);
    // Sessions name topics by id from v13, by name before.
    let uses_ids = v >= 13;
    let session_topic = |name: &str, id: uuid::Uuid| {
        if uses_ids {
            SessionTopic::Id(id)
        } else {
            SessionTopic::Name(Arc::from(name))
        }
    };
    // The request's partitions, in its order.
    let mut asked = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            asked.push((
                SessionPartition {
                    topic: session_topic(t.topic.as_str(), t.topic_id),
                    partition: p.partition,
                },
                PartitionFetch {
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: if v >= 9 { p.current_leader_epoch } else { -1 },
                },
            ));
        }
    }
    let sessions = ctx.broker.fetch_sessions();
    let begin = if v >= 7 {
        let forgotten: Vec<SessionPartition> = req
            .forgotten_topics_data
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| SessionPartition {
                    topic: session_topic(t.topic.as_str(), t.topic_id),
                    partition: *p,
                })
            })
            .collect();
        sessions.begin(
            req.session_id,
            req.session_epoch,
            uses_ids,
            &asked,
            &forgotten,
            Instant::now(),
        )
    } else {
        Begin::Sessionless
    };
    let (wanted, mut incremental, offer_session) = match begin {
        Begin::Error(e) => {
            r.error_code = session_error_code(e);
            return r;
        }
        Begin::Sessionless => (asked, None, false),
        Begin::Full => (asked, None, true),
        Begin::Incremental(mut i) => (std::mem::take(&mut i.partitions), Some(i), false),
    };
    // Consecutive partitions of one topic form one topic of the answer:
    // (the topic's name, or why it is not fetched; its session key; partitions).
    let mut layout: Vec<TopicLayout> = Vec::new();
    let mut reqs = Vec::new();
    for (key, fetch) in &wanted {
        if layout.last().is_none_or(|(_, k, _)| *k != key.topic) {
            let name = match &key.topic {
                SessionTopic::Id(id) => image
                    .topic_by_id(&TopicId(*id))
                    .map(|ti| ti.name.to_string()),
                SessionTopic::Name(n) => Some(n.to_string()),
            };
            let resolved = match name {
                _ if replica_denied => Err((name, BrokerError::TopicAuthorizationFailed)),
                None => Err((None, BrokerError::UnknownTopicId)),
                Some(n) if !authz.topic(Operation::Read, &n) => {
                    Err((Some(n), BrokerError::TopicAuthorizationFailed))
                }
                Some(n) => Ok(n),
            };
            layout.push((resolved, key.topic.clone(), Vec::new()));
        }
        let Some((resolved, _, parts)) = layout.last_mut() else {
            continue;
        };
        parts.push((key.partition, *fetch));
        if let Ok(n) = resolved {
            reqs.push(FetchPartitionRequest {
                topic: n.clone(),
                partition: key.partition,
                fetch_offset: fetch.fetch_offset,
                partition_max_bytes: fetch.max_bytes,
                current_leader_epoch: fetch.current_leader_epoch,
            });
        }
    }
    let params = FetchParams {
        max_wait: Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)),
        min_bytes: req.min_bytes,
        max_bytes: if v >= 3 { req.max_bytes } else { i32::MAX },
        // READ_COMMITTED (1) from v4; anything else reads uncommitted, as Kafka's
        // `FetchIsolation` does for a consumer.
        read_committed: v >= 4 && req.isolation_level == 1,
    };
    let mut legacy = (v < 4).then(|| {
        LegacyBudget::new(
            v,
            req.max_bytes,
            ctx.broker.config().limits.decompressed_batch_bytes_max,
        )
    });
    let (results, held) = ctx.broker.fetch_charged(reqs, params).await;
    if let Some(g) = held {
        ctx.held.keep(g);
    }
    let mut results = results.into_iter();
    // Every partition's answer, in `wanted` order, with its topic's index in `layout`.
    let mut answered = Vec::with_capacity(wanted.len());
    for (ti, (resolved, _, parts)) in layout.iter().enumerate() {
        let name = match resolved {
            Ok(n) => Some(n.as_str()),
            Err((n, _)) => n.as_deref(),
        };
        for (partition, fetch) in parts {
            let mut res = match resolved {
                Ok(_) => results.next().unwrap_or_else(missing),
                Err((_, e)) => FetchPartitionResult::error(e.clone()),
            };
            if let Some(l) = legacy.as_mut() {
                let allowed = name.and_then(|n| image.topic(n)).is_none_or(|t| {
                    ctx.broker
                        .topic_config_value(t, "message.downconversion.enable")
                        .is_none_or(|v| v != "false")
                });
                l.convert(&mut res, fetch.fetch_offset, fetch.max_bytes, allowed);
            }
            answered.push((ti, *partition, res));
        }
    }
    let summary: Vec<Answered> = answered
        .iter()
        .map(|(_, _, res)| Answered {
            high_watermark: res.high_watermark,
            log_start_offset: res.log_start_offset,
            has_records: !res.records.is_empty(),
            error: res.error.is_some(),
        })
        .collect();
    let include = match incremental.as_mut() {
        Some(inc) => {
            r.session_id = inc.id;
            match sessions.finish(inc, &summary) {
                Ok(include) => include,
                Err(e) => {
                    r.error_code = session_error_code(e);
                    return r;
                }
            }
        }
        None => vec![true; answered.len()],
    };
    if offer_session {
        let parts = wanted
            .iter()
            .zip(&summary)
            .map(|((k, f), a)| (k.clone(), *f, *a))
            .collect();
        r.session_id = sessions.create(replica_id >= 0, uses_ids, parts, Instant::now());
    }
    let mut current: Option<usize> = None;
    for ((ti, partition, res), include) in answered.into_iter().zip(include) {
        if !include {
            continue;
        }
        if current != Some(ti) {
            current = Some(ti);
            let (resolved, key, _) = &layout[ti];
            let mut tr = FetchableTopicResponse::default();
            match key {
                SessionTopic::Id(id) => tr.topic_id = *id,
                SessionTopic::Name(_) => {
                    let name = match resolved {
                        Ok(n) => Some(n.as_str()),
                        Err((n, _)) => n.as_deref(),
                    };
                    if let Some(n) = name {
                        tr.topic = topic_name(n);
                    }
                }
            }
            r.responses.push(tr);
        }
        if let Some(tr) = r.responses.last_mut() {
            tr.partitions.push(partition_data(v, partition, res));
        }
    }
    r
}

/// One topic of a fetch: its name, or why it is not fetched (with the name if known); how
/// the session names it; its partitions with what to fetch.
type TopicLayout = (
    Result<String, (Option<String>, BrokerError)>,
    SessionTopic,
    Vec<(i32, PartitionFetch)>,
);

/// The error code of a fetch session error.
fn session_error_code(e: SessionError) -> i16 {
    match e {
        SessionError::IdNotFound => E::FetchSessionIdNotFound.code(),
        SessionError::InvalidEpoch => E::InvalidFetchSessionEpoch.code(),
        SessionError::TopicIdError => E::FetchSessionTopicIdError.code(),
    }
}

fn missing() -> FetchPartitionResult {
    FetchPartitionResult::error(BrokerError::Internal("missing fetch result".into()))
}

fn partition_data(v: i16, partition: i32, res: FetchPartitionResult) -> PartitionData {
    let mut pd = PartitionData::default();
    pd.partition_index = partition;
    pd.error_code = res.error.as_ref().map_or(0, code);
    pd.high_watermark = res.high_watermark;
    if v >= 4 {
        pd.last_stable_offset = res.last_stable_offset;
        // Null for read_uncommitted, the list (maybe empty) for read_committed, as Kafka.
        pd.aborted_transactions = res.aborted.map(|list| {
            list.into_iter()
                .map(|a| {
                    let mut t = AbortedTransaction::default();
                    t.producer_id = ProducerId(a.producer_id);
                    t.first_offset = a.first_offset;
                    t
                })
                .collect()
        });
    }
    if v >= 5 {
        pd.log_start_offset = res.log_start_offset;
    }
    if v >= 11 {
        pd.preferred_read_replica = BrokerId(-1);
    }
    pd.records = Some(res.records);
    pd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::codec::kafka::batch::{tests::make_batch, validate_record_set};
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, produce};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    fn part(partition: i32, offset: i64, epoch: i32) -> FetchPartition {
        let mut p = FetchPartition::default();
        p.partition = partition;
        p.fetch_offset = offset;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = epoch;
        p
    }

    fn request(
        topic: &str,
        id: uuid::Uuid,
        parts: Vec<FetchPartition>,
        wait_ms: i32,
    ) -> FetchRequest {
        let mut t = FetchTopic::default();
        t.topic = topic_name(topic);
        t.topic_id = id;
        t.partitions = parts;
        let mut r = FetchRequest::default();
        r.max_wait_ms = wait_ms;
        r.min_bytes = 1;
        r.topics = vec![t];
        r
    }

    fn base_offsets(pd: &PartitionData) -> Vec<i64> {
        let records = pd.records.as_ref().expect("records");
        validate_record_set(records)
            .expect("whole batches")
            .iter()
            .map(|h| h.base_offset)
            .collect()
    }

    #[tokio::test]
    async fn returns_whole_batches_from_the_fetch_offset_at_every_version() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(3, -1, -1, -1)).await;
        produce(&f, "t", 0, make_batch(2, -1, -1, -1)).await;
        let id = f.broker.metadata_view().topic("t").expect("t").id.0;
        for v in 4..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                request("t", id, vec![part(0, 0, -1), part(0, 3, -1)], 0),
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!((r.error_code, r.session_id), (0, 0));
            let t = &r.responses[0];
            if v >= 13 {
                assert_eq!(t.topic_id, id);
            } else {
                assert_eq!(t.topic.as_str(), "t");
            }
            let p = &t.partitions[0];
            assert_eq!((p.partition_index, p.error_code), (0, 0), "v{v}");
            assert_eq!((p.high_watermark, p.last_stable_offset), (5, 5));
            assert_eq!(p.log_start_offset, if v >= 5 { 0 } else { -1 });
            assert_eq!(p.preferred_read_replica, BrokerId(-1));
            assert_eq!(p.aborted_transactions, None);
            assert_eq!(base_offsets(p), vec![0, 3], "v{v}");
            // From the middle of the log: the batch holding offset 3 onwards.
            assert_eq!(base_offsets(&t.partitions[1]), vec![3], "v{v}");
        }
    }

    /// READ_COMMITTED stops at the last stable offset and lists the aborted transactions among
    /// the records; READ_UNCOMMITTED reads to the HW with a null list. ListOffsets "latest"
    /// follows the isolation level.
    #[tokio::test]
    async fn read_committed_stops_at_the_lso_and_lists_aborted_transactions() {
        use crate::codec::kafka::batch::tests::set_transactional;
        use crate::codec::kafka::control::Marker;
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let p = f.leader("t", 0).await;
        let opts = crate::replication::AppendOptions {
            log_append_time: false,
            now_ms: 0,
        };
        for pid in [5, 6] {
            let mut raw = make_batch(2, pid, 0, 0);
            set_transactional(&mut raw);
            let h = validate_record_set(&raw).expect("valid")[0];
            p.append_leader(raw.into(), h, opts).await.expect("append");
        }
        produce(&f, "t", 0, make_batch(1, -1, -1, -1)).await; // offset 4
        let end = |pid, commit| {
            let b = f.broker.clone();
            async move {
                let m = Marker {
                    commit,
                    coordinator_epoch: 0,
                };
                b.marker_append("t", 0, pid, 0, m, false, std::time::Duration::from_secs(5))
                    .await
                    .expect("marker")
                    .wait()
                    .await
                    .expect("replicated")
            }
        };
        end(5, false).await; // offset 5: 0..=1 aborted; 6 (2..=3) still open
        let id = f.broker.metadata_view().topic("t").expect("t").id.0;
        let fetch = |v, committed: bool| {
            let mut r = request("t", id, vec![part(0, 0, -1)], 0);
            r.isolation_level = i8::from(committed);
            respond_owned(&f, v, r)
        };
        for v in 4..=VERSIONS.max {
            let r = fetch(v, true).await;
            assert_encodes(&r, v);
            let pd = &r.responses[0].partitions[0];
            assert_eq!((pd.high_watermark, pd.last_stable_offset), (6, 2), "v{v}");
            assert_eq!(base_offsets(pd), vec![0], "v{v}: only below the LSO");
            let aborted = pd.aborted_transactions.as_ref().expect("a list");
            assert_eq!(aborted.len(), 1);
            assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (5, 0));
            let r = fetch(v, false).await;
            let pd = &r.responses[0].partitions[0];
            assert_eq!(
                base_offsets(pd),
                vec![0, 2, 4, 5],
                "v{v}: to the HW, marker included"
            );
            assert_eq!(
                (pd.last_stable_offset, pd.aborted_transactions.is_none()),
                (2, true)
            );
        }
        let latest = |committed: bool| {
            let mut lp = ListOffsetsPartition::default();
            lp.timestamp = -1;
            let mut lt = ListOffsetsTopic::default();
            lt.name = topic_name("t");
            lt.partitions = vec![lp];
            let mut r = kafka_protocol::messages::ListOffsetsRequest::default();
            r.isolation_level = i8::from(committed);
            r.topics = vec![lt];
            let c = ctx(&f, 5);
            async move {
                super::super::list_offsets::respond(&c, r).await.topics[0].partitions[0].offset
            }
        };
        assert_eq!((latest(true).await, latest(false).await), (2, 6));
        end(6, true).await; // offset 6: everything stable
        let r = fetch(11, true).await;
        let pd = &r.responses[0].partitions[0];
        assert_eq!((pd.high_watermark, pd.last_stable_offset), (7, 7));
        assert_eq!(base_offsets(pd), vec![0, 2, 4, 5, 6]);
        assert_eq!(pd.aborted_transactions.as_ref().map(Vec::len), Some(1));
        assert_eq!((latest(true).await, latest(false).await), (7, 7));
    }

    async fn respond_owned(f: &Fixture, v: i16, r: FetchRequest) -> FetchResponse {
        respond(&ctx(f, v), r).await
    }

    /// (offset, magic, value) of every message of a magic-0/1 set, wrappers opened.
    fn legacy_messages(set: &[u8]) -> Vec<(i64, i8, Vec<u8>)> {
        let mut out = Vec::new();
        legacy::walk_messages(set, |m| {
            assert_eq!(m.codec(), 0, "make_batch writes uncompressed batches");
            out.push((m.offset, m.magic, m.value.unwrap_or_default().to_vec()));
            Ok(())
        })
        .expect("a well-formed message set");
        out
    }

    #[tokio::test]
    async fn old_versions_get_down_converted_message_sets() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(3, -1, -1, -1)).await;
        produce(&f, "t", 0, make_batch(2, -1, -1, -1)).await;
        for v in 0..4i16 {
            let r = respond(
                &ctx(&f, v),
                request("t", uuid::Uuid::nil(), vec![part(0, 1, -1)], 0),
            )
            .await;
            assert_encodes(&r, v);
            let p = &r.responses[0].partitions[0];
            assert_eq!(
                (p.error_code, p.high_watermark, p.last_stable_offset),
                (0, 5, -1)
            );
            let ms = legacy_messages(p.records.as_ref().expect("records"));
            let magic = if v <= 1 { 0 } else { 1 };
            assert_eq!(
                ms,
                (1..5)
                    .map(|o| (o, magic, b"x".to_vec()))
                    .collect::<Vec<_>>(),
                "v{v}"
            );
        }
        // One message takes 12 + 14 + 1 bytes at magic 0 (no key), 35 at magic 1.
        let cut = |v: i16, partition_max: i32| {
            let f = &f;
            async move {
                let mut p = part(0, 0, -1);
                p.partition_max_bytes = partition_max;
                let mut req = request("t", uuid::Uuid::nil(), vec![p], 0);
                req.max_bytes = 1 << 20;
                let r = respond(&ctx(f, v), req).await;
                let p = &r.responses[0].partitions[0];
                assert_eq!(p.error_code, 0);
                p.records.clone().expect("records").len()
            }
        };
        assert_eq!(cut(0, 27 * 2 + 5).await, 27 * 2, "whole messages only");
        assert_eq!(
            cut(1, 10).await,
            10,
            "v0-v2: a first message cut at the limit"
        );
        assert_eq!(cut(3, 10).await, 35, "v3: the first message whole");
    }

    #[tokio::test]
    async fn topics_without_down_conversion_refuse_old_fetches() {
        let f = Fixture::new().await;
        f.topic("nd", 1, &[("message.downconversion.enable", "false")])
            .await;
        produce(&f, "nd", 0, make_batch(2, -1, -1, -1)).await;
        for (v, want) in [
            (0i16, E::UnsupportedVersion.code()),
            (3, E::UnsupportedVersion.code()),
            (4, 0),
        ] {
            let r = respond(
                &ctx(&f, v),
                request("nd", uuid::Uuid::nil(), vec![part(0, 0, -1)], 0),
            )
            .await;
            assert_encodes(&r, v);
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, want, "v{v}");
            assert_eq!(
                p.records.as_ref().is_some_and(|b| !b.is_empty()),
                want == 0,
                "v{v}"
            );
        }
    }

    /// KIP-74 (librdkafka 0082_fetch_max_bytes): the response budget `max_bytes` and each
    /// `partition_max_bytes` bound the reply; only the first partition with data may exceed
    /// them, with one whole batch. Later partitions whose first batch does not fit get nothing.
    #[tokio::test]
    async fn byte_budgets_let_only_the_first_partition_with_data_exceed_them() {
        let f = Fixture::new().await;
        f.topic("t", 3, &[]).await;
        let batch = make_batch(20, -1, -1, -1);
        let len = i32::try_from(batch.len()).expect("small");
        for p in 0..3 {
            produce(&f, "t", p, batch.clone()).await;
            produce(&f, "t", p, batch.clone()).await;
        }
        let fetch = |max_bytes: i32, part_max: [i32; 3]| {
            let f = &f;
            async move {
                let parts = (0..3)
                    .map(|p| {
                        let mut fp = part(p, 0, -1);
                        fp.partition_max_bytes = part_max[p as usize];
                        fp
                    })
                    .collect();
                let mut req = request("t", uuid::Uuid::nil(), parts, 0);
                req.max_bytes = max_bytes;
                let r = respond(&ctx(f, 12), req).await;
                assert_encodes(&r, 12);
                let sizes: Vec<usize> = r.responses[0]
                    .partitions
                    .iter()
                    .map(|p| {
                        assert_eq!(p.error_code, 0);
                        p.records.as_ref().map_or(0, |r| r.len())
                    })
                    .collect();
                let total: usize = sizes.iter().sum();
                (sizes, total)
            }
        };
        let one = batch.len();
        let big = 1 << 20;
        // Everything fits.
        assert_eq!(fetch(big, [big; 3]).await.0, vec![2 * one; 3]);
        // A budget of 1: the first partition still gets one whole batch, the others nothing.
        assert_eq!(fetch(1, [big; 3]).await.0, vec![one, 0, 0]);
        // Room for 2.5 batches: whole batches only, and the remainder is too small for the
        // next partition's first batch.
        let (sizes, total) = fetch(2 * len + len / 2, [big; 3]).await;
        assert_eq!(sizes, vec![2 * one, 0, 0]);
        assert!(total <= usize::try_from(2 * len + len / 2).expect("small"));
        let (sizes, _) = fetch(3 * len + len / 2, [big; 3]).await;
        assert_eq!(sizes, vec![2 * one, one, 0]);
        // partition_max_bytes: the first partition may exceed it with one batch, a later one not.
        assert_eq!(fetch(big, [1, 1, big]).await.0, vec![one, 0, 2 * one]);
        assert_eq!(fetch(big, [len, len + 1, 0]).await.0, vec![one, one, 0]);
    }

    #[tokio::test]
    async fn at_the_log_end_nothing_until_max_wait_then_data_wakes_the_poll() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(1, -1, -1, -1)).await;
        let r = respond(
            &ctx(&f, 12),
            request("t", uuid::Uuid::nil(), vec![part(0, 1, -1)], 0),
        )
        .await;
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 1));
        assert!(p.records.as_ref().is_some_and(|r| r.is_empty()));
        // A long poll returns as soon as a batch arrives, well before max_wait.
        let c = ctx(&f, 12);
        let poll = tokio::spawn(async move {
            respond(
                &c,
                request("t", uuid::Uuid::nil(), vec![part(0, 1, -1)], 10_000),
            )
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let started = tokio::time::Instant::now();
        produce(&f, "t", 0, make_batch(2, -1, -1, -1)).await;
        let r = poll.await.expect("poll task");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(base_offsets(&r.responses[0].partitions[0]), vec![1]);
    }

    #[tokio::test]
    async fn partition_errors() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(2, -1, -1, -1)).await;
        let mut req = request(
            "t",
            uuid::Uuid::nil(),
            vec![part(0, 9, -1), part(3, 0, -1)],
            0,
        );
        let mut unknown = FetchTopic::default();
        unknown.topic = topic_name("nope");
        unknown.partitions = vec![part(0, 0, -1)];
        req.topics.push(unknown);
        let r = respond(&ctx(&f, 11), req).await;
        assert_encodes(&r, 11);
        let t = &r.responses[0];
        let p = &t.partitions[0];
        // Out of range still reports the partition's watermarks.
        assert_eq!(
            (p.error_code, p.high_watermark, p.log_start_offset),
            (E::OffsetOutOfRange.code(), 2, 0)
        );
        assert_eq!(
            t.partitions[1].error_code,
            E::UnknownTopicOrPartition.code()
        );
        assert_eq!(t.partitions[1].high_watermark, -1);
        let n = &r.responses[1];
        assert_eq!(n.topic.as_str(), "nope");
        assert_eq!(
            n.partitions[0].error_code,
            E::UnknownTopicOrPartition.code()
        );
    }

    #[tokio::test]
    async fn leader_epochs_are_checked_from_v9() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let epoch = f
            .broker
            .metadata_view()
            .partition("t", 0)
            .expect("p")
            .leader_epoch;
        for (v, sent, want) in [
            (9, epoch + 1, E::UnknownLeaderEpoch.code()),
            (9, epoch, 0),
            (8, epoch + 1, 0), // no epoch field before v9
        ] {
            let r = respond(
                &ctx(&f, v),
                request("t", uuid::Uuid::nil(), vec![part(0, 0, sent)], 0),
            )
            .await;
            assert_eq!(
                r.responses[0].partitions[0].error_code, want,
                "v{v} epoch {sent}"
            );
        }
    }

    #[tokio::test]
    async fn topic_ids_from_v13_and_unknown_ids() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(1, -1, -1, -1)).await;
        let unknown = uuid::Uuid::from_u128(99);
        let r = respond(
            &ctx(&f, 13),
            request("", unknown, vec![part(0, 0, -1), part(1, 0, -1)], 0),
        )
        .await;
        assert_encodes(&r, 13);
        let t = &r.responses[0];
        assert_eq!(t.topic_id, unknown);
        let codes: Vec<(i32, i16)> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![(0, E::UnknownTopicId.code()), (1, E::UnknownTopicId.code())]
        );
    }

    /// KIP-227 as kafka-python 3 and the Java consumer drive it: a full fetch with epoch 0
    /// opens a session; incremental fetches list only changed positions and get only the
    /// partitions with news; session errors end the request; epoch -1 closes the session.
    #[tokio::test]
    async fn fetch_sessions_answer_only_what_changed() {
        let f = Fixture::new().await;
        let at = |v: i16,
                  topic: String,
                  id: uuid::Uuid,
                  session: i32,
                  epoch: i32,
                  parts: Vec<FetchPartition>| {
            let mut r = request(&topic, id, parts, 0);
            r.session_id = session;
            r.session_epoch = epoch;
            respond_owned(&f, v, r)
        };
        let answered = |r: &FetchResponse| -> Vec<(i32, Vec<i64>)> {
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| {
                    let empty = p.records.as_ref().is_none_or(|r| r.is_empty());
                    (
                        p.partition_index,
                        if empty { vec![] } else { base_offsets(p) },
                    )
                })
                .collect()
        };
        for v in [7i16, 12, 13, VERSIONS.max] {
            let name = format!("t{v}");
            f.topic(&name, 2, &[]).await;
            produce(&f, &name, 0, make_batch(2, -1, -1, -1)).await;
            let id = f.broker.metadata_view().topic(&name).expect("t").id.0;
            let r = at(
                v,
                name.clone(),
                id,
                0,
                0,
                vec![part(0, 0, -1), part(1, 0, -1)],
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0);
            let session = r.session_id;
            assert!(session > 0, "v{v}: a session is offered");
            assert_eq!(answered(&r), vec![(0, vec![0]), (1, vec![])]);
            // The consumer moved on: nothing new, an empty answer that keeps the session.
            let r = at(v, name.clone(), id, session, 1, vec![part(0, 2, -1)]).await;
            assert_encodes(&r, v);
            assert_eq!((r.error_code, r.session_id), (0, session));
            assert!(answered(&r).is_empty(), "v{v}: {:?}", answered(&r));
            // Nothing listed: the session keeps the position (2), still nothing new.
            let r = at(v, name.clone(), id, session, 2, vec![]).await;
            assert!(answered(&r).is_empty(), "v{v}: {:?}", answered(&r));
            // New data on partition 1 only.
            produce(&f, &name, 1, make_batch(1, -1, -1, -1)).await;
            let r = at(v, name.clone(), id, session, 3, vec![]).await;
            assert_eq!(answered(&r), vec![(1, vec![0])], "v{v}");
            if v >= 13 {
                assert_eq!(r.responses[0].topic_id, id);
            } else {
                assert_eq!(r.responses[0].topic.as_str(), name);
            }
            // Session errors: a repeated epoch, an unknown id, topic ids switched.
            let r = at(v, name.clone(), id, session, 3, vec![]).await;
            assert_encodes(&r, v);
            assert_eq!(r.error_code, E::InvalidFetchSessionEpoch.code());
            assert!(r.responses.is_empty());
            let r = at(v, name.clone(), id, session ^ 1, 4, vec![]).await;
            assert_eq!(r.error_code, E::FetchSessionIdNotFound.code());
            let other = if v >= 13 { 12 } else { 13 };
            let r = at(other, name.clone(), id, session, 4, vec![]).await;
            assert_eq!(r.error_code, E::FetchSessionTopicIdError.code());
            // Forgetting partition 1 (by name before v13, by id from it) leaves partition 0.
            let mut req = request(&name, id, vec![], 0);
            let mut forget = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
            forget.topic = topic_name(&name);
            forget.topic_id = id;
            forget.partitions = vec![1];
            req.forgotten_topics_data = vec![forget];
            req.session_id = session;
            req.session_epoch = 4;
            let r = respond_owned(&f, v, req).await;
            assert_eq!((r.error_code, r.session_id), (0, session));
            produce(&f, &name, 1, make_batch(1, -1, -1, -1)).await;
            let r = at(v, name.clone(), id, session, 5, vec![]).await;
            assert!(
                answered(&r).is_empty(),
                "v{v}: partition 1 left the session"
            );
            // Epoch -1 closes the session: a sessionless full answer.
            let r = at(v, name.clone(), id, session, -1, vec![part(0, 2, -1)]).await;
            assert_eq!((r.error_code, r.session_id), (0, 0));
            assert_eq!(answered(&r), vec![(0, vec![])]);
            let r = at(v, name.clone(), id, session, 6, vec![]).await;
            assert_eq!(r.error_code, E::FetchSessionIdNotFound.code());
        }
        // v4-v6 have no sessions: the fields are ignored.
        let r = at(
            6,
            "t7".into(),
            uuid::Uuid::nil(),
            12,
            1,
            vec![part(0, 0, -1)],
        )
        .await;
        assert_eq!((r.error_code, r.session_id, r.responses.len()), (0, 0, 1));
    }

    /// With no slots (`max.incremental.fetch.session.cache.slots=0`) every fetch is full.
    #[tokio::test]
    async fn without_slots_no_session_is_offered() {
        let f = Fixture::with(&[("max.incremental.fetch.session.cache.slots", "0")]).await;
        f.topic("t", 1, &[]).await;
        let mut req = request("t", uuid::Uuid::nil(), vec![part(0, 0, -1)], 0);
        req.session_epoch = 0;
        let r = respond(&ctx(&f, 12), req).await;
        assert_eq!((r.error_code, r.session_id, r.responses.len()), (0, 0, 1));
    }
}

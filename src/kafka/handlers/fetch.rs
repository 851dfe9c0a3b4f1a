//! Fetch (key 1), v4–v17, consumer fetches: whole batches below the high watermark, long-poll
//! with max_wait/min_bytes, response and partition byte limits, topic ids from v13.
//! Fetch sessions (KIP-227) are not kept: session id 0 tells clients to send full requests.

use super::topic_name;
use crate::broker::{BrokerError, FetchParams, FetchPartitionRequest, FetchPartitionResult};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::types::TopicId;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError as E;
use std::time::Duration;

/// The versions of Fetch this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(4, 17);

/// Answers one Fetch request.
pub(crate) async fn handle(ctx: RequestContext, req: FetchRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: FetchRequest) -> FetchResponse {
    let v = ctx.api_version;
    let mut r = FetchResponse::default();
    if v >= 7 && req.session_id != 0 {
        // We never issue sessions, so an incremental fetch names one we do not know.
        r.error_code = E::FetchSessionIdNotFound.code();
        return r;
    }
    let image = ctx.broker.metadata_view();
    // (topic name or None if unknown id, topic id, partitions)
    let mut layout = Vec::with_capacity(req.topics.len());
    let mut reqs = Vec::new();
    for t in req.topics {
        let name = if v >= 13 {
            image
                .topic_by_id(&TopicId(t.topic_id))
                .map(|ti| ti.name.to_string())
        } else {
            Some(t.topic.0.to_string())
        };
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            parts.push(p.partition);
            if let Some(n) = &name {
                reqs.push(FetchPartitionRequest {
                    topic: n.clone(),
                    partition: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                    current_leader_epoch: if v >= 9 { p.current_leader_epoch } else { -1 },
                });
            }
        }
        layout.push((name, t.topic_id, parts));
    }
    let params = FetchParams {
        max_wait: Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)),
        min_bytes: req.min_bytes,
        max_bytes: if v >= 3 { req.max_bytes } else { i32::MAX },
    };
    let mut results = ctx.broker.fetch(reqs, params).await.into_iter();
    for (name, topic_id, parts) in layout {
        let mut tr = FetchableTopicResponse::default();
        if v >= 13 {
            tr.topic_id = topic_id;
        } else if let Some(n) = &name {
            tr.topic = topic_name(n);
        }
        for partition in parts {
            let res = if name.is_some() {
                results.next().unwrap_or_else(missing)
            } else {
                FetchPartitionResult {
                    error: Some(BrokerError::UnknownTopicId),
                    high_watermark: -1,
                    log_start_offset: -1,
                    records: bytes::Bytes::new(),
                }
            };
            tr.partitions.push(partition_data(v, partition, res));
        }
        r.responses.push(tr);
    }
    r
}

fn missing() -> FetchPartitionResult {
    FetchPartitionResult {
        error: Some(BrokerError::Internal("missing fetch result".into())),
        high_watermark: -1,
        log_start_offset: -1,
        records: bytes::Bytes::new(),
    }
}

fn partition_data(v: i16, partition: i32, res: FetchPartitionResult) -> PartitionData {
    let mut pd = PartitionData::default();
    pd.partition_index = partition;
    pd.error_code = res.error.as_ref().map_or(0, code);
    pd.high_watermark = res.high_watermark;
    pd.last_stable_offset = res.high_watermark;
    if v >= 5 {
        pd.log_start_offset = res.log_start_offset;
    }
    pd.aborted_transactions = None;
    if v >= 11 {
        pd.preferred_read_replica = BrokerId(-1);
    }
    pd.records = Some(res.records);
    pd
}

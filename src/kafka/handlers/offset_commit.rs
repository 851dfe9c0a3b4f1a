//! OffsetCommit (key 8), v2–v9. Answered from a deferred task once the commit is durable
//! (WAL fsync + high watermark of the offsets partition).

use super::topic_name;
use crate::broker::{BrokerError, OffsetCommitEntry};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};

/// The versions of OffsetCommit this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(2, 9);

pub(crate) async fn handle(ctx: RequestContext, req: OffsetCommitRequest) -> Reply {
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::OffsetCommit(respond(&ctx, req).await))
    }))
}

async fn respond(ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let v = ctx.api_version;
    let image = ctx.broker.metadata_view();
    // (topic, partition, precomputed error or index into the entries sent to the coordinator)
    let mut slots: Vec<(String, i32, Result<usize, BrokerError>)> = Vec::new();
    let mut entries = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.to_string();
        for p in &t.partitions {
            let slot = if image.partition(&topic, p.partition_index).is_none() {
                Err(BrokerError::UnknownTopicOrPartition)
            } else {
                entries.push(OffsetCommitEntry {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
                Ok(entries.len() - 1)
            };
            slots.push((topic.clone(), p.partition_index, slot));
        }
    }
    let instance = if v >= 7 {
        req.group_instance_id.as_ref().map(|s| s.to_string())
    } else {
        None
    };
    let (group_id, member_id, generation) = (
        req.group_id.0.to_string(),
        req.member_id.to_string(),
        req.generation_id_or_member_epoch,
    );
    // The request frame is not kept while the commit waits to become durable.
    drop(req);
    let results = if entries.is_empty() {
        Ok(Vec::new())
    } else {
        ctx.broker
            .commit_offsets(
                &group_id,
                &member_id,
                instance.as_deref(),
                generation,
                entries,
            )
            .await
    };
    let mut r = OffsetCommitResponse::default();
    for (topic, partition, slot) in slots {
        let err = match (slot, &results) {
            (Err(e), _) => Some(e),
            (Ok(_), Err(e)) => Some(e.clone()),
            (Ok(i), Ok(rs)) => rs.get(i).and_then(|x| x.clone().err()),
        };
        let mut pr = OffsetCommitResponsePartition::default();
        pr.partition_index = partition;
        pr.error_code = err.as_ref().map_or(0, code);
        if r.topics
            .last()
            .is_none_or(|t: &OffsetCommitResponseTopic| t.name.0.as_str() != topic)
        {
            let mut tr = OffsetCommitResponseTopic::default();
            tr.name = topic_name(&topic);
            r.topics.push(tr);
        }
        if let Some(tr) = r.topics.last_mut() {
            tr.partitions.push(pr);
        }
    }
    r
}

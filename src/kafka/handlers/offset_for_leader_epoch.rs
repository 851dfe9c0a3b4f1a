//! OffsetForLeaderEpoch (key 23), v2–v4: the end offset of a leader epoch (used by clients
//! to detect log truncation after a leader change, and by followers).

use super::topic_name;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

/// The versions of OffsetForLeaderEpoch this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(2, 4);

/// Answers one OffsetForLeaderEpoch request.
pub(crate) async fn handle(ctx: RequestContext, req: OffsetForLeaderEpochRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut r = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let name = t.topic.0.to_string();
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = topic_name(&name);
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            match ctx
                .broker
                .offset_for_leader_epoch(&name, p.partition, p.leader_epoch, p.current_leader_epoch)
                .await
            {
                Ok((epoch, end)) => {
                    e.leader_epoch = epoch;
                    e.end_offset = end;
                }
                Err(err) => {
                    e.error_code = code(&err);
                    e.leader_epoch = -1;
                    e.end_offset = -1;
                }
            }
            tr.partitions.push(e);
        }
        r.topics.push(tr);
    }
    r
}

//! OffsetDelete (key 47), v0: removes committed offsets of topics the group is not subscribed to.

use super::topic_name;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

/// The versions of OffsetDelete this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

/// Answers one OffsetDelete request.
pub(crate) async fn handle(ctx: RequestContext, req: OffsetDeleteRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let mut r = OffsetDeleteResponse::default();
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    match ctx.broker.delete_offsets(&req.group_id.0, topics).await {
        Err(e) => r.error_code = code(&e),
        Ok(results) => {
            for (t, parts) in results {
                let mut tr = OffsetDeleteResponseTopic::default();
                tr.name = topic_name(&t);
                for (p, res) in parts {
                    let mut pr = OffsetDeleteResponsePartition::default();
                    pr.partition_index = p;
                    if let Err(e) = res {
                        pr.error_code = code(&e);
                    }
                    tr.partitions.push(pr);
                }
                r.topics.push(tr);
            }
        }
    }
    r
}

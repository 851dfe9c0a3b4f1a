//! ListOffsets (key 2), v1–v10: earliest, latest (high watermark), max timestamp, by timestamp.

use super::topic_name;
use crate::broker::OffsetSpec;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

/// The versions of ListOffsets this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(1, 10);

/// Answers one ListOffsets request.
pub(crate) async fn handle(ctx: RequestContext, req: ListOffsetsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let v = ctx.api_version;
    let mut r = ListOffsetsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic_name(&name);
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            let current = if v >= 4 { p.current_leader_epoch } else { -1 };
            match ctx
                .broker
                .list_offset(
                    &name,
                    p.partition_index,
                    OffsetSpec::from_wire(p.timestamp),
                    current,
                )
                .await
            {
                Ok((offset, timestamp, epoch)) => {
                    pr.offset = offset;
                    pr.timestamp = timestamp;
                    if v >= 4 {
                        pr.leader_epoch = epoch;
                    }
                }
                Err(e) => {
                    pr.error_code = code(&e);
                    pr.offset = -1;
                    pr.timestamp = -1;
                    if v >= 4 {
                        pr.leader_epoch = -1;
                    }
                }
            }
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    r
}

//! DeleteRecords (key 21), v0–v2: move each partition's log start offset forward (on its
//! leader) and report the new low watermark.

use super::topic_name;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

/// The versions of DeleteRecords this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Answers one DeleteRecords request.
pub(crate) async fn handle(ctx: RequestContext, req: DeleteRecordsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut r = DeleteRecordsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = topic_name(&name);
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            match ctx
                .broker
                .delete_records(&name, p.partition_index, p.offset)
                .await
            {
                Ok(low_watermark) => pr.low_watermark = low_watermark,
                Err(e) => {
                    pr.error_code = code(&e);
                    pr.low_watermark = -1;
                }
            }
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    r
}

//! CreatePartitions (key 37), v0–v3: grow a topic, optionally with explicit assignments.

use super::{sb, topic_name};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

/// The versions of CreatePartitions this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 3);

/// Answers one CreatePartitions request.
pub(crate) async fn handle(ctx: RequestContext, req: CreatePartitionsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut r = CreatePartitionsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let assignment = t.assignments.map(|a| {
            a.into_iter()
                .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        let mut tr = CreatePartitionsTopicResult::default();
        tr.name = topic_name(&name);
        if let Err(e) = ctx
            .broker
            .create_partitions(&name, t.count, assignment, req.validate_only)
            .await
        {
            tr.error_code = code(&e);
            tr.error_message = Some(sb(&e.to_string()));
        }
        r.results.push(tr);
    }
    r
}

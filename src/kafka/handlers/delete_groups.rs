//! DeleteGroups (key 42), v0–v2: empty groups only; their offsets and metadata get tombstones.

use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

/// The versions of DeleteGroups this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Answers one DeleteGroups request.
pub(crate) async fn handle(ctx: RequestContext, req: DeleteGroupsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut r = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let res = ctx.broker.delete_group(&id.0).await;
        let mut g = DeletableGroupResult::default();
        g.group_id = GroupId(id.0.clone());
        if let Err(e) = res {
            g.error_code = code(&e);
        }
        r.results.push(g);
    }
    r
}

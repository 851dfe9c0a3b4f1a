//! DeleteGroups (key 42), v0–v2: empty groups only; their offsets and metadata get tombstones.

use crate::broker::BrokerError;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

pub(crate) async fn handle(ctx: &RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut r = DeleteGroupsResponse::default();
    let limit = ctx.broker.config().limits.topics_per_request_max;
    for (i, id) in req.groups_names.into_iter().enumerate() {
        let res = if i >= limit {
            Err(BrokerError::InvalidRequest("too many groups".into()))
        } else {
            ctx.broker.delete_group(&id.0).await
        };
        let mut g = DeletableGroupResult::default();
        g.group_id = GroupId(id.0.clone());
        if let Err(e) = res {
            g.error_code = code(&e);
        }
        r.results.push(g);
    }
    r
}

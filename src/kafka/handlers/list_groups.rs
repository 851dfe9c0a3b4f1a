//! ListGroups (key 16), v0–v5: the groups this node coordinates; states filter (v4+), types
//! filter (v5; every group here is "classic").

use super::sb;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

/// The versions of ListGroups this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// Answers one ListGroups request.
pub(crate) async fn handle(ctx: RequestContext, req: ListGroupsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let v = ctx.api_version;
    let mut r = ListGroupsResponse::default();
    let states: Vec<String> = if v >= 4 {
        req.states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if v >= 5 {
        req.types_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    if !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return r;
    }
    match ctx.broker.list_groups() {
        Err(e) => r.error_code = code(&e),
        Ok(groups) => {
            for g in groups {
                if !states.is_empty() && !states.contains(&g.state.as_str().to_ascii_lowercase()) {
                    continue;
                }
                let mut lg = ListedGroup::default();
                lg.group_id = GroupId(sb(&g.group_id));
                lg.protocol_type = sb(&g.protocol_type);
                if v >= 4 {
                    lg.group_state = sb(g.state.as_str());
                }
                if v >= 5 {
                    lg.group_type = sb("classic");
                }
                r.groups.push(lg);
            }
        }
    }
    r
}

//! Heartbeat (key 12), v0–v4: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.

use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

/// The versions of Heartbeat this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Answers one Heartbeat request.
pub(crate) async fn handle(ctx: RequestContext, req: HeartbeatRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let instance = if ctx.api_version >= 3 {
        req.group_instance_id.as_ref().map(|s| s.to_string())
    } else {
        None
    };
    let mut r = HeartbeatResponse::default();
    if let Err(e) = ctx.broker.heartbeat(
        &req.group_id.0,
        &req.member_id,
        instance.as_deref(),
        req.generation_id,
    ) {
        r.error_code = code(&e);
    }
    r
}

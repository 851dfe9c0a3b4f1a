//! Heartbeat (key 12), v0–v4: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.

use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub(crate) fn handle(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
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

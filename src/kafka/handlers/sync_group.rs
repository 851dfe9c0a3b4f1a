//! SyncGroup (key 14), v0–v5. Followers wait for the leader's assignment, so the answer comes
//! from a deferred task.

use super::sb;
use crate::broker::SyncParams;
use crate::kafka::context::RequestContext;
use crate::kafka::dispatch::Reply;
use crate::kafka::error::code;
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};

pub(crate) fn handle(ctx: RequestContext, req: SyncGroupRequest) -> Reply {
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::SyncGroup(respond(&ctx, req).await))
    }))
}

async fn respond(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let v = ctx.api_version;
    let params = SyncParams {
        member_id: req.member_id.to_string(),
        group_instance_id: if v >= 3 {
            req.group_instance_id.as_ref().map(|s| s.to_string())
        } else {
            None
        },
        generation_id: req.generation_id,
        protocol_type: if v >= 5 {
            req.protocol_type.as_ref().map(|s| s.to_string())
        } else {
            None
        },
        protocol_name: if v >= 5 {
            req.protocol_name.as_ref().map(|s| s.to_string())
        } else {
            None
        },
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let mut r = SyncGroupResponse::default();
    match ctx.broker.sync_group(&req.group_id.0, params).await {
        Ok(s) => {
            if v >= 5 {
                r.protocol_type = s.protocol_type.as_deref().map(sb);
                r.protocol_name = s.protocol_name.as_deref().map(sb);
            }
            r.assignment = s.assignment;
        }
        Err(e) => r.error_code = code(&e),
    }
    r
}

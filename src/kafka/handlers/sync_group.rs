//! SyncGroup (key 14), v0–v5. Followers wait for the leader's assignment, so the answer comes
//! from a deferred task.

use super::sb;
use crate::broker::SyncParams;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use bytes::Bytes;
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};

/// The versions of SyncGroup this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

pub(crate) async fn handle(ctx: RequestContext, req: SyncGroupRequest) -> Reply {
    // Owned copies now: the request's `Bytes` are slices of its frame, whose budget is released
    // when this returns, and the coordinator keeps the assignments for the group's life.
    let group_id = req.group_id.0.to_string();
    let params = params(&ctx, req);
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::SyncGroup(
            respond(&ctx, &group_id, params).await,
        ))
    }))
}

fn params(ctx: &RequestContext, req: SyncGroupRequest) -> SyncParams {
    let v = ctx.api_version;
    SyncParams {
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
            .map(|a| {
                (
                    a.member_id.to_string(),
                    Bytes::copy_from_slice(&a.assignment),
                )
            })
            .collect(),
    }
}

async fn respond(ctx: &RequestContext, group_id: &str, params: SyncParams) -> SyncGroupResponse {
    let v = ctx.api_version;
    let mut r = SyncGroupResponse::default();
    match ctx.broker.sync_group(group_id, params).await {
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

//! LeaveGroup (key 13), v0–v5: one member (v0–v2) or a batch by member or instance id (v3+).

use super::sb;
use crate::broker::BrokerError;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

/// The versions of LeaveGroup this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// Answers one LeaveGroup request.
pub(crate) async fn handle(ctx: RequestContext, req: LeaveGroupRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let v = ctx.api_version;
    let mut r = LeaveGroupResponse::default();
    let limit = ctx.broker.config().groups.max_size;
    let members: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    if members.len() > limit {
        r.error_code = code(&BrokerError::InvalidRequest("too many members".into()));
        return r;
    }
    match ctx
        .broker
        .leave_group(&req.group_id.0, members.clone())
        .await
    {
        Err(e) => r.error_code = code(&e),
        Ok(results) if v < 3 => {
            if let Some(Err(e)) = results.first() {
                r.error_code = code(e);
            }
        }
        Ok(results) => {
            for ((member_id, instance), res) in members.into_iter().zip(results) {
                let mut m = MemberResponse::default();
                m.member_id = sb(&member_id);
                m.group_instance_id = instance.as_deref().map(sb);
                if let Err(e) = res {
                    m.error_code = code(&e);
                }
                r.members.push(m);
            }
        }
    }
    r
}

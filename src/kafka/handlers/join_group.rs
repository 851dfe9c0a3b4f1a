//! JoinGroup (key 11), v0–v9. The answer is held until the rebalance completes, so it is
//! produced by a deferred task while the connection reads on.

use super::sb;
use crate::broker::GroupError;
use crate::broker::{BrokerError, JoinParams};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};

/// The versions of JoinGroup this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 9);

pub(crate) async fn handle(ctx: RequestContext, req: JoinGroupRequest) -> Reply {
    // Owned copies now: the request's `Bytes` are slices of its frame, whose budget is released
    // when this returns, and the coordinator keeps the protocol metadata for the group's life.
    let group_id = req.group_id.0.to_string();
    let params = params(&ctx, req);
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::JoinGroup(
            respond(&ctx, &group_id, params).await,
        ))
    }))
}

fn params(ctx: &RequestContext, req: JoinGroupRequest) -> JoinParams {
    let v = ctx.api_version;
    JoinParams {
        member_id: req.member_id.to_string(),
        group_instance_id: if v >= 5 {
            req.group_instance_id.as_ref().map(|s| s.to_string())
        } else {
            None
        },
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if v >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), Bytes::copy_from_slice(&p.metadata)))
            .collect(),
        require_known_member_id: v >= 4,
    }
}

async fn respond(ctx: &RequestContext, group_id: &str, params: JoinParams) -> JoinGroupResponse {
    let v = ctx.api_version;
    let member_id = params.member_id.clone();
    let mut r = JoinGroupResponse::default();
    match ctx.broker.join_group(group_id, params).await {
        Ok(j) => {
            r.generation_id = j.generation_id;
            if v >= 7 {
                r.protocol_type = j.protocol_type.as_deref().map(sb);
            }
            r.protocol_name = match j.protocol_name {
                Some(n) => Some(sb(&n)),
                None if v >= 7 => None,
                None => Some(sb("")),
            };
            r.leader = sb(&j.leader_id);
            r.member_id = sb(&j.member_id);
            if v >= 9 {
                r.skip_assignment = j.skip_assignment;
            }
            r.members = j
                .members
                .into_iter()
                .map(|m| {
                    let mut rm = JoinGroupResponseMember::default();
                    rm.member_id = sb(&m.member_id);
                    if v >= 5 {
                        rm.group_instance_id = m.group_instance_id.as_deref().map(sb);
                    }
                    rm.metadata = m.metadata;
                    rm
                })
                .collect();
        }
        Err(e) => {
            r.error_code = code(&e);
            r.generation_id = -1;
            r.protocol_name = if v >= 7 { None } else { Some(sb("")) };
            r.member_id = match &e {
                BrokerError::Group(GroupError::MemberIdRequired(id)) => sb(id),
                _ => sb(&member_id),
            };
        }
    }
    r
}

//! JoinGroup (key 11), v0–v9. The answer is held until the rebalance completes, so it is
//! produced by a deferred task while the connection reads on.
//!
//! Authorization (Kafka's): READ on the group, else GROUP_AUTHORIZATION_FAILED.

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
    let res = match super::may_read_group(ctx, group_id) {
        Ok(()) => ctx.broker.join_group(group_id, params).await,
        Err(e) => Err(e),
    };
    match res {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{
        assert_encodes, coordinator, ctx, join, join_request, later, stable_group, subscription,
        wait_for_state,
    };
    use kafka_protocol::ResponseError as E;

    fn name(s: &Option<kafka_protocol::protocol::StrBytes>) -> Option<&str> {
        s.as_ref().map(|x| x.as_str())
    }

    #[tokio::test]
    async fn a_lone_member_forms_generation_one_and_leads() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let g = format!("g{v}");
            coordinator(&f, &g).await;
            let mut req = join_request(&g, "", &["t"]);
            let mut r = join(&f, v, req.clone()).await;
            if v >= 4 {
                // A new dynamic member first gets its id (KIP-394).
                assert_encodes(&r, v);
                assert_eq!(r.error_code, E::MemberIdRequired.code(), "v{v}");
                assert_eq!(r.generation_id, -1);
                assert!(r.member_id.starts_with("test-"), "{:?}", r.member_id);
                assert_eq!(name(&r.protocol_name), if v >= 7 { None } else { Some("") });
                req.member_id = r.member_id.clone();
                r = join(&f, v, req).await;
            }
            assert_encodes(&r, v);
            assert_eq!((r.error_code, r.generation_id), (0, 1), "v{v}");
            assert!(r.member_id.starts_with("test-"));
            assert_eq!(r.leader, r.member_id);
            assert_eq!(name(&r.protocol_name), Some("range"));
            assert_eq!(name(&r.protocol_type), (v >= 7).then_some("consumer"));
            assert!(!r.skip_assignment);
            let members: Vec<(&str, bytes::Bytes)> = r
                .members
                .iter()
                .map(|m| (m.member_id.as_str(), m.metadata.clone()))
                .collect();
            assert_eq!(
                members,
                vec![(
                    r.member_id.as_str(),
                    bytes::Bytes::from(subscription(&["t"]))
                )]
            );
            wait_for_state(&f, &g, "CompletingRebalance").await;
        }
    }

    #[tokio::test]
    async fn static_members_from_v5() {
        let f = Fixture::new().await;
        coordinator(&f, "s").await;
        let mut req = join_request("s", "", &["t"]);
        req.group_instance_id = Some(sb("inst-1"));
        // Static members skip MEMBER_ID_REQUIRED.
        let r = join(&f, 5, req.clone()).await;
        assert_encodes(&r, 5);
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        assert!(r.member_id.starts_with("inst-1-"));
        assert_eq!(
            r.members[0].group_instance_id.as_ref().map(|s| s.as_str()),
            Some("inst-1")
        );
        // Below v5 the instance id is not read: a dynamic member.
        coordinator(&f, "d").await;
        let mut old = join_request("d", "", &["t"]);
        old.group_instance_id = Some(sb("inst-2"));
        let r = join(&f, 3, old).await;
        assert!(r.member_id.starts_with("test-"));
    }

    #[tokio::test]
    async fn a_second_member_joins_through_a_rebalance() {
        let f = Fixture::new().await;
        let (a, generation) = stable_group(&f, "g", &["t"]).await;
        let b = handle(ctx(&f, 3), join_request("g", "", &["u"])).await;
        wait_for_state(&f, "g", "PreparingRebalance").await;
        let ra = join(&f, 3, join_request("g", &a, &["t"])).await;
        let rb = match later(b).await {
            ResponseKind::JoinGroup(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!((ra.error_code, rb.error_code), (0, 0));
        assert_eq!(ra.generation_id, generation + 1);
        assert_eq!(rb.generation_id, generation + 1);
        assert_eq!(
            (ra.leader.as_str(), rb.leader.as_str()),
            (a.as_str(), a.as_str())
        );
        // Only the leader gets the member list.
        let mut ids: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
        ids.sort_unstable();
        let mut want = vec![a.as_str(), rb.member_id.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
        assert!(rb.members.is_empty());
    }

    #[tokio::test]
    async fn errors_answer_generation_minus_one_and_echo_the_member() {
        let f = Fixture::with(&[("group.max.size", "1")]).await;
        // No offsets topic yet: nobody coordinates anything.
        let r = join(&f, 2, join_request("early", "", &["t"])).await;
        assert_eq!(r.error_code, E::NotCoordinator.code());
        coordinator(&f, "g").await;
        stable_group(&f, "g", &["t"]).await;
        let mut bad_timeout = join_request("g2", "", &["t"]);
        bad_timeout.session_timeout_ms = 10;
        let mut no_type = join_request("g2", "", &["t"]);
        no_type.protocol_type = sb("");
        let mut other_type = join_request("g", "", &["t"]);
        other_type.protocol_type = sb("connect");
        let cases = [
            (join_request("", "", &["t"]), E::InvalidGroupId, ""),
            (bad_timeout, E::InvalidSessionTimeout, ""),
            (no_type, E::InconsistentGroupProtocol, ""),
            (
                join_request("g2", "ghost", &["t"]),
                E::UnknownMemberId,
                "ghost",
            ),
            (other_type, E::InconsistentGroupProtocol, ""),
            (join_request("g", "", &["t"]), E::GroupMaxSizeReached, ""),
        ];
        for v in [0, 3, 6, 7, VERSIONS.max] {
            for (req, want, member) in &cases {
                let mut req = req.clone();
                if v >= 4 && req.member_id.is_empty() {
                    // Past MEMBER_ID_REQUIRED, use a static member (answered directly).
                    req.group_instance_id = Some(sb("static"));
                }
                let r = join(&f, v, req.clone()).await;
                assert_encodes(&r, v);
                assert_eq!(r.error_code, want.code(), "v{v} {req:?}");
                assert_eq!(r.generation_id, -1);
                assert_eq!(r.member_id.as_str(), *member);
                assert_eq!(name(&r.protocol_name), if v >= 7 { None } else { Some("") });
                assert!(r.members.is_empty());
            }
        }
    }
}

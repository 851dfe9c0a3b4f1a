//! LeaveGroup (key 13), v0–v5: one member (v0–v2) or a batch by member or instance id (v3+).
//!
//! Authorization (Kafka's): READ on the group, else GROUP_AUTHORIZATION_FAILED.

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
    let res = match super::may_read_group(ctx, &req.group_id.0) {
        Ok(()) => {
            ctx.broker
                .leave_group(&req.group_id.0, members.clone())
                .await
        }
        Err(e) => Err(e),
    };
    match res {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{
        assert_encodes, ctx, stable_group, stable_static_group, wait_for_state,
    };
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::ResponseError as E;

    fn single(group: &str, member: &str) -> LeaveGroupRequest {
        let mut r = LeaveGroupRequest::default();
        r.group_id = GroupId(sb(group));
        r.member_id = sb(member);
        r
    }

    fn batch(group: &str, members: &[(&str, Option<&str>)]) -> LeaveGroupRequest {
        let mut r = LeaveGroupRequest::default();
        r.group_id = GroupId(sb(group));
        r.members = members
            .iter()
            .map(|(m, i)| {
                let mut x = MemberIdentity::default();
                x.member_id = sb(m);
                x.group_instance_id = i.map(sb);
                x
            })
            .collect();
        r
    }

    fn per_member(r: &LeaveGroupResponse) -> Vec<(&str, Option<&str>, i16)> {
        r.members
            .iter()
            .map(|m| {
                (
                    m.member_id.as_str(),
                    m.group_instance_id.as_ref().map(|s| s.as_str()),
                    m.error_code,
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn one_member_leaves_before_v3() {
        let f = Fixture::new().await;
        for v in 0..=2 {
            let g = format!("g{v}");
            let (m, _) = stable_group(&f, &g, &["t"]).await;
            let r = respond(&ctx(&f, v), single(&g, &m)).await;
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(r.members.is_empty());
            wait_for_state(&f, &g, "Empty").await;
            // Gone: a second leave does not know it.
            let r = respond(&ctx(&f, v), single(&g, &m)).await;
            assert_eq!(r.error_code, E::UnknownMemberId.code());
        }
    }

    #[tokio::test]
    async fn batches_answer_per_member_from_v3() {
        let f = Fixture::new().await;
        let (m, _) = stable_group(&f, "g", &["t"]).await;
        let r = respond(
            &ctx(&f, 3),
            batch("g", &[(&m, None), ("ghost", None), ("", Some("nobody"))]),
        )
        .await;
        assert_encodes(&r, 3);
        assert_eq!(r.error_code, 0);
        assert_eq!(
            per_member(&r),
            vec![
                (m.as_str(), None, 0),
                ("ghost", None, E::UnknownMemberId.code()),
                ("", Some("nobody"), E::UnknownMemberId.code()),
            ]
        );
        wait_for_state(&f, "g", "Empty").await;
        // Static members leave by instance id; a stale member id for it is fenced.
        stable_static_group(&f, "s", "inst", &["t"]).await;
        for v in 4..=VERSIONS.max {
            let r = respond(&ctx(&f, v), batch("s", &[("stale", Some("inst"))])).await;
            assert_encodes(&r, v);
            assert_eq!(
                per_member(&r),
                vec![("stale", Some("inst"), E::FencedInstanceId.code())]
            );
        }
        let r = respond(&ctx(&f, 5), batch("s", &[("", Some("inst"))])).await;
        assert_eq!(per_member(&r), vec![("", Some("inst"), 0)]);
        wait_for_state(&f, "s", "Empty").await;
    }

    #[tokio::test]
    async fn group_level_errors() {
        let f = Fixture::with(&[("group.max.size", "1")]).await;
        let r = respond(&ctx(&f, 1), single("early", "m")).await;
        assert_eq!(r.error_code, E::NotCoordinator.code());
        stable_group(&f, "g", &["t"]).await;
        for (v, req, want) in [
            (0, single("nope", "m"), E::UnknownMemberId),
            (1, single("", "m"), E::InvalidGroupId),
            (
                4,
                batch("g", &[("a", None), ("b", None)]),
                E::InvalidRequest,
            ),
        ] {
            let r = respond(&ctx(&f, v), req).await;
            assert_encodes(&r, v);
            assert_eq!(r.error_code, want.code(), "v{v}");
            assert!(r.members.is_empty());
        }
        // An unknown group from v3: Kafka's classic coordinator answers top-level NONE with
        // UNKNOWN_MEMBER_ID per member; this one answers it top-level. Clients see the same
        // error either way.
        let r = respond(&ctx(&f, 3), batch("nope", &[("m", None)])).await;
        assert_encodes(&r, 3);
        assert!(
            r.error_code == E::UnknownMemberId.code()
                || per_member(&r) == vec![("m", None, E::UnknownMemberId.code())],
            "{r:?}"
        );
    }
}

//! DeleteGroups (key 42), v0–v2: empty groups only; their offsets and metadata get tombstones.
//!
//! Authorization (Kafka's): DELETE on each group, else GROUP_AUTHORIZATION_FAILED.

use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

/// The versions of DeleteGroups this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Answers one DeleteGroups request.
pub(crate) async fn handle(ctx: RequestContext, req: DeleteGroupsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let authz = Authz::new(ctx);
    let mut r = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let res = if authz.group(Operation::Delete, &id.0) {
            ctx.broker.delete_group(&id.0).await
        } else {
            Err(crate::broker::BrokerError::GroupAuthorizationFailed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::leave_group;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{
        assert_encodes, commit_standalone, committed, coordinator, ctx, join, join_request,
        stable_group, sync, sync_request, wait_for_state,
    };
    use kafka_protocol::messages::LeaveGroupRequest;
    use kafka_protocol::ResponseError as E;

    fn request(groups: &[&str]) -> DeleteGroupsRequest {
        let mut r = DeleteGroupsRequest::default();
        r.groups_names = groups.iter().map(|g| GroupId(sb(g))).collect();
        r
    }

    fn codes(r: &DeleteGroupsResponse) -> Vec<(&str, i16)> {
        r.results
            .iter()
            .map(|g| (g.group_id.as_str(), g.error_code))
            .collect()
    }

    #[tokio::test]
    async fn deletes_empty_groups_and_their_offsets() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let g = format!("g{v}");
            commit_standalone(&f, &g, &[("t", 0, 7)]).await;
            assert_eq!(committed(&f, &g, "t", 0), 7);
            let r = respond(&ctx(&f, v), request(&[&g])).await;
            assert_encodes(&r, v);
            assert_eq!(codes(&r), vec![(g.as_str(), 0)]);
            assert_eq!(committed(&f, &g, "t", 0), -1, "offsets go with the group");
            assert!(f.broker.list_groups().expect("list").is_empty());
        }
    }

    #[tokio::test]
    async fn a_group_emptied_by_leave_can_be_deleted() {
        let f = Fixture::new().await;
        let (m, _) = stable_group(&f, "g", &["t"]).await;
        let r = respond(&ctx(&f, 1), request(&["g"])).await;
        assert_eq!(codes(&r), vec![("g", E::NonEmptyGroup.code())]);
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(sb("g"));
        leave.member_id = sb(&m);
        let l = leave_group::respond(&ctx(&f, 1), leave).await;
        assert_eq!(l.error_code, 0);
        wait_for_state(&f, "g", "Empty").await;
        let r = respond(&ctx(&f, 1), request(&["g"])).await;
        assert_eq!(codes(&r), vec![("g", 0)]);
        assert_eq!(
            f.broker.describe_group("g").err(),
            Some(crate::broker::BrokerError::Group(
                crate::broker::GroupError::GroupIdNotFound
            ))
        );
    }

    /// librdkafka 0081 (DescribeConsumerGroups): static members close without LeaveGroup, and
    /// DeleteGroups comes one session timeout after their last heartbeat. Kafka's timers have
    /// fired by then; the deadline must apply at that moment, not at the next periodic tick.
    #[tokio::test]
    async fn a_static_group_is_deletable_the_moment_its_session_ends() {
        let f = Fixture::with(&[("group.min.session.timeout.ms", "500")]).await;
        for round in 0..3 {
            let g = format!("static{round}");
            coordinator(&f, &g).await;
            let mut req = join_request(&g, "", &["t"]);
            req.group_instance_id = Some(sb("instance"));
            req.session_timeout_ms = 500;
            let j = join(&f, 5, req).await;
            assert_eq!(j.error_code, 0, "join: {j:?}");
            let member = j.member_id.to_string();
            let mut s = sync_request(&g, &member, j.generation_id, &[(&member, b"a")]);
            s.group_instance_id = Some(sb("instance"));
            assert_eq!(sync(&f, 3, s).await.error_code, 0);
            // The sync was the member's last sign of life; its session ends 500 ms later.
            let expiry = std::time::Instant::now() + std::time::Duration::from_millis(500);
            tokio::time::sleep_until((expiry + std::time::Duration::from_millis(2)).into()).await;
            let r = respond(&ctx(&f, 2), request(&[&g])).await;
            assert_eq!(codes(&r), vec![(g.as_str(), 0)], "round {round}");
        }
    }

    #[tokio::test]
    async fn errors() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 2), request(&["early"])).await;
        assert_eq!(codes(&r), vec![("early", E::NotCoordinator.code())]);
        stable_group(&f, "busy", &["t"]).await;
        let long = "x".repeat(1025);
        let r = respond(&ctx(&f, 2), request(&["busy", "nope", "", &long])).await;
        assert_encodes(&r, 2);
        assert_eq!(
            codes(&r),
            vec![
                ("busy", E::NonEmptyGroup.code()),
                ("nope", E::GroupIdNotFound.code()),
                // The empty id is valid for DeleteGroups (as in Kafka), just unknown.
                ("", E::GroupIdNotFound.code()),
                (long.as_str(), E::InvalidGroupId.code()),
            ]
        );
    }
}

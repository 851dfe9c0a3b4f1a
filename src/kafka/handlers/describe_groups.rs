//! DescribeGroups (key 15), v0–v6. An unknown group is reported as Dead (v6: with
//! GROUP_ID_NOT_FOUND, as Kafka 4 does). A group the principal may not DESCRIBE is answered
//! GROUP_AUTHORIZATION_FAILED with empty fields, as Kafka's `groupError`.

use super::sb;
use crate::broker::GroupError;
use crate::broker::{BrokerError, GroupState};
use crate::kafka::authz::{Authz, Resource};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

/// The versions of DescribeGroups this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

/// Answers one DescribeGroups request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeGroupsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let authz = Authz::new(ctx);
    let mut r = DescribeGroupsResponse::default();
    for id in req.groups {
        let mut dg = DescribedGroup::default();
        dg.group_id = GroupId(id.0.clone());
        if !authz.group(Operation::Describe, &id.0) {
            let e = BrokerError::GroupAuthorizationFailed;
            dg.error_code = code(&e);
            if v >= 6 {
                dg.error_message = Some(sb(&e.to_string()));
            }
            r.groups.push(dg);
            continue;
        }
        let res = ctx.broker.describe_group(&id.0);
        match res {
            Ok(d) => {
                dg.group_state = sb(d.state.as_str());
                dg.protocol_type = sb(&d.protocol_type);
                dg.protocol_data = sb(&d.protocol_name);
                for m in d.members {
                    let mut dm = DescribedGroupMember::default();
                    dm.member_id = sb(&m.member_id);
                    if v >= 4 {
                        dm.group_instance_id = m.group_instance_id.as_deref().map(sb);
                    }
                    dm.client_id = sb(&m.client_id);
                    dm.client_host = sb(&m.client_host);
                    dm.member_metadata = m.metadata;
                    dm.member_assignment = m.assignment;
                    dg.members.push(dm);
                }
            }
            Err(BrokerError::Group(GroupError::GroupIdNotFound)) => {
                dg.group_state = sb(GroupState::Dead.as_str());
                if v >= 6 {
                    dg.error_code = code(&BrokerError::Group(GroupError::GroupIdNotFound));
                    dg.error_message = Some(sb(&format!("Group {} not found.", &*id.0)));
                }
            }
            Err(e) => {
                dg.error_code = code(&e);
                dg.group_state = sb(GroupState::Dead.as_str());
                if v >= 6 {
                    dg.error_message = Some(sb(&e.to_string()));
                }
            }
        }
        if v >= 3 {
            dg.authorized_operations =
                authz.operations(Resource::Group, &id.0, req.include_authorized_operations);
        }
        r.groups.push(dg);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{
        assert_encodes, coordinator, ctx, join, join_request, stable_group, stable_static_group,
        subscription,
    };
    use kafka_protocol::ResponseError as E;

    fn request(groups: &[&str]) -> DescribeGroupsRequest {
        let mut r = DescribeGroupsRequest::default();
        r.groups = groups.iter().map(|g| GroupId(sb(g))).collect();
        r
    }

    #[tokio::test]
    async fn a_stable_group_with_its_members_at_every_version() {
        let f = Fixture::new().await;
        let (m, _) = stable_group(&f, "g", &["t"]).await;
        let (s, _) = stable_static_group(&f, "s", "inst", &["t"]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request(&["g", "s"]));
            assert_encodes(&r, v);
            let g = &r.groups[0];
            assert_eq!(
                (
                    g.error_code,
                    g.group_id.as_str(),
                    g.group_state.as_str(),
                    g.protocol_type.as_str(),
                    g.protocol_data.as_str()
                ),
                (0, "g", "Stable", "consumer", "range"),
                "v{v}"
            );
            assert_eq!(g.members.len(), 1);
            let mm = &g.members[0];
            assert_eq!(
                (
                    mm.member_id.as_str(),
                    mm.client_id.as_str(),
                    mm.client_host.as_str()
                ),
                (m.as_str(), "test", "/127.0.0.1")
            );
            assert_eq!(&mm.member_metadata[..], &subscription(&["t"])[..]);
            assert_eq!(&mm.member_assignment[..], b"a1");
            assert_eq!(mm.group_instance_id, None);
            let sm = &r.groups[1].members[0];
            assert_eq!(sm.member_id.as_str(), s.as_str());
            assert_eq!(
                sm.group_instance_id.as_ref().map(|i| i.as_str()),
                (v >= 4).then_some("inst"),
                "instance ids from v4"
            );
        }
    }

    #[tokio::test]
    async fn a_rebalancing_group_shows_no_protocol_or_assignments() {
        let f = Fixture::new().await;
        coordinator(&f, "g").await;
        let j = join(&f, 3, join_request("g", "", &["t"])).await;
        let r = respond(&ctx(&f, 1), request(&["g"]));
        let g = &r.groups[0];
        assert_eq!(
            (g.group_state.as_str(), g.protocol_data.as_str()),
            ("CompletingRebalance", "")
        );
        assert_eq!(g.members[0].member_id.as_str(), j.member_id.as_str());
        assert!(g.members[0].member_metadata.is_empty());
        assert!(g.members[0].member_assignment.is_empty());
    }

    #[tokio::test]
    async fn unknown_groups_are_dead_and_not_found_from_v6() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 0), request(&["early"]));
        assert_eq!(
            (r.groups[0].error_code, r.groups[0].group_state.as_str()),
            (E::NotCoordinator.code(), "Dead")
        );
        coordinator(&f, "g").await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request(&["nope"]));
            assert_encodes(&r, v);
            let g = &r.groups[0];
            assert_eq!(
                (g.group_id.as_str(), g.group_state.as_str()),
                ("nope", "Dead")
            );
            assert!(g.members.is_empty());
            if v >= 6 {
                assert_eq!(g.error_code, E::GroupIdNotFound.code());
                assert!(g.error_message.is_some());
            } else {
                assert_eq!((g.error_code, g.error_message.clone()), (0, None));
            }
        }
    }

    /// KIP-430: the group operations (no authorizer) when asked, from v3; "omitted" otherwise.
    #[tokio::test]
    async fn authorized_operations_when_asked() {
        let f = Fixture::new().await;
        stable_group(&f, "g", &["t"]).await;
        for v in 3..=VERSIONS.max {
            let mut req = request(&["g", "unknown"]);
            let r = respond(&ctx(&f, v), req.clone());
            assert!(r.groups.iter().all(|g| g.authorized_operations == i32::MIN));
            req.include_authorized_operations = true;
            let r = respond(&ctx(&f, v), req);
            assert_encodes(&r, v);
            assert!(
                r.groups.iter().all(|g| g.authorized_operations == 328),
                "v{v}"
            );
        }
    }
}

//! ListGroups (key 16), v0–v5: the groups this node coordinates; states filter (v4+), types
//! filter (v5; every group here is "classic").
//!
//! Authorization (Kafka's): with DESCRIBE on the cluster every group is listed, else only
//! the groups the principal may DESCRIBE.

use super::sb;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

/// The versions of ListGroups this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// Answers one ListGroups request.
pub(crate) async fn handle(ctx: RequestContext, req: ListGroupsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let v = ctx.api_version;
    let mut r = ListGroupsResponse::default();
    let states: Vec<String> = if v >= 4 {
        req.states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if v >= 5 {
        req.types_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    if !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return r;
    }
    let authz = Authz::new(ctx);
    let all = authz.cluster(Operation::Describe);
    match ctx.broker.list_groups() {
        Err(e) => r.error_code = code(&e),
        Ok(groups) => {
            for g in groups {
                if !all && !authz.group(Operation::Describe, &g.group_id) {
                    continue;
                }
                if !states.is_empty() && !states.contains(&g.state.as_str().to_ascii_lowercase()) {
                    continue;
                }
                let mut lg = ListedGroup::default();
                lg.group_id = GroupId(sb(&g.group_id));
                lg.protocol_type = sb(&g.protocol_type);
                if v >= 4 {
                    lg.group_state = sb(g.state.as_str());
                }
                if v >= 5 {
                    lg.group_type = sb("classic");
                }
                r.groups.push(lg);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, commit_standalone, ctx, stable_group};

    fn request(states: &[&str], types: &[&str]) -> ListGroupsRequest {
        let mut r = ListGroupsRequest::default();
        r.states_filter = states.iter().map(|s| sb(s)).collect();
        r.types_filter = types.iter().map(|s| sb(s)).collect();
        r
    }

    fn rows(r: &ListGroupsResponse) -> Vec<(&str, &str, &str, &str)> {
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.as_str(),
                    g.protocol_type.as_str(),
                    g.group_state.as_str(),
                    g.group_type.as_str(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn nothing_before_any_group() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 3), request(&[], &[]));
        assert_eq!((r.error_code, r.groups.len()), (0, 0));
    }

    #[tokio::test]
    async fn lists_groups_with_state_and_type_by_version() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        stable_group(&f, "b-consumers", &["t"]).await;
        commit_standalone(&f, "a-standalone", &[("t", 0, 5)]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request(&[], &[]));
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0);
            let (empty, stable, kind) = match v {
                0..=3 => ("", "", ""),
                4 => ("Empty", "Stable", ""),
                _ => ("Empty", "Stable", "classic"),
            };
            assert_eq!(
                rows(&r),
                vec![
                    ("a-standalone", "", empty, kind),
                    ("b-consumers", "consumer", stable, kind),
                ],
                "v{v}"
            );
        }
    }

    #[tokio::test]
    async fn state_filter_from_v4_and_type_filter_from_v5() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        stable_group(&f, "b", &["t"]).await;
        commit_standalone(&f, "a", &[("t", 0, 5)]).await;
        let ids = |r: &ListGroupsResponse| -> Vec<String> {
            r.groups.iter().map(|g| g.group_id.to_string()).collect()
        };
        assert_eq!(
            ids(&respond(&ctx(&f, 4), request(&["stable"], &[]))),
            vec!["b"]
        );
        assert_eq!(
            ids(&respond(&ctx(&f, 4), request(&["Empty"], &[]))),
            vec!["a"]
        );
        assert!(ids(&respond(&ctx(&f, 4), request(&["Dead"], &[]))).is_empty());
        // v3 has no state filter.
        assert_eq!(
            ids(&respond(&ctx(&f, 3), request(&["stable"], &[]))).len(),
            2
        );
        assert_eq!(
            ids(&respond(&ctx(&f, 5), request(&[], &["Classic"]))).len(),
            2
        );
        assert!(ids(&respond(&ctx(&f, 5), request(&[], &["consumer"]))).is_empty());
        // v4 has no type filter.
        assert_eq!(
            ids(&respond(&ctx(&f, 4), request(&[], &["consumer"]))).len(),
            2
        );
    }
}

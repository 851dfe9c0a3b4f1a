//! SyncGroup (key 14), v0–v5. Followers wait for the leader's assignment, so the answer comes
//! from a deferred task.
//!
//! Authorization (Kafka's): READ on the group, else GROUP_AUTHORIZATION_FAILED.

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
    let res = match super::may_read_group(ctx, group_id) {
        Ok(()) => ctx.broker.sync_group(group_id, params).await,
        Err(e) => Err(e),
    };
    match res {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{
        assert_encodes, coordinator, ctx, join, join_request, later, replace_static_member,
        stable_group, stable_static_group, sync, sync_request, wait_for_state,
    };
    use kafka_protocol::messages::JoinGroupResponse;
    use kafka_protocol::ResponseError as E;

    fn name(s: &Option<kafka_protocol::protocol::StrBytes>) -> Option<&str> {
        s.as_ref().map(|x| x.as_str())
    }

    #[tokio::test]
    async fn the_leader_sync_completes_the_generation_at_every_version() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let g = format!("g{v}");
            coordinator(&f, &g).await;
            let j = join(&f, 3, join_request(&g, "", &["t"])).await;
            let m = j.member_id.to_string();
            let mut req = sync_request(&g, &m, j.generation_id, &[(&m, b"mine")]);
            if v >= 5 {
                req.protocol_type = Some(sb("consumer"));
                req.protocol_name = Some(sb("range"));
            }
            let r = sync(&f, v, req).await;
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0, "v{v}");
            assert_eq!(&r.assignment[..], b"mine");
            assert_eq!(name(&r.protocol_type), (v >= 5).then_some("consumer"));
            assert_eq!(name(&r.protocol_name), (v >= 5).then_some("range"));
            wait_for_state(&f, &g, "Stable").await;
            // In a Stable group, SyncGroup answers the stored assignment at once.
            let again = sync(&f, v, sync_request(&g, &m, j.generation_id, &[])).await;
            assert_eq!((again.error_code, &again.assignment[..]), (0, &b"mine"[..]));
        }
    }

    async fn two_members(f: &Fixture, g: &str) -> (JoinGroupResponse, JoinGroupResponse) {
        let (a, _) = stable_group(f, g, &["t"]).await;
        let b = join_group_handle(f, g).await;
        wait_for_state(f, g, "PreparingRebalance").await;
        let ra = join(f, 3, join_request(g, &a, &["t"])).await;
        let rb = match later(b).await {
            ResponseKind::JoinGroup(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!((ra.error_code, rb.error_code), (0, 0));
        (ra, rb)
    }

    async fn join_group_handle(f: &Fixture, g: &str) -> crate::kafka::reply::Reply {
        crate::kafka::handlers::join_group::handle(ctx(f, 3), join_request(g, "", &["t"])).await
    }

    #[tokio::test]
    async fn followers_wait_for_the_leaders_assignment() {
        let f = Fixture::new().await;
        let (leader, follower) = two_members(&f, "g").await;
        let (l, fo) = (leader.member_id.to_string(), follower.member_id.to_string());
        let gen = leader.generation_id;
        let held = handle(ctx(&f, 4), sync_request("g", &fo, gen, &[])).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let Reply::Later(held) = held else {
            panic!("SyncGroup answers later")
        };
        assert!(!held.is_finished(), "the follower waits for the leader");
        let r = sync(
            &f,
            4,
            sync_request("g", &l, gen, &[(&l, b"L"), (&fo, b"F")]),
        )
        .await;
        assert_eq!((r.error_code, &r.assignment[..]), (0, &b"L"[..]));
        let r = match held.await.expect("task") {
            Some(ResponseKind::SyncGroup(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!((r.error_code, &r.assignment[..]), (0, &b"F"[..]));
    }

    #[tokio::test]
    async fn errors() {
        let f = Fixture::new().await;
        let r = sync(&f, 3, sync_request("early", "m", 1, &[])).await;
        assert_eq!(r.error_code, E::NotCoordinator.code());
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        let mut wrong_name = sync_request("g", &m, gen, &[]);
        wrong_name.protocol_name = Some(sb("roundrobin"));
        let mut wrong_type = sync_request("g", &m, gen, &[]);
        wrong_type.protocol_type = Some(sb("connect"));
        let cases = [
            (sync_request("", &m, gen, &[]), E::InvalidGroupId),
            (sync_request("nope", &m, gen, &[]), E::UnknownMemberId),
            (sync_request("g", "ghost", gen, &[]), E::UnknownMemberId),
            (sync_request("g", &m, gen + 1, &[]), E::IllegalGeneration),
        ];
        for v in VERSIONS.min..=VERSIONS.max {
            for (req, want) in &cases {
                let r = sync(&f, v, req.clone()).await;
                assert_encodes(&r, v);
                assert_eq!(r.error_code, want.code(), "v{v} {req:?}");
                assert!(r.assignment.is_empty());
            }
            // The protocol checks only exist from v5.
            let want = if v >= 5 {
                E::InconsistentGroupProtocol.code()
            } else {
                0
            };
            assert_eq!(
                sync(&f, v, wrong_name.clone()).await.error_code,
                want,
                "v{v}"
            );
            assert_eq!(
                sync(&f, v, wrong_type.clone()).await.error_code,
                want,
                "v{v}"
            );
        }
        // While a rebalance prepares, the old generation cannot sync.
        let _b = join_group_handle(&f, "g").await;
        wait_for_state(&f, "g", "PreparingRebalance").await;
        let r = sync(&f, 3, sync_request("g", &m, gen, &[])).await;
        assert_eq!(r.error_code, E::RebalanceInProgress.code());
    }

    #[tokio::test]
    async fn a_replaced_static_member_is_fenced_from_v3() {
        let f = Fixture::new().await;
        let (old, gen) = stable_static_group(&f, "s", "inst", &["t"]).await;
        let new = replace_static_member(&f, "s", "inst").await;
        assert_ne!(old, new);
        let mut req = sync_request("s", &old, gen, &[]);
        req.group_instance_id = Some(sb("inst"));
        let r = sync(&f, 3, req.clone()).await;
        assert_eq!(r.error_code, E::FencedInstanceId.code());
        // v2 does not send the instance id: the old member is simply unknown.
        let r = sync(&f, 2, req).await;
        assert_eq!(r.error_code, E::UnknownMemberId.code());
        let mut ok = sync_request("s", &new, gen, &[]);
        ok.group_instance_id = Some(sb("inst"));
        let r = sync(&f, 3, ok).await;
        assert_eq!((r.error_code, &r.assignment[..]), (0, &b"s1"[..]));
    }
}

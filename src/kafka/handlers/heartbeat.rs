//! Heartbeat (key 12), v0–v4: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.
//!
//! Authorization (Kafka's): READ on the group, else GROUP_AUTHORIZATION_FAILED.

use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

/// The versions of Heartbeat this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Answers one Heartbeat request.
pub(crate) async fn handle(ctx: RequestContext, req: HeartbeatRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let instance = if ctx.api_version >= 3 {
        req.group_instance_id.as_ref().map(|s| s.to_string())
    } else {
        None
    };
    let mut r = HeartbeatResponse::default();
    let res = super::may_read_group(ctx, &req.group_id.0).and_then(|()| {
        ctx.broker.heartbeat(
            &req.group_id.0,
            &req.member_id,
            instance.as_deref(),
            req.generation_id,
        )
    });
    if let Err(e) = res {
        r.error_code = code(&e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{
        assert_encodes, ctx, join_request, replace_static_member, stable_group,
        stable_static_group, wait_for_state,
    };
    use crate::kafka::handlers::{join_group, sb};
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::ResponseError as E;

    fn request(
        group: &str,
        member: &str,
        generation: i32,
        instance: Option<&str>,
    ) -> HeartbeatRequest {
        let mut r = HeartbeatRequest::default();
        r.group_id = GroupId(sb(group));
        r.member_id = sb(member);
        r.generation_id = generation;
        r.group_instance_id = instance.map(sb);
        r
    }

    #[tokio::test]
    async fn members_of_the_current_generation_keep_their_session() {
        let f = Fixture::new().await;
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request("g", &m, gen, None));
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0, "v{v}");
        }
    }

    #[tokio::test]
    async fn errors() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 0), request("early", "m", 1, None));
        assert_eq!(r.error_code, E::NotCoordinator.code());
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            for (req, want) in [
                (request("", &m, gen, None), E::InvalidGroupId),
                (request("nope", &m, gen, None), E::UnknownMemberId),
                (request("g", "ghost", gen, None), E::UnknownMemberId),
                (request("g", &m, gen + 1, None), E::IllegalGeneration),
            ] {
                let r = respond(&ctx(&f, v), req.clone());
                assert_encodes(&r, v);
                assert_eq!(r.error_code, want.code(), "v{v} {req:?}");
            }
        }
        // A second member joining starts a rebalance: the first must rejoin.
        let _b = join_group::handle(ctx(&f, 3), join_request("g", "", &["t"])).await;
        wait_for_state(&f, "g", "PreparingRebalance").await;
        let r = respond(&ctx(&f, 1), request("g", &m, gen, None));
        assert_eq!(r.error_code, E::RebalanceInProgress.code());
    }

    #[tokio::test]
    async fn a_replaced_static_member_is_fenced_from_v3() {
        let f = Fixture::new().await;
        let (old, gen) = stable_static_group(&f, "s", "inst", &["t"]).await;
        let new = replace_static_member(&f, "s", "inst").await;
        let r = respond(&ctx(&f, 3), request("s", &old, gen, Some("inst")));
        assert_encodes(&r, 3);
        assert_eq!(r.error_code, E::FencedInstanceId.code());
        // Before v3 the instance id is not sent: the old id is just unknown.
        let r = respond(&ctx(&f, 2), request("s", &old, gen, Some("inst")));
        assert_eq!(r.error_code, E::UnknownMemberId.code());
        let r = respond(&ctx(&f, 4), request("s", &new, gen, Some("inst")));
        assert_eq!(r.error_code, 0);
    }
}

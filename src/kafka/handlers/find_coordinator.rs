//! FindCoordinator (key 10), v0–v6: the group's coordinator is the leader of its
//! `__consumer_offsets` partition; v4+ batches keys. Transactional ids get
//! COORDINATOR_NOT_AVAILABLE (transactions are not supported).

use super::sb;
use crate::broker::CoordinatorView;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

/// The versions of FindCoordinator this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

/// Answers one FindCoordinator request.
pub(crate) async fn handle(ctx: RequestContext, req: FindCoordinatorRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let v = ctx.api_version;
    let key_type = if v >= 1 { req.key_type } else { 0 };
    let mut r = FindCoordinatorResponse::default();
    if v >= 4 {
        for key in req.coordinator_keys {
            let res = ctx
                .broker
                .find_coordinator(key_type, &key, &ctx.listener)
                .await;
            let mut c = Coordinator::default();
            c.key = key;
            match res {
                Ok(view) => set_view(&mut c.node_id, &mut c.host, &mut c.port, &view),
                Err(e) => {
                    c.error_code = code(&e);
                    c.error_message = Some(sb(&e.to_string()));
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                }
            }
            r.coordinators.push(c);
        }
        return r;
    }
    match ctx
        .broker
        .find_coordinator(key_type, &req.key, &ctx.listener)
        .await
    {
        Ok(view) => set_view(&mut r.node_id, &mut r.host, &mut r.port, &view),
        Err(e) => {
            r.error_code = code(&e);
            if v >= 1 {
                r.error_message = Some(sb(&e.to_string()));
            }
            r.node_id = BrokerId(-1);
            r.port = -1;
        }
    }
    r
}

fn set_view(
    node: &mut BrokerId,
    host: &mut kafka_protocol::protocol::StrBytes,
    port: &mut i32,
    view: &CoordinatorView,
) {
    *node = BrokerId(view.node_id.0);
    *host = sb(&view.host);
    *port = i32::from(view.port);
}

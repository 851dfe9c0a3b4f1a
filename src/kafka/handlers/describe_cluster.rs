//! DescribeCluster (key 60), v0–v1: cluster id, controller and live brokers.

use super::sb;
use crate::kafka::context::RequestContext;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError as E;

/// The versions of DescribeCluster this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

/// Answers one DescribeCluster request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeClusterRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let v = ctx.api_version;
    let mut r = DescribeClusterResponse::default();
    if v >= 1 {
        if req.endpoint_type != 1 {
            r.error_code = E::UnsupportedEndpointType.code();
            r.error_message = Some(sb("only broker endpoints (type 1) are served"));
            return r;
        }
        r.endpoint_type = 1;
    }
    let image = ctx.broker.metadata_view();
    r.cluster_id = sb(image.cluster_id.as_deref().unwrap_or(""));
    r.controller_id = BrokerId(ctx.broker.controller_id().map_or(-1, |n| n.0));
    r.cluster_authorized_operations = i32::MIN;
    r.brokers = image
        .live_brokers()
        .filter_map(|b| {
            let ep = b.endpoints.iter().find(|e| e.listener == ctx.listener)?;
            let mut d = DescribeClusterBroker::default();
            d.broker_id = BrokerId(b.node_id.0);
            d.host = sb(&ep.host);
            d.port = i32::from(ep.port);
            d.rack = b.rack.as_deref().map(sb);
            Some(d)
        })
        .collect();
    r
}

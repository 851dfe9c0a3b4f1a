//! DescribeCluster (key 60), v0–v1: cluster id, controller and live brokers.

use super::sb;
use crate::kafka::authz::Authz;
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
    let listed = |id: i32| image.live_brokers().any(|b| b.node_id.0 == id);
    // Only a controller listed among the brokers (see Metadata).
    r.controller_id = BrokerId(
        ctx.broker
            .controller_id()
            .map(|n| n.0)
            .filter(|id| listed(*id))
            .unwrap_or(-1),
    );
    r.cluster_authorized_operations =
        Authz::new(ctx).cluster_operations(req.include_cluster_authorized_operations);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};

    #[tokio::test]
    async fn answers_cluster_id_controller_and_brokers_on_the_listener() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), DescribeClusterRequest::default());
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0);
            assert_eq!(r.cluster_id.as_str(), "test-cluster");
            assert_eq!(r.controller_id, BrokerId(1));
            assert_eq!(r.cluster_authorized_operations, i32::MIN);
            assert_eq!(r.endpoint_type, 1);
            let brokers: Vec<(i32, &str, i32, Option<&str>)> = r
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.broker_id.0,
                        b.host.as_str(),
                        b.port,
                        b.rack.as_ref().map(|s| s.as_str()),
                    )
                })
                .collect();
            assert_eq!(brokers, vec![(1, "127.0.0.1", 9092, None)]);
        }
        // A listener this broker does not have: no endpoint to show.
        let mut other = ctx(&f, 0);
        other.listener = "SSL".into();
        let r = respond(&other, DescribeClusterRequest::default());
        assert!(r.brokers.is_empty());
    }

    #[tokio::test]
    async fn only_broker_endpoints_are_served_from_v1() {
        let f = Fixture::new().await;
        let mut req = DescribeClusterRequest::default();
        req.endpoint_type = 2; // controller endpoints
        let r = respond(&ctx(&f, 1), req.clone());
        assert_encodes(&r, 1);
        assert_eq!(r.error_code, E::UnsupportedEndpointType.code());
        assert!(r.error_message.is_some());
        assert!(r.brokers.is_empty());
        // v0 has no endpoint type: always brokers.
        let r = respond(&ctx(&f, 0), req);
        assert_eq!((r.error_code, r.brokers.len()), (0, 1));
    }

    /// librdkafka 0081 DescribeCluster (KIP-430): every cluster operation when asked (no
    /// authorizer), "omitted" otherwise.
    #[tokio::test]
    async fn authorized_operations_when_asked() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let mut req = DescribeClusterRequest::default();
            req.endpoint_type = 1;
            assert_eq!(
                respond(&ctx(&f, v), req.clone()).cluster_authorized_operations,
                i32::MIN
            );
            req.include_cluster_authorized_operations = true;
            let r = respond(&ctx(&f, v), req);
            assert_encodes(&r, v);
            assert_eq!(r.cluster_authorized_operations, 8096, "v{v}");
        }
    }
}

//! ApiVersions (key 18), v0–v4: answered from the API table. Unknown higher versions are
//! handled before decoding by the KIP-511 fallback in `connection`.

use crate::kafka::context::RequestContext;
use crate::kafka::dispatch::api_table;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

/// The versions of ApiVersions this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Answers one ApiVersions request.
pub(crate) async fn handle(ctx: RequestContext, req: ApiVersionsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(_ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = api_table()
        .iter()
        .map(|e| {
            let mut v = ApiVersion::default();
            v.api_key = e.key as i16;
            v.min_version = e.min;
            v.max_version = e.max;
            v
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;

    #[tokio::test]
    async fn advertises_exactly_the_route_table() {
        let f = Fixture::new().await;
        let r = respond(
            &RequestContext::test(&f.broker, 3),
            ApiVersionsRequest::default(),
        );
        assert_eq!(r.error_code, 0);
        let table = crate::kafka::dispatch::api_table();
        assert_eq!(r.api_keys.len(), table.len());
        for e in table {
            let k = r
                .api_keys
                .iter()
                .find(|k| k.api_key == e.key as i16)
                .expect("every routed API is advertised");
            assert_eq!((k.min_version, k.max_version), (e.min, e.max));
        }
        // librdkafka relies on Produce being advertised.
        assert!(r.api_keys.iter().any(|k| k.api_key == 0));
    }
}

//! ApiVersions (key 18), v0–v4: answered from the API table. Unknown higher versions are
//! handled before decoding by the KIP-511 fallback in `connection`.
use crate::kafka::reply::{Reply, Versions};

use crate::kafka::context::RequestContext;
use crate::kafka::dispatch::api_table;
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

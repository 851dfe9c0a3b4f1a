//! ApiVersions (key 18), v0–v4: answered from the API table. Unknown higher versions are
//! handled before decoding by the KIP-511 fallback in `connection`.

use crate::kafka::context::RequestContext;
use crate::kafka::dispatch::api_table;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

pub(crate) fn handle(_ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
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

//! ApiVersions (key 18), v0–v4: answered from the API table. Unknown higher versions are
//! handled before decoding by the KIP-511 fallback in `connection`. v3+ also carries Kafka's
//! feature levels (KIP-584): `transaction.version` supported 0–2 and finalized at
//! `transaction.version` (config), which is what makes Kafka 4 clients use transaction
//! version 2; the finalized epoch is the metadata image's applied index, so it only grows.

use crate::kafka::context::RequestContext;
use crate::kafka::dispatch::api_table;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

/// The versions of ApiVersions this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Answers one ApiVersions request.
pub(crate) async fn handle(ctx: RequestContext, req: ApiVersionsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

/// Kafka's feature name for the transaction protocol's version.
pub(crate) const TRANSACTION_VERSION: &str = "transaction.version";
/// The highest `transaction.version` level the coordinator serves.
const TRANSACTION_VERSION_MAX: i16 = 2;

pub(crate) fn respond(ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    if ctx.api_version >= 3 {
        let mut supported = SupportedFeatureKey::default();
        supported.name = super::sb(TRANSACTION_VERSION);
        supported.min_version = 0;
        supported.max_version = TRANSACTION_VERSION_MAX;
        r.supported_features = vec![supported];
        let level = ctx.broker.config().txn.version;
        debug_assert!((0..=TRANSACTION_VERSION_MAX).contains(&level));
        r.finalized_features_epoch =
            i64::try_from(ctx.broker.metadata_view().applied_index).unwrap_or(i64::MAX);
        if level > 0 {
            // Kafka lists a feature as finalized only above level 0.
            let mut finalized = FinalizedFeatureKey::default();
            finalized.name = super::sb(TRANSACTION_VERSION);
            finalized.min_version_level = level;
            finalized.max_version_level = level;
            r.finalized_features = vec![finalized];
        }
    }
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

    #[tokio::test]
    async fn v3_lists_the_transaction_version_feature() {
        let f = Fixture::new().await;
        let r = respond(
            &RequestContext::test(&f.broker, 3),
            ApiVersionsRequest::default(),
        );
        crate::kafka::handlers::test_util::assert_encodes(&r, 3);
        let s = &r.supported_features[0];
        assert_eq!(
            (s.name.as_str(), s.min_version, s.max_version),
            (TRANSACTION_VERSION, 0, 2)
        );
        let fin = &r.finalized_features[0];
        assert_eq!(
            (
                fin.name.as_str(),
                fin.min_version_level,
                fin.max_version_level
            ),
            (TRANSACTION_VERSION, 2, 2),
            "the default level"
        );
        assert!(r.finalized_features_epoch >= 0);
        let old = respond(
            &RequestContext::test(&f.broker, 2),
            ApiVersionsRequest::default(),
        );
        assert!(old.supported_features.is_empty() && old.finalized_features.is_empty());
    }
}

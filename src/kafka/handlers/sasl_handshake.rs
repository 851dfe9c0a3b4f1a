//! SaslHandshake (key 17), v0–v1, once a connection needs no (more) authentication: on a
//! PLAINTEXT listener, or after a SASL connection authenticated without re-authentication
//! enabled. Kafka answers ILLEGAL_SASL_STATE there. Before authentication, and for KIP-368
//! re-authentication, the connection's authenticator (`kafka/sasl.rs`) takes these frames.

use crate::kafka::context::RequestContext;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::RequestShape;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::ResponseError;

/// The versions of SaslHandshake served (v0: raw SASL tokens follow; v1: SaslAuthenticate).
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

impl RequestShape for SaslHandshakeRequest {}

/// Answers a SaslHandshake that arrives when no authentication is in progress.
pub(crate) async fn handle(_ctx: RequestContext, _req: SaslHandshakeRequest) -> Reply {
    let mut r = SaslHandshakeResponse::default();
    r.error_code = ResponseError::IllegalSaslState.code();
    Reply::now(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::ResponseKind;

    #[tokio::test]
    async fn illegal_state_without_authentication_in_progress() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let Reply::Now(ResponseKind::SaslHandshake(r)) =
                handle(ctx(&f, v), SaslHandshakeRequest::default()).await
            else {
                panic!("immediate SaslHandshake response expected")
            };
            assert_encodes(&r, v);
            assert_eq!(r.error_code, ResponseError::IllegalSaslState.code());
        }
    }
}

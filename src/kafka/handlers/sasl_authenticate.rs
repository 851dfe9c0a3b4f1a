//! SaslAuthenticate (key 36), v0–v2, once a connection needs no (more) authentication (see
//! `sasl_handshake.rs`): ILLEGAL_SASL_STATE with Kafka's message. During authentication the
//! connection's authenticator (`kafka/sasl.rs`) answers these frames.

use crate::kafka::context::RequestContext;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::RequestShape;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// The versions of SaslAuthenticate served (v1 adds the session lifetime of KIP-368).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

impl RequestShape for SaslAuthenticateRequest {}

/// Answers a SaslAuthenticate that arrives when no authentication is in progress.
pub(crate) async fn handle(_ctx: RequestContext, _req: SaslAuthenticateRequest) -> Reply {
    let mut r = SaslAuthenticateResponse::default();
    r.error_code = ResponseError::IllegalSaslState.code();
    r.error_message = Some(StrBytes::from_static_str(
        "SaslAuthenticate request received after successful authentication",
    ));
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
            let Reply::Now(ResponseKind::SaslAuthenticate(r)) =
                handle(ctx(&f, v), SaslAuthenticateRequest::default()).await
            else {
                panic!("immediate SaslAuthenticate response expected")
            };
            assert_encodes(&r, v);
            assert_eq!(r.error_code, ResponseError::IllegalSaslState.code());
        }
    }
}

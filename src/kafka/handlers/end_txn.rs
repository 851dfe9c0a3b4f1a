//! EndTxn (key 26), v0–v4: commits or aborts the producer's open transaction. The coordinator
//! answers once the decision (PrepareCommit / PrepareAbort) is durable; the markers follow.
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2, as Kafka answers. (v5, transaction
//! version 2's epoch bump on every end, is not served.)
//!
//! Authorization (Kafka's): WRITE on the transactional id, else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::fenced_code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::RequestShape;
use crate::security::acl::Operation;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

/// The versions of EndTxn this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

impl RequestShape for EndTxnRequest {}

/// Answers one EndTxn request.
pub(crate) async fn handle(ctx: RequestContext, req: EndTxnRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    let id = req.transactional_id.0.to_string();
    let result = if Authz::new(ctx).transactional_id(Operation::Write, &id) {
        ctx.broker
            .end_txn(&id, req.producer_id.0, req.producer_epoch, req.committed)
            .await
    } else {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    };
    let mut r = EndTxnResponse::default();
    r.error_code = result
        .as_ref()
        .err()
        .map_or(0, |e| fenced_code(e, ctx.api_version, 2));
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    r
}

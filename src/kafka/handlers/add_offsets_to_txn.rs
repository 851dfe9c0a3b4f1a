//! AddOffsetsToTxn (key 25), v0–v4: adds the group's `__consumer_offsets` partition to the
//! producer's transaction, so that its TxnOffsetCommit offsets commit or abort with it.
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2, as Kafka answers.
//!
//! Authorization (Kafka's): WRITE on the transactional id, else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED; READ on the group, else GROUP_AUTHORIZATION_FAILED.

use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::fenced_code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::RequestShape;
use crate::security::acl::Operation;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

/// The versions of AddOffsetsToTxn this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

impl RequestShape for AddOffsetsToTxnRequest {}

/// Answers one AddOffsetsToTxn request.
pub(crate) async fn handle(ctx: RequestContext, req: AddOffsetsToTxnRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let id = req.transactional_id.0.to_string();
    let group = req.group_id.0.to_string();
    let authz = Authz::new(ctx);
    let result = if !authz.transactional_id(Operation::Write, &id) {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    } else if !authz.group(Operation::Read, &group) {
        Err(BrokerError::GroupAuthorizationFailed)
    } else {
        ctx.broker
            .add_offsets_to_txn(&id, req.producer_id.0, req.producer_epoch, &group)
            .await
    };
    let mut r = AddOffsetsToTxnResponse::default();
    r.error_code = result
        .as_ref()
        .err()
        .map_or(0, |e| fenced_code(e, ctx.api_version, 2));
    r
}

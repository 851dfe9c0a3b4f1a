//! EndTxn (key 26), v0–v5: commits or aborts the producer's open transaction. The coordinator
//! answers once the decision (PrepareCommit / PrepareAbort) is durable; the markers follow.
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2, as Kafka answers. v5 is transaction
//! version 2 (KIP-890 part 2): the epoch is bumped on every end and the answer carries the
//! producer id and epoch of the client's next transaction (`txn/state.rs` has the rules).
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
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// The first version of transaction version 2.
const TV2_VERSION: i16 = 5;

impl RequestShape for EndTxnRequest {}

/// Answers one EndTxn request.
pub(crate) async fn handle(ctx: RequestContext, req: EndTxnRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    let id = req.transactional_id.0.to_string();
    let tv2 = ctx.api_version >= TV2_VERSION;
    let result = if Authz::new(ctx).transactional_id(Operation::Write, &id) {
        ctx.broker
            .end_txn(
                &id,
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
                tv2,
            )
            .await
    } else {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    };
    let mut r = EndTxnResponse::default();
    let (pid, epoch) = match &result {
        Ok(next) if tv2 => *next,
        Ok(_) => (-1, -1),
        Err(e) => {
            r.error_code = fenced_code(e, ctx.api_version, 2);
            (-1, -1)
        }
    };
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r
}

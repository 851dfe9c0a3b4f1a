//! InitProducerId (key 22), v0–v5: producer ids for idempotent producers (transactions are
//! not supported yet).

use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

/// The versions of InitProducerId this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// Answers one InitProducerId request.
pub(crate) async fn handle(ctx: RequestContext, req: InitProducerIdRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let v = ctx.api_version;
    let (pid, epoch) = if v >= 3 {
        (req.producer_id.0, req.producer_epoch)
    } else {
        (-1, -1)
    };
    let txn = req.transactional_id.as_ref().map(|t| t.0.to_string());
    let mut r = InitProducerIdResponse::default();
    match ctx
        .broker
        .init_producer_id(txn.as_deref(), pid, epoch)
        .await
    {
        Ok((id, e)) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = e;
        }
        Err(err) => {
            r.error_code = code(&err);
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
        }
    }
    r
}

//! InitProducerId (key 22), v0–v5: producer ids for idempotent producers, and for
//! transactional ones from the id's transaction coordinator (epoch bump and fencing, an open
//! transaction aborted first, KIP-360's expected producer id and epoch from v3). PRODUCER_FENCED
//! is INVALID_PRODUCER_EPOCH below v4, as Kafka answers.
//!
//! Authorization (Kafka's, with KIP-679): with a transactional id, WRITE on it, else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED; without, IDEMPOTENT_WRITE on the cluster or WRITE on
//! some topic, else CLUSTER_AUTHORIZATION_FAILED.

use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::fenced_code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::{Operation, ResourceType};
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
    let authz = Authz::new(ctx);
    let denied = match &txn {
        Some(id) if !authz.transactional_id(Operation::Write, id) => {
            Some(BrokerError::TransactionalIdAuthorizationFailed)
        }
        None if !authz.cluster(Operation::IdempotentWrite)
            && !authz.any(Operation::Write, ResourceType::Topic) =>
        {
            Some(BrokerError::ClusterAuthorizationFailed)
        }
        _ => None,
    };
    let result = match denied {
        Some(e) => Err(e),
        None => {
            ctx.broker
                .init_producer_id(txn.as_deref(), req.transaction_timeout_ms, pid, epoch)
                .await
        }
    };
    match result {
        Ok((id, e)) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = e;
        }
        Err(err) => {
            r.error_code = fenced_code(&err, v, 4);
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::ResponseError as E;

    fn request(txn: Option<&str>, pid: i64, epoch: i16) -> InitProducerIdRequest {
        let mut r = InitProducerIdRequest::default();
        r.transactional_id = txn.map(|t| TransactionalId(super::super::sb(t)));
        r.producer_id = ProducerId(pid);
        r.producer_epoch = epoch;
        r.transaction_timeout_ms = 60_000;
        r
    }

    #[tokio::test]
    async fn issues_unique_ids_at_epoch_zero() {
        let f = Fixture::new().await;
        let mut seen = Vec::new();
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request(None, -1, -1)).await;
            assert_encodes(&r, v);
            assert_eq!((r.error_code, r.producer_epoch), (0, 0));
            assert!(r.producer_id.0 >= 0);
            seen.push(r.producer_id.0);
        }
        // An empty transactional id is an idempotent producer too.
        let r = respond(&ctx(&f, 2), request(Some(""), -1, -1)).await;
        assert_eq!(r.error_code, 0);
        seen.push(r.producer_id.0);
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "ids repeat: {seen:?}");
    }

    #[tokio::test]
    async fn existing_producers_get_their_epoch_bumped_from_v3() {
        let f = Fixture::new().await;
        let first = respond(&ctx(&f, 4), request(None, -1, -1)).await;
        let pid = first.producer_id.0;
        let r = respond(&ctx(&f, 4), request(None, pid, 0)).await;
        assert_encodes(&r, 4);
        assert_eq!(
            (r.error_code, r.producer_id.0, r.producer_epoch),
            (0, pid, 1)
        );
        // At the end of the epoch range a new id is issued.
        let r = respond(&ctx(&f, 3), request(None, pid, i16::MAX - 1)).await;
        assert_eq!(r.producer_epoch, 0);
        assert_ne!(r.producer_id.0, pid);
        // v2 has no producer id / epoch fields: always a new id.
        let r = respond(&ctx(&f, 2), request(None, pid, 0)).await;
        assert_eq!(r.producer_epoch, 0);
        assert_ne!(r.producer_id.0, pid);
    }

    #[tokio::test]
    async fn transactional_ids_get_their_coordinators_producer_and_fence_older_ones() {
        let f = Fixture::new().await;
        f.txn_coordinator_ready("txn-1").await;
        let first = respond(&ctx(&f, 3), request(Some("txn-1"), -1, -1)).await;
        assert_encodes(&first, 3);
        assert_eq!((first.error_code, first.producer_epoch), (0, 0));
        // A second producer with the same id: same producer id, the next epoch.
        let second = respond(&ctx(&f, 3), request(Some("txn-1"), -1, -1)).await;
        assert_eq!(
            (second.error_code, second.producer_id, second.producer_epoch),
            (0, first.producer_id, 1)
        );
        // KIP-360: a stale expected producer is fenced (PRODUCER_FENCED from v4).
        for (v, code) in [(3, E::InvalidProducerEpoch), (4, E::ProducerFenced)] {
            let r = respond(&ctx(&f, v), request(Some("txn-1"), 999_999, 0)).await;
            assert_encodes(&r, v);
            assert_eq!((r.error_code, r.producer_id.0), (code.code(), -1), "v{v}");
        }
        // A timeout over transaction.max.timeout.ms.
        let mut req = request(Some("txn-1"), -1, -1);
        req.transaction_timeout_ms = 900_001;
        let r = respond(&ctx(&f, 2), req).await;
        assert_eq!(r.error_code, E::InvalidTransactionTimeout.code());
    }
}

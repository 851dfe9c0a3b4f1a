//! ListTransactions (key 66), v0–v1: the transactional ids this node coordinates (what
//! `kafka-transactions.sh list` gathers from every broker), filtered by state names, producer
//! ids and (v1) a minimum open duration; unknown state names are echoed back as Kafka does.
//! At most `LISTED_MAX` ids per answer.
//!
//! Authorization (Kafka's): only ids the principal may DESCRIBE are listed.

use super::sb;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use crate::txn::records::TxnStatus;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use std::collections::BTreeSet;

/// The versions of ListTransactions this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

/// Ids listed in one answer.
const LISTED_MAX: usize = 100_000;

const STATES: [TxnStatus; 8] = [
    TxnStatus::Empty,
    TxnStatus::Ongoing,
    TxnStatus::PrepareCommit,
    TxnStatus::PrepareAbort,
    TxnStatus::CompleteCommit,
    TxnStatus::CompleteAbort,
    TxnStatus::Dead,
    TxnStatus::PrepareEpochFence,
];

impl RequestShape for ListTransactionsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self
                .state_filters
                .len()
                .saturating_add(self.producer_id_filters.len()),
            partitions: 0,
        }
    }
}

/// Answers one ListTransactions request.
pub(crate) async fn handle(ctx: RequestContext, req: ListTransactionsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut r = ListTransactionsResponse::default();
    let mut states = BTreeSet::new();
    for s in &req.state_filters {
        if STATES.iter().any(|k| k.name() == s.as_str()) {
            states.insert(s.to_string());
        } else {
            r.unknown_state_filters.push(s.clone());
        }
    }
    if !req.state_filters.is_empty() && states.is_empty() {
        return r;
    }
    let pids: BTreeSet<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration = if ctx.api_version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let now = crate::types::now_ms();
    let authz = Authz::new(ctx);
    match ctx.broker.txn().list(&states, &pids, LISTED_MAX) {
        Err(e) => r.error_code = code(&crate::broker::BrokerError::Txn(e)),
        Ok(listed) => {
            for d in listed {
                let open_long_enough = min_duration < 0
                    || (d.start_ms >= 0 && now.saturating_sub(d.start_ms) >= min_duration);
                if !open_long_enough
                    || !authz.transactional_id(Operation::Describe, &d.transactional_id)
                {
                    continue;
                }
                let mut s = TransactionState::default();
                s.transactional_id = TransactionalId(sb(&d.transactional_id));
                s.producer_id = ProducerId(d.producer_id);
                s.transaction_state = sb(d.state.name());
                r.transaction_states.push(s);
            }
        }
    }
    r
}

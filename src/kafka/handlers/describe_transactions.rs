//! DescribeTransactions (key 65), v0: what `kafka-transactions.sh describe` shows — per
//! transactional id its state, producer id and epoch, timeout, start time and partitions,
//! from this node's coordinator (NOT_COORDINATOR for ids it does not coordinate,
//! TRANSACTIONAL_ID_NOT_FOUND for unknown ones).
//!
//! Authorization (Kafka's): DESCRIBE on the transactional id, else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED; partitions of topics without DESCRIBE are left out.

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};
use std::collections::BTreeMap;

/// The versions of DescribeTransactions this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

impl RequestShape for DescribeTransactionsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.transactional_ids.len(),
            partitions: 0,
        }
    }
}

/// Answers one DescribeTransactions request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeTransactionsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let authz = Authz::new(ctx);
    let mut r = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let mut s = TransactionState::default();
        s.transactional_id = id.clone();
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        s.transaction_state = sb("");
        s.transaction_start_time_ms = -1;
        let res = if authz.transactional_id(Operation::Describe, &id.0) {
            ctx.broker.txn().describe(&id.0).map_err(BrokerError::Txn)
        } else {
            Err(BrokerError::TransactionalIdAuthorizationFailed)
        };
        match res {
            Err(e) => s.error_code = code(&e),
            Ok(d) => {
                s.transaction_state = sb(d.state.name());
                s.transaction_timeout_ms = d.timeout_ms;
                s.transaction_start_time_ms = d.start_ms;
                s.producer_id = ProducerId(d.producer_id);
                s.producer_epoch = d.producer_epoch;
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (t, p) in d.partitions {
                    if authz.topic(Operation::Describe, &t) {
                        by_topic.entry(t).or_default().push(p);
                    }
                }
                s.topics = by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        let mut td = TopicData::default();
                        td.topic = topic_name(&t);
                        td.partitions = ps;
                        td
                    })
                    .collect();
            }
        }
        r.transaction_states.push(s);
    }
    r
}

//! AddPartitionsToTxn (key 24), v0–v5: adds partitions to the producer's transaction before it
//! produces to them. v4 (node to node, KIP-890) batches transactions and has the verify-only
//! form: whether each partition is already in the producer's open transaction, nothing
//! written; a partition that is not gets TRANSACTION_ABORTABLE, the coordinator's own code at
//! v4 and v5 alike as Kafka 3.8+ answers (v5 only announces that the sender knows the code).
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2, as Kafka answers.
//!
//! Per partition, as Kafka: an unknown topic or partition gets UNKNOWN_TOPIC_OR_PARTITION and
//! an unauthorized topic TOPIC_AUTHORIZATION_FAILED, the others of the request then
//! OPERATION_NOT_ATTEMPTED; otherwise all share the coordinator's answer.
//!
//! Authorization (Kafka's): WRITE on the transactional id, else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED; WRITE on each topic; v4 needs CLUSTER_ACTION on the
//! cluster, else the top-level CLUSTER_AUTHORIZATION_FAILED.

use super::topic_name;
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::{code, fenced_code};
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use crate::txn::Tp;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError as E;
use std::collections::BTreeMap;

/// The versions of AddPartitionsToTxn this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

impl RequestShape for AddPartitionsToTxnRequest {
    fn shape(&self) -> Shape {
        let topics = self
            .v3_and_below_topics
            .iter()
            .chain(self.transactions.iter().flat_map(|t| t.topics.iter()));
        let (mut entries, mut partitions) = (self.transactions.len(), 0usize);
        for t in topics {
            entries = entries.saturating_add(1);
            partitions = partitions.saturating_add(t.partitions.len());
        }
        Shape {
            entries,
            partitions,
        }
    }
}

/// Answers one AddPartitionsToTxn request.
pub(crate) async fn handle(ctx: RequestContext, req: AddPartitionsToTxnRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let v = ctx.api_version;
    let mut r = AddPartitionsToTxnResponse::default();
    if v < 4 {
        r.results_by_topic_v3_and_below = one(
            ctx,
            &req.v3_and_below_transactional_id.0,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return r;
    }
    if !Authz::new(ctx).cluster(Operation::ClusterAction) {
        r.error_code = E::ClusterAuthorizationFailed.code();
        return r;
    }
    for t in &req.transactions {
        let mut tr = AddPartitionsToTxnResult::default();
        tr.transactional_id = t.transactional_id.clone();
        tr.topic_results = one(
            ctx,
            &t.transactional_id.0,
            t.producer_id.0,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
        )
        .await;
        r.results_by_transaction.push(tr);
    }
    r
}

/// One transaction's partitions: the per-partition codes, grouped by topic.
async fn one(
    ctx: &RequestContext,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let v = ctx.api_version;
    let authz = Authz::new(ctx);
    let image = ctx.broker.metadata_view();
    let mut wanted: Vec<Tp> = Vec::new();
    let mut early: BTreeMap<Tp, i16> = BTreeMap::new();
    for t in topics {
        let name = t.name.0.to_string();
        for p in &t.partitions {
            let tp = (name.clone(), *p);
            if !authz.topic(Operation::Write, &name) {
                early.insert(tp, E::TopicAuthorizationFailed.code());
            } else if image.partition(&name, *p).is_none() {
                early.insert(tp, E::UnknownTopicOrPartition.code());
            } else {
                wanted.push(tp);
            }
        }
    }
    let mut codes: BTreeMap<Tp, i16> = BTreeMap::new();
    if !authz.transactional_id(Operation::Write, id) {
        let c = code(&BrokerError::TransactionalIdAuthorizationFailed);
        for tp in wanted.into_iter().chain(early.into_keys()) {
            codes.insert(tp, c);
        }
    } else if !early.is_empty() {
        for tp in wanted {
            codes.insert(tp, E::OperationNotAttempted.code());
        }
        codes.extend(early);
    } else if verify_only {
        match ctx
            .broker
            .verify_txn_partitions(id, producer_id, producer_epoch, &wanted)
        {
            Ok(results) => {
                for (tp, res) in results {
                    codes.insert(tp, res.err().map_or(0, |e| code(&e)));
                }
            }
            Err(e) => {
                let c = fenced_code(&e, v, 2);
                codes.extend(wanted.into_iter().map(|tp| (tp, c)));
            }
        }
    } else {
        let res = ctx
            .broker
            .add_partitions_to_txn(id, producer_id, producer_epoch, &wanted)
            .await;
        let c = res.err().map_or(0, |e| fenced_code(&e, v, 2));
        codes.extend(wanted.into_iter().map(|tp| (tp, c)));
    }
    let mut by_topic: BTreeMap<String, Vec<(i32, i16)>> = BTreeMap::new();
    for ((t, p), c) in codes {
        by_topic.entry(t).or_default().push((p, c));
    }
    by_topic
        .into_iter()
        .map(|(t, parts)| {
            let mut tr = AddPartitionsToTxnTopicResult::default();
            tr.name = topic_name(&t);
            tr.results_by_partition = parts
                .into_iter()
                .map(|(p, c)| {
                    let mut pr = AddPartitionsToTxnPartitionResult::default();
                    pr.partition_index = p;
                    pr.partition_error_code = c;
                    pr
                })
                .collect();
            tr
        })
        .collect()
}

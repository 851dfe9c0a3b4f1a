//! TxnOffsetCommit (key 28), v0–v5: a transactional producer commits a group's offsets as part
//! of its transaction (`sendOffsetsToTransaction`). The offsets are written to the group's
//! offsets partition in a transactional batch of the producer and become the committed
//! offsets only when the transaction's COMMIT marker reaches that partition (an ABORT drops
//! them). v3+ carries KIP-447's member id, generation and instance id, checked against the
//! group. The producer's open transaction must hold the group's offsets partition
//! (AddOffsetsToTxn), verified with its transaction coordinator (KIP-890, as Kafka 4's group
//! coordinator does). v5 is transaction version 2 (KIP-890 part 2): the client sends no
//! AddOffsetsToTxn, and the commit has the coordinator add the offsets partition itself.
//!
//! Authorization (Kafka's): WRITE on the transactional id, else every partition gets
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED; READ on the group, else GROUP_AUTHORIZATION_FAILED;
//! READ on each topic, else TOPIC_AUTHORIZATION_FAILED; unknown partitions get
//! UNKNOWN_TOPIC_OR_PARTITION.

use super::offset_commit::{slot_codes, Slots};
use super::topic_name;
use crate::broker::{BrokerError, OffsetCommitEntry};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use crate::txn::TxnSupport;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

/// The versions of TxnOffsetCommit this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

impl RequestShape for TxnOffsetCommitRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.topics.len(),
            partitions: self
                .topics
                .iter()
                .map(|t| t.partitions.len())
                .fold(0, usize::saturating_add),
        }
    }
}

/// Answers one TxnOffsetCommit request once the offsets are durable.
pub(crate) async fn handle(ctx: RequestContext, req: TxnOffsetCommitRequest) -> Reply {
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::TxnOffsetCommit(respond(&ctx, req).await))
    }))
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let v = ctx.api_version;
    let image = ctx.broker.metadata_view();
    let authz = Authz::new(ctx);
    let group = req.group_id.0.to_string();
    let denied = if !authz.transactional_id(Operation::Write, &req.transactional_id.0) {
        Some(BrokerError::TransactionalIdAuthorizationFailed)
    } else if !authz.group(Operation::Read, &group) {
        Some(BrokerError::GroupAuthorizationFailed)
    } else {
        None
    };
    let mut slots: Slots = Vec::new();
    let mut entries = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.to_string();
        let topic_denied = denied.is_none() && !authz.topic(Operation::Read, &topic);
        for p in &t.partitions {
            let slot = if let Some(e) = &denied {
                Err(e.clone())
            } else if topic_denied {
                Err(BrokerError::TopicAuthorizationFailed)
            } else if image.partition(&topic, p.partition_index).is_none() {
                Err(BrokerError::UnknownTopicOrPartition)
            } else {
                entries.push(OffsetCommitEntry {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if v >= 2 { p.committed_leader_epoch } else { -1 },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
                Ok(entries.len() - 1)
            };
            slots.push((topic.clone(), p.partition_index, slot));
        }
    }
    let (member, generation, instance) = if v >= 3 {
        (
            req.member_id.to_string(),
            req.generation_id,
            req.group_instance_id.as_ref().map(|s| s.to_string()),
        )
    } else {
        (String::new(), -1, None)
    };
    let results = if entries.is_empty() {
        Ok(Vec::new())
    } else {
        ctx.broker
            .txn_offset_commit(
                &req.transactional_id.0,
                &group,
                req.producer_id.0,
                req.producer_epoch,
                &member,
                instance.as_deref(),
                generation,
                entries,
                TxnSupport::for_txn_offset_commit(ctx.api_version),
            )
            .await
    };
    let mut r = TxnOffsetCommitResponse::default();
    for (topic, parts) in slot_codes(slots, &results) {
        let mut tr = TxnOffsetCommitResponseTopic::default();
        tr.name = topic_name(&topic);
        for (partition, error_code) in parts {
            let mut pr = TxnOffsetCommitResponsePartition::default();
            pr.partition_index = partition;
            pr.error_code = error_code;
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    r
}

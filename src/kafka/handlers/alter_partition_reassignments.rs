//! AlterPartitionReassignments (key 45), v0–v1: what `kafka-reassign-partitions.sh
//! --bootstrap-server --execute / --cancel` and `Admin.alterPartitionReassignments` send. Per
//! partition, a replica list starts (or replaces) a reassignment and `null` cancels one; the
//! move is carried out by the controller and the replicas (see `broker/reassignments.rs`).
//! Per partition: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty, duplicate,
//! unknown or fenced brokers), NO_REASSIGNMENT_IN_PROGRESS (a cancel with nothing to cancel),
//! INVALID_REPLICATION_FACTOR (v1 `allow_replication_factor_change` false and a different
//! length), as Kafka's controller answers.
//!
//! Authorization (Kafka's): ALTER on the cluster, else the top-level error and every
//! partition's is CLUSTER_AUTHORIZATION_FAILED.

use super::{sb, topic_name};
use crate::broker::{BrokerError, ReassignmentChange};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ResponseKind,
};

/// The versions of AlterPartitionReassignments this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

impl RequestShape for AlterPartitionReassignmentsRequest {
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

/// Answers once every listed change is committed (or refused).
pub(crate) async fn handle(ctx: RequestContext, req: AlterPartitionReassignmentsRequest) -> Reply {
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::AlterPartitionReassignments(
            respond(&ctx, req).await,
        ))
    }))
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let v = ctx.api_version;
    let allow_rf_change = v < 1 || req.allow_replication_factor_change;
    let changes: Vec<ReassignmentChange> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| ReassignmentChange {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                target: p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
            })
        })
        .collect();
    let refused = (!Authz::new(ctx).cluster(Operation::Alter))
        .then_some(BrokerError::ClusterAuthorizationFailed);
    let results = match &refused {
        Some(e) => vec![Err(e.clone()); changes.len()],
        None => {
            ctx.broker
                .alter_partition_reassignments(changes.clone(), allow_rf_change)
                .await
        }
    };
    let mut r = AlterPartitionReassignmentsResponse::default();
    if v >= 1 {
        r.allow_replication_factor_change = allow_rf_change;
    }
    if let Some(e) = &refused {
        r.error_code = code(e);
        r.error_message = Some(sb(&e.to_string()));
    }
    for (c, res) in changes.into_iter().zip(results) {
        let mut pr = ReassignablePartitionResponse::default();
        pr.partition_index = c.partition;
        if let Err(e) = res {
            pr.error_code = code(&e);
            pr.error_message = Some(sb(&e.to_string()));
        }
        match r.responses.last_mut() {
            Some(t) if t.name.0.as_str() == c.topic => t.partitions.push(pr),
            _ => {
                let mut t = ReassignableTopicResponse::default();
                t.name = topic_name(&c.topic);
                t.partitions.push(pr);
                r.responses.push(t);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, ctx_as};
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::ResponseError as E;

    fn request(
        parts: &[(&str, i32, Option<&[i32]>)],
        allow: bool,
    ) -> AlterPartitionReassignmentsRequest {
        let mut r = AlterPartitionReassignmentsRequest::default();
        r.allow_replication_factor_change = allow;
        for (t, p, replicas) in parts {
            let mut rp = ReassignablePartition::default();
            rp.partition_index = *p;
            rp.replicas = replicas.map(|rs| rs.iter().map(|b| BrokerId(*b)).collect());
            match r.topics.last_mut() {
                Some(rt) if rt.name.0.as_str() == *t => rt.partitions.push(rp),
                _ => {
                    let mut rt = ReassignableTopic::default();
                    rt.name = topic_name(t);
                    rt.partitions.push(rp);
                    r.topics.push(rt);
                }
            }
        }
        r
    }

    fn codes(r: &AlterPartitionReassignmentsResponse) -> Vec<(String, i32, i16)> {
        r.responses
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    /// One node: a reassignment onto the current replica completes at once; the errors are
    /// Kafka's.
    #[tokio::test]
    async fn per_partition_errors_as_kafka_answers() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                request(
                    &[
                        ("t", 0, Some(&[1])),
                        ("t", 1, None),
                        ("t", 5, Some(&[1])),
                        ("t", 0, Some(&[1, 9])),
                        ("t", 0, Some(&[1, 1])),
                        ("t", 0, Some(&[])),
                        ("u", 0, None),
                    ],
                    true,
                ),
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0);
            assert_eq!(
                codes(&r),
                vec![
                    ("t".into(), 0, 0),
                    ("t".into(), 1, E::NoReassignmentInProgress.code()),
                    ("t".into(), 5, E::UnknownTopicOrPartition.code()),
                    ("t".into(), 0, E::InvalidReplicaAssignment.code()),
                    ("t".into(), 0, E::InvalidReplicaAssignment.code()),
                    ("t".into(), 0, E::InvalidReplicaAssignment.code()),
                    ("u".into(), 0, E::UnknownTopicOrPartition.code()),
                ],
                "v{v}"
            );
        }
        assert!(f.broker.partition_reassignments(None).is_empty());
        // v1 without a replication factor change allowed.
        let r = respond(&ctx(&f, 1), request(&[("t", 0, Some(&[]))], false)).await;
        assert_eq!(
            codes(&r),
            vec![("t".into(), 0, E::InvalidReplicationFactor.code())]
        );
        assert!(!r.allow_replication_factor_change);
    }

    #[tokio::test]
    async fn alter_on_the_cluster_is_required() {
        let f = Fixture::authorized(&["User:admin"]).await;
        f.topic("t", 1, &[]).await;
        let r = respond(
            &ctx_as(&f, 0, "mallory"),
            request(&[("t", 0, Some(&[1]))], true),
        )
        .await;
        assert_eq!(r.error_code, E::ClusterAuthorizationFailed.code());
        assert_eq!(
            codes(&r),
            vec![("t".into(), 0, E::ClusterAuthorizationFailed.code())]
        );
    }
}

//! Partition reassignments (KIP-455): start, replace and cancel them
//! (AlterPartitionReassignments, `/admin/reassign_partitions` through the ZooKeeper facade's
//! janitor) and list the ongoing ones. The move itself is the metadata state machine's
//! (`ReassignPartition`, completed by the ISR change that brings the last target replica in
//! sync) and the replica manager's (a new replica opens and follows the leader, a removed one
//! deletes its data).

use super::{Broker, BrokerError};
use crate::metadata::MetadataCommand;
use crate::types::NodeId;
use futures::StreamExt;

/// Proposals in flight at once for one request (reassignments, elections; they commit in
/// order either way).
pub(super) const PROPOSALS_IN_FLIGHT: usize = 32;

/// One partition's change: a new target replica list, or `None` to cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentChange {
    pub topic: String,
    pub partition: i32,
    pub target: Option<Vec<i32>>,
}

/// An ongoing reassignment, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    /// The current replica set (target first, then the replicas being removed).
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

fn ids(v: &[NodeId]) -> Vec<i32> {
    v.iter().map(|n| n.0).collect()
}

impl Broker {
    /// Starts, replaces or cancels the reassignment of each listed partition; one result per
    /// change, in order. With `allow_rf_change` false, a target whose length differs from the
    /// partition's current replication factor is refused (INVALID_REPLICATION_FACTOR).
    pub async fn alter_partition_reassignments(
        &self,
        changes: Vec<ReassignmentChange>,
        allow_rf_change: bool,
    ) -> Vec<Result<(), BrokerError>> {
        futures::stream::iter(changes)
            .map(|c| self.reassign_one(c, allow_rf_change))
            .buffered(PROPOSALS_IN_FLIGHT)
            .collect()
            .await
    }

    async fn reassign_one(
        &self,
        c: ReassignmentChange,
        allow_rf_change: bool,
    ) -> Result<(), BrokerError> {
        let image = self.metadata_view();
        let t = image
            .topic(&c.topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let p = image
            .partition(&c.topic, c.partition)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if let Some(target) = &c.target {
            let rf = p.original_replicas().len();
            if !allow_rf_change && target.len() != rf {
                return Err(BrokerError::InvalidReplicationFactor(format!(
                    "The replication factor is changed from {rf} to {} but \
                     allowReplicationFactorChange is false",
                    target.len()
                )));
            }
            // No broker twice means no longer than the cluster: bounds what is proposed.
            if target.len() > image.brokers.len() {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "The target replica list has {} entries but the cluster has {} brokers.",
                    target.len(),
                    image.brokers.len()
                )));
            }
            if let Some(b) = target
                .iter()
                .find(|b| !image.brokers.contains_key(&NodeId(**b)))
            {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes broker {b}, but no such broker is registered."
                )));
            }
        }
        self.propose(MetadataCommand::ReassignPartition {
            topic: t.name.clone(),
            partition: c.partition,
            target: c
                .target
                .map(|r| r.into_iter().map(NodeId).collect::<Vec<_>>()),
        })
        .await
        .map(|_| ())
    }

    /// The ongoing reassignments, of every partition or (`filter`) of the listed ones (unknown
    /// topics and partitions are skipped, as Kafka's controller does).
    pub fn partition_reassignments(
        &self,
        filter: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<OngoingReassignment> {
        let image = self.metadata_view();
        let one = |topic: &str, partition: i32| {
            let p = image.partition(topic, partition)?;
            p.reassigning().then(|| OngoingReassignment {
                topic: topic.to_owned(),
                partition,
                replicas: ids(&p.replicas),
                adding: ids(&p.adding),
                removing: ids(&p.removing),
            })
        };
        match filter {
            Some(f) => f
                .iter()
                .flat_map(|(t, ps)| ps.iter().filter_map(|p| one(t, *p)))
                .collect(),
            None => image
                .topics
                .values()
                .flat_map(|t| {
                    (0..t.partitions.len())
                        .filter_map(|i| one(t.name.as_str(), i32::try_from(i).ok()?))
                })
                .collect(),
        }
    }
}

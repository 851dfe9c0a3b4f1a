//! Topic administration: create (with placement), delete, add partitions, auto-create.

use super::{Broker, BrokerError};
use crate::config::{validate_topic_configs, TopicConfigError};
use crate::metadata::{MetadataCommand, MetadataImage};
use crate::types::{NodeId, TopicId, TopicName};
use rand::Rng;
use std::collections::BTreeMap;

/// A topic to create, as requested (`-1` = broker default).
#[derive(Debug, Clone, Default)]
pub struct CreateTopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Explicit assignment: partition index → broker ids. Overrides the two counts.
    pub assignment: Vec<(i32, Vec<i32>)>,
    pub configs: BTreeMap<String, String>,
}

/// What a create produced (or, validate-only, would produce).
#[derive(Debug, Clone)]
pub struct CreatedTopic {
    pub topic_id: TopicId,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// The validated config overrides.
    pub configs: BTreeMap<String, String>,
}

impl From<TopicConfigError> for BrokerError {
    fn from(e: TopicConfigError) -> Self {
        BrokerError::InvalidConfig(e.to_string())
    }
}

/// Kafka's `assignReplicasToBrokers`: a random start and shift spread leaders and followers
/// evenly; with racks, brokers are interleaved rack by rack and followers prefer racks the
/// partition does not use yet.
pub(super) fn place_replicas(
    brokers: &[(NodeId, Option<String>)],
    partitions: i32,
    rf: i16,
    first_partition: i32,
    rng: &mut impl Rng,
) -> Vec<Vec<NodeId>> {
    let ordered = rack_alternated(brokers);
    let rack_of = |id: NodeId| brokers.iter().find(|b| b.0 == id).and_then(|b| b.1.clone());
    let n = ordered.len();
    let rf = rf as usize;
    assert!(n > 0 && rf <= n, "placement needs rf <= live brokers");
    let start = rng.random_range(0..n);
    let mut shift = rng.random_range(0..n);
    let mut out = Vec::new();
    for i in 0..partitions as usize {
        let p = i + first_partition as usize;
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![ordered[first]];
        let candidates: Vec<NodeId> = (0..n.saturating_sub(1))
            .map(|j| ordered[(first + 1 + (shift + j) % (n - 1).max(1)) % n])
            .collect();
        let mut racks_used = vec![rack_of(ordered[first])];
        for c in &candidates {
            if replicas.len() >= rf {
                break;
            }
            let r = rack_of(*c);
            if !racks_used.contains(&r) && !replicas.contains(c) {
                racks_used.push(r);
                replicas.push(*c);
            }
        }
        for c in &candidates {
            if replicas.len() >= rf {
                break;
            }
            if !replicas.contains(c) {
                replicas.push(*c);
            }
        }
        out.push(replicas);
    }
    out
}

/// Orders brokers so that consecutive ones are on different racks (Kafka's rack alternation).
fn rack_alternated(brokers: &[(NodeId, Option<String>)]) -> Vec<NodeId> {
    let mut by_rack: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack
            .entry(rack.clone().unwrap_or_default())
            .or_default()
            .push(*id);
    }
    if by_rack.len() <= 1 {
        let mut ids: Vec<NodeId> = brokers.iter().map(|b| b.0).collect();
        ids.sort();
        return ids;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < brokers.len() {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(i) {
                out.push(*id);
            }
        }
        i += 1;
    }
    out
}

/// A validated create: name, replica assignment, validated config overrides.
type TopicPlan = (TopicName, Vec<Vec<NodeId>>, BTreeMap<String, String>);

fn live_brokers(image: &MetadataImage) -> Vec<(NodeId, Option<String>)> {
    image
        .live_brokers()
        .map(|b| (b.node_id, b.rack.clone()))
        .collect()
}

impl Broker {
    /// Validates a create request and computes its assignment without committing it.
    fn plan_topic(
        &self,
        image: &MetadataImage,
        spec: &CreateTopicSpec,
    ) -> Result<TopicPlan, BrokerError> {
        let name =
            TopicName::new(&spec.name).map_err(|e| BrokerError::InvalidTopic(e.to_string()))?;
        if image.topics.contains_key(&name) {
            return Err(BrokerError::TopicAlreadyExists(name.to_string()));
        }
        let configs = validate_topic_configs(&spec.configs)?;
        let limits = &self.config().limits;
        let assignment = if !spec.assignment.is_empty() {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err(BrokerError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            let mut a = spec.assignment.clone();
            a.sort_by_key(|(p, _)| *p);
            for (i, (p, _)) in a.iter().enumerate() {
                if *p != i as i32 {
                    return Err(BrokerError::InvalidReplicaAssignment(
                        "Partitions should be a consecutive 0-based integer sequence".into(),
                    ));
                }
            }
            a.into_iter()
                .map(|(_, r)| r.into_iter().map(NodeId).collect())
                .collect()
        } else {
            let partitions = if spec.num_partitions == -1 {
                self.config().defaults.num_partitions
            } else {
                spec.num_partitions
            };
            let rf = if spec.replication_factor == -1 {
                self.config().defaults.default_replication_factor
            } else {
                spec.replication_factor
            };
            if partitions <= 0 || partitions > limits.partitions_per_topic_max {
                return Err(BrokerError::InvalidPartitions(format!(
                    "Number of partitions must be between 1 and {}.",
                    limits.partitions_per_topic_max
                )));
            }
            if rf <= 0 {
                return Err(BrokerError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0.".into(),
                ));
            }
            let brokers = live_brokers(image);
            if rf as usize > brokers.len() {
                return Err(BrokerError::InvalidReplicationFactor(format!(
                    "Replication factor: {rf} larger than available brokers: {}.",
                    brokers.len()
                )));
            }
            place_replicas(&brokers, partitions, rf, 0, &mut rand::rng())
        };
        Ok((name, assignment, configs))
    }

    /// Creates topics (or only validates them).
    pub async fn create_topics(
        &self,
        specs: Vec<CreateTopicSpec>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, BrokerError>> {
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            out.push(self.create_topic(spec, validate_only).await);
        }
        out
    }

    async fn create_topic(
        &self,
        spec: CreateTopicSpec,
        validate_only: bool,
    ) -> Result<CreatedTopic, BrokerError> {
        let image = self.metadata_view();
        let (name, assignment, configs) = self.plan_topic(&image, &spec)?;
        let created = |id| CreatedTopic {
            topic_id: id,
            num_partitions: assignment.len() as i32,
            replication_factor: assignment.first().map_or(0, |r| r.len() as i16),
            configs: configs.clone(),
        };
        if validate_only {
            return Ok(created(TopicId(uuid::Uuid::nil())));
        }
        let topic_id = TopicId::random();
        let result = created(topic_id);
        self.propose(MetadataCommand::CreateTopic {
            name,
            topic_id,
            assignment,
            configs,
        })
        .await?;
        Ok(result)
    }

    /// Creates `name` with broker defaults if auto-creation is enabled (Metadata requests).
    /// `__consumer_offsets` is created as the group coordinator creates it (its partition count
    /// and replication factor, compacted), whatever `auto.create.topics.enable` says, as Kafka
    /// creates internal topics.
    pub async fn auto_create_topic(&self, name: &str) -> Result<(), BrokerError> {
        if name == crate::group::OFFSETS_TOPIC {
            return self
                .ensure_offsets_topic()
                .await
                .map(|_| ())
                .map_err(|_| BrokerError::LeaderNotAvailable);
        }
        if !self.config().defaults.auto_create_topics_enable {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        let spec = CreateTopicSpec {
            name: name.to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        };
        match self.create_topic(spec, false).await {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(BrokerError::InvalidReplicationFactor(_)) => {
                // Fewer live brokers than default.replication.factor: Kafka answers LEADER_NOT_AVAILABLE.
                Err(BrokerError::LeaderNotAvailable)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic by name.
    pub async fn delete_topic(&self, name: &str) -> Result<TopicId, BrokerError> {
        if !self.config().defaults.delete_topic_enable {
            return Err(BrokerError::TopicDeletionDisabled);
        }
        let image = self.metadata_view();
        let t = image
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let id = t.id;
        self.propose(MetadataCommand::DeleteTopic {
            name: t.name.clone(),
        })
        .await?;
        Ok(id)
    }

    /// Preferred-leader elections of `partitions` (`kafka-preferred-replica-election.sh`,
    /// through the ZooKeeper facade's `/admin/preferred_replica_election`): each partition's
    /// first replica becomes its leader if it is live and in the ISR. One result per
    /// partition, in order.
    pub async fn elect_preferred_leaders(
        &self,
        partitions: &[(String, i32)],
    ) -> Vec<Result<(), BrokerError>> {
        self.elect_leaders(partitions, false).await
    }

    /// ElectLeaders: preferred elections, or (`unclean`) unclean ones — a partition whose
    /// leader and in-sync replicas are all down gets its first live replica as leader. One
    /// result per partition, in order.
    pub async fn elect_leaders(
        &self,
        partitions: &[(String, i32)],
        unclean: bool,
    ) -> Vec<Result<(), BrokerError>> {
        use futures::StreamExt;
        futures::stream::iter(partitions.to_vec())
            .map(|(topic, partition)| self.elect_one(topic, partition, unclean))
            .buffered(super::reassignments::PROPOSALS_IN_FLIGHT)
            .collect()
            .await
    }

    async fn elect_one(
        &self,
        topic: String,
        partition: i32,
        unclean: bool,
    ) -> Result<(), BrokerError> {
        use crate::metadata::PreferredElection as E;
        let image = self.metadata_view();
        let decided = if unclean {
            image.unclean_leader_move(&topic, partition)
        } else {
            image.preferred_leader_move(&topic, partition)
        };
        match decided {
            Ok(cmd) => self.propose(cmd).await.map(|_| ()),
            Err(E::Unknown) => Err(BrokerError::UnknownTopicOrPartition),
            Err(E::NotNeeded) => Err(BrokerError::ElectionNotNeeded),
            Err(E::NotAvailable) if unclean => Err(BrokerError::EligibleLeadersNotAvailable),
            Err(E::NotAvailable) => Err(BrokerError::PreferredLeaderNotAvailable),
        }
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let image = self.metadata_view();
        let t = image
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let current = t.partitions.len() as i32;
        if count <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count > self.config().limits.partitions_per_topic_max {
            return Err(BrokerError::InvalidPartitions(format!(
                "Number of partitions must be at most {}.",
                self.config().limits.partitions_per_topic_max
            )));
        }
        let rf = t.partitions[0].replicas.len() as i16;
        let new = match assignment {
            Some(a) => {
                if a.len() as i32 != count - current {
                    return Err(BrokerError::InvalidReplicaAssignment(format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        a.len()
                    )));
                }
                a.into_iter()
                    .map(|r| r.into_iter().map(NodeId).collect())
                    .collect()
            }
            None => {
                let brokers = live_brokers(&image);
                if rf as usize > brokers.len() {
                    return Err(BrokerError::InvalidReplicationFactor(format!(
                        "Replication factor: {rf} larger than available brokers: {}.",
                        brokers.len()
                    )));
                }
                place_replicas(&brokers, count - current, rf, current, &mut rand::rng())
            }
        };
        if validate_only {
            return Ok(());
        }
        self.propose(MetadataCommand::CreatePartitions {
            name: t.name.clone(),
            assignment: new,
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_spreads_leaders_and_never_repeats_a_broker() {
        let brokers: Vec<_> = (1..=3).map(|i| (NodeId(i), None)).collect();
        let a = place_replicas(&brokers, 6, 3, 0, &mut rand::rng());
        assert_eq!(a.len(), 6);
        for r in &a {
            let mut s = r.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), 3);
        }
        let mut leaders: Vec<_> = a.iter().map(|r| r[0]).collect();
        leaders.sort();
        assert_eq!(
            leaders,
            vec![
                NodeId(1),
                NodeId(1),
                NodeId(2),
                NodeId(2),
                NodeId(3),
                NodeId(3)
            ]
        );
    }

    #[test]
    fn racks_alternate() {
        let b = vec![
            (NodeId(1), Some("a".into())),
            (NodeId(2), Some("a".into())),
            (NodeId(3), Some("b".into())),
            (NodeId(4), Some("b".into())),
        ];
        assert_eq!(
            rack_alternated(&b),
            vec![NodeId(1), NodeId(3), NodeId(2), NodeId(4)]
        );
        for r in place_replicas(&b, 8, 2, 0, &mut rand::rng()) {
            let racks: Vec<_> = r
                .iter()
                .map(|n| b.iter().find(|x| x.0 == *n).and_then(|x| x.1.clone()))
                .collect();
            assert_ne!(racks[0], racks[1], "replicas on one rack: {r:?}");
        }
    }
}

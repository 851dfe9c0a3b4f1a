//! Topics and partitions: create, delete, add partitions, configs, leadership and ISR
//! changes, and producer id blocks.

use super::{ApplyOutcome, MetadataError};
use crate::metadata::command::ConfigOp;
use crate::metadata::image::{without, MetadataImage, PartitionImage, TopicImage};
use crate::types::{NodeId, TopicId, TopicName};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub(super) fn create(
    next: &mut MetadataImage,
    name: &TopicName,
    topic_id: &TopicId,
    assignment: &[Vec<NodeId>],
    configs: &BTreeMap<String, String>,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    if next.topics.contains_key(name) {
        return Err(MetadataError::TopicExists(name.to_string()));
    }
    if let Some(other) = next
        .topics
        .keys()
        .find(|t| t.collision_key() == name.collision_key())
    {
        return Err(MetadataError::TopicCollision(
            name.to_string(),
            other.to_string(),
        ));
    }
    if next.topic_ids.contains_key(topic_id) {
        return Err(MetadataError::TopicIdExists);
    }
    validate_assignment(next, assignment)?;
    let partitions = assignment.iter().map(|r| new_partition(next, r)).collect();
    let topic = TopicImage {
        name: name.clone(),
        id: *topic_id,
        partitions,
        configs: configs.clone(),
        created_index: index,
        modified_index: index,
        configs_modified_index: index,
    };
    next.topic_ids.insert(*topic_id, name.clone());
    next.topics.insert(name.clone(), Arc::new(topic));
    Ok(ApplyOutcome::Done)
}

pub(super) fn delete(
    next: &mut MetadataImage,
    name: &TopicName,
) -> Result<ApplyOutcome, MetadataError> {
    let t = next
        .topics
        .remove(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
    next.topic_ids.remove(&t.id);
    Ok(ApplyOutcome::Done)
}

pub(super) fn create_partitions(
    next: &mut MetadataImage,
    name: &TopicName,
    assignment: &[Vec<NodeId>],
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let mut t = (**next
        .topics
        .get(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?)
    .clone();
    validate_assignment(next, assignment)?;
    if assignment[0].len() != t.partitions[0].replicas.len() {
        return Err(MetadataError::InvalidReplicaAssignment(
            "new partitions must keep the topic's replication factor".into(),
        ));
    }
    for r in assignment {
        t.partitions.push(new_partition(next, r));
    }
    t.modified_index = index;
    next.topics.insert(name.clone(), Arc::new(t));
    Ok(ApplyOutcome::Done)
}

pub(super) fn alter_configs(
    next: &mut MetadataImage,
    name: &TopicName,
    ops: &[ConfigOp],
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let mut t = (**next
        .topics
        .get(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?)
    .clone();
    for op in ops {
        match op {
            ConfigOp::Set { key, value } => {
                t.configs.insert(key.clone(), value.clone());
            }
            ConfigOp::Delete { key } => {
                t.configs.remove(key);
            }
        }
    }
    t.configs_modified_index = index;
    next.topics.insert(name.clone(), Arc::new(t));
    Ok(ApplyOutcome::Done)
}

pub(super) fn replace_configs(
    next: &mut MetadataImage,
    name: &TopicName,
    configs: &BTreeMap<String, String>,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let mut t = (**next
        .topics
        .get(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?)
    .clone();
    t.configs = configs.clone();
    t.configs_modified_index = index;
    next.topics.insert(name.clone(), Arc::new(t));
    Ok(ApplyOutcome::Done)
}

pub(super) fn change_partition(
    next: &mut MetadataImage,
    topic: &TopicName,
    partition: i32,
    partition_epoch: i32,
    leader: Option<NodeId>,
    isr: &[NodeId],
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let mut t = (**next
        .topics
        .get(topic)
        .ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))?)
    .clone();
    let idx = usize::try_from(partition)
        .ok()
        .filter(|i| *i < t.partitions.len())
        .ok_or_else(|| {
            MetadataError::InvalidPartitionChange(format!("no partition {partition}"))
        })?;
    let p = &mut t.partitions[idx];
    if partition_epoch != p.partition_epoch {
        return Err(MetadataError::StalePartitionEpoch {
            given: partition_epoch,
            current: p.partition_epoch,
        });
    }
    if isr.is_empty() || !isr.iter().all(|n| p.replicas.contains(n)) {
        return Err(MetadataError::InvalidPartitionChange(
            "ISR must be a non-empty subset of replicas".into(),
        ));
    }
    if let Some(l) = &leader {
        if !isr.contains(l) {
            return Err(MetadataError::InvalidPartitionChange(
                "leader must be in the ISR".into(),
            ));
        }
    }
    // Only a registered, unfenced broker may join the ISR (KIP-841): an expansion decided
    // before its broker was fenced must not commit after, or a dead broker would hold up
    // every acks=all write until the next shrink.
    let live = live_set(next);
    if let Some(n) = isr.iter().find(|n| !p.isr.contains(n) && !live.contains(n)) {
        return Err(MetadataError::InvalidPartitionChange(format!(
            "broker {n} is fenced or not registered and cannot join the ISR"
        )));
    }
    if p.leader != leader {
        p.leader_epoch += 1;
    }
    p.leader = leader;
    p.isr = isr.to_vec();
    p.partition_epoch += 1;
    // An ISR that now holds every target replica completes an ongoing reassignment.
    complete_reassignment(p, &live);
    t.modified_index = index;
    next.topics.insert(topic.clone(), Arc::new(t));
    Ok(ApplyOutcome::Done)
}

/// The registered, unfenced brokers.
fn live_set(image: &MetadataImage) -> BTreeSet<NodeId> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| b.node_id)
        .collect()
}

/// Starts, replaces or (`target` = `None`) cancels the reassignment of one partition, as
/// Kafka's KRaft controller does (KIP-455). A new target is taken relative to the original
/// replicas (an ongoing reassignment is reverted first): the replicas become the target
/// followed by the original replicas it drops, `adding` the target's new replicas and
/// `removing` the dropped ones. The reassignment completes (here, if the ISR already holds
/// the target, else on the ISR change that makes it so): the replicas become the target, the
/// removed replicas leave the ISR, and a removed leader hands over to the first live in-sync
/// target replica. Cancelling restores the original replicas.
///
/// # Errors
/// Unknown topic or partition; a target that is empty, lists a broker twice or a broker that
/// is not registered and unfenced; a cancel with nothing in progress; a change that would
/// leave no replica in sync.
pub(super) fn reassign(
    next: &mut MetadataImage,
    topic: &TopicName,
    partition: i32,
    target: Option<&[NodeId]>,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let live = live_set(next);
    let mut t = (**next
        .topics
        .get(topic)
        .ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))?)
    .clone();
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get_mut(i))
        .ok_or_else(|| MetadataError::UnknownTopic(format!("{topic}-{partition}")))?;
    let original = p.original_replicas();
    let (replicas, adding, removing) = match target {
        None => {
            if !p.reassigning() {
                return Err(MetadataError::NoReassignmentInProgress(format!(
                    "{topic}-{partition}"
                )));
            }
            (original, Vec::new(), Vec::new())
        }
        Some(target) => {
            validate_target(next, &live, target)?;
            let adding = without(target, &original);
            let removing = without(&original, target);
            let mut replicas = target.to_vec();
            replicas.extend_from_slice(&removing);
            (replicas, adding, removing)
        }
    };
    let isr: Vec<NodeId> = p
        .isr
        .iter()
        .copied()
        .filter(|n| replicas.contains(n))
        .collect();
    if isr.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "no replica of the resulting assignment of {topic}-{partition} is in sync"
        )));
    }
    if p.leader.is_some_and(|l| !isr.contains(&l)) {
        p.leader = isr.iter().copied().find(|n| live.contains(n));
        p.leader_epoch += 1;
    }
    p.replicas = replicas;
    p.isr = isr;
    p.adding = adding;
    p.removing = removing;
    p.partition_epoch += 1;
    complete_reassignment(p, &live);
    t.modified_index = index;
    next.topics.insert(topic.clone(), Arc::new(t));
    Ok(ApplyOutcome::Done)
}

/// A reassignment target: non-empty, no broker twice, every broker registered and unfenced
/// (Kafka's manual assignment checks).
fn validate_target(
    image: &MetadataImage,
    live: &BTreeSet<NodeId>,
    target: &[NodeId],
) -> Result<(), MetadataError> {
    if target.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment(
            "the target replica list is empty".into(),
        ));
    }
    let distinct: BTreeSet<_> = target.iter().collect();
    if distinct.len() != target.len() {
        return Err(MetadataError::InvalidReplicaAssignment(
            "the target replica list lists a broker twice".into(),
        ));
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(MetadataError::UnknownBroker(b.0));
    }
    if let Some(b) = target.iter().find(|b| !live.contains(b)) {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "broker {b} is not live"
        )));
    }
    Ok(())
}

/// Completes `p`'s reassignment when every target replica is in the ISR (Kafka's
/// `maybeCompleteReassignment`); otherwise leaves it as it is.
fn complete_reassignment(p: &mut PartitionImage, live: &BTreeSet<NodeId>) {
    if !p.reassigning() {
        return;
    }
    let target = p.target_replicas();
    if !target.iter().all(|n| p.isr.contains(n)) {
        return;
    }
    let isr = without(&p.isr, &p.removing);
    if p.leader.is_none_or(|l| !isr.contains(&l)) {
        let leader = target
            .iter()
            .copied()
            .find(|n| isr.contains(n) && live.contains(n));
        if leader != p.leader {
            p.leader = leader;
            p.leader_epoch += 1;
        }
    }
    p.replicas = target;
    p.isr = isr;
    p.adding.clear();
    p.removing.clear();
}

pub(super) fn allocate_producer_ids(
    next: &mut MetadataImage,
    count: i64,
) -> Result<ApplyOutcome, MetadataError> {
    let first = next.next_producer_id;
    let count = count.clamp(1, 1_000_000);
    next.next_producer_id = first.checked_add(count).ok_or_else(|| {
        MetadataError::InvalidPartitionChange("producer id space exhausted".into())
    })?;
    Ok(ApplyOutcome::ProducerIds { first })
}

fn validate_assignment(
    image: &MetadataImage,
    assignment: &[Vec<NodeId>],
) -> Result<(), MetadataError> {
    if assignment.is_empty() {
        return Err(MetadataError::InvalidPartitions(
            "at least one partition is required".into(),
        ));
    }
    let rf = assignment[0].len();
    for (i, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return Err(MetadataError::InvalidReplicaAssignment(format!(
                "partition {i} has no replicas"
            )));
        }
        if replicas.len() != rf {
            return Err(MetadataError::InvalidReplicaAssignment(
                "all partitions must have the same replication factor".into(),
            ));
        }
        let distinct: BTreeSet<_> = replicas.iter().collect();
        if distinct.len() != replicas.len() {
            return Err(MetadataError::InvalidReplicaAssignment(format!(
                "partition {i} lists a broker twice"
            )));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(MetadataError::UnknownBroker(b.0));
        }
    }
    Ok(())
}

/// A new partition: leader is the first live replica; ISR is the live replicas.
fn new_partition(image: &MetadataImage, replicas: &[NodeId]) -> PartitionImage {
    let live = |n: &NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    let isr: Vec<NodeId> = replicas.iter().copied().filter(live).collect();
    let isr = if isr.is_empty() {
        replicas.to_vec()
    } else {
        isr
    };
    PartitionImage {
        replicas: replicas.to_vec(),
        leader: isr.first().copied().filter(live),
        isr,
        leader_epoch: 0,
        partition_epoch: 0,
        adding: Vec::new(),
        removing: Vec::new(),
    }
}

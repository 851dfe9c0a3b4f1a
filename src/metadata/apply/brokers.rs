//! Brokers: cluster id, registration, fencing, and the leadership consequences of both.

use super::{ApplyOutcome, MetadataError};
use crate::metadata::command::ConfigOp;
use crate::metadata::image::{broker_config_entity, BrokerRegistration, MetadataImage};
use crate::types::NodeId;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) fn init_cluster(
    next: &mut MetadataImage,
    cluster_id: &str,
) -> Result<ApplyOutcome, MetadataError> {
    if next.cluster_id.is_none() {
        next.cluster_id = Some(cluster_id.to_owned());
    }
    Ok(ApplyOutcome::Done)
}

pub(super) fn register(
    next: &mut MetadataImage,
    registration: &BrokerRegistration,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let mut reg = registration.clone();
    reg.fenced = false;
    reg.registered_index = index;
    next.brokers.insert(reg.node_id, reg);
    // A returning broker rejoins leaderless partitions it replicates.
    elect_leaderless(next, index);
    Ok(ApplyOutcome::Done)
}

pub(super) fn fence(
    next: &mut MetadataImage,
    node_id: NodeId,
) -> Result<ApplyOutcome, MetadataError> {
    let b = next
        .brokers
        .get_mut(&node_id)
        .ok_or(MetadataError::UnknownBroker(node_id.0))?;
    b.fenced = true;
    fence_out(next, node_id);
    Ok(ApplyOutcome::Done)
}

/// Moves leadership off a fenced broker and removes it from ISRs (keeping the ISR non-empty:
/// the last member stays, leaderless, so an unclean election is never implied).
fn fence_out(next: &mut MetadataImage, node: NodeId) {
    let names: Vec<_> = next.topics.keys().cloned().collect();
    for name in names {
        let Some(t) = next.topics.get(&name) else {
            continue;
        };
        if !t.partitions.iter().any(|p| p.isr.contains(&node)) {
            continue;
        }
        let mut t = (**t).clone();
        for p in &mut t.partitions {
            if !p.isr.contains(&node) {
                continue;
            }
            if p.isr.len() > 1 {
                p.isr.retain(|n| *n != node);
            }
            if p.leader == Some(node) {
                let live = |n: &NodeId| next.brokers.get(n).is_some_and(|b| !b.fenced);
                p.leader = p.isr.iter().copied().find(live);
                p.leader_epoch += 1;
            }
            p.partition_epoch += 1;
        }
        next.topics.insert(name, Arc::new(t));
    }
}

/// Gives leaderless partitions a leader from their ISR when one is live again.
fn elect_leaderless(next: &mut MetadataImage, index: u64) {
    let names: Vec<_> = next.topics.keys().cloned().collect();
    for name in names {
        let Some(t) = next.topics.get(&name) else {
            continue;
        };
        let live = |n: &NodeId| next.brokers.get(n).is_some_and(|b| !b.fenced);
        if !t
            .partitions
            .iter()
            .any(|p| p.leader.is_none() && p.isr.iter().any(live))
        {
            continue;
        }
        let mut t = (**t).clone();
        for p in &mut t.partitions {
            if p.leader.is_none() {
                if let Some(l) = p.isr.iter().copied().find(live) {
                    p.leader = Some(l);
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                }
            }
        }
        t.modified_index = index;
        next.topics.insert(name, Arc::new(t));
    }
}

/// Incremental changes to a broker's (or the cluster default's) dynamic configs. An entity
/// left with no configs is removed.
pub(super) fn alter_configs(
    next: &mut MetadataImage,
    broker: Option<NodeId>,
    ops: &[ConfigOp],
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let key = broker_config_entity(broker);
    let mut configs = next
        .broker_configs
        .get(&key)
        .map(|b| b.configs.clone())
        .unwrap_or_default();
    for op in ops {
        match op {
            ConfigOp::Set { key, value } => {
                configs.insert(key.clone(), value.clone());
            }
            ConfigOp::Delete { key } => {
                configs.remove(key);
            }
        }
    }
    replace_configs(next, broker, &configs, index)
}

/// Replaces a broker's (or the cluster default's) dynamic configs.
pub(super) fn replace_configs(
    next: &mut MetadataImage,
    broker: Option<NodeId>,
    configs: &BTreeMap<String, String>,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let key = broker_config_entity(broker);
    if configs.is_empty() {
        next.broker_configs.remove(&key);
        return Ok(ApplyOutcome::Done);
    }
    let entry = next.broker_configs.entry(key).or_default();
    if entry.created_index == 0 {
        entry.created_index = index;
    }
    entry.configs = configs.clone();
    entry.modified_index = index;
    Ok(ApplyOutcome::Done)
}

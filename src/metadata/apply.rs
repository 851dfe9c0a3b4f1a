//! `apply`: the deterministic transition from one image to the next. Pure.

use super::command::{ConfigOp, MetadataCommand, MetadataRequest, COMMAND_FORMAT_VERSION};
use super::image::{MetadataImage, PartitionImage, TopicImage};
use super::znode::{ZkOpResult, ZkSession};
use crate::types::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A deterministic rejection: the command was committed but changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' collides with existing topic '{1}'")]
    TopicCollision(String, String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("topic id already in use")]
    TopicIdExists,
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("stale partition epoch {given}, current {current}")]
    StalePartitionEpoch { given: i32, current: i32 },
    #[error("invalid partition change: {0}")]
    InvalidPartitionChange(String),
    #[error("unknown broker {0}")]
    UnknownBroker(i32),
    #[error("unsupported command format {0}")]
    UnsupportedFormat(u16),
    #[error("ZooKeeper session {0:#x} already exists")]
    ZkSessionExists(i64),
}

/// What a committed command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    Done,
    ProducerIds {
        first: i64,
    },
    Rejected(MetadataError),
    /// The per-op results of a `ZkMulti` (all errors if it was rolled back).
    Zk(Vec<ZkOpResult>),
}

/// Applies `req` at Raft `index`: returns the next image (with `applied_index = index`) and the
/// outcome. A rejected command still advances `applied_index`.
pub fn apply(
    image: &MetadataImage,
    req: &MetadataRequest,
    index: u64,
) -> (MetadataImage, ApplyOutcome) {
    assert!(
        index > image.applied_index || image.applied_index == 0,
        "apply index went backwards"
    );
    let mut next = image.clone();
    next.applied_index = index;
    if req.format > COMMAND_FORMAT_VERSION {
        return (
            next,
            ApplyOutcome::Rejected(MetadataError::UnsupportedFormat(req.format)),
        );
    }
    match apply_command(&mut next, &req.command, index) {
        Ok(outcome) => {
            next.check_invariants();
            (next, outcome)
        }
        Err(e) => {
            let mut unchanged = image.clone();
            unchanged.applied_index = index;
            (unchanged, ApplyOutcome::Rejected(e))
        }
    }
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
    }
}

fn apply_command(
    next: &mut MetadataImage,
    cmd: &MetadataCommand,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    match cmd {
        MetadataCommand::InitCluster { cluster_id } => {
            if next.cluster_id.is_none() {
                next.cluster_id = Some(cluster_id.clone());
            }
        }
        MetadataCommand::RegisterBroker { registration } => {
            let mut reg = registration.clone();
            reg.fenced = false;
            reg.registered_index = index;
            next.brokers.insert(reg.node_id, reg);
            // A returning broker rejoins leaderless partitions it replicates.
            elect_leaderless(next, index);
        }
        MetadataCommand::CreateTopic {
            name,
            topic_id,
            assignment,
            configs,
        } => {
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
        }
        MetadataCommand::DeleteTopic { name } => {
            let t = next
                .topics
                .remove(name)
                .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
            next.topic_ids.remove(&t.id);
        }
        MetadataCommand::CreatePartitions { name, assignment } => {
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
        }
        MetadataCommand::AlterTopicConfigs { name, ops } => {
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
        }
        MetadataCommand::ReplaceTopicConfigs { name, configs } => {
            let mut t = (**next
                .topics
                .get(name)
                .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?)
            .clone();
            t.configs = configs.clone();
            t.configs_modified_index = index;
            next.topics.insert(name.clone(), Arc::new(t));
        }
        MetadataCommand::AllocateProducerIds { count } => {
            let first = next.next_producer_id;
            let count = (*count).clamp(1, 1_000_000);
            next.next_producer_id = first.checked_add(count).ok_or_else(|| {
                MetadataError::InvalidPartitionChange("producer id space exhausted".into())
            })?;
            return Ok(ApplyOutcome::ProducerIds { first });
        }
        MetadataCommand::ChangePartition {
            topic,
            partition,
            partition_epoch,
            leader,
            isr,
        } => {
            let mut t = (**next
                .topics
                .get(topic)
                .ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))?)
            .clone();
            let idx = usize::try_from(*partition)
                .ok()
                .filter(|i| *i < t.partitions.len())
                .ok_or_else(|| {
                    MetadataError::InvalidPartitionChange(format!("no partition {partition}"))
                })?;
            let p = &mut t.partitions[idx];
            if *partition_epoch != p.partition_epoch {
                return Err(MetadataError::StalePartitionEpoch {
                    given: *partition_epoch,
                    current: p.partition_epoch,
                });
            }
            if isr.is_empty() || !isr.iter().all(|n| p.replicas.contains(n)) {
                return Err(MetadataError::InvalidPartitionChange(
                    "ISR must be a non-empty subset of replicas".into(),
                ));
            }
            if let Some(l) = leader {
                if !isr.contains(l) {
                    return Err(MetadataError::InvalidPartitionChange(
                        "leader must be in the ISR".into(),
                    ));
                }
            }
            if p.leader != *leader {
                p.leader_epoch += 1;
            }
            p.leader = *leader;
            p.isr = isr.clone();
            p.partition_epoch += 1;
            t.modified_index = index;
            next.topics.insert(topic.clone(), Arc::new(t));
        }
        MetadataCommand::FenceBroker { node_id } => {
            let b = next
                .brokers
                .get_mut(node_id)
                .ok_or(MetadataError::UnknownBroker(node_id.0))?;
            b.fenced = true;
            fence_out(next, *node_id);
        }
        MetadataCommand::ZkCreateSession {
            session_id,
            password,
            timeout_ms,
            now_ms,
        } => {
            if next.zk.sessions.contains_key(session_id) {
                return Err(MetadataError::ZkSessionExists(*session_id));
            }
            let session = ZkSession {
                password: password.clone(),
                timeout_ms: (*timeout_ms).max(1),
                last_touch_ms: *now_ms,
            };
            next.zk.sessions.insert(*session_id, session);
        }
        MetadataCommand::ZkTouchSessions {
            session_ids,
            now_ms,
        } => {
            for id in session_ids {
                if let Some(s) = next.zk.sessions.get_mut(id) {
                    // Always moves (by at least 1) so the expiry sweep sees every touch, even
                    // from a node whose wall clock is behind; expiry itself runs on the
                    // leader's monotonic clock (`zk::server::sweep_loop`).
                    s.last_touch_ms = s.last_touch_ms.max(*now_ms).max(s.last_touch_ms + 1);
                }
            }
        }
        MetadataCommand::ZkExpireSessions { session_ids } => {
            next.zk.expire(session_ids, zxid(index))
        }
        MetadataCommand::ZkMulti {
            session_id,
            now_ms,
            ops,
            data_bytes_max,
        } => {
            return Ok(ApplyOutcome::Zk(next.zk.multi(
                ops,
                *session_id,
                zxid(index),
                *now_ms,
                *data_bytes_max,
            )));
        }
    }
    Ok(ApplyOutcome::Done)
}

/// ZooKeeper zxids are the Raft log index.
fn zxid(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::{BrokerRegistration, Endpoint};
    use crate::types::{TopicId, TopicName};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn reg(id: i32) -> MetadataCommand {
        MetadataCommand::RegisterBroker {
            registration: BrokerRegistration {
                node_id: NodeId(id),
                endpoints: vec![Endpoint {
                    listener: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 9092,
                }],
                rack: None,
                fenced: false,
                registered_index: 0,
                raft_addr: None,
            },
        }
    }

    fn run(cmds: &[MetadataCommand]) -> (MetadataImage, Vec<ApplyOutcome>) {
        let mut img = MetadataImage::default();
        let mut outs = vec![];
        for (i, c) in cmds.iter().enumerate() {
            let (n, o) = apply(&img, &MetadataRequest::new(c.clone()), i as u64 + 1);
            img = n;
            outs.push(o);
        }
        (img, outs)
    }

    fn create(name: &str, assignment: Vec<Vec<i32>>) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: TopicName::new(name).expect("valid"),
            topic_id: TopicId::random(),
            assignment: assignment
                .into_iter()
                .map(|r| r.into_iter().map(NodeId).collect())
                .collect(),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_delete_and_reject_duplicates() {
        let (img, outs) = run(&[
            reg(1),
            create("a", vec![vec![1], vec![1]]),
            create("a", vec![vec![1]]),
        ]);
        assert_eq!(outs[1], ApplyOutcome::Done);
        assert_eq!(
            outs[2],
            ApplyOutcome::Rejected(MetadataError::TopicExists("a".into()))
        );
        let t = img.topic("a").expect("exists");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[0].leader, Some(NodeId(1)));
        assert_eq!(img.applied_index, 3);
        let (img, _) = run(&[
            reg(1),
            create("a", vec![vec![1]]),
            MetadataCommand::DeleteTopic {
                name: TopicName::new("a").expect("valid"),
            },
        ]);
        assert!(img.topics.is_empty() && img.topic_ids.is_empty());
    }

    #[test]
    fn collisions_and_bad_assignments() {
        let (_, outs) = run(&[
            reg(1),
            create("a.b", vec![vec![1]]),
            create("a_b", vec![vec![1]]),
            create("c", vec![vec![2]]),
            create("d", vec![vec![1, 1]]),
        ]);
        assert!(matches!(
            outs[2],
            ApplyOutcome::Rejected(MetadataError::TopicCollision(..))
        ));
        assert_eq!(
            outs[3],
            ApplyOutcome::Rejected(MetadataError::UnknownBroker(2))
        );
        assert!(matches!(
            outs[4],
            ApplyOutcome::Rejected(MetadataError::InvalidReplicaAssignment(_))
        ));
    }

    #[test]
    fn fencing_moves_leadership_and_stale_epochs_are_rejected() {
        let t = TopicName::new("t").expect("valid");
        let (img, outs) = run(&[
            reg(1),
            reg(2),
            reg(3),
            create("t", vec![vec![1, 2, 3]]),
            MetadataCommand::FenceBroker { node_id: NodeId(1) },
            MetadataCommand::ChangePartition {
                topic: t.clone(),
                partition: 0,
                partition_epoch: 0,
                leader: Some(NodeId(2)),
                isr: vec![NodeId(2)],
            },
        ]);
        let p = &img.topic("t").expect("exists").partitions[0];
        assert_eq!(p.leader, Some(NodeId(2)));
        assert_eq!(p.leader_epoch, 1);
        assert_eq!(p.isr, vec![NodeId(2), NodeId(3)]);
        assert!(matches!(
            outs[5],
            ApplyOutcome::Rejected(MetadataError::StalePartitionEpoch { .. })
        ));
    }

    #[test]
    fn producer_ids_are_unique() {
        let (img, outs) = run(&[
            MetadataCommand::AllocateProducerIds { count: 1000 },
            MetadataCommand::AllocateProducerIds { count: 1000 },
        ]);
        assert_eq!(outs[0], ApplyOutcome::ProducerIds { first: 0 });
        assert_eq!(outs[1], ApplyOutcome::ProducerIds { first: 1000 });
        assert_eq!(img.next_producer_id, 2000);
    }

    fn arb_command() -> impl Strategy<Value = MetadataCommand> {
        let names = prop::sample::select(vec!["a", "b", "c.d", "c_d"]);
        prop_oneof![
            (1i32..5).prop_map(reg),
            (
                names.clone(),
                prop::collection::vec(prop::collection::vec(1i32..5, 1..3), 1..4)
            )
                .prop_map(|(n, a)| create(n, a)),
            names.clone().prop_map(|n| MetadataCommand::DeleteTopic {
                name: TopicName::new(n).expect("valid")
            }),
            (1i32..5).prop_map(|n| MetadataCommand::FenceBroker { node_id: NodeId(n) }),
            (
                names.clone(),
                0i32..3,
                0i32..4,
                prop::option::of(1i32..5),
                prop::collection::vec(1i32..5, 0..4)
            )
                .prop_map(|(t, p, e, l, isr)| MetadataCommand::ChangePartition {
                    topic: TopicName::new(t).expect("valid"),
                    partition: p,
                    partition_epoch: e,
                    leader: l.map(NodeId),
                    isr: isr.into_iter().map(NodeId).collect()
                }),
            (
                names,
                prop::collection::vec(prop::collection::vec(1i32..5, 1..3), 1..3)
            )
                .prop_map(|(n, a)| MetadataCommand::CreatePartitions {
                    name: TopicName::new(n).expect("valid"),
                    assignment: a
                        .into_iter()
                        .map(|r| r.into_iter().map(NodeId).collect())
                        .collect()
                }),
            arb_zk_command(),
        ]
    }

    fn arb_zk_op() -> impl Strategy<Value = crate::metadata::ZkOp> {
        use crate::metadata::ZkOp;
        let paths = prop::sample::select(vec![
            "/a",
            "/a/b",
            "/a/b/c",
            "/k",
            "/k/config/changes/n-",
            "/config/changes/c-",
            "/brokers",
            "/",
            "/a/",
            "bad",
        ]);
        let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..4));
        prop_oneof![
            (paths.clone(), data.clone(), any::<bool>(), any::<bool>()).prop_map(|(p, d, e, s)| {
                ZkOp::Create {
                    path: p.into(),
                    data: d,
                    ephemeral: e,
                    sequential: s,
                }
            }),
            (paths.clone(), -1i32..2).prop_map(|(p, v)| ZkOp::Delete {
                path: p.into(),
                version: v
            }),
            (paths.clone(), data, -1i32..2).prop_map(|(p, d, v)| ZkOp::SetData {
                path: p.into(),
                data: d,
                version: v
            }),
            (paths, -1i32..2).prop_map(|(p, v)| ZkOp::Check {
                path: p.into(),
                version: v
            }),
        ]
    }

    fn arb_zk_command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            (1i64..4).prop_map(|id| MetadataCommand::ZkCreateSession {
                session_id: id,
                password: vec![0; 16],
                timeout_ms: 4000,
                now_ms: 1
            }),
            prop::collection::vec(1i64..4, 0..3)
                .prop_map(|ids| MetadataCommand::ZkExpireSessions { session_ids: ids }),
            prop::collection::vec(1i64..4, 0..3).prop_map(|ids| MetadataCommand::ZkTouchSessions {
                session_ids: ids,
                now_ms: 2
            }),
            (0i64..4, prop::collection::vec(arb_zk_op(), 1..4)).prop_map(|(sid, ops)| {
                MetadataCommand::ZkMulti {
                    session_id: sid,
                    now_ms: 3,
                    ops,
                    data_bytes_max: Some(1 << 20),
                }
            }),
        ]
    }

    proptest! {
        /// A ZkMulti either applies fully (every result a success) or leaves the znodes untouched.
        #[test]
        fn zk_multi_is_all_or_nothing(cmds in prop::collection::vec(arb_zk_command(), 0..40)) {
            let mut img = MetadataImage::default();
            for (i, c) in cmds.iter().enumerate() {
                let (n, out) = apply(&img, &MetadataRequest::new(c.clone()), i as u64 + 1);
                n.check_invariants();
                if let ApplyOutcome::Zk(results) = &out {
                    let failed = results.iter().any(|r| matches!(r, crate::metadata::ZkOpResult::Error(_)));
                    if failed {
                        prop_assert_eq!(&n.zk.znodes, &img.zk.znodes);
                    }
                    prop_assert!(!failed || results.iter().all(|r| matches!(r, crate::metadata::ZkOpResult::Error(_))));
                }
                for z in n.zk.znodes.values() {
                    prop_assert!(z.czxid <= i as i64 + 1);
                }
                img = n;
            }
        }
    }

    proptest! {
        #[test]
        fn apply_keeps_invariants(cmds in prop::collection::vec(arb_command(), 0..40)) {
            let (img, _) = run(&cmds);
            img.check_invariants();
            // Epochs never go backwards between consecutive images.
            let mut prev = MetadataImage::default();
            for (i, c) in cmds.iter().enumerate() {
                let (n, _) = apply(&prev, &MetadataRequest::new(c.clone()), i as u64 + 1);
                for (name, t) in &n.topics {
                    if let Some(old) = prev.topics.get(name) {
                        if old.id == t.id {
                            for (a, b) in old.partitions.iter().zip(&t.partitions) {
                                prop_assert!(b.leader_epoch >= a.leader_epoch);
                                prop_assert!(b.partition_epoch >= a.partition_epoch);
                            }
                        }
                    }
                }
                prev = n;
            }
        }
    }
}

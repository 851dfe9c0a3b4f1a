//! The immutable metadata image. Readers hold an `Arc<MetadataImage>`; the state machine builds
//! a new image per applied command (topics are `Arc`s, so a change copies pointers, not topics).

use crate::security::scram::{ScramCredential, ScramMechanism};
use crate::types::{NodeId, TopicId, TopicName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A broker's advertised endpoint for one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
    /// The listener's security protocol (`SASL_PLAINTEXT`, ...); absent in registrations
    /// written before it existed (then PLAINTEXT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_protocol: Option<String>,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: NodeId,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// Fenced brokers are registered but not alive: they lead nothing and count in no ISR.
    #[serde(default)]
    pub fenced: bool,
    /// The Raft index of the latest registration (the ZooKeeper facade's czxid for it).
    #[serde(default)]
    pub registered_index: u64,
    /// The broker's node-to-node (Raft / replication gRPC) address, `host:port`. Lets peers
    /// that do not have the broker in their `controller.quorum.voters` (a node added later)
    /// fetch from, heartbeat to and probe it. Absent in registrations written before it existed.
    #[serde(default)]
    pub raft_addr: Option<String>,
}

#[cfg(test)]
impl BrokerRegistration {
    /// An unfenced registration with one PLAINTEXT endpoint `host:9092` (tests).
    pub(crate) fn for_test(node_id: NodeId, host: &str) -> Self {
        Self {
            node_id,
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: host.into(),
                port: 9092,
                security_protocol: None,
            }],
            rack: None,
            fenced: false,
            registered_index: 0,
            raft_addr: None,
        }
    }
}

/// One partition's replica set and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: Option<NodeId>,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition's record (leader, ISR or replicas).
    pub partition_epoch: i32,
    /// An ongoing reassignment (KIP-455): the replicas it adds. They are in `replicas` and
    /// follow the leader like any replica; the reassignment completes once every target
    /// replica (`replicas` minus `removing`) is in the ISR. Empty when none is in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<NodeId>,
    /// The replicas an ongoing reassignment removes when it completes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<NodeId>,
}

impl PartitionImage {
    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas once the ongoing reassignment completes (`replicas` when none is).
    pub fn target_replicas(&self) -> Vec<NodeId> {
        without(&self.replicas, &self.removing)
    }

    /// The replicas before the ongoing reassignment started (what a cancel restores).
    pub fn original_replicas(&self) -> Vec<NodeId> {
        without(&self.replicas, &self.adding)
    }
}

/// `list` without the members of `drop`, in order.
pub(crate) fn without(list: &[NodeId], drop: &[NodeId]) -> Vec<NodeId> {
    list.iter().copied().filter(|n| !drop.contains(n)).collect()
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: TopicName,
    pub id: TopicId,
    pub partitions: Vec<PartitionImage>,
    /// Dynamic (per-topic) config overrides, validated.
    pub configs: BTreeMap<String, String>,
    pub created_index: u64,
    pub modified_index: u64,
    pub configs_modified_index: u64,
}

/// The cluster metadata as of `applied_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub applied_index: u64,
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    pub topics: BTreeMap<TopicName, Arc<TopicImage>>,
    pub topic_ids: BTreeMap<TopicId, TopicName>,
    /// The next unallocated producer id.
    pub next_producer_id: i64,
    /// ZooKeeper facade state: free-form znodes and sessions.
    #[serde(default)]
    pub zk: super::znode::ZkState,
    /// Dynamic broker configs by entity: a broker id, or [`CLUSTER_DEFAULT_ENTITY`].
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BrokerConfigsImage>,
    /// Per-user configs: SCRAM credentials (AlterUserScramCredentials, `/config/users/<u>`)
    /// and any other user config Kafka's tools write there.
    #[serde(default)]
    pub users: BTreeMap<String, UserImage>,
    /// ACLs (CreateAcls / DeleteAcls, `/kafka-acl...` through the facade).
    #[serde(default)]
    pub acls: crate::security::acl::AclStore,
    /// Client quotas by entity (AlterClientQuotas, `/config/users|clients/...`).
    #[serde(default, with = "super::quotas::serde_entries")]
    pub client_quotas: super::quotas::ClientQuotas,
}

/// One user's configs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserImage {
    pub scram: BTreeMap<ScramMechanism, ScramCredential>,
    /// Other `/config/users/<u>` keys, kept as written (quota keys are `client_quotas`).
    #[serde(default)]
    pub other: BTreeMap<String, String>,
    pub created_index: u64,
    pub modified_index: u64,
}

impl UserImage {
    /// Kafka's `/config/users/<u>` config map: each SCRAM mechanism's credential string and
    /// the other keys.
    pub fn zk_configs(&self) -> BTreeMap<String, String> {
        let mut out = self.other.clone();
        for (m, c) in &self.scram {
            out.insert(m.name().to_owned(), c.to_zk_string());
        }
        out
    }
}

/// The entity name of the cluster-wide default broker config (as ZooKeeper-mode Kafka names
/// its znode, `/config/brokers/<default>`).
pub const CLUSTER_DEFAULT_ENTITY: &str = "<default>";

/// The `broker_configs` key of a broker (`None` = the cluster default).
pub fn broker_config_entity(broker: Option<NodeId>) -> String {
    broker.map_or_else(|| CLUSTER_DEFAULT_ENTITY.to_owned(), |b| b.0.to_string())
}

/// One entity's dynamic broker configs (validated by the proposer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfigsImage {
    pub configs: BTreeMap<String, String>,
    pub created_index: u64,
    pub modified_index: u64,
}

/// Why a partition gets no leader election (ElectLeaders' errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferredElection {
    /// No such topic or partition.
    Unknown,
    /// Preferred: the preferred replica already leads; unclean: a live leader or in-sync
    /// replica exists (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// Preferred: the preferred replica is not live or not in the ISR
    /// (PREFERRED_LEADER_NOT_AVAILABLE); unclean: no replica is live
    /// (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    NotAvailable,
}

impl MetadataImage {
    /// The dynamic configs of `broker` (`None` = the cluster default); empty if none.
    pub fn broker_configs(&self, broker: Option<NodeId>) -> BTreeMap<String, String> {
        self.broker_configs
            .get(&broker_config_entity(broker))
            .map(|b| b.configs.clone())
            .unwrap_or_default()
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&Arc<TopicImage>> {
        self.topic_ids.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        let idx = usize::try_from(partition).ok()?;
        self.topic(topic)?.partitions.get(idx)
    }

    /// The node-to-node address a broker registered (`None` for registrations without it).
    pub fn broker_raft_addr(&self, node: NodeId) -> Option<&str> {
        self.brokers.get(&node)?.raft_addr.as_deref()
    }

    /// Brokers that are registered and not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// The preferred-leader election of one partition (Kafka's `PreferredReplicaPartition
    /// LeaderElectionStrategy`): the first replica of its assignment becomes leader if it is
    /// live and in the ISR. Returns the partition change to propose, decided on the
    /// partition's current epoch (a concurrent change wins).
    ///
    /// # Errors
    /// [`PreferredElection::Unknown`], [`PreferredElection::NotNeeded`] (already its
    /// leader), [`PreferredElection::NotAvailable`] (not live or not in the ISR).
    pub fn preferred_leader_move(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<crate::metadata::MetadataCommand, PreferredElection> {
        self.elect(topic, partition, |p, live| {
            let preferred = *p.replicas.first().ok_or(PreferredElection::NotAvailable)?;
            if p.leader == Some(preferred) {
                return Err(PreferredElection::NotNeeded);
            }
            if !live(&preferred) || !p.isr.contains(&preferred) {
                return Err(PreferredElection::NotAvailable);
            }
            Ok((preferred, p.isr.clone()))
        })
    }

    /// A leader change of `topic`-`partition` decided by `decide` (the new leader and ISR,
    /// given the partition and whether a broker is live), on the partition's current epoch.
    fn elect(
        &self,
        topic: &str,
        partition: i32,
        decide: impl FnOnce(
            &PartitionImage,
            &dyn Fn(&NodeId) -> bool,
        ) -> Result<(NodeId, Vec<NodeId>), PreferredElection>,
    ) -> Result<crate::metadata::MetadataCommand, PreferredElection> {
        let t = self.topic(topic).ok_or(PreferredElection::Unknown)?;
        let p = self
            .partition(topic, partition)
            .ok_or(PreferredElection::Unknown)?;
        let live = |n: &NodeId| self.brokers.get(n).is_some_and(|b| !b.fenced);
        let (leader, isr) = decide(p, &live)?;
        Ok(crate::metadata::MetadataCommand::ChangePartition {
            topic: t.name.clone(),
            partition,
            partition_epoch: p.partition_epoch,
            leader: Some(leader),
            isr,
        })
    }

    /// The unclean election of one partition (Kafka's unclean strategy): when neither its
    /// leader nor any in-sync replica is live, the first live replica in assignment order
    /// becomes leader with an ISR of itself (what it lacks of the old leader's log is lost).
    ///
    /// # Errors
    /// [`PreferredElection::Unknown`], [`PreferredElection::NotNeeded`] (a live leader or
    /// in-sync replica), [`PreferredElection::NotAvailable`] (no live replica).
    pub fn unclean_leader_move(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<crate::metadata::MetadataCommand, PreferredElection> {
        self.elect(topic, partition, |p, live| {
            if p.leader.as_ref().is_some_and(live) || p.isr.iter().any(live) {
                return Err(PreferredElection::NotNeeded);
            }
            let r = p
                .replicas
                .iter()
                .copied()
                .find(|r| live(r))
                .ok_or(PreferredElection::NotAvailable)?;
            Ok((r, vec![r]))
        })
    }

    /// Checks the invariants every image must keep. Panics: a broken invariant means the
    /// state machine is corrupt and the node must stop rather than serve wrong metadata.
    pub fn check_invariants(&self) {
        assert_eq!(
            self.topics.len(),
            self.topic_ids.len(),
            "topic id index out of sync"
        );
        for (name, t) in &self.topics {
            assert_eq!(&t.name, name, "topic keyed under another name");
            assert_eq!(
                self.topic_ids.get(&t.id),
                Some(name),
                "topic id index mismatch for {name}"
            );
            assert!(!t.partitions.is_empty(), "topic {name} has no partitions");
            for (i, p) in t.partitions.iter().enumerate() {
                assert!(!p.replicas.is_empty(), "{name}-{i} has no replicas");
                let mut r = p.replicas.clone();
                r.sort();
                r.dedup();
                assert_eq!(
                    r.len(),
                    p.replicas.len(),
                    "{name}-{i} has duplicate replicas"
                );
                assert!(
                    p.isr.iter().all(|n| p.replicas.contains(n)),
                    "{name}-{i}: ISR not within replicas"
                );
                if let Some(l) = p.leader {
                    assert!(p.isr.contains(&l), "{name}-{i}: leader {l} not in ISR");
                }
                assert!(
                    p.adding.iter().all(|n| p.replicas.contains(n))
                        && p.removing.iter().all(|n| p.replicas.contains(n))
                        && !p.adding.iter().any(|n| p.removing.contains(n)),
                    "{name}-{i}: reassignment sets not disjoint subsets of the replicas"
                );
                assert!(
                    !p.target_replicas().is_empty(),
                    "{name}-{i}: a reassignment to no replica"
                );
                assert!(
                    p.leader_epoch >= 0 && p.partition_epoch >= 0,
                    "{name}-{i}: negative epoch"
                );
            }
        }
        assert!(
            self.next_producer_id >= 0,
            "producer id counter went negative"
        );
        self.zk.check_invariants();
        self.acls.check_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_without_raft_addr_still_decodes() {
        // As written (log entries, snapshots) before `raft_addr` existed.
        let old = r#"{"node_id":3,"endpoints":[{"listener":"PLAINTEXT","host":"h","port":9092}],"rack":null,"fenced":false,"registered_index":7}"#;
        let reg: BrokerRegistration = serde_json::from_str(old).expect("decodes");
        assert_eq!(reg.node_id, NodeId(3));
        assert_eq!(reg.raft_addr, None);
        let cmd =
            format!(r#"{{"format":1,"command":{{"RegisterBroker":{{"registration":{old}}}}}}}"#);
        let req: crate::metadata::MetadataRequest = serde_json::from_str(&cmd).expect("decodes");
        assert!(matches!(
            req.command,
            crate::metadata::MetadataCommand::RegisterBroker { ref registration }
                if registration.raft_addr.is_none()
        ));
        let mut image = MetadataImage::default();
        image.brokers.insert(NodeId(3), reg.clone());
        assert_eq!(image.broker_raft_addr(NodeId(3)), None);
        let new = BrokerRegistration {
            raft_addr: Some("n3:9193".into()),
            ..reg
        };
        let back: BrokerRegistration =
            serde_json::from_str(&serde_json::to_string(&new).expect("encodes")).expect("decodes");
        assert_eq!(back, new);
        image.brokers.insert(NodeId(3), back);
        assert_eq!(image.broker_raft_addr(NodeId(3)), Some("n3:9193"));
    }
}

//! Metadata commands. Variant names are the wire tags: **append-only, never renamed or reused**
//! (like Redpanda's numbered controller commands). New fields must be `#[serde(default)]`.

use super::image::BrokerRegistration;
use super::znode::ZkOp;
use crate::security::acl::{AclBinding, AclEntry, AclFilter, ResourcePattern};
use crate::security::scram::{ScramCredential, ScramMechanism};
use crate::types::{NodeId, TopicId, TopicName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Format version of the command envelope. Bump when an incompatible encoding is introduced;
/// the state machine refuses entries from a newer format instead of misreading them.
pub const COMMAND_FORMAT_VERSION: u16 = 1;

/// One config change inside `AlterTopicConfigs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    Set { key: String, value: String },
    Delete { key: String },
}

/// A command the controller quorum agrees on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id once; later attempts are no-ops.
    InitCluster {
        cluster_id: String,
    },
    /// A broker (re)registers its endpoints; it becomes unfenced.
    RegisterBroker {
        registration: BrokerRegistration,
    },
    /// Creates a topic with an explicit replica assignment (first replica leads).
    CreateTopic {
        name: TopicName,
        topic_id: TopicId,
        assignment: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: TopicName,
    },
    /// Appends partitions with the given assignment.
    CreatePartitions {
        name: TopicName,
        assignment: Vec<Vec<NodeId>>,
    },
    /// Incremental changes to a topic's config overrides (already validated by the proposer).
    AlterTopicConfigs {
        name: TopicName,
        ops: Vec<ConfigOp>,
    },
    /// Replaces all overrides (legacy AlterConfigs, ZooKeeper `/config/topics/<t>`).
    ReplaceTopicConfigs {
        name: TopicName,
        configs: BTreeMap<String, String>,
    },
    /// Reserves `count` producer ids; the outcome carries the first.
    AllocateProducerIds {
        count: i64,
    },
    /// Leader / ISR change for one partition, guarded by its partition epoch.
    ChangePartition {
        topic: TopicName,
        partition: i32,
        partition_epoch: i32,
        leader: Option<NodeId>,
        isr: Vec<NodeId>,
    },
    /// Starts, replaces (`target` given) or cancels (`None`) the reassignment of one
    /// partition (KIP-455; AlterPartitionReassignments, `/admin/reassign_partitions`).
    ReassignPartition {
        topic: TopicName,
        partition: i32,
        target: Option<Vec<NodeId>>,
    },
    /// A broker missed its heartbeats (or shut down): fenced brokers lead nothing.
    FenceBroker {
        node_id: NodeId,
    },
    /// Opens a ZooKeeper session (id and password chosen by the accepting node).
    ZkCreateSession {
        session_id: i64,
        password: Vec<u8>,
        timeout_ms: i32,
        now_ms: i64,
    },
    /// Marks sessions alive as of `now_ms` (sent by the node they are connected to).
    ZkTouchSessions {
        session_ids: Vec<i64>,
        now_ms: i64,
    },
    /// Ends sessions (closeSession, or expiry) and removes their ephemeral znodes.
    ZkExpireSessions {
        session_ids: Vec<i64>,
    },
    /// ZooKeeper writes, all-or-nothing; the outcome is `ApplyOutcome::Zk` with one result per op.
    ZkMulti {
        session_id: i64,
        now_ms: i64,
        ops: Vec<ZkOp>,
        /// The proposer's `zk.data.total.max.bytes`: the budget of stored znode data this
        /// write must stay within (carried in the command so apply stays deterministic).
        /// Absent in entries written before the budget existed.
        #[serde(default)]
        data_bytes_max: Option<u64>,
    },
    /// Incremental changes to dynamic broker configs (`broker` `None` = the cluster default;
    /// validated by the proposer).
    AlterBrokerConfigs {
        broker: Option<NodeId>,
        ops: Vec<ConfigOp>,
    },
    /// Replaces the dynamic configs of a broker or the cluster default (legacy AlterConfigs,
    /// ZooKeeper `/config/brokers/<id>`).
    ReplaceBrokerConfigs {
        broker: Option<NodeId>,
        configs: BTreeMap<String, String>,
    },
    /// AlterUserScramCredentials (validated by the proposer): deletions, then upsertions.
    /// Deleting a credential that is not there changes nothing.
    AlterScramCredentials {
        deletions: Vec<(String, ScramMechanism)>,
        upsertions: Vec<(String, ScramMechanism, ScramCredential)>,
    },
    /// Replaces all of a user's configs (ZooKeeper `/config/users/<u>`, written by Kafka 2.x's
    /// `kafka-configs.sh --zookeeper --entity-type users`).
    ReplaceUserConfigs {
        user: String,
        scram: BTreeMap<ScramMechanism, ScramCredential>,
        other: BTreeMap<String, String>,
        /// The user's own client quotas (entity user = the desanitized `user`), replaced too.
        #[serde(default)]
        quotas: BTreeMap<String, super::quotas::QuotaValue>,
    },
    /// AlterClientQuotas (validated by the proposer): per entity, set (`Some`) or remove
    /// (`None`) each key; an entity left without quotas is removed.
    AlterClientQuotas {
        entries: Vec<(super::quotas::QuotaEntity, super::quotas::QuotaChanges)>,
    },
    /// Replaces all quotas of one entity (ZooKeeper `/config/clients/<c>`,
    /// `/config/users/<u>/clients/<c>`).
    ReplaceClientQuotas {
        entity: super::quotas::QuotaEntity,
        quotas: BTreeMap<String, super::quotas::QuotaValue>,
    },
    /// CreateAcls (validated by the proposer): adds each binding; one already stored changes
    /// nothing. Refused as a whole (`AclLimit`) if the store would then hold more than
    /// `max_total` bindings.
    CreateAcls {
        bindings: Vec<AclBinding>,
        max_total: u64,
    },
    /// DeleteAcls: removes every binding that any filter matches; the outcome
    /// (`AclsDeleted`) lists them per filter, a binding under each filter that matched it.
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
    /// The facade's write of one ACL znode (Kafka 2.x's `kafka-acls.sh
    /// --authorizer-properties zookeeper.connect=...` through create, setData and delete):
    /// replaces the pattern's entries (none removes it) when the stored version is as
    /// expected. The outcome is `Zk` with one result, as a ZooKeeper op's.
    SetResourceAcls {
        pattern: ResourcePattern,
        entries: BTreeSet<AclEntry>,
        expect: AclExpect,
        max_total: u64,
    },
}

/// The condition of a `SetResourceAcls`, as the ZooKeeper op that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclExpect {
    /// create: the pattern has no ACLs.
    Absent,
    /// setData / delete with a version (`None` = -1, any version): the pattern has ACLs.
    Present(Option<i32>),
}

fn entity(broker: Option<NodeId>) -> String {
    super::image::broker_config_entity(broker)
}

/// The Raft log payload: the command plus its format version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequest {
    pub format: u16,
    pub command: MetadataCommand,
}

impl MetadataRequest {
    pub fn new(command: MetadataCommand) -> Self {
        Self {
            format: COMMAND_FORMAT_VERSION,
            command,
        }
    }
}

impl fmt::Display for MetadataRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            MetadataCommand::InitCluster { .. } => write!(f, "InitCluster"),
            MetadataCommand::RegisterBroker { registration } => {
                write!(f, "RegisterBroker({})", registration.node_id)
            }
            MetadataCommand::CreateTopic { name, .. } => write!(f, "CreateTopic({name})"),
            MetadataCommand::DeleteTopic { name } => write!(f, "DeleteTopic({name})"),
            MetadataCommand::CreatePartitions { name, .. } => write!(f, "CreatePartitions({name})"),
            MetadataCommand::AlterTopicConfigs { name, .. } => {
                write!(f, "AlterTopicConfigs({name})")
            }
            MetadataCommand::ReplaceTopicConfigs { name, .. } => {
                write!(f, "ReplaceTopicConfigs({name})")
            }
            MetadataCommand::AllocateProducerIds { count } => {
                write!(f, "AllocateProducerIds({count})")
            }
            MetadataCommand::ChangePartition {
                topic, partition, ..
            } => {
                write!(f, "ChangePartition({topic}-{partition})")
            }
            MetadataCommand::ReassignPartition {
                topic,
                partition,
                target,
            } => write!(f, "ReassignPartition({topic}-{partition} -> {target:?})"),
            MetadataCommand::FenceBroker { node_id } => write!(f, "FenceBroker({node_id})"),
            MetadataCommand::ZkCreateSession { session_id, .. } => {
                write!(f, "ZkCreateSession({session_id:#x})")
            }
            MetadataCommand::ZkTouchSessions { session_ids, .. } => {
                write!(f, "ZkTouchSessions({})", session_ids.len())
            }
            MetadataCommand::ZkExpireSessions { session_ids } => {
                write!(f, "ZkExpireSessions({session_ids:x?})")
            }
            MetadataCommand::ZkMulti { ops, .. } => write!(f, "ZkMulti({})", ops.len()),
            MetadataCommand::AlterBrokerConfigs { broker, .. } => {
                write!(f, "AlterBrokerConfigs({})", entity(*broker))
            }
            MetadataCommand::AlterScramCredentials {
                deletions,
                upsertions,
            } => write!(
                f,
                "AlterScramCredentials({} deletions, {} upsertions)",
                deletions.len(),
                upsertions.len()
            ),
            MetadataCommand::CreateAcls { bindings, .. } => {
                write!(f, "CreateAcls({} bindings)", bindings.len())
            }
            MetadataCommand::DeleteAcls { filters } => {
                write!(f, "DeleteAcls({} filters)", filters.len())
            }
            MetadataCommand::SetResourceAcls {
                pattern, entries, ..
            } => write!(
                f,
                "SetResourceAcls({:?}:{:?}:{}, {} entries)",
                pattern.pattern,
                pattern.resource_type,
                pattern.name,
                entries.len()
            ),
            MetadataCommand::ReplaceUserConfigs { user, .. } => {
                write!(f, "ReplaceUserConfigs({user})")
            }
            MetadataCommand::AlterClientQuotas { entries } => {
                write!(f, "AlterClientQuotas({} entities)", entries.len())
            }
            MetadataCommand::ReplaceClientQuotas { entity, .. } => {
                write!(f, "ReplaceClientQuotas({})", entity.zk_path())
            }
            MetadataCommand::ReplaceBrokerConfigs { broker, .. } => {
                write!(f, "ReplaceBrokerConfigs({})", entity(*broker))
            }
        }
    }
}

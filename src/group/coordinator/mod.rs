//! `GroupCoordinator`: drives the group state machines of the `__consumer_offsets` partitions
//! this node leads. It loads a partition's records when it becomes leader (requests get
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile) and drops its groups when it stops (NOT_COORDINATOR).
//! Held JoinGroup / SyncGroup requests wait on oneshot channels; one ticker applies session,
//! rebalance and initial-delay deadlines. Offset commits and group metadata are appended as
//! keyed records through the replicated write's two halves (`Partition::append_leader`, in
//! processing order — see `append_order.rs` — then `Partition::wait_replicated`: WAL fsync and
//! high watermark, the acks=all path).
//!
//! | File | Owns |
//! | --- | --- |
//! | `mod.rs` | `GroupCoordinator`, its state (groups, partition loads, held requests), placement, `leadership_changes` (shared with the transaction coordinator) |
//! | `membership.rs` | JoinGroup, SyncGroup, Heartbeat, LeaveGroup |
//! | `offsets.rs` | OffsetCommit and TxnOffsetCommit (one check/write path; transactional offsets pending until their marker), OffsetFetch (KIP-447 `require_stable`), OffsetDelete |
//! | `administration.rs` | ListGroups, DescribeGroups, DeleteGroups |
//! | `cluster_view.rs` | committed offsets across the cluster for the facade's `/consumers`, and every coordinator's groups for the web console (read-only) |
//! | `background.rs` | the driver: loads/unloads partitions, deadlines, offset expiry, appends |
//! | `loading.rs` | rebuilding groups from an offsets partition |
//! | `append_order.rs` | append turns: records reach the log in processing order |

use self::append_order::{AppendQueue, Turn};
use super::records::{self, GroupMetadataValue, MemberRecord, OffsetValue, RecordKey};
use super::state::{
    CommittedOffset, Effects, Group, GroupLimits, GroupState, JoinParams, JoinResult, Member,
    Reply, SyncParams, SyncResult,
};
use super::GroupError;
use crate::codec::kafka::batch;
use crate::config::Config;
use crate::metadata::MetadataImage;
use crate::replication::{AppendError, AppendOptions, Partition, ReplicaManager, ReplicatedError};
use crate::rpc::PeerPool;
use crate::types::now_ms;
use crate::types::NodeId;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Longest group id accepted.
const GROUP_ID_BYTES_MAX: usize = 1024;
/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(100);

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions` (Java's UTF-16 string hash; `abs`
/// maps `i32::MIN` to 0).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// What a coordinator of an internal topic's partitions (the group coordinator on
/// `__consumer_offsets`, the transaction coordinator on `__transaction_state`) must change
/// after a new metadata image: of the partitions it `held` (partition, leader epoch), those
/// `node` no longer leads in that epoch (to unload), and those it leads now and does not hold
/// (to load, with their leader epoch).
pub fn leadership_changes(
    image: &MetadataImage,
    topic: &str,
    node: NodeId,
    held: impl IntoIterator<Item = (i32, i32)>,
) -> (Vec<i32>, Vec<(i32, i32)>) {
    let mut held_now = std::collections::BTreeSet::new();
    let mut unload = Vec::new();
    for (p, epoch) in held {
        let still = image
            .partition(topic, p)
            .is_some_and(|pi| pi.leader == Some(node) && pi.leader_epoch == epoch);
        if still {
            held_now.insert(p);
        } else {
            unload.push(p);
        }
    }
    let load = image
        .topic(topic)
        .map(|t| {
            t.partitions
                .iter()
                .enumerate()
                .filter(|(i, pi)| pi.leader == Some(node) && !held_now.contains(&(*i as i32)))
                .map(|(i, pi)| (i as i32, pi.leader_epoch))
                .collect()
        })
        .unwrap_or_default();
    (unload, load)
}

/// Committed offset as OffsetFetch reports it.
pub type CommittedOffsetView = CommittedOffset;

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetCommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A ListGroups row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// A DescribeGroups member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A DescribeGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    /// The selected protocol (Stable groups only, as Kafka reports it).
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

enum Load {
    Loading {
        leader_epoch: i32,
    },
    Loaded {
        leader_epoch: i32,
        partition: Arc<Partition>,
    },
}

impl Load {
    fn leader_epoch(&self) -> i32 {
        match self {
            Load::Loading { leader_epoch } | Load::Loaded { leader_epoch, .. } => *leader_epoch,
        }
    }
}

type JoinTx = oneshot::Sender<Result<JoinResult, GroupError>>;
type SyncTx = oneshot::Sender<Result<SyncResult, GroupError>>;
type Entry = (Bytes, Option<Bytes>);

#[derive(Default)]
struct State {
    partitions: HashMap<i32, Load>,
    groups: HashMap<String, Group>,
    joins: HashMap<(String, String), JoinTx>,
    syncs: HashMap<(String, String), SyncTx>,
    /// Append turns per offsets partition (`append_order.rs`).
    queues: HashMap<i32, Arc<AppendQueue>>,
    /// Transaction markers (producer id, commit, marker offset) that reached a partition while it was
    /// loading, applied once it is loaded (bounded by the markers of one load).
    completions_during_load: HashMap<i32, Vec<(i64, bool, i64)>>,
}

impl State {
    /// Ok unless a partition is still loading (a listing would miss its groups).
    fn none_loading(&self) -> Result<(), GroupError> {
        if self
            .partitions
            .values()
            .any(|l| matches!(l, Load::Loading { .. }))
        {
            return Err(GroupError::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    /// A group that exists and is not Dead, or GROUP_ID_NOT_FOUND.
    fn live_group(&self, group_id: &str) -> Result<&Group, GroupError> {
        self.groups
            .get(group_id)
            .filter(|g| g.state != GroupState::Dead)
            .ok_or(GroupError::GroupIdNotFound)
    }

    fn live_group_mut(&mut self, group_id: &str) -> Result<&mut Group, GroupError> {
        self.groups
            .get_mut(group_id)
            .filter(|g| g.state != GroupState::Dead)
            .ok_or(GroupError::GroupIdNotFound)
    }

    /// The next append turn on offsets partition `p`: taken while the request is processed,
    /// so records reach the log in processing order.
    fn turn(&mut self, p: i32) -> Turn {
        self.queues.entry(p).or_default().take()
    }

    fn owner(&self, p: i32) -> Result<Arc<Partition>, GroupError> {
        match self.partitions.get(&p) {
            None => Err(GroupError::NotCoordinator),
            Some(Load::Loading { .. }) => Err(GroupError::CoordinatorLoadInProgress),
            Some(Load::Loaded { partition, .. }) => Ok(partition.clone()),
        }
    }

    fn deliver(&mut self, group_id: &str, fx: Effects) {
        for (m, r) in fx.joins {
            if let Some(tx) = self.joins.remove(&(group_id.to_owned(), m)) {
                let _ = tx.send(r);
            }
        }
        for (m, r) in fx.syncs {
            if let Some(tx) = self.syncs.remove(&(group_id.to_owned(), m)) {
                let _ = tx.send(r);
            }
        }
    }

    /// Drops the groups of a partition this node no longer leads; held requests see their
    /// channel close (NOT_COORDINATOR).
    fn unload(&mut self, p: i32, partitions: i32) {
        self.partitions.remove(&p);
        self.completions_during_load.remove(&p);
        self.groups
            .retain(|id, _| partition_for(id, partitions) != p);
        self.joins
            .retain(|(g, _), _| partition_for(g, partitions) != p);
        self.syncs
            .retain(|(g, _), _| partition_for(g, partitions) != p);
    }
}

/// The consumer-group coordinator of this node.
pub struct GroupCoordinator {
    node_id: NodeId,
    config: Arc<Config>,
    limits: GroupLimits,
    replicas: Arc<ReplicaManager>,
    images: watch::Receiver<Arc<MetadataImage>>,
    /// Channels to other nodes' `GroupService` (`cluster_view.rs`).
    peers: PeerPool,
    state: Mutex<State>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("GroupCoordinator")
            .field("partitions", &st.partitions.len())
            .field("groups", &st.groups.len())
            .finish()
    }
}

fn validate_group_id(group_id: &str, allow_empty: bool) -> Result<(), GroupError> {
    if (group_id.is_empty() && !allow_empty) || group_id.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId);
    }
    Ok(())
}

/// The metadata record of a group (a tombstone if it is Dead).
fn group_record(g: &Group) -> Entry {
    let key = records::encode_key(&RecordKey::GroupMetadata {
        group: g.id.clone(),
    });
    if g.state == GroupState::Dead {
        return (key, None);
    }
    let proto = g.protocol_name.clone().unwrap_or_default();
    let value = GroupMetadataValue {
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        generation: g.generation_id,
        protocol: g.protocol_name.clone(),
        leader: g.leader_id.clone(),
        current_state_timestamp_ms: g.state_timestamp_ms,
        members: g
            .members
            .values()
            .map(|m| MemberRecord {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata_for(&proto),
                assignment: m.assignment.clone(),
            })
            .collect(),
    };
    (key, Some(records::encode_group_value(&value)))
}

fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    records::encode_key(&RecordKey::Offset {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    })
}

impl GroupCoordinator {
    pub fn new(
        config: Arc<Config>,
        replicas: Arc<ReplicaManager>,
        images: watch::Receiver<Arc<MetadataImage>>,
    ) -> Arc<Self> {
        let g = &config.groups;
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        let limits = GroupLimits {
            min_session_timeout_ms: ms(g.min_session_timeout),
            max_session_timeout_ms: ms(g.max_session_timeout),
            max_size: g.max_size,
            initial_rebalance_delay_ms: i64::from(ms(g.initial_rebalance_delay)),
            member_metadata_bytes_max: g.member_metadata_bytes_max,
            protocols_per_member_max: 64,
        };
        let peers = PeerPool::with_tls(crate::rpc::RaftTls::client_for(&config));
        Arc::new(Self {
            node_id: config.node_id,
            config,
            limits,
            replicas,
            images,
            peers,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock already stops the node (invariants); keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Partitions of `__consumer_offsets` (the existing topic's, else the configured count).
    fn num_partitions(&self) -> i32 {
        let image = self.images.borrow();
        image
            .topic(OFFSETS_TOPIC)
            .map_or(self.config.defaults.offsets_topic_num_partitions, |t| {
                t.partitions.len() as i32
            })
    }

    /// The `__consumer_offsets` partition holding `group_id`.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.num_partitions())
    }

    /// Whether this node serves the partition (loaded).
    pub fn is_loaded(&self, partition: i32) -> bool {
        matches!(
            self.lock().partitions.get(&partition),
            Some(Load::Loaded { .. })
        )
    }
}

mod administration;
mod append_order;
mod background;
mod cluster_view;
pub use cluster_view::{Committed, ConsumerOffsets, GroupOffsets, GroupSummary};
pub(crate) use cluster_view::{GROUPS_LISTED_MAX, OFFSETS_LISTED_MAX};
mod loading;
mod membership;
mod offsets;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        // Java: "my-group".hashCode() == -1906497762 → 1906497762 % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        // A string whose Java hash is Integer.MIN_VALUE maps to partition 0 (Utils.abs).
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("console-consumer-1", 1), 0);
    }
}

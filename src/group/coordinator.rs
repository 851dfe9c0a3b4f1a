//! `GroupCoordinator`: drives the group state machines of the `__consumer_offsets` partitions
//! this node leads. It loads a partition's records when it becomes leader (requests get
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile) and drops its groups when it stops (NOT_COORDINATOR).
//! Held JoinGroup / SyncGroup requests wait on oneshot channels; one ticker applies session,
//! rebalance and initial-delay deadlines. Offset commits and group metadata are appended as
//! keyed records through `Partition::append_leader` and acknowledged only after the WAL fsync
//! and the high watermark cover them (the acks=all path).

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
use crate::types::NodeId;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
}

impl State {
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
        Arc::new(Self {
            node_id: config.node_id,
            config,
            limits,
            replicas,
            images,
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

    // ---- group membership ------------------------------------------------------------------------

    /// JoinGroup. The answer may be held until the rebalance completes.
    ///
    /// # Errors
    /// See [`GroupError`].
    pub async fn join(&self, group_id: &str, p: JoinParams) -> Result<JoinResult, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let wait = Duration::from_millis(
            u64::try_from(p.rebalance_timeout_ms.max(p.session_timeout_ms)).unwrap_or(0),
        ) + Duration::from_secs(5);
        let prefix = p
            .group_instance_id
            .clone()
            .unwrap_or_else(|| p.client_id.clone());
        let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        let held = {
            let mut st = self.lock();
            st.owner(pidx)?;
            if !st.groups.contains_key(group_id) {
                if !p.member_id.is_empty() {
                    return Err(GroupError::UnknownMemberId);
                }
                if st.groups.len() >= self.config.groups.groups_max {
                    return Err(GroupError::InvalidRequest(
                        "too many groups on this coordinator".into(),
                    ));
                }
                st.groups.insert(
                    group_id.to_owned(),
                    Group::new(group_id.to_owned(), now_ms()),
                );
            }
            let key_member = if p.member_id.is_empty() {
                new_id.clone()
            } else {
                p.member_id.clone()
            };
            let mut fx = Effects::default();
            let Some(group) = st.groups.get_mut(group_id) else {
                return Err(GroupError::CoordinatorNotAvailable);
            };
            let reply = group.join(p, new_id, now_ms(), &self.limits, &mut fx);
            let persist = fx.persist.then(|| group_record(group));
            match reply {
                Reply::Now(r) => {
                    let unused = group.is_unused();
                    st.deliver(group_id, fx);
                    if unused {
                        // A rejected first join leaves nothing behind.
                        st.groups.remove(group_id);
                    }
                    Err((r, persist))
                }
                Reply::Held => {
                    let (tx, rx) = oneshot::channel();
                    if let Some(old) = st.joins.insert((group_id.to_owned(), key_member), tx) {
                        let _ = old.send(Err(GroupError::RebalanceInProgress));
                    }
                    st.deliver(group_id, fx);
                    Ok((rx, persist))
                }
            }
        };
        let (rx, persist) = match held {
            Ok(x) => x,
            Err((r, persist)) => {
                // The answer is final once its metadata (a replaced static member) is stored.
                if let Some(rec) = persist {
                    self.append(pidx, vec![rec]).await?;
                }
                return r;
            }
        };
        if let Some(rec) = persist {
            self.persist_quietly(pidx, rec).await;
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(GroupError::NotCoordinator),
            Err(_) => Err(GroupError::RebalanceInProgress),
        }
    }

    async fn persist_quietly(&self, pidx: i32, rec: Entry) {
        if let Err(e) = self.append(pidx, vec![rec]).await {
            warn!(partition = pidx, error = %e, "cannot store group metadata");
        }
    }

    /// SyncGroup. Members wait for the leader's assignment; it is stored before anyone is
    /// answered.
    ///
    /// # Errors
    /// See [`GroupError`].
    pub async fn sync(&self, group_id: &str, p: SyncParams) -> Result<SyncResult, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let member_id = p.member_id.clone();
        let (rx, persist, mut fx) = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let mut fx = Effects::default();
            let Some(group) = st.groups.get_mut(group_id) else {
                return Err(GroupError::UnknownMemberId);
            };
            let reply = group.sync(p, now_ms(), &mut fx);
            let persist = fx.persist.then(|| group_record(group));
            match reply {
                Reply::Now(r) => {
                    st.deliver(group_id, fx);
                    return r;
                }
                Reply::Held => {
                    let (tx, rx) = oneshot::channel();
                    if let Some(old) = st.syncs.insert((group_id.to_owned(), member_id), tx) {
                        let _ = old.send(Err(GroupError::RebalanceInProgress));
                    }
                    (rx, persist, fx)
                }
            }
        };
        if let Some(rec) = persist {
            if let Err(e) = self.append(pidx, vec![rec]).await {
                warn!(group = group_id, error = %e, "cannot store the group assignment");
                for s in &mut fx.syncs {
                    s.1 = Err(e.clone());
                }
            }
        }
        self.lock().deliver(group_id, fx);
        match tokio::time::timeout(self.config.groups.max_session_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(GroupError::NotCoordinator),
            Err(_) => Err(GroupError::RebalanceInProgress),
        }
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// See [`GroupError`].
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let mut st = self.lock();
        st.owner(pidx)?;
        let group = st
            .groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        group.heartbeat(member_id, instance, generation_id, now_ms())
    }

    /// LeaveGroup for several members; one result per member.
    ///
    /// # Errors
    /// Group-level failures (not coordinator, unknown group).
    pub async fn leave(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let (out, persist) = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let group = st
                .groups
                .get_mut(group_id)
                .ok_or(GroupError::UnknownMemberId)?;
            let mut fx = Effects::default();
            let now = now_ms();
            let out: Vec<_> = members
                .iter()
                .map(|(m, i)| group.leave(m, i.as_deref(), now, &self.limits, &mut fx))
                .collect();
            let persist = fx.persist.then(|| group_record(group));
            st.deliver(group_id, fx);
            (out, persist)
        };
        if let Some(rec) = persist {
            self.persist_quietly(pidx, rec).await;
        }
        Ok(out)
    }

    // ---- offsets ---------------------------------------------------------------------------------

    /// OffsetCommit: answers once the records are durable. One result per entry.
    ///
    /// # Errors
    /// Group-level failures (coordinator, membership, generation).
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        validate_group_id(group_id, true)?;
        let pidx = self.partition_of(group_id);
        let now = now_ms();
        let mut results: Vec<Result<(), GroupError>> = Vec::with_capacity(entries.len());
        let mut writes: Vec<(usize, OffsetCommitEntry)> = Vec::new();
        {
            let mut st = self.lock();
            st.owner(pidx)?;
            if !st.groups.contains_key(group_id) {
                if generation_id >= 0 {
                    return Err(GroupError::IllegalGeneration);
                }
                if st.groups.len() >= self.config.groups.groups_max {
                    return Err(GroupError::InvalidRequest(
                        "too many groups on this coordinator".into(),
                    ));
                }
                st.groups
                    .insert(group_id.to_owned(), Group::new(group_id.to_owned(), now));
            }
            let group = st
                .groups
                .get_mut(group_id)
                .ok_or(GroupError::CoordinatorNotAvailable)?;
            group.check_commit(member_id, instance, generation_id, now)?;
            for (i, e) in entries.into_iter().enumerate() {
                if e.metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > self.config.groups.offset_metadata_bytes_max)
                {
                    results.push(Err(GroupError::OffsetMetadataTooLarge));
                } else {
                    results.push(Ok(()));
                    writes.push((i, e));
                }
            }
        }
        if writes.is_empty() {
            return Ok(results);
        }
        let recs: Vec<Entry> = writes
            .iter()
            .map(|(_, e)| {
                let v = OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata.clone().unwrap_or_default(),
                    commit_timestamp_ms: now,
                };
                (
                    offset_key(group_id, &e.topic, e.partition),
                    Some(records::encode_offset_value(&v)),
                )
            })
            .collect();
        match self.append(pidx, recs).await {
            Err(err) => {
                for (i, _) in &writes {
                    results[*i] = Err(err.clone());
                }
            }
            Ok(base) => {
                let mut st = self.lock();
                // The group may have been dropped meanwhile as unused (a standalone commit).
                if st.owner(pidx).is_ok() {
                    let group = st
                        .groups
                        .entry(group_id.to_owned())
                        .or_insert_with(|| Group::new(group_id.to_owned(), now));
                    for (n, (_, e)) in writes.into_iter().enumerate() {
                        let c = CommittedOffset {
                            offset: e.offset,
                            leader_epoch: e.leader_epoch,
                            metadata: e.metadata.unwrap_or_default(),
                            commit_timestamp_ms: now,
                            log_offset: base + n as i64,
                        };
                        let slot = group.offsets.entry((e.topic, e.partition));
                        match slot {
                            std::collections::btree_map::Entry::Occupied(mut o)
                                if o.get().log_offset < c.log_offset =>
                            {
                                o.insert(c);
                            }
                            std::collections::btree_map::Entry::Occupied(_) => {}
                            std::collections::btree_map::Entry::Vacant(v) => {
                                v.insert(c);
                            }
                        }
                    }
                }
            }
        }
        Ok(results)
    }

    /// OffsetFetch: `None` topics = every committed offset of the group.
    ///
    /// # Errors
    /// Not the coordinator, or loading.
    #[allow(clippy::type_complexity)]
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>, GroupError> {
        validate_group_id(group_id, true)?;
        let pidx = self.partition_of(group_id);
        let st = self.lock();
        st.owner(pidx)?;
        let group = st.groups.get(group_id);
        Ok(match topics {
            Some(ts) => ts
                .into_iter()
                .map(|(t, ps)| {
                    let parts = ps
                        .into_iter()
                        .map(|p| {
                            (
                                p,
                                group.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned()),
                            )
                        })
                        .collect();
                    (t, parts)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                    BTreeMap::new();
                for ((t, p), c) in group.map(|g| g.offsets.iter()).into_iter().flatten() {
                    by_topic
                        .entry(t.clone())
                        .or_default()
                        .push((*p, Some(c.clone())));
                }
                by_topic.into_iter().collect()
            }
        })
    }

    /// OffsetDelete: removes committed offsets of topics the group does not subscribe to.
    ///
    /// # Errors
    /// Group-level failures.
    #[allow(clippy::type_complexity)]
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<Vec<(String, Vec<(i32, Result<(), GroupError>)>)>, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let mut tombstones = Vec::new();
        let out = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let group = st.live_group_mut(group_id)?;
            let subscribed = if group.state == GroupState::Empty {
                Default::default()
            } else {
                group.subscribed_topics().ok_or(GroupError::NonEmptyGroup)?
            };
            let mut out = Vec::new();
            for (t, ps) in topics {
                let mut parts = Vec::new();
                for p in ps {
                    if subscribed.contains(&t) {
                        parts.push((p, Err(GroupError::GroupSubscribedToTopic)));
                        continue;
                    }
                    if group.offsets.remove(&(t.clone(), p)).is_some() {
                        tombstones.push((offset_key(group_id, &t, p), None));
                    }
                    parts.push((p, Ok(())));
                }
                out.push((t, parts));
            }
            out
        };
        if !tombstones.is_empty() {
            self.append(pidx, tombstones).await?;
        }
        Ok(out)
    }

    // ---- administration ------------------------------------------------------------------------

    /// ListGroups: the groups of every partition this node coordinates.
    ///
    /// # Errors
    /// A partition is still loading.
    pub fn list_groups(&self) -> Result<Vec<GroupListing>, GroupError> {
        let st = self.lock();
        if st
            .partitions
            .values()
            .any(|l| matches!(l, Load::Loading { .. }))
        {
            return Err(GroupError::CoordinatorLoadInProgress);
        }
        let mut out: Vec<GroupListing> = st
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// DescribeGroups for one group.
    ///
    /// # Errors
    /// Not the coordinator, loading, or `GroupIdNotFound`.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        let pidx = self.partition_of(group_id);
        let st = self.lock();
        st.owner(pidx)?;
        let g = st.live_group(group_id)?;
        let stable = g.state == GroupState::Stable;
        let proto = g.protocol_name.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&proto)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Ok(GroupDescription {
            group_id: g.id.clone(),
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { proto } else { String::new() },
            members,
        })
    }

    /// DeleteGroups for one group: only empty groups; their offsets and metadata get tombstones.
    ///
    /// # Errors
    /// Not the coordinator, `GroupIdNotFound`, `NonEmptyGroup`, storage failures.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        validate_group_id(group_id, true)?;
        let pidx = self.partition_of(group_id);
        let tombstones = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let g = st.live_group_mut(group_id)?;
            if !g.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
            let mut fx = Effects::default();
            g.mark_dead(now_ms(), &mut fx);
            let mut t: Vec<Entry> = g
                .offsets
                .keys()
                .map(|(topic, p)| (offset_key(group_id, topic, *p), None))
                .collect();
            t.push(group_record(g));
            st.groups.remove(group_id);
            st.deliver(group_id, fx);
            t
        };
        self.append(pidx, tombstones).await.map(|_| ())
    }

    // ---- background ------------------------------------------------------------------------------

    /// Follows leadership of `__consumer_offsets` and applies deadlines until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut images = self.images.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_retention =
            Instant::now() + self.config.groups.offsets_retention_check_interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = images.changed() => if r.is_err() { break },
                _ = tick.tick() => {}
            }
            self.reconcile().await;
            self.tick_groups().await;
            if Instant::now() >= next_retention {
                next_retention =
                    Instant::now() + self.config.groups.offsets_retention_check_interval;
                self.expire_offsets().await;
            }
        }
        let mut st = self.lock();
        st.joins.clear();
        st.syncs.clear();
    }

    async fn tick_groups(&self) {
        let now = now_ms();
        let mut persist = Vec::new();
        {
            let mut st = self.lock();
            let ids: Vec<String> = st.groups.keys().cloned().collect();
            for id in ids {
                let mut fx = Effects::default();
                let Some(g) = st.groups.get_mut(&id) else {
                    continue;
                };
                g.tick(now, &self.limits, &mut fx);
                if fx.persist {
                    persist.push((id.clone(), group_record(g)));
                }
                let unused = g.is_unused();
                st.deliver(&id, fx);
                if unused {
                    st.groups.remove(&id);
                }
            }
        }
        for (id, rec) in persist {
            let pidx = self.partition_of(&id);
            self.persist_quietly(pidx, rec).await;
        }
    }

    /// Loads partitions this node now leads; unloads those it no longer leads.
    async fn reconcile(&self) {
        let image = self.images.borrow().clone();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            let mut st = self.lock();
            if !st.partitions.is_empty() {
                *st = State::default();
            }
            return;
        };
        let n = topic.partitions.len() as i32;
        let mut to_load = Vec::new();
        {
            let mut st = self.lock();
            let held: Vec<(i32, i32)> = st
                .partitions
                .iter()
                .map(|(p, l)| (*p, l.leader_epoch()))
                .collect();
            for (p, epoch) in held {
                let still = image
                    .partition(OFFSETS_TOPIC, p)
                    .is_some_and(|pi| pi.leader == Some(self.node_id) && pi.leader_epoch == epoch);
                if !still {
                    info!(
                        partition = p,
                        "no longer coordinator for this offsets partition; unloading"
                    );
                    st.unload(p, n);
                }
            }
            for (i, pi) in topic.partitions.iter().enumerate() {
                if pi.leader == Some(self.node_id) && !st.partitions.contains_key(&(i as i32)) {
                    to_load.push((i as i32, pi.leader_epoch));
                }
            }
        }
        for (p, epoch) in to_load {
            let part = match self.replicas.partition(&image, OFFSETS_TOPIC, p).await {
                Ok(Some(part)) => part,
                Ok(None) => continue,
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot open offsets partition");
                    continue;
                }
            };
            // The replica manager applies the same image; wait for it to act as leader.
            if !part.is_leader() || part.leader_epoch() != epoch {
                continue;
            }
            self.lock().partitions.insert(
                p,
                Load::Loading {
                    leader_epoch: epoch,
                },
            );
            match load_partition(
                part.clone(),
                self.config.limits.decompressed_batch_bytes_max,
            )
            .await
            {
                Ok(groups) => {
                    let mut st = self.lock();
                    if matches!(st.partitions.get(&p), Some(Load::Loading { leader_epoch }) if *leader_epoch == epoch)
                    {
                        let count = groups.len();
                        for g in groups {
                            st.groups.insert(g.id.clone(), g);
                        }
                        st.partitions.insert(
                            p,
                            Load::Loaded {
                                leader_epoch: epoch,
                                partition: part,
                            },
                        );
                        info!(
                            partition = p,
                            leader_epoch = epoch,
                            groups = count,
                            "loaded offsets partition"
                        );
                    }
                }
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot load offsets partition; will retry");
                    self.lock().partitions.remove(&p);
                }
            }
        }
    }

    /// Expires offsets of Empty groups older than `offsets.retention.minutes`; removes groups
    /// left with nothing.
    async fn expire_offsets(&self) {
        let now = now_ms();
        let retention =
            i64::try_from(self.config.groups.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let mut by_partition: HashMap<i32, Vec<Entry>> = HashMap::new();
        {
            let mut st = self.lock();
            let n = self.num_partitions();
            let mut dead = Vec::new();
            for g in st
                .groups
                .values_mut()
                .filter(|g| g.state == GroupState::Empty)
            {
                let since = g.state_timestamp_ms;
                let expired: Vec<(String, i32)> = g
                    .offsets
                    .iter()
                    .filter(|(_, c)| {
                        c.commit_timestamp_ms.max(since).saturating_add(retention) <= now
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let out = by_partition.entry(partition_for(&g.id, n)).or_default();
                for k in expired {
                    g.offsets.remove(&k);
                    out.push((offset_key(&g.id, &k.0, k.1), None));
                }
                if g.offsets.is_empty() && g.is_empty() && since.saturating_add(retention) <= now {
                    let mut fx = Effects::default();
                    g.mark_dead(now, &mut fx);
                    out.push(group_record(g));
                    dead.push(g.id.clone());
                }
            }
            for id in dead {
                st.groups.remove(&id);
            }
        }
        for (p, recs) in by_partition.into_iter().filter(|(_, r)| !r.is_empty()) {
            debug!(partition = p, records = recs.len(), "expiring offsets");
            if let Err(e) = self.append(p, recs).await {
                warn!(partition = p, error = %e, "cannot write offset expiry tombstones");
            }
        }
    }

    /// Appends keyed records to an offsets partition this node leads and waits until they are
    /// durable: WAL fsync, then the high watermark past them (the acks=all path). Returns the
    /// offset of the first record.
    async fn append(&self, pidx: i32, entries: Vec<Entry>) -> Result<i64, GroupError> {
        let part = self.lock().owner(pidx)?;
        let now = now_ms();
        let raw = records::build_batch(&entries, now)
            .map_err(|e| GroupError::InvalidRequest(e.to_string()))?;
        let header = batch::validate_record_set(&raw)
            .map_err(|e| GroupError::InvalidRequest(e.to_string()))?;
        let [h] = header.as_slice() else {
            return Err(GroupError::InvalidRequest("one batch expected".into()));
        };
        let deadline = Instant::now() + self.config.groups.offsets_commit_timeout;
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: now,
        };
        match part.replicated_write(raw, *h, opts, deadline).await {
            Ok(info) => Ok(info.base_offset),
            Err(ReplicatedError::Append(AppendError::NotLeader) | ReplicatedError::NotLeader) => {
                Err(GroupError::NotCoordinator)
            }
            Err(e) => {
                warn!(partition = pidx, error = %e, "offsets write not replicated");
                Err(GroupError::CoordinatorNotAvailable)
            }
        }
    }
}

/// Reads a whole offsets partition and rebuilds its groups (later records win; null values
/// are tombstones).
async fn load_partition(part: Arc<Partition>, cap: usize) -> Result<Vec<Group>, String> {
    let now = now_ms();
    let upper = part.log_end_offset();
    let mut offset = part.log_start_offset();
    let mut metas: HashMap<String, Option<(GroupMetadataValue, i64)>> = HashMap::new();
    let mut offsets: HashMap<String, BTreeMap<(String, i32), CommittedOffset>> = HashMap::new();
    while offset < upper {
        let p = part.clone();
        let data = tokio::task::spawn_blocking(move || p.read(offset, LOAD_READ_BYTES, upper))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if data.is_empty() {
            break;
        }
        let headers = batch::validate_record_set(&data).map_err(|e| e.to_string())?;
        let next = headers.last().map_or(upper, |h| h.last_offset() + 1);
        let mut pos = 0usize;
        for h in &headers {
            let raw = &data[pos..pos + h.total_len()];
            pos += h.total_len();
            if h.is_control() {
                continue;
            }
            let walked = crate::codec::kafka::records::walk_records(raw, cap, |_, r| {
                let at = h.base_offset + i64::from(r.offset_delta);
                if at >= offset {
                    apply_record(at, r.key, r.value, &mut metas, &mut offsets);
                }
                std::ops::ControlFlow::Continue(())
            });
            if let Err(e) = walked {
                // Skipped, not fatal: one unreadable batch must not keep every group of the
                // partition from loading. Reported with its offset and counted.
                crate::replication::report_undecodable(
                    &part.topic,
                    part.partition,
                    h.base_offset,
                    &e,
                );
            }
        }
        if next <= offset {
            return Err(format!("load made no progress at offset {offset}"));
        }
        offset = next;
    }
    let mut ids: Vec<String> = metas.keys().chain(offsets.keys()).cloned().collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let mut g = Group::new(id.clone(), now);
        if let Some(Some((m, _))) = metas.remove(&id) {
            let proto = m.protocol.clone();
            let members = m
                .members
                .into_iter()
                .map(|r| Member {
                    member_id: r.member_id,
                    group_instance_id: r.group_instance_id,
                    client_id: r.client_id,
                    client_host: r.client_host,
                    rebalance_timeout_ms: r.rebalance_timeout_ms,
                    session_timeout_ms: r.session_timeout_ms,
                    protocol_type: m.protocol_type.clone(),
                    protocols: vec![(proto.clone().unwrap_or_default(), r.subscription)],
                    assignment: r.assignment,
                    awaiting_join: false,
                    awaiting_sync: false,
                    last_heartbeat_ms: now,
                })
                .collect();
            let ts = if m.current_state_timestamp_ms >= 0 {
                m.current_state_timestamp_ms
            } else {
                now
            };
            let ptype = Some(m.protocol_type).filter(|t| !t.is_empty());
            g.restore(ptype, m.generation, proto, m.leader, members, ts, now);
        }
        g.offsets = offsets.remove(&id).unwrap_or_default();
        if g.offsets.is_empty() && g.members.is_empty() && g.generation_id == 0 {
            continue;
        }
        out.push(g);
    }
    Ok(out)
}

#[allow(clippy::type_complexity)]
fn apply_record(
    at: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    metas: &mut HashMap<String, Option<(GroupMetadataValue, i64)>>,
    offsets: &mut HashMap<String, BTreeMap<(String, i32), CommittedOffset>>,
) {
    let Some(key) = key else { return };
    let key = match records::decode_key(key) {
        Ok(k) => k,
        Err(e) => {
            debug!(offset = at, error = %e, "skipping unreadable offsets record key");
            return;
        }
    };
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => match value {
            None => {
                if let Some(m) = offsets.get_mut(&group) {
                    m.remove(&(topic, partition));
                }
            }
            Some(v) => match records::decode_offset_value(v) {
                Ok(v) => {
                    let c = CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp_ms: v.commit_timestamp_ms,
                        log_offset: at,
                    };
                    offsets
                        .entry(group)
                        .or_default()
                        .insert((topic, partition), c);
                }
                Err(e) => debug!(offset = at, error = %e, "skipping unreadable offset value"),
            },
        },
        RecordKey::GroupMetadata { group } => match value {
            None => {
                metas.insert(group, None);
            }
            Some(v) => match records::decode_group_value(v) {
                Ok(m) => {
                    metas.insert(group, Some((m, at)));
                }
                Err(e) => {
                    debug!(offset = at, error = %e, "skipping unreadable group metadata")
                }
            },
        },
    }
}

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

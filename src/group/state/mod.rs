//! One consumer group's state machine (Kafka's classic protocol: Empty → PreparingRebalance →
//! CompletingRebalance → Stable, and Dead once deleted). Pure: time comes in as `now_ms`
//! (wall clock), and the answers to held JoinGroup / SyncGroup requests come out as `Effects`
//! keyed by member id; the coordinator owns the channels that carry them.
//!
//! `mod.rs` holds the types and the group's basic accessors; `join.rs` JoinGroup (admission,
//! static members, rebalances, protocol selection); `sync.rs` SyncGroup, Heartbeat, LeaveGroup
//! and commit checks; `timers.rs` the deadlines.

use super::GroupError;
use bytes::Bytes;
use indexmap::IndexMap;
use std::collections::{BTreeMap, HashMap};

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups / ListGroups use.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The state of a name [`GroupState::as_str`] gives (unknown names: `Dead`).
    pub fn from_name(name: &str) -> Self {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .unwrap_or(GroupState::Dead)
    }
}

/// Settings the state machine needs (from `GroupConfig`).
#[derive(Debug, Clone)]
pub struct GroupLimits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub initial_rebalance_delay_ms: i64,
    /// Sum of one member's protocol metadata.
    pub member_metadata_bytes_max: usize,
    pub protocols_per_member_max: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 1_000,
            initial_rebalance_delay_ms: 0,
            member_metadata_bytes_max: 1 << 20,
            protocols_per_member_max: 64,
        }
    }
}

/// One group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// A JoinGroup response for this member is held.
    pub awaiting_join: bool,
    /// A SyncGroup response for this member is held (CompletingRebalance).
    pub awaiting_sync: bool,
    pub last_heartbeat_ms: i64,
}

impl Member {
    /// This member's metadata for `protocol` (empty if it does not support it).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A JoinGroup request, as the state machine sees it.
#[derive(Debug, Clone, Default)]
pub struct JoinParams {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
    pub skip_assignment: bool,
}

/// A SyncGroup request.
#[derive(Debug, Clone, Default)]
pub struct SyncParams {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// A successful SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// An answer now, or later through `Effects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    Now(Result<T, GroupError>),
    Held,
}

/// Answers for held requests produced by a transition, and whether the group's metadata
/// record must be written (a new generation became Stable, or the group became Empty).
#[derive(Debug, Default)]
pub struct Effects {
    pub joins: Vec<(String, Result<JoinResult, GroupError>)>,
    pub syncs: Vec<(String, Result<SyncResult, GroupError>)>,
    pub persist: bool,
}

/// A committed offset in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Where its record sits in `__consumer_offsets` (later records win).
    pub log_offset: i64,
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: IndexMap<String, Member>,
    /// group.instance.id → current member id.
    static_members: HashMap<String, String>,
    /// Member ids issued with MEMBER_ID_REQUIRED, awaiting their rejoin (→ expiry deadline).
    pending_members: HashMap<String, i64>,
    rebalance_deadline_ms: i64,
    /// While set, a rebalance out of Empty waits for more members (initial delay).
    initial_delay_until_ms: Option<i64>,
    initial_delay_cap_ms: i64,
    new_member_added: bool,
    sync_deadline_ms: i64,
    /// When the group last changed state (retention of empty groups counts from here).
    pub state_timestamp_ms: i64,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// TxnOffsetCommit offsets by producer id, visible once its transaction commits (Kafka's
    /// `pendingTransactionalOffsetCommits`).
    pub pending_txn_offsets: BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
}

impl Group {
    pub fn new(id: String, now_ms: i64) -> Self {
        Self {
            id,
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay_until_ms: None,
            initial_delay_cap_ms: 0,
            new_member_added: false,
            sync_deadline_ms: 0,
            state_timestamp_ms: now_ms,
            pending_txn_offsets: BTreeMap::new(),
            offsets: BTreeMap::new(),
        }
    }

    /// Restores a group from its metadata record (after a coordinator load). Members keep
    /// their assignment and must heartbeat within their session timeout from `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &mut self,
        protocol_type: Option<String>,
        generation_id: i32,
        protocol_name: Option<String>,
        leader_id: Option<String>,
        members: Vec<Member>,
        state_timestamp_ms: i64,
        now_ms: i64,
    ) {
        self.protocol_type = protocol_type;
        self.generation_id = generation_id;
        self.protocol_name = protocol_name;
        self.members.clear();
        self.static_members.clear();
        for mut m in members {
            m.last_heartbeat_ms = now_ms;
            m.awaiting_join = false;
            m.awaiting_sync = false;
            if let Some(i) = &m.group_instance_id {
                self.static_members.insert(i.clone(), m.member_id.clone());
            }
            self.members.insert(m.member_id.clone(), m);
        }
        self.leader_id = leader_id
            .filter(|l| self.members.contains_key(l))
            .or_else(|| self.members.keys().next().cloned());
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        self.state_timestamp_ms = state_timestamp_ms;
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Never formed a generation and holds nothing: safe to forget.
    pub fn is_unused(&self) -> bool {
        self.is_empty()
            && self.generation_id == 0
            && self.offsets.is_empty()
            && self.pending_txn_offsets.is_empty()
            && self.state == GroupState::Empty
    }

    /// Whether a transaction's offsets for `tp` still wait for their marker.
    pub fn has_pending_txn_offset(&self, tp: &(String, i32)) -> bool {
        self.pending_txn_offsets
            .values()
            .any(|o| o.contains_key(tp))
    }

    /// Ends producer `producer_id`'s transactional offsets: on commit they replace the
    /// committed ones (unless a later record already did, as Kafka's
    /// `completePendingTxnOffsetCommit`), on abort they are dropped.
    pub fn complete_txn_offsets(&mut self, producer_id: i64, commit: bool) {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (tp, c) in pending {
            match self.offsets.get(&tp) {
                Some(old) if old.log_offset > c.log_offset => {}
                _ => {
                    self.offsets.insert(tp, c);
                }
            }
        }
    }

    pub(super) fn transition(&mut self, to: GroupState, now_ms: i64) {
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    /// Topics the members subscribe to (consumer protocol only; `None` if unknown).
    pub fn subscribed_topics(&self) -> Option<std::collections::BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let proto = self.protocol_name.as_deref()?;
        let mut out = std::collections::BTreeSet::new();
        for m in self.members.values() {
            out.extend(super::records::subscription_topics(&m.metadata_for(proto))?);
        }
        Some(out)
    }
}

mod join;
mod sync;
mod timers;

#[cfg(test)]
#[path = "../state_tests.rs"]
mod tests;

//! One consumer group's state machine (Kafka's classic protocol: Empty → PreparingRebalance →
//! CompletingRebalance → Stable, and Dead once deleted). Pure: time comes in as `now_ms`
//! (wall clock), and the answers to held JoinGroup / SyncGroup requests come out as `Effects`
//! keyed by member id; the coordinator owns the channels that carry them.

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
            && self.state == GroupState::Empty
    }

    fn transition(&mut self, to: GroupState, now_ms: i64) {
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

    // ---- JoinGroup ---------------------------------------------------------------------------

    /// Handles a JoinGroup. `new_member_id` is the id to issue if the member has none.
    pub fn join(
        &mut self,
        p: JoinParams,
        new_member_id: String,
        now_ms: i64,
        lim: &GroupLimits,
        fx: &mut Effects,
    ) -> Reply<JoinResult> {
        if let Err(e) = self.validate_join(&p, lim) {
            return Reply::Now(Err(e));
        }
        if p.member_id.is_empty() {
            return self.join_unknown(p, new_member_id, now_ms, lim, fx);
        }
        if self.pending_members.contains_key(&p.member_id) {
            let id = p.member_id.clone();
            return self.add_member_and_rebalance(id, p, now_ms, lim, fx);
        }
        if let Some(e) = self.static_fenced(&p.member_id, p.group_instance_id.as_deref()) {
            return Reply::Now(Err(e));
        }
        let Some(member) = self.members.get(&p.member_id) else {
            return Reply::Now(Err(GroupError::UnknownMemberId));
        };
        let same_protocols = member.protocols == p.protocols;
        let is_leader = self.leader_id.as_deref() == Some(p.member_id.as_str());
        match self.state {
            GroupState::Dead => Reply::Now(Err(GroupError::CoordinatorNotAvailable)),
            GroupState::Empty => Reply::Now(Err(GroupError::UnknownMemberId)),
            GroupState::PreparingRebalance => {
                self.update_member(&p, now_ms);
                self.try_complete_join(now_ms, fx);
                Reply::Held
            }
            GroupState::CompletingRebalance if same_protocols => {
                Reply::Now(Ok(self.join_result_for(&p.member_id)))
            }
            GroupState::Stable if same_protocols && !is_leader => {
                let mut r = self.join_result_for(&p.member_id);
                r.members.clear();
                Reply::Now(Ok(r))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(&p, now_ms);
                self.prepare_rebalance(now_ms, lim, fx);
                self.try_complete_join(now_ms, fx);
                Reply::Held
            }
        }
    }

    fn validate_join(&self, p: &JoinParams, lim: &GroupLimits) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if p.session_timeout_ms < lim.min_session_timeout_ms
            || p.session_timeout_ms > lim.max_session_timeout_ms
        {
            return Err(GroupError::InvalidSessionTimeout);
        }
        if p.protocols.len() > lim.protocols_per_member_max {
            return Err(GroupError::InvalidRequest(format!(
                "at most {} protocols per member",
                lim.protocols_per_member_max
            )));
        }
        let bytes: usize = p.protocols.iter().map(|(n, m)| n.len() + m.len()).sum();
        if bytes > lim.member_metadata_bytes_max {
            return Err(GroupError::InvalidRequest(format!(
                "protocol metadata larger than {} bytes",
                lim.member_metadata_bytes_max
            )));
        }
        if p.protocol_type.is_empty() || p.protocols.is_empty() {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if self.members.is_empty() {
            return Ok(());
        }
        if self.protocol_type.as_deref() != Some(p.protocol_type.as_str()) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        // Every other member must support at least one of the joiner's protocols.
        // (A static member replacing itself does not count as another member.)
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| {
                m.member_id != p.member_id
                    && (p.group_instance_id.is_none() || m.group_instance_id != p.group_instance_id)
            })
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        let ok = p.protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        });
        if ok {
            Ok(())
        } else {
            Err(GroupError::InconsistentGroupProtocol)
        }
    }

    /// `Some(FENCED_INSTANCE_ID)` if `instance` is registered under another member id.
    fn static_fenced(&self, member_id: &str, instance: Option<&str>) -> Option<GroupError> {
        let inst = instance?;
        match self.static_members.get(inst) {
            Some(current) if current != member_id => Some(GroupError::FencedInstanceId),
            _ => None,
        }
    }

    fn join_unknown(
        &mut self,
        p: JoinParams,
        new_id: String,
        now_ms: i64,
        lim: &GroupLimits,
        fx: &mut Effects,
    ) -> Reply<JoinResult> {
        if let Some(inst) = p.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&inst).cloned() {
                return self.replace_static_member(old_id, new_id, p, now_ms, lim, fx);
            }
        }
        if self.members.len() + self.pending_members.len() >= lim.max_size {
            return Reply::Now(Err(GroupError::GroupMaxSizeReached));
        }
        if p.group_instance_id.is_none() && p.require_known_member_id {
            let deadline = now_ms + i64::from(p.session_timeout_ms);
            self.pending_members.insert(new_id.clone(), deadline);
            return Reply::Now(Err(GroupError::MemberIdRequired(new_id)));
        }
        self.add_member_and_rebalance(new_id, p, now_ms, lim, fx)
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        p: JoinParams,
        now_ms: i64,
        lim: &GroupLimits,
        fx: &mut Effects,
    ) -> Reply<JoinResult> {
        self.pending_members.remove(&id);
        let member = Member {
            member_id: id.clone(),
            group_instance_id: p.group_instance_id.clone(),
            client_id: p.client_id,
            client_host: p.client_host,
            rebalance_timeout_ms: p.rebalance_timeout_ms,
            session_timeout_ms: p.session_timeout_ms,
            protocol_type: p.protocol_type.clone(),
            protocols: p.protocols,
            assignment: Bytes::new(),
            awaiting_join: true,
            awaiting_sync: false,
            last_heartbeat_ms: now_ms,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type);
        }
        if let Some(i) = &member.group_instance_id {
            self.static_members.insert(i.clone(), id.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(id.clone());
        }
        self.members.insert(id, member);
        if self.initial_delay_until_ms.is_some() {
            self.new_member_added = true;
        }
        self.prepare_rebalance(now_ms, lim, fx);
        self.try_complete_join(now_ms, fx);
        Reply::Held
    }

    /// KIP-345: a known `group.instance.id` joins with a new member id. The old id is fenced;
    /// in a Stable group with unchanged protocols, no rebalance happens.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        p: JoinParams,
        now_ms: i64,
        lim: &GroupLimits,
        fx: &mut Effects,
    ) -> Reply<JoinResult> {
        let Some(mut m) = self.members.shift_remove(&old_id) else {
            return Reply::Now(Err(GroupError::UnknownMemberId));
        };
        if m.awaiting_join {
            fx.joins
                .push((old_id.clone(), Err(GroupError::FencedInstanceId)));
        }
        if m.awaiting_sync {
            fx.syncs
                .push((old_id.clone(), Err(GroupError::FencedInstanceId)));
        }
        let unchanged = m.protocols == p.protocols && m.protocol_type == p.protocol_type;
        m.member_id = new_id.clone();
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout_ms = p.session_timeout_ms;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.awaiting_join = false;
        m.awaiting_sync = false;
        m.last_heartbeat_ms = now_ms;
        self.members.insert(new_id.clone(), m);
        if let Some(i) = &p.group_instance_id {
            self.static_members.insert(i.clone(), new_id.clone());
        }
        let old_leader = self.leader_id.clone().unwrap_or_default();
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if unchanged => {
                fx.persist = true;
                let mut r = self.join_result_for(&new_id);
                r.members.clear();
                // As Kafka: answer with the previous leader id, so a returning static leader
                // does not compute a new assignment that a Stable group would not distribute.
                r.leader_id = old_leader;
                Reply::Now(Ok(r))
            }
            GroupState::Empty | GroupState::Dead => Reply::Now(Err(GroupError::UnknownMemberId)),
            _ => {
                self.update_member(&p_with_id(p, &new_id), now_ms);
                if matches!(
                    self.state,
                    GroupState::Stable | GroupState::CompletingRebalance
                ) {
                    self.prepare_rebalance(now_ms, lim, fx);
                }
                self.try_complete_join(now_ms, fx);
                Reply::Held
            }
        }
    }

    fn update_member(&mut self, p: &JoinParams, now_ms: i64) {
        if let Some(m) = self.members.get_mut(&p.member_id) {
            m.protocols = p.protocols.clone();
            m.protocol_type = p.protocol_type.clone();
            m.session_timeout_ms = p.session_timeout_ms;
            m.rebalance_timeout_ms = p.rebalance_timeout_ms;
            m.awaiting_join = true;
            m.last_heartbeat_ms = now_ms;
        }
    }

    /// Moves to PreparingRebalance (from Empty, Stable or CompletingRebalance).
    fn prepare_rebalance(&mut self, now_ms: i64, lim: &GroupLimits, fx: &mut Effects) {
        if !matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        ) {
            return;
        }
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if m.awaiting_sync {
                    m.awaiting_sync = false;
                    fx.syncs
                        .push((m.member_id.clone(), Err(GroupError::RebalanceInProgress)));
                }
            }
        }
        let timeout = self.max_rebalance_timeout_ms();
        if self.state == GroupState::Empty && lim.initial_rebalance_delay_ms > 0 {
            self.initial_delay_until_ms = Some(now_ms + lim.initial_rebalance_delay_ms);
            self.initial_delay_cap_ms = now_ms + timeout.max(lim.initial_rebalance_delay_ms);
            self.new_member_added = false;
        }
        self.rebalance_deadline_ms = now_ms + timeout;
        self.transition(GroupState::PreparingRebalance, now_ms);
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0)
    }

    /// Completes the join phase once every known member has rejoined (and no initial delay
    /// or issued-but-unused member id is pending).
    fn try_complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_until_ms.is_some() {
            return;
        }
        if self.members.values().all(|m| m.awaiting_join) && self.pending_members.is_empty() {
            self.complete_join(now_ms, fx);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the next generation
    /// starts, and every held JoinGroup is answered (the leader gets the member list).
    fn complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        self.initial_delay_until_ms = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join)
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, fx);
        }
        self.generation_id = self.generation_id.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now_ms);
            fx.persist = true;
            return;
        }
        self.protocol_name = self.select_protocol();
        if self
            .leader_id
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.sync_deadline_ms = now_ms + self.max_rebalance_timeout_ms();
        self.transition(GroupState::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let r = self.join_result_for(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.awaiting_join = false;
                m.last_heartbeat_ms = now_ms;
            }
            fx.joins.push((id, Ok(r)));
        }
    }

    /// The current generation's JoinGroup answer for `member_id` (members listed for the leader).
    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let leader = self.leader_id.clone().unwrap_or_default();
        let members = if leader == member_id {
            let proto = self.protocol_name.clone().unwrap_or_default();
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&proto),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: leader,
            member_id: member_id.to_owned(),
            members,
            skip_assignment: false,
        }
    }

    /// The protocol every member supports with the most first-choice votes (ties: the first
    /// member's preference order).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| *c == n))
            {
                votes[i] += 1;
            }
        }
        let best = votes
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?
            .0;
        candidates.get(best).map(|s| (*s).clone())
    }

    fn remove_member(&mut self, id: &str, fx: &mut Effects) {
        let Some(m) = self.members.shift_remove(id) else {
            return;
        };
        if m.awaiting_join {
            fx.joins
                .push((id.to_owned(), Err(GroupError::UnknownMemberId)));
        }
        if m.awaiting_sync {
            fx.syncs
                .push((id.to_owned(), Err(GroupError::UnknownMemberId)));
        }
        if let Some(i) = &m.group_instance_id {
            if self.static_members.get(i).map(String::as_str) == Some(id) {
                self.static_members.remove(i);
            }
        }
        if self.leader_id.as_deref() == Some(id) {
            self.leader_id = self.members.keys().next().cloned();
        }
    }

    /// Removes a member that left or expired, then rebalances the rest.
    fn remove_member_and_rebalance(
        &mut self,
        id: &str,
        now_ms: i64,
        lim: &GroupLimits,
        fx: &mut Effects,
    ) {
        self.remove_member(id, fx);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms, lim, fx);
                self.try_complete_join(now_ms, fx);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms, fx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup ------------------------------------------------------

    /// Checks membership and generation, as SyncGroup, Heartbeat and OffsetCommit do.
    fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if let Some(e) = self.static_fenced(member_id, instance) {
            return Err(e);
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles a SyncGroup. The leader's assignment completes the generation: the group
    /// becomes Stable and every held SyncGroup is answered (after the caller persists).
    pub fn sync(&mut self, p: SyncParams, now_ms: i64, fx: &mut Effects) -> Reply<SyncResult> {
        if let Err(e) = self.check_member(
            &p.member_id,
            p.group_instance_id.as_deref(),
            p.generation_id,
        ) {
            return Reply::Now(Err(e));
        }
        if p.protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || p.protocol_name
                .as_ref()
                .is_some_and(|n| Some(n) != self.protocol_name.as_ref())
        {
            return Reply::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Reply::Now(Err(GroupError::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Now(Err(GroupError::RebalanceInProgress)),
            GroupState::Stable => {
                let a = self
                    .members
                    .get(&p.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Reply::Now(Ok(self.sync_result(a)))
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(&p.member_id) {
                    m.awaiting_sync = true;
                    m.last_heartbeat_ms = now_ms;
                }
                if self.leader_id.as_deref() == Some(p.member_id.as_str()) {
                    let given: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    self.transition(GroupState::Stable, now_ms);
                    fx.persist = true;
                    let done: Vec<(String, Bytes)> = self
                        .members
                        .values_mut()
                        .filter(|m| m.awaiting_sync)
                        .map(|m| {
                            m.awaiting_sync = false;
                            (m.member_id.clone(), m.assignment.clone())
                        })
                        .collect();
                    for (id, a) in done {
                        let r = self.sync_result(a);
                        fx.syncs.push((id, Ok(r)));
                    }
                }
                Reply::Held
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// Handles a Heartbeat: refreshes the session; tells the member to rejoin if rebalancing.
    ///
    /// # Errors
    /// Unknown or fenced member, stale generation, rebalance in progress.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance, generation_id)?;
        if self.state == GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat_ms = now_ms;
        }
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Handles one member of a LeaveGroup (by member id, or by instance id for static members).
    ///
    /// # Errors
    /// Unknown member, or a static member leaving with a stale member id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        now_ms: i64,
        lim: &GroupLimits,
        fx: &mut Effects,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let id = match instance {
            Some(inst) => {
                let current = self
                    .static_members
                    .get(inst)
                    .cloned()
                    .ok_or(GroupError::UnknownMemberId)?;
                if !member_id.is_empty() && member_id != current {
                    return Err(GroupError::FencedInstanceId);
                }
                current
            }
            None => member_id.to_owned(),
        };
        if self.pending_members.remove(&id).is_some() {
            self.try_complete_join(now_ms, fx);
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member_and_rebalance(&id, now_ms, lim, fx);
        Ok(())
    }

    /// Whether an OffsetCommit from this member/generation may write offsets. A commit with a
    /// negative generation to an Empty group is a standalone (admin / assign()) commit.
    ///
    /// # Errors
    /// As Kafka's `doCommitOffsets`.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance
            && self.members.contains_key(member_id)
            && generation_id == self.generation_id
        {
            return Err(GroupError::RebalanceInProgress);
        }
        self.check_member(member_id, instance, generation_id)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat_ms = now_ms;
        }
        Ok(())
    }

    // ---- timers -------------------------------------------------------------------------------

    /// Applies every deadline that passed: issued member ids and sessions expire, the initial
    /// delay ends, a join phase or sync phase times out.
    pub fn tick(&mut self, now_ms: i64, lim: &GroupLimits, fx: &mut Effects) {
        let before = self.pending_members.len();
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        if self.pending_members.len() != before {
            self.try_complete_join(now_ms, fx);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !m.awaiting_join
                    && !m.awaiting_sync
                    && self.state != GroupState::CompletingRebalance
            })
            .filter(|m| m.last_heartbeat_ms + i64::from(m.session_timeout_ms) <= now_ms)
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member_and_rebalance(&id, now_ms, lim, fx);
        }
        if let Some(until) = self.initial_delay_until_ms {
            if now_ms >= until {
                if self.new_member_added && until < self.initial_delay_cap_ms {
                    self.new_member_added = false;
                    self.initial_delay_until_ms = Some(
                        (now_ms + lim.initial_rebalance_delay_ms).min(self.initial_delay_cap_ms),
                    );
                } else {
                    self.complete_join(now_ms, fx);
                }
            }
        } else if self.state == GroupState::PreparingRebalance
            && now_ms >= self.rebalance_deadline_ms
        {
            self.complete_join(now_ms, fx);
        }
        if self.state == GroupState::CompletingRebalance && now_ms >= self.sync_deadline_ms {
            let lagging: Vec<String> = self
                .members
                .values()
                .filter(|m| !m.awaiting_sync)
                .map(|m| m.member_id.clone())
                .collect();
            for id in lagging {
                self.remove_member(&id, fx);
            }
            self.prepare_rebalance(now_ms, lim, fx);
            self.try_complete_join(now_ms, fx);
        }
    }

    /// Marks the group deleted; held requests are answered with COORDINATOR_NOT_AVAILABLE.
    pub fn mark_dead(&mut self, now_ms: i64, fx: &mut Effects) {
        for m in self.members.values() {
            if m.awaiting_join {
                fx.joins.push((
                    m.member_id.clone(),
                    Err(GroupError::CoordinatorNotAvailable),
                ));
            }
            if m.awaiting_sync {
                fx.syncs.push((
                    m.member_id.clone(),
                    Err(GroupError::CoordinatorNotAvailable),
                ));
            }
        }
        self.members.clear();
        self.static_members.clear();
        self.pending_members.clear();
        self.transition(GroupState::Dead, now_ms);
    }
}

fn p_with_id(mut p: JoinParams, id: &str) -> JoinParams {
    p.member_id = id.to_owned();
    p
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

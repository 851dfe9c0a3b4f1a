//! JoinGroup: admission, static membership, rebalances and protocol selection.

use super::*;

impl Group {
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

    pub(super) fn validate_join(
        &self,
        p: &JoinParams,
        lim: &GroupLimits,
    ) -> Result<(), GroupError> {
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
    pub(super) fn static_fenced(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Option<GroupError> {
        let inst = instance?;
        match self.static_members.get(inst) {
            Some(current) if current != member_id => Some(GroupError::FencedInstanceId),
            _ => None,
        }
    }

    pub(super) fn join_unknown(
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

    pub(super) fn add_member_and_rebalance(
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
    pub(super) fn replace_static_member(
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

    pub(super) fn update_member(&mut self, p: &JoinParams, now_ms: i64) {
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
    pub(super) fn prepare_rebalance(&mut self, now_ms: i64, lim: &GroupLimits, fx: &mut Effects) {
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

    pub(super) fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0)
    }

    /// Completes the join phase once every known member has rejoined (and no initial delay
    /// or issued-but-unused member id is pending).
    pub(super) fn try_complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_until_ms.is_some() {
            return;
        }
        if self.members.values().all(|m| m.awaiting_join) && self.pending_members.is_empty() {
            self.complete_join(now_ms, fx);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the next generation
    /// starts, and every held JoinGroup is answered (the leader gets the member list).
    pub(super) fn complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
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
    pub(super) fn join_result_for(&self, member_id: &str) -> JoinResult {
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

    pub(super) fn remove_member(&mut self, id: &str, fx: &mut Effects) {
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
    pub(super) fn remove_member_and_rebalance(
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
}

pub(super) fn p_with_id(mut p: JoinParams, id: &str) -> JoinParams {
    p.member_id = id.to_owned();
    p
}

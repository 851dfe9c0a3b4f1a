//! SyncGroup, Heartbeat, LeaveGroup and the membership check of an offset commit.

use super::*;

impl Group {
    // ---- SyncGroup, Heartbeat, LeaveGroup ------------------------------------------------------

    /// Checks membership and generation, as SyncGroup, Heartbeat and OffsetCommit do.
    pub(super) fn check_member(
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

    pub(super) fn sync_result(&self, assignment: Bytes) -> SyncResult {
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

    /// TxnOffsetCommit's checks (KIP-447): a known member and the current generation when
    /// given; a static member not fenced. Without a member (`""`, generation -1: clients
    /// before KIP-447) only a dead group is refused.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE (dead group), FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID,
    /// ILLEGAL_GENERATION.
    pub fn check_txn_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if let Some(i) = instance {
            if self.static_members.get(i).is_some_and(|m| m != member_id) {
                return Err(GroupError::FencedInstanceId);
            }
        }
        if !member_id.is_empty() && !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation_id >= 0 && generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }
}

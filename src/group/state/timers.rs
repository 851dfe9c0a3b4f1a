//! Deadlines: session expiry, rebalance and sync-phase timeouts, the initial rebalance delay.

use super::*;

impl Group {
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
        // As Kafka's `hasSatisfiedHeartbeat`: a held JoinGroup or SyncGroup keeps its member
        // alive; every other member, in any state (CompletingRebalance too, static members
        // too), must heartbeat within its session timeout. A member that vanishes between its
        // JoinGroup answer and its SyncGroup thus expires, and the rebalance restarts without
        // it (held SyncGroups get REBALANCE_IN_PROGRESS).
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && !m.awaiting_sync)
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

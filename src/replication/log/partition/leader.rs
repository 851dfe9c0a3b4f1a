//! The leader side of replication for one partition: follower progress (log end offsets that
//! move the high watermark, caught-up times that drive ISR changes) and divergence checks.

use super::Partition;
use crate::types::NodeId;
use std::time::{Duration, Instant};

/// The leader's verdict on a follower's fetch position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPosition {
    /// The follower's log matches: send records from `fetch_offset`.
    Valid,
    /// The follower's log diverges: it must truncate to `end_offset` (of `leader_epoch`).
    Diverging { leader_epoch: i32, end_offset: i64 },
}

impl Partition {
    /// Checks a follower's `(fetch_offset, last_fetched_epoch)` against this leader's epoch
    /// cache (KIP-320 / OffsetsForLeaderEpoch semantics).
    pub async fn check_fetch_position(
        &self,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> FetchPosition {
        if last_fetched_epoch < 0 {
            return FetchPosition::Valid;
        }
        let (epoch, end_offset) = self.end_offset_for_epoch(last_fetched_epoch).await;
        if epoch < 0 {
            // The leader knows no epoch this old (its log starts later): restart from scratch.
            return FetchPosition::Diverging {
                leader_epoch: -1,
                end_offset: self.log_start_offset(),
            };
        }
        if epoch != last_fetched_epoch || end_offset < fetch_offset {
            return FetchPosition::Diverging {
                leader_epoch: epoch,
                end_offset: end_offset.min(fetch_offset),
            };
        }
        FetchPosition::Valid
    }

    /// Records a checked fetch of `follower`: its log holds everything below `fetch_offset`
    /// (which drives its caught-up time, like Kafka's `Replica.updateFetchState`: caught up now
    /// if it reached the current LEO, or as of its previous fetch if it reached the LEO the
    /// leader had then) and has fsynced everything below `durable` (<= `fetch_offset`, which
    /// counts for the high watermark). Advances the high watermark.
    pub fn record_follower_fetch(&self, follower: NodeId, fetch_offset: i64, durable: i64) {
        debug_assert!(
            durable <= fetch_offset,
            "durable offset above the fetch offset"
        );
        let leo = self.log_end_offset();
        let now = Instant::now();
        if let Ok(mut st) = self.replica_state.lock() {
            let prev = st.follower_last_fetch.get(&follower).copied();
            if fetch_offset >= leo {
                st.follower_caught_up.insert(follower, now);
            } else if let Some((at, prev_leo)) = prev {
                if fetch_offset >= prev_leo {
                    let e = st.follower_caught_up.entry(follower).or_insert(at);
                    *e = (*e).max(at);
                }
            }
            st.follower_last_fetch.insert(follower, (now, leo));
            st.raise_follower_log_end(follower, durable.min(fetch_offset).min(leo));
        }
        self.maybe_advance_hw();
    }

    /// Records that `follower` fsynced everything below `durable`: a `Durable` report whose
    /// position (the fetch it was sent behind) the caller has checked against this log, so
    /// `durable` (<= that fetch offset) lies in a prefix that matches this leader's. Never
    /// lowers what was recorded. Advances the high watermark.
    pub fn record_follower_durable(&self, follower: NodeId, durable: i64) {
        let leo = self.log_end_offset();
        if let Ok(mut st) = self.replica_state.lock() {
            st.raise_follower_log_end(follower, durable.min(leo));
        }
        self.maybe_advance_hw();
    }

    /// Waits until the log end offset moves past `offset` or `max_wait` passes.
    pub async fn wait_for_data(&self, offset: i64, max_wait: Duration) {
        let notified = self.leo_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.log_end_offset() > offset {
            return;
        }
        let _ = tokio::time::timeout(max_wait, notified).await;
    }

    /// A notification future for the next LEO move, armed before the caller checks offsets.
    pub fn leo_notify(&self) -> &tokio::sync::Notify {
        &self.leo_notify
    }

    /// The ISR this leader proposes now, at `partition_epoch` (the image's it was decided on):
    /// ISR members (other than itself) that have not been caught up for `lag_max` are dropped;
    /// replicas whose fsynced log holds every record below the HW, and that were caught up
    /// within `lag_max`, are added. An addition is recorded as pending before this returns
    /// (decided and recorded under one lock, so no HW computed without the replica can pass
    /// its log: `hw_computed` bounds every HW published or about to be), and counts for the
    /// HW from then on (`ReplicaState::pending_isr`). When nothing changes but a pending
    /// addition is no longer caught up or no longer among the live `replicas` (it died while
    /// the outcome of its proposal was unknown), the current ISR is proposed again at the same
    /// partition epoch: whichever of the two commits moves the epoch and ends the wait for it.
    ///
    /// `None` if there is nothing to propose, this replica does not lead, or the image's
    /// partition epoch is not the one this replica applied last (the proposal would be based
    /// on another ISR than the one decided on; the next round sees the same image).
    pub fn isr_proposal(
        &self,
        replicas: &[NodeId],
        lag_max: Duration,
        partition_epoch: i32,
    ) -> Option<Vec<NodeId>> {
        if !self.is_leader() {
            return None;
        }
        let published = self.high_watermark();
        let now = Instant::now();
        let mut st = self.replica_state.lock().ok()?;
        if st.partition_epoch != partition_epoch {
            return None;
        }
        let hw = published.max(st.hw_computed);
        let caught_up = |st: &super::ReplicaState, n: &NodeId| {
            st.follower_caught_up
                .get(n)
                .is_some_and(|t| now.duration_since(*t) <= lag_max)
        };
        let mut isr: Vec<NodeId> = st
            .isr
            .iter()
            .copied()
            .filter(|n| *n == self.local || caught_up(&st, n))
            .collect();
        let mut added = Vec::new();
        for r in replicas {
            if isr.contains(r) || *r == self.local {
                continue;
            }
            let durable = st.follower_log_end.get(r).copied().unwrap_or(-1);
            if durable >= hw && caught_up(&st, r) {
                isr.push(*r);
                added.push(*r);
            }
        }
        if !isr.contains(&self.local) {
            isr.insert(0, self.local);
        }
        let mut a = isr.clone();
        let mut b = st.isr.clone();
        a.sort_unstable();
        b.sort_unstable();
        // A pending addition that is no longer caught up, or no longer a live replica (fenced:
        // the controller now refuses to add it, KIP-841, so its proposal cannot commit).
        let stalled = st
            .pending_isr
            .iter()
            .any(|(n, _)| !caught_up(&st, n) || !replicas.contains(n));
        if a == b && !stalled {
            return None;
        }
        for r in added {
            if !st.pending_isr.contains(&(r, partition_epoch)) {
                st.pending_isr.push((r, partition_epoch));
            }
        }
        Some(isr)
    }

    /// The replicas this leader proposed to add to the ISR and still counts for the HW.
    pub fn pending_isr_additions(&self) -> Vec<NodeId> {
        self.replica_state
            .lock()
            .map(|st| st.pending_isr.iter().map(|(n, _)| *n).collect())
            .unwrap_or_default()
    }

    /// How many ISR members this leader sees as in sync right now: itself plus followers
    /// caught up within `lag_max`. Produce checks `min.insync.replicas` against the smaller of
    /// this and the image's ISR, so a leader whose followers died refuses `acks=all` writes up
    /// front (NOT_ENOUGH_REPLICAS) even when the controller cannot shrink the ISR (no quorum).
    pub fn caught_up_isr_len(&self, lag_max: Duration) -> usize {
        let now = Instant::now();
        let Ok(st) = self.replica_state.lock() else {
            return 0;
        };
        st.isr
            .iter()
            .filter(|n| {
                **n == self.local
                    || st
                        .follower_caught_up
                        .get(n)
                        .is_some_and(|t| now.duration_since(*t) <= lag_max)
            })
            .count()
    }

    /// The ISR this replica last saw in the image.
    pub fn isr(&self) -> Vec<NodeId> {
        self.replica_state
            .lock()
            .map(|st| st.isr.clone())
            .unwrap_or_default()
    }
}

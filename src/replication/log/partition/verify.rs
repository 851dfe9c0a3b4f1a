//! KIP-890's verification guards (Kafka's `VerificationGuard`): the first transactional batch
//! of a producer's transaction on a partition is verified with the transaction coordinator
//! before it is appended (`broker/produce.rs`). Between the coordinator's answer and the
//! append, the transaction can end (the client aborts, the coordinator aborts it on timeout)
//! and its marker reach this partition; a batch appended after that marker would open a
//! transaction no coordinator will ever end, and hold the last stable offset back for good.
//! So the verification takes a guard here first; a marker of the producer clears it, and the
//! append of a batch that would open a transaction requires its guard to be still in place
//! (else INVALID_TXN_STATE, as Kafka answers).
//!
//! Guards live in memory, under the log mutex, and are bounded: at most [`GUARDS_MAX`] per
//! partition, those older than [`GUARD_TTL_MS`] dropped first when it is full (a guard is
//! needed only for the length of one verification, a few seconds at most).

use super::Partition;
use std::collections::HashMap;

/// Guards per partition at most.
pub(super) const GUARDS_MAX: usize = 10_000;
/// A guard older than this is dropped when room is needed (verification answers within 5 s).
pub(super) const GUARD_TTL_MS: i64 = 60_000;

/// One guard: a token and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Guard {
    token: u64,
    epoch: i16,
    taken_ms: i64,
}

/// The guards of one partition, by producer id.
#[derive(Debug, Default)]
pub(super) struct Guards {
    next: u64,
    by_producer: HashMap<i64, Guard>,
}

/// Why a verification cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardsFull;

impl Guards {
    /// The producer's guard for `epoch`, taken now or shared with a verification already in
    /// flight for the same epoch (two batches of one producer sent together).
    fn take(&mut self, producer_id: i64, epoch: i16, now_ms: i64) -> Result<u64, GuardsFull> {
        if let Some(g) = self.by_producer.get(&producer_id) {
            if g.epoch == epoch {
                return Ok(g.token);
            }
        }
        if self.by_producer.len() >= GUARDS_MAX && !self.by_producer.contains_key(&producer_id) {
            self.by_producer
                .retain(|_, g| now_ms.saturating_sub(g.taken_ms) < GUARD_TTL_MS);
            if self.by_producer.len() >= GUARDS_MAX {
                return Err(GuardsFull);
            }
        }
        self.next = self.next.wrapping_add(1);
        let g = Guard {
            token: self.next,
            epoch,
            taken_ms: now_ms,
        };
        self.by_producer.insert(producer_id, g);
        Ok(g.token)
    }

    /// Whether `token` is still the producer's guard.
    pub(super) fn holds(&self, producer_id: i64, token: u64) -> bool {
        self.by_producer
            .get(&producer_id)
            .is_some_and(|g| g.token == token)
    }

    /// Drops the producer's guard (its transaction began or ended here).
    pub(super) fn clear(&mut self, producer_id: i64) {
        self.by_producer.remove(&producer_id);
    }

    /// Drops the producer's guard if it is still `token` (a verification that failed).
    fn release(&mut self, producer_id: i64, token: u64) {
        if self.holds(producer_id, token) {
            self.by_producer.remove(&producer_id);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_producer.len()
    }
}

impl Partition {
    /// Before a transactional batch of producer `producer_id` at `epoch` is verified: `None`
    /// when the producer's transaction is already open here (no verification needed), else
    /// the guard the append must present.
    ///
    /// # Errors
    /// [`GuardsFull`]: too many verifications at once on this partition (retriable).
    pub async fn begin_txn_verification(
        &self,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
    ) -> Result<Option<u64>, GuardsFull> {
        let mut log = self.log.lock().await;
        let open = log
            .producers
            .get(producer_id)
            .is_some_and(|e| e.epoch == epoch && e.txn_first_offset.is_some());
        if open {
            return Ok(None);
        }
        log.guards.take(producer_id, epoch, now_ms).map(Some)
    }

    /// A verification that failed: its guard is dropped.
    pub async fn end_txn_verification(&self, producer_id: i64, token: u64) {
        self.log.lock().await.guards.release(producer_id, token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_are_shared_per_epoch_cleared_and_bounded() {
        let mut g = Guards::default();
        let a = g.take(1, 0, 0).expect("room");
        assert_eq!(g.take(1, 0, 5), Ok(a), "a second batch shares the guard");
        assert!(g.holds(1, a));
        let b = g.take(1, 1, 5).expect("room");
        assert_ne!(a, b, "a new epoch takes a new guard");
        assert!(!g.holds(1, a));
        g.release(1, a);
        assert!(
            g.holds(1, b),
            "releasing a replaced guard leaves the new one"
        );
        g.clear(1);
        assert!(!g.holds(1, b));
        for pid in 0..GUARDS_MAX as i64 {
            g.take(pid, 0, 0).expect("room");
        }
        assert_eq!(g.take(-5, 0, GUARD_TTL_MS - 1), Err(GuardsFull));
        assert_eq!(g.len(), GUARDS_MAX);
        assert!(
            g.take(-5, 0, GUARD_TTL_MS).is_ok(),
            "stale guards make room"
        );
        assert_eq!(g.len(), 1);
    }
}

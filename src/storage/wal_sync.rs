//! Group commit for the RocksDB WAL.
//!
//! Every write bumps `written` after it completes. A caller that needs its write durable asks
//! for `sync_after(ticket)`; one flusher makes the WAL durable for everything written before
//! it started and publishes that ticket as durable. Concurrent requests share one fsync.
//!
//! **The fsync is an empty write with `sync = true`**, not `DB::flush_wal(true)`. After a
//! failed WAL write (ENOSPC) RocksDB stops accepting writes until it has recovered (it then
//! flushes every memtable to new SST files, because it no longer trusts that WAL), and a
//! write in that state is refused without touching the broken WAL file. `flush_wal` skips
//! that check and calls `Sync` on the failed WAL writer, which in Debian's librocksdb (built
//! with assertions) aborts the process (`WritableFileWriter::
//! AssertFalseAndGetStatusForPrevError`, the same assertion RocksDB's info logger tripped on
//! a full disk; see `db_options` in `storage/mod.rs`).
//!
//! **A failed fsync is never retried as if it had succeeded** (PostgreSQL's fsync lesson: after
//! a failed fsync the kernel may drop the dirty pages and report the next fsync as clean). The
//! tickets a failed fsync covered stay failed for good: `sync_after` answers them with an
//! error even after a later fsync succeeds. Writes made after the failure get new tickets and
//! can become durable again once RocksDB accepts writes (which it does only after flushing its
//! memtables to new, fsynced SST files), so a caller that must make progress (a follower's
//! fetcher) issues a fresh [`WalSync::barrier`] instead of retrying the old ticket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Failed ticket ranges remembered (older ones merge into one conservative span).
const FAILED_SPANS_MAX: usize = 16;

/// The fsync primitive (an empty `sync = true` write in production).
pub(super) type SyncFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Why a ticket is not durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalSyncError {
    #[error("WAL fsync failed: {0}")]
    Failed(String),
    #[error("an earlier WAL fsync covering this write failed ({0}); it is never reported durable")]
    FailedEarlier(String),
}

/// The durability of one ticket. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Durable,
    Failed,
    Pending,
}

/// The pure state: what is durable and which ticket spans a failed fsync covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SyncState {
    durable: u64,
    /// `(lo, hi]`: tickets not durable when an fsync covering up to `hi` failed.
    failed: Vec<(u64, u64)>,
    last_error: Option<String>,
}

impl SyncState {
    pub(crate) fn verdict(&self, ticket: u64) -> Verdict {
        if self
            .failed
            .iter()
            .any(|(lo, hi)| ticket > *lo && ticket <= *hi)
        {
            Verdict::Failed
        } else if ticket <= self.durable {
            Verdict::Durable
        } else {
            Verdict::Pending
        }
    }

    /// An fsync that covered every ticket `<= target` succeeded.
    pub(crate) fn synced(&mut self, target: u64) {
        self.durable = self.durable.max(target);
        self.last_error = None;
    }

    /// An fsync that was to cover every ticket `<= target` failed.
    pub(crate) fn failed(&mut self, target: u64, error: String) {
        if target > self.durable {
            self.failed.push((self.durable, target));
            if self.failed.len() > FAILED_SPANS_MAX {
                // Merge the two oldest spans: failing a few more old tickets is safe.
                let (a, b) = (self.failed.remove(0), self.failed.remove(0));
                self.failed.insert(0, (a.0.min(b.0), a.1.max(b.1)));
            }
        }
        self.last_error = Some(error);
    }
}

/// The WAL group-commit coordinator.
pub struct WalSync {
    sync_fn: SyncFn,
    written: AtomicU64,
    state: Mutex<SyncState>,
    flushing: tokio::sync::Mutex<()>,
    failures: AtomicU64,
}

impl std::fmt::Debug for WalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalSync")
            .field("written", &self.written.load(Ordering::Relaxed))
            .field("state", &self.state.lock().ok().map(|s| s.clone()))
            .finish()
    }
}

impl WalSync {
    pub(super) fn new(sync_fn: SyncFn) -> Self {
        Self {
            sync_fn,
            written: AtomicU64::new(0),
            state: Mutex::new(SyncState::default()),
            flushing: tokio::sync::Mutex::new(()),
            failures: AtomicU64::new(0),
        }
    }

    /// Called after each completed write; returns the write's ticket.
    pub fn note_write(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The ticket of the most recent completed write.
    pub fn current_ticket(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    fn verdict(&self, ticket: u64) -> Result<Verdict, WalSyncError> {
        let st = self
            .state
            .lock()
            .map_err(|_| WalSyncError::Failed("state lock poisoned".into()))?;
        Ok(st.verdict(ticket))
    }

    fn failed_earlier(&self) -> WalSyncError {
        let why = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.last_error.clone())
            .unwrap_or_else(|| "see earlier errors".into());
        WalSyncError::FailedEarlier(why)
    }

    /// Returns once every write with a ticket `<= ticket` is fsynced.
    ///
    /// # Errors
    /// The fsync failed, now or earlier for this ticket (the caller must not acknowledge).
    pub async fn sync_after(self: &Arc<Self>, ticket: u64) -> Result<(), WalSyncError> {
        loop {
            match self.verdict(ticket)? {
                Verdict::Durable => return Ok(()),
                Verdict::Failed => return Err(self.failed_earlier()),
                Verdict::Pending => {}
            }
            // Whoever holds the lock is fsyncing; when it finishes, re-check. The first waiter
            // that gets the lock with its ticket still pending runs the next fsync, which
            // covers all writes completed before it (group commit).
            let guard = self.flushing.lock().await;
            match self.verdict(ticket)? {
                Verdict::Durable => return Ok(()),
                Verdict::Failed => return Err(self.failed_earlier()),
                Verdict::Pending => {}
            }
            match self.run_sync().await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    drop(guard);
                    return match self.verdict(ticket)? {
                        Verdict::Durable => Ok(()),
                        _ => Err(e),
                    };
                }
                // The blocking task was cancelled (runtime shutting down): try again.
                None => {}
            }
            drop(guard);
        }
    }

    /// Makes everything written so far durable with a new fsync and returns its ticket, for
    /// callers that must make progress after a failure (their old tickets stay failed).
    ///
    /// # Errors
    /// The fsync failed.
    pub async fn barrier(self: &Arc<Self>) -> Result<u64, WalSyncError> {
        let _guard = self.flushing.lock().await;
        loop {
            let target = self.written.load(Ordering::Acquire);
            match self.run_sync_to(target).await {
                Some(r) => return r.map(|()| target),
                None => continue,
            }
        }
    }

    /// One fsync covering everything written before it starts (the caller holds `flushing`).
    async fn run_sync(&self) -> Option<Result<(), WalSyncError>> {
        let target = self.written.load(Ordering::Acquire);
        self.run_sync_to(target).await
    }

    async fn run_sync_to(&self, target: u64) -> Option<Result<(), WalSyncError>> {
        let f = self.sync_fn.clone();
        let res = tokio::task::spawn_blocking(move || f()).await.ok()?;
        let out = match &res {
            Ok(()) => {
                if let Ok(mut st) = self.state.lock() {
                    st.synced(target);
                }
                Ok(())
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    ticket = target,
                    "WAL fsync failed: writes it covered will not be acknowledged"
                );
                if let Ok(mut st) = self.state.lock() {
                    st.failed(target, e.clone());
                }
                Err(WalSyncError::Failed(e.clone()))
            }
        };
        Some(out)
    }

    /// Failed fsyncs since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The error of the most recent fsync if it failed (cleared by the next success).
    pub fn last_error(&self) -> Option<String> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn failed_tickets_stay_failed_after_a_later_success() {
        let mut st = SyncState::default();
        st.synced(3);
        assert_eq!(st.verdict(3), Verdict::Durable);
        assert_eq!(st.verdict(4), Verdict::Pending);
        st.failed(7, "EIO".into());
        for t in 4..=7 {
            assert_eq!(st.verdict(t), Verdict::Failed, "ticket {t}");
        }
        assert_eq!(
            st.verdict(3),
            Verdict::Durable,
            "already durable stays durable"
        );
        assert_eq!(st.verdict(8), Verdict::Pending);
        // A later fsync succeeds (RocksDB recovered): new tickets become durable, the failed
        // ones never do.
        st.synced(10);
        assert_eq!(st.verdict(8), Verdict::Durable);
        assert_eq!(st.verdict(10), Verdict::Durable);
        for t in 4..=7 {
            assert_eq!(st.verdict(t), Verdict::Failed, "ticket {t} after recovery");
        }
        assert_eq!(st.last_error, None);
    }

    #[test]
    fn many_failures_merge_conservatively() {
        let mut st = SyncState::default();
        for i in 0..40u64 {
            st.synced(i * 10);
            st.failed(i * 10 + 5, "EIO".into());
        }
        assert!(st.failed.len() <= FAILED_SPANS_MAX);
        for i in 0..40u64 {
            assert_eq!(st.verdict(i * 10 + 3), Verdict::Failed, "span {i}");
        }
    }

    fn flaky() -> (Arc<WalSync>, Arc<AtomicBool>, Arc<AtomicU64>) {
        let fail = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let (f, c) = (fail.clone(), calls.clone());
        let w = Arc::new(WalSync::new(Arc::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
            if f.load(Ordering::SeqCst) {
                Err("Input/output error".into())
            } else {
                Ok(())
            }
        })));
        (w, fail, calls)
    }

    #[tokio::test]
    async fn a_failed_fsync_is_sticky_for_its_writes() {
        let (w, fail, calls) = flaky();
        let t1 = w.note_write();
        w.sync_after(t1).await.expect("durable");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Already durable: no new fsync.
        w.sync_after(t1).await.expect("durable");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let t2 = w.note_write();
        fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            w.sync_after(t2).await,
            Err(WalSyncError::Failed(_))
        ));
        assert_eq!(w.failures(), 1);
        // The disk works again. A retry of the failed ticket must not be told it is durable,
        // and must not even run another fsync on its behalf.
        fail.store(false, Ordering::SeqCst);
        let before = calls.load(Ordering::SeqCst);
        assert!(matches!(
            w.sync_after(t2).await,
            Err(WalSyncError::FailedEarlier(_))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), before);
        // New writes are fine; a fresh barrier covers them, the old ticket stays failed.
        let t3 = w.note_write();
        w.sync_after(t3).await.expect("new write durable");
        let b = w.barrier().await.expect("barrier");
        assert!(b >= t3);
        assert!(w.sync_after(t2).await.is_err());
        assert_eq!(w.last_error(), None);
    }

    #[tokio::test]
    async fn concurrent_waiters_share_one_fsync_and_all_see_a_failure() {
        let (w, fail, calls) = flaky();
        fail.store(true, Ordering::SeqCst);
        let tickets: Vec<u64> = (0..8).map(|_| w.note_write()).collect();
        let waits = tickets.iter().map(|t| {
            let w = w.clone();
            let t = *t;
            tokio::spawn(async move { w.sync_after(t).await })
        });
        let results = futures::future::join_all(waits).await;
        for r in results {
            assert!(r.expect("task").is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fsync for the group");
    }
}

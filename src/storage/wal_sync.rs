//! Group commit for the RocksDB WAL.
//!
//! Every write bumps `written` after it completes. A caller that needs its write durable asks
//! for `sync_after(ticket)`; one flusher runs `flush_wal(sync = true)` for everything written
//! before it started and publishes that ticket as durable. Concurrent requests share one fsync.

use rocksdb::DB;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Mutex};

/// The WAL group-commit coordinator.
pub struct WalSync {
    db: Arc<DB>,
    written: AtomicU64,
    durable_tx: watch::Sender<u64>,
    flushing: Mutex<()>,
}

impl std::fmt::Debug for WalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalSync")
            .field("written", &self.written.load(Ordering::Relaxed))
            .field("durable", &*self.durable_tx.borrow())
            .finish()
    }
}

impl WalSync {
    pub(super) fn new(db: Arc<DB>) -> Self {
        Self {
            db,
            written: AtomicU64::new(0),
            durable_tx: watch::channel(0).0,
            flushing: Mutex::new(()),
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

    /// Returns once every write with a ticket `<= ticket` is fsynced.
    ///
    /// # Errors
    /// The fsync failed (the caller must not acknowledge).
    pub async fn sync_after(self: &Arc<Self>, ticket: u64) -> Result<(), rocksdb::Error> {
        let mut durable = self.durable_tx.subscribe();
        loop {
            if *durable.borrow_and_update() >= ticket {
                return Ok(());
            }
            // Whoever holds the lock is fsyncing; when it finishes, re-check. The first waiter
            // that gets the lock with its ticket still not durable runs the next fsync, which
            // covers all writes completed before it (group commit).
            let guard = self.flushing.lock().await;
            if *self.durable_tx.borrow() >= ticket {
                return Ok(());
            }
            let target = self.written.load(Ordering::Acquire);
            let db = self.db.clone();
            let res = tokio::task::spawn_blocking(move || db.flush_wal(true)).await;
            drop(guard);
            match res {
                Ok(Ok(())) => {
                    self.durable_tx.send_modify(|d| *d = (*d).max(target));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
    }
}

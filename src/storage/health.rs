//! What the node knows about its storage right now: the last write failure (cleared by the
//! next successful write), corruption found by reads (RocksDB block checksums, or a record
//! batch whose CRC does not match), and whether a rebuild of the partition log was requested.
//! `/health` and `/metrics` read it; nothing here blocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Distinct corruption reports kept (the first ones; later ones only count).
const CORRUPTIONS_KEPT: usize = 32;
/// How often a repeated write failure is logged.
const REPEAT_LOG: Duration = Duration::from_secs(10);

/// A write that failed, and since when writes have been failing.
#[derive(Debug, Clone)]
pub struct WriteFault {
    pub since: Instant,
    pub error: String,
    /// The disk (or RocksDB's view of it) is out of space: RocksDB retries by itself once
    /// space is freed, and writes succeed again.
    pub no_space: bool,
}

/// Corruption seen in one column family (one SST file if RocksDB named it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub cf: &'static str,
    /// The SST file RocksDB named in its error, if any (`000123.sst`).
    pub file: Option<String>,
    pub error: String,
}

/// The storage health of one node.
#[derive(Debug, Default)]
pub struct StorageHealth {
    write_fault: Mutex<Option<WriteFault>>,
    last_fault_log: Mutex<Option<Instant>>,
    corruptions: Mutex<Vec<Corruption>>,
    write_errors: AtomicU64,
    corruption_reports: AtomicU64,
    rebuild_reason: Mutex<Option<String>>,
    rebuild_requested: tokio::sync::Notify,
}

/// Whether a RocksDB error means "out of space" (ENOSPC while writing, or the background
/// error RocksDB keeps returning after one until it recovers).
pub fn is_no_space(e: &rocksdb::Error) -> bool {
    let msg = e.to_string();
    msg.contains("No space left on device")
        || msg.contains("NoSpace")
        || msg.contains("Space limit")
}

/// Whether a RocksDB error reports corrupt data (a block checksum mismatch, a bad block).
pub fn is_corruption(e: &rocksdb::Error) -> bool {
    e.kind() == rocksdb::ErrorKind::Corruption
}

/// The SST file named in a RocksDB corruption message (`... in /dir/000011.sst offset ...`).
pub fn sst_file_in(msg: &str) -> Option<String> {
    msg.split(|c: char| c.is_whitespace() || c == '/')
        .find(|w| w.len() > 4 && w.ends_with(".sst"))
        .map(str::to_owned)
}

impl StorageHealth {
    /// Records a successful write: writes work again.
    pub fn write_succeeded(&self) {
        let recovered = self.write_fault.lock().ok().and_then(|mut f| f.take());
        if let Some(f) = recovered {
            tracing::info!(
                failing_for_ms = f.since.elapsed().as_millis() as u64,
                "storage writes succeed again"
            );
        }
    }

    /// Records a failed write (logged at most every 10 s while writes keep failing).
    pub fn write_failed(&self, e: &rocksdb::Error) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        let no_space = is_no_space(e);
        if let Ok(mut f) = self.write_fault.lock() {
            let since = f.as_ref().map_or_else(Instant::now, |f| f.since);
            *f = Some(WriteFault {
                since,
                error: e.to_string(),
                no_space,
            });
        }
        let due = self
            .last_fault_log
            .lock()
            .map(|mut last| {
                let due = last.is_none_or(|t| t.elapsed() >= REPEAT_LOG);
                if due {
                    *last = Some(Instant::now());
                }
                due
            })
            .unwrap_or(false);
        if due {
            tracing::error!(error = %e, no_space, "storage write failed");
        }
        if is_corruption(e) {
            // A compaction that read a corrupt block stops RocksDB's writes with its error.
            self.corruption_found("unknown", e);
        }
    }

    /// Records corruption reported by RocksDB while reading `cf`. Returns true the first
    /// time this (column family, file) is reported.
    pub fn corruption_found(&self, cf: &'static str, e: &rocksdb::Error) -> bool {
        let msg = e.to_string();
        self.corruption(cf, sst_file_in(&msg), msg)
    }

    /// Records corruption found by a check above RocksDB (a record batch CRC).
    pub fn corruption(&self, cf: &'static str, file: Option<String>, error: String) -> bool {
        self.corruption_reports.fetch_add(1, Ordering::Relaxed);
        let Ok(mut list) = self.corruptions.lock() else {
            return false;
        };
        if list.iter().any(|c| c.cf == cf && c.file == file) || list.len() >= CORRUPTIONS_KEPT {
            return false;
        }
        tracing::error!(cf, file = ?file, error = %error, "corrupt data in storage");
        list.push(Corruption { cf, file, error });
        true
    }

    /// Asks for the partition log to be rebuilt without its corrupt blocks (done at the next
    /// open of the store; the node restarts itself in-process to get there).
    pub fn request_rebuild(&self, reason: String) {
        if let Ok(mut r) = self.rebuild_reason.lock() {
            if r.is_none() {
                tracing::error!(reason = %reason, "requesting a rebuild of the partition log");
                *r = Some(reason);
            }
        }
        self.rebuild_requested.notify_waiters();
        self.rebuild_requested.notify_one();
    }

    /// Waits until a rebuild is requested; returns its reason.
    pub async fn rebuild_requested(&self) -> String {
        loop {
            let notified = self.rebuild_requested.notified();
            if let Some(r) = self.rebuild_reason.lock().ok().and_then(|r| r.clone()) {
                return r;
            }
            notified.await;
        }
    }

    pub fn write_fault(&self) -> Option<WriteFault> {
        self.write_fault.lock().ok().and_then(|f| f.clone())
    }

    pub fn corruptions(&self) -> Vec<Corruption> {
        self.corruptions
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    pub fn rebuild_reason(&self) -> Option<String> {
        self.rebuild_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Failed writes since start.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// Corruption reports since start (each read that found corruption counts).
    pub fn corruption_reports(&self) -> u64 {
        self.corruption_reports.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sst_file_names_are_found_in_rocksdb_messages() {
        assert_eq!(
            sst_file_in(
                "Corruption: block checksum mismatch: stored = 1, computed = 2, type = 4  in \
                 /tmp/rp/000011.sst offset 305700 size 4071"
            )
            .as_deref(),
            Some("000011.sst")
        );
        assert_eq!(sst_file_in("IO error: No space left on device"), None);
    }

    #[test]
    fn corruption_is_reported_once_per_file() {
        let h = StorageHealth::default();
        assert!(h.corruption("part_log", Some("1.sst".into()), "bad".into()));
        assert!(!h.corruption("part_log", Some("1.sst".into()), "bad again".into()));
        assert!(h.corruption("part_log", Some("2.sst".into()), "bad".into()));
        assert_eq!(h.corruptions().len(), 2);
        assert_eq!(h.corruption_reports(), 3);
    }
}

//! Free space of the log directory: thresholds (pure), a cached probe (`statvfs`) and the
//! admission check every append makes before it writes.
//!
//! Why refuse appends before the disk is full: RocksDB needs room of its own to keep working
//! (memtable flushes, compaction output, and the WAL a restart flushes into L0 before the node
//! can serve). A disk filled to the last byte by appends made RocksDB stop every write and,
//! after a restart, fail to open until as much space as the WAL was freed. Refusing appends
//! (KAFKA_STORAGE_ERROR) at `free_bytes_min` keeps that working space; metadata (Raft) writes,
//! deletes and checkpoints are not refused, they are small and some of them free space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refuse threshold when not configured: 1 GiB, at most 10 % of the filesystem.
pub const AUTO_MIN_BYTES_CAP: u64 = 1 << 30;
/// The automatic refuse threshold's share of the filesystem (percent).
pub const AUTO_MIN_PERCENT: u64 = 10;
/// The automatic warning threshold's share of the filesystem (percent), and at least twice
/// the refuse threshold.
pub const AUTO_WARN_PERCENT: u64 = 5;
/// The least free space [`DiskMonitor::roomy`] asks for whatever the thresholds: a new WAL
/// preallocated at a memtable switch (1.1 × 64 MiB) plus a memtable's flush output, twice.
pub const ROOMY_FREE_MIN: u64 = 256 << 20;
/// An append refused by the estimate measures again unless a probe is this recent.
const REPROBE_MIN_INTERVAL: Duration = Duration::from_millis(20);
/// How often a low-space warning repeats while the condition lasts.
const REPEAT_WARN: Duration = Duration::from_secs(60);

/// Configured thresholds; `None` = automatic (derived from the filesystem size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskThresholds {
    /// Below this many free bytes, appends are refused (`log.dir.free.bytes.min`).
    pub free_bytes_min: Option<u64>,
    /// Below this many free bytes, a warning is logged (`log.dir.free.bytes.warn`).
    pub free_bytes_warn: Option<u64>,
}

/// Thresholds resolved against one filesystem's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimits {
    pub min_bytes: u64,
    pub warn_bytes: u64,
}

impl DiskThresholds {
    /// The effective thresholds for a filesystem of `total_bytes`. Pure.
    ///
    /// Automatic refuse threshold: `min(1 GiB, 10 % of the filesystem)`. It is RocksDB's
    /// working space, which does not grow with the disk: at each memtable switch a new WAL
    /// preallocated to 1.1 × 64 MiB while the old one still exists, the 64 MiB flush output,
    /// then L0→L1 compaction output as large as its inputs (about 256 MiB), and the WAL a
    /// restart flushes into L0. Measured on a tmpfs: with 100 MiB left the first flush after
    /// the refusal already failed with ENOSPC. The 10 % cap keeps small development disks
    /// usable (with less than ~4 GiB RocksDB may still run out at a flush; it then stops
    /// writes and recovers by itself once space is freed). Automatic warning threshold:
    /// `max(2 × refuse, 5 % of the filesystem)` (Redpanda alerts at 5 % too), so operators
    /// hear about it well before appends stop. A configured warning threshold below the
    /// refuse threshold is raised to it.
    pub fn resolve(&self, total_bytes: u64) -> DiskLimits {
        let share = |pct: u64| total_bytes / 100 * pct;
        let min_bytes = self
            .free_bytes_min
            .unwrap_or_else(|| AUTO_MIN_BYTES_CAP.min(share(AUTO_MIN_PERCENT)));
        let warn_bytes = self
            .free_bytes_warn
            .unwrap_or_else(|| min_bytes.saturating_mul(2).max(share(AUTO_WARN_PERCENT)))
            .max(min_bytes);
        DiskLimits {
            min_bytes,
            warn_bytes,
        }
    }
}

/// How full the log directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskLevel {
    Ok = 0,
    /// Below the warning threshold: still accepting appends.
    Low = 1,
    /// Below the refuse threshold: appends answer KAFKA_STORAGE_ERROR.
    Full = 2,
}

impl DiskLevel {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => DiskLevel::Ok,
            1 => DiskLevel::Low,
            _ => DiskLevel::Full,
        }
    }
}

/// The level for `free_bytes` under `limits`. Pure.
pub fn classify(free_bytes: u64, limits: DiskLimits) -> DiskLevel {
    if free_bytes < limits.min_bytes {
        DiskLevel::Full
    } else if free_bytes < limits.warn_bytes {
        DiskLevel::Low
    } else {
        DiskLevel::Ok
    }
}

/// Why an append was refused for lack of space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSpace {
    pub free_bytes: u64,
    pub min_bytes: u64,
}

/// The last probe of the log directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSnapshot {
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub limits: DiskLimits,
    pub level: DiskLevel,
}

/// The free-space monitor of one log directory. `probe` runs on a timer (the node's monitor
/// task); `admit` runs on every append and costs two atomic loads.
#[derive(Debug)]
pub struct DiskMonitor {
    path: PathBuf,
    thresholds: DiskThresholds,
    free_bytes: AtomicU64,
    total_bytes: AtomicU64,
    min_bytes: AtomicU64,
    warn_bytes: AtomicU64,
    /// Bytes admitted since the last probe (the probe's figure is that much too high).
    admitted_since_probe: AtomicU64,
    level: AtomicU8,
    /// When the current low/full condition was last logged (rate limit).
    last_warned: Mutex<Option<Instant>>,
    /// When free space was last measured.
    last_probe: Mutex<Option<Instant>>,
}

impl DiskMonitor {
    /// A monitor for the filesystem holding `path`, probed once now (a failed probe leaves
    /// the directory treated as having space: a monitor that cannot measure must not stop a
    /// node that can still write).
    pub fn new(path: &Path, thresholds: DiskThresholds) -> Self {
        let m = Self {
            path: path.to_path_buf(),
            thresholds,
            free_bytes: AtomicU64::new(u64::MAX),
            total_bytes: AtomicU64::new(0),
            min_bytes: AtomicU64::new(0),
            warn_bytes: AtomicU64::new(0),
            admitted_since_probe: AtomicU64::new(0),
            level: AtomicU8::new(DiskLevel::Ok as u8),
            last_warned: Mutex::new(None),
            last_probe: Mutex::new(None),
        };
        let _ = m.probe();
        m
    }

    /// Measures free space now and logs level changes (and repeats warnings once a minute).
    ///
    /// # Errors
    /// `statvfs` failed (the previous figures stay).
    pub fn probe(&self) -> std::io::Result<DiskSnapshot> {
        let st = rustix::fs::statvfs(&self.path).map_err(std::io::Error::from)?;
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        let total = st.f_blocks.saturating_mul(st.f_frsize);
        Ok(self.record(free, total))
    }

    /// Records a measurement (split from `probe` for tests).
    fn record(&self, free: u64, total: u64) -> DiskSnapshot {
        let limits = self.thresholds.resolve(total);
        let level = classify(free, limits);
        self.free_bytes.store(free, Ordering::Release);
        self.total_bytes.store(total, Ordering::Release);
        self.min_bytes.store(limits.min_bytes, Ordering::Release);
        self.warn_bytes.store(limits.warn_bytes, Ordering::Release);
        self.admitted_since_probe.store(0, Ordering::Release);
        if let Ok(mut t) = self.last_probe.lock() {
            *t = Some(Instant::now());
        }
        let before = DiskLevel::from_u8(self.level.swap(level as u8, Ordering::AcqRel));
        self.log_level(before, level, free, limits);
        DiskSnapshot {
            free_bytes: free,
            total_bytes: total,
            limits,
            level,
        }
    }

    fn log_level(&self, before: DiskLevel, now: DiskLevel, free: u64, limits: DiskLimits) {
        let path = self.path.display().to_string();
        let repeat = {
            let Ok(mut last) = self.last_warned.lock() else {
                return;
            };
            let due = last.is_none_or(|t| t.elapsed() >= REPEAT_WARN);
            if now == DiskLevel::Ok {
                *last = None;
                false
            } else if before != now || due {
                *last = Some(Instant::now());
                true
            } else {
                false
            }
        };
        match now {
            DiskLevel::Ok if before != DiskLevel::Ok => tracing::info!(
                %path, free_bytes = free, warn_bytes = limits.warn_bytes,
                "log dir free space is above the warning threshold again"
            ),
            DiskLevel::Low if repeat => tracing::warn!(
                %path, free_bytes = free, warn_bytes = limits.warn_bytes,
                min_bytes = limits.min_bytes,
                "log dir free space is low; appends will be refused below min_bytes \
                 (log.dir.free.bytes.min)"
            ),
            DiskLevel::Full if repeat => tracing::error!(
                %path, free_bytes = free, min_bytes = limits.min_bytes,
                "log dir is nearly full: refusing appends (KAFKA_STORAGE_ERROR) until space \
                 is freed"
            ),
            _ => {}
        }
    }

    /// Admits an append of `bytes`, or refuses it when free space is below the refuse
    /// threshold — the same test `classify` makes for the level `/health` shows, so an append
    /// is refused exactly when the level is `Full` (one append may take the free space below
    /// the threshold by its own size, bounded by the request size limit). Between probes the
    /// last figure minus what was admitted since is used; when that estimate says no, free
    /// space is measured again on the spot (RocksDB preallocates its WAL, so admitted bytes
    /// often take no new space), and a refusal the estimate alone makes (the last probe too
    /// recent to repeat) records the level as `Full` until the next probe.
    ///
    /// # Errors
    /// `NoSpace` with the figures.
    pub fn admit(&self, bytes: u64) -> Result<(), NoSpace> {
        if self.fits() {
            self.admitted_since_probe.fetch_add(bytes, Ordering::AcqRel);
            return Ok(());
        }
        let fresh = self
            .last_probe
            .lock()
            .map(|t| t.is_some_and(|t| t.elapsed() < REPROBE_MIN_INTERVAL))
            .unwrap_or(false);
        if !fresh {
            let _ = self.probe();
        }
        if self.fits() {
            self.admitted_since_probe.fetch_add(bytes, Ordering::AcqRel);
            return Ok(());
        }
        let free = self.estimated_free();
        let before = DiskLevel::from_u8(self.level.swap(DiskLevel::Full as u8, Ordering::AcqRel));
        if before != DiskLevel::Full {
            let limits = self.snapshot().limits;
            self.log_level(before, DiskLevel::Full, free, limits);
        }
        Err(NoSpace {
            free_bytes: free,
            min_bytes: self.min_bytes.load(Ordering::Acquire),
        })
    }

    /// Free space is above the warning threshold, by the last probe and by the estimate
    /// since (what was admitted after it): far from the point where RocksDB's own writes
    /// could fail for lack of space (the WAL fsync's fast path, `storage::wal_sync_fn`).
    /// However low the thresholds are configured, at least `ROOMY_FREE_MIN` is free.
    pub fn roomy(&self) -> bool {
        let warn = self.warn_bytes.load(Ordering::Acquire).max(ROOMY_FREE_MIN);
        DiskLevel::from_u8(self.level.load(Ordering::Acquire)) == DiskLevel::Ok
            && self.estimated_free() >= warn
    }

    fn estimated_free(&self) -> u64 {
        self.free_bytes
            .load(Ordering::Acquire)
            .saturating_sub(self.admitted_since_probe.load(Ordering::Acquire))
    }

    fn fits(&self) -> bool {
        self.estimated_free() >= self.min_bytes.load(Ordering::Acquire)
    }

    /// The last probe's figures.
    pub fn snapshot(&self) -> DiskSnapshot {
        DiskSnapshot {
            free_bytes: self.free_bytes.load(Ordering::Acquire),
            total_bytes: self.total_bytes.load(Ordering::Acquire),
            limits: DiskLimits {
                min_bytes: self.min_bytes.load(Ordering::Acquire),
                warn_bytes: self.warn_bytes.load(Ordering::Acquire),
            },
            level: DiskLevel::from_u8(self.level.load(Ordering::Acquire)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn automatic_thresholds_scale_with_small_disks_and_cap_on_large_ones() {
        let auto = DiskThresholds::default();
        // 100 GiB: refuse at 1 GiB, warn at 5 GiB.
        assert_eq!(
            auto.resolve(100 * GIB),
            DiskLimits {
                min_bytes: GIB,
                warn_bytes: 5 * GIB
            }
        );
        // 4 GiB: 10 % caps the refuse threshold; the warning is twice that.
        let l = auto.resolve(4 * GIB);
        assert_eq!(l.min_bytes, 4 * GIB / 100 * 10);
        assert_eq!(l.warn_bytes, 2 * l.min_bytes);
        // 10 TiB: refuse at 1 GiB, warn at 5 %.
        let l = auto.resolve(10 * 1024 * GIB);
        assert_eq!(l.min_bytes, GIB);
        assert_eq!(l.warn_bytes, 10 * 1024 * GIB / 100 * 5);
        // Unknown size (probe failed): nothing is refused.
        assert_eq!(auto.resolve(0).min_bytes, 0);
    }

    #[test]
    fn configured_thresholds_win_and_warn_is_never_below_min() {
        let t = DiskThresholds {
            free_bytes_min: Some(10 << 20),
            free_bytes_warn: None,
        };
        let l = t.resolve(100 * GIB);
        assert_eq!(l.min_bytes, 10 << 20);
        assert_eq!(l.warn_bytes, 5 * GIB, "5 % beats 2 x 10 MiB");
        let t = DiskThresholds {
            free_bytes_min: Some(10 << 20),
            free_bytes_warn: Some(1 << 20),
        };
        assert_eq!(t.resolve(GIB).warn_bytes, 10 << 20);
    }

    #[test]
    fn roomy_needs_the_warning_threshold_and_a_floor_by_the_estimate_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = DiskMonitor::new(
            &dir.path().join("missing"),
            DiskThresholds {
                free_bytes_min: Some(GIB),
                free_bytes_warn: Some(2 * GIB),
            },
        );
        m.record(2 * GIB - 1, 100 * GIB);
        assert!(!m.roomy(), "below the warning threshold");
        m.record(3 * GIB, 100 * GIB);
        assert!(m.roomy());
        assert!(m.admit(GIB + 1).is_ok());
        assert_eq!(m.snapshot().level, DiskLevel::Ok);
        assert!(
            !m.roomy(),
            "3 GiB - (1 GiB + 1) admitted is below the warning threshold"
        );
        // Thresholds of 0 (protection off) still leave a floor.
        let m = DiskMonitor::new(
            &dir.path().join("missing"),
            DiskThresholds {
                free_bytes_min: Some(0),
                free_bytes_warn: Some(0),
            },
        );
        m.record(ROOMY_FREE_MIN - 1, 100 * GIB);
        assert!(!m.roomy());
        m.record(ROOMY_FREE_MIN, 100 * GIB);
        assert!(m.roomy());
    }

    #[test]
    fn levels() {
        let l = DiskLimits {
            min_bytes: 100,
            warn_bytes: 200,
        };
        assert_eq!(classify(99, l), DiskLevel::Full);
        assert_eq!(classify(100, l), DiskLevel::Low);
        assert_eq!(classify(199, l), DiskLevel::Low);
        assert_eq!(classify(200, l), DiskLevel::Ok);
    }

    #[test]
    fn admission_counts_bytes_admitted_since_the_probe() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A path statvfs cannot measure: a refusal's re-probe fails and the recorded figures
        // stay, so the test controls them.
        let m = DiskMonitor::new(
            &dir.path().join("missing"),
            DiskThresholds {
                free_bytes_min: Some(1000),
                free_bytes_warn: Some(2000),
            },
        );
        m.record(1500, 1 << 20);
        assert_eq!(m.snapshot().level, DiskLevel::Low);
        assert!(m.admit(400).is_ok());
        // 1500 - 400 = 1100 left, above 1000: admitted (it may take the estimate below).
        assert!(m.admit(200).is_ok());
        // 900 left: refused, and the level /health shows says so too.
        assert_eq!(
            m.admit(1),
            Err(NoSpace {
                free_bytes: 900,
                min_bytes: 1000
            })
        );
        assert_eq!(m.snapshot().level, DiskLevel::Full);
        // A new probe resets the estimate.
        m.record(999, 1 << 20);
        assert_eq!(m.snapshot().level, DiskLevel::Full);
        assert!(m.admit(0).is_err());
        m.record(5000, 1 << 20);
        assert_eq!(m.snapshot().level, DiskLevel::Ok);
        assert!(m.admit(1000).is_ok());
        // A real probe of the temp dir works and reports a size.
        let real = DiskMonitor::new(dir.path(), DiskThresholds::default());
        let s = real.probe().expect("statvfs");
        assert!(s.total_bytes > 0);
        // A refusal by the estimate alone is checked against a fresh measurement: a 1 MiB
        // refuse threshold on the temp dir's filesystem admits more after a burst bigger than
        // the recorded figure.
        let m = DiskMonitor::new(
            dir.path(),
            DiskThresholds {
                free_bytes_min: Some(1 << 20),
                free_bytes_warn: Some(1 << 20),
            },
        );
        m.record(2 << 20, s.total_bytes);
        std::thread::sleep(REPROBE_MIN_INTERVAL * 2);
        assert!(m.admit(8 << 20).is_ok());
        if s.free_bytes > 64 << 20 {
            assert!(m.admit(1).is_ok(), "re-measured before refusing");
        }
    }
}

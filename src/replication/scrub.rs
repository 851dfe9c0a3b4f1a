//! The scrubber: re-reads every stored byte at a bounded rate with checksums verified, at
//! start and then every `log.scrub.interval.ms`, so that corruption is found before a consumer
//! or a failover needs the data (it was invisible until a Fetch hit it: `/health` said OK).
//!
//! Every column family is walked (`storage::walk`: RocksDB block checksums; unreadable ranges
//! are reported and skipped). Partition-log entries are also checked as batches
//! (`verify_stored_batch`: header, length, CRC32C, key = base offset) and for offsets that
//! increase within a partition. What it finds is recorded on the local replica (its fetches
//! then answer KAFKA_STORAGE_ERROR there, a follower repairs from its leader) and in the
//! store's health; a corrupt block leads the node to rebuild its partition log (`node.rs`).

use super::log::verify_stored_batch;
use super::manager::ReplicaManager;
use crate::storage::walk::WalkEvent;
use crate::storage::{self, keys, Cf, Store};
use crate::types::TopicId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// What one pass found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub entries: u64,
    pub bytes: u64,
    pub unreadable_ranges: u64,
    pub bad_batches: u64,
}

/// Runs a pass at start and then every `interval` until shutdown.
pub async fn run(
    manager: Arc<ReplicaManager>,
    interval: Duration,
    bytes_per_sec: u64,
    shutdown: CancellationToken,
) {
    loop {
        let (m, token) = (manager.clone(), shutdown.clone());
        let started = Instant::now();
        match storage::blocking(move || Ok(pass(&m, bytes_per_sec, &token))).await {
            Ok(r) if r.unreadable_ranges > 0 || r.bad_batches > 0 => error!(
                entries = r.entries,
                bytes = r.bytes,
                unreadable_ranges = r.unreadable_ranges,
                bad_batches = r.bad_batches,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "scrub found corrupt data"
            ),
            Ok(r) => info!(
                entries = r.entries,
                bytes = r.bytes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "scrub pass clean"
            ),
            Err(e) => warn!(error = %e, "scrub pass failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Sleeps as needed to keep `bytes` read since `started` under `rate` bytes/s.
fn pace(started: Instant, bytes: u64, rate: u64, token: &CancellationToken) {
    let due = Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
    let mut elapsed = started.elapsed();
    while due > elapsed && !token.is_cancelled() {
        std::thread::sleep((due - elapsed).min(Duration::from_millis(100)));
        elapsed = started.elapsed();
    }
}

/// One pass over every column family (blocking).
pub fn pass(
    manager: &ReplicaManager,
    bytes_per_sec: u64,
    token: &CancellationToken,
) -> ScrubReport {
    let store = manager.store().clone();
    let started = Instant::now();
    let mut report = ScrubReport::default();
    for cf in [
        Cf::PartLog,
        Cf::PartState,
        Cf::RaftLog,
        Cf::RaftMeta,
        Cf::MetaSnapshot,
    ] {
        let mut last: Option<([u8; 20], i64)> = None;
        let walked = store.walk(cf, &[], None, |e| {
            if token.is_cancelled() {
                return false;
            }
            match e {
                WalkEvent::Entry(k, v) => {
                    report.entries += 1;
                    report.bytes += (k.len() + v.len()) as u64;
                    if cf == Cf::PartLog {
                        if let Err(why) = check_batch(k, v, &mut last) {
                            report.bad_batches += 1;
                            damaged(manager, &store, k, why);
                        }
                    }
                    if report.entries % 64 == 0 {
                        pace(started, report.bytes, bytes_per_sec, token);
                    }
                }
                WalkEvent::Unreadable {
                    after,
                    resume_at,
                    error,
                } => {
                    report.unreadable_ranges += 1;
                    let file = crate::storage::sst_file_in(&error);
                    store.health().corruption(cf.name(), file, error.clone());
                    if cf == Cf::PartLog {
                        unreadable(
                            manager,
                            &store,
                            after.as_deref(),
                            resume_at.as_deref(),
                            &error,
                        );
                    }
                }
            }
            true
        });
        if let Err(e) = walked {
            warn!(cf = cf.name(), error = %e, "scrub of a column family stopped");
        }
        if token.is_cancelled() {
            break;
        }
    }
    report
}

/// Checks one partition-log entry; `last` carries the previous batch of the same partition.
fn check_batch(k: &[u8], v: &[u8], last: &mut Option<([u8; 20], i64)>) -> Result<(), String> {
    let (Some(prefix), Some(base)) = (
        k.get(..20).and_then(|p| <[u8; 20]>::try_from(p).ok()),
        keys::part_log_offset(k),
    ) else {
        return Err(format!("malformed key of {} bytes", k.len()));
    };
    let h = verify_stored_batch(base, v)?;
    if let Some((p, prev_last)) = *last {
        if p == prefix && base <= prev_last {
            return Err(format!(
                "batch at {base} overlaps the previous batch (ends at {prev_last})"
            ));
        }
    }
    *last = Some((prefix, h.last_offset()));
    Ok(())
}

/// The local replica a partition-log key belongs to, with the key's base offset.
fn replica_of(manager: &ReplicaManager, k: &[u8]) -> Option<(Arc<super::Partition>, i64)> {
    let id = TopicId(uuid::Uuid::from_slice(k.get(..16)?).ok()?);
    let partition = i32::from_be_bytes(k.get(16..20)?.try_into().ok()?);
    Some((manager.by_id(&id, partition)?, keys::part_log_offset(k)?))
}

fn damaged(manager: &ReplicaManager, store: &Store, k: &[u8], why: String) {
    store.health().corruption("part_log", None, why.clone());
    match replica_of(manager, k) {
        Some((p, base)) => {
            p.note_damage(base, Some(base + 1), why);
        }
        None => error!(key = ?k, error = %why, "corrupt batch of a partition not hosted here"),
    }
}

fn unreadable(
    manager: &ReplicaManager,
    store: &Store,
    after: Option<&[u8]>,
    resume: Option<&[u8]>,
    error: &str,
) {
    let same = after.is_some_and(|a| a.get(..20) == resume.and_then(|r| r.get(..20)));
    // The partition whose data runs into the bad block, from just after its last good batch
    // (to the batch where reading resumes, if that is in the same partition).
    if let Some((p, base)) = after.and_then(|k| replica_of(manager, k)) {
        let next = after
            .and_then(|k| store.get(Cf::PartLog, k).ok().flatten())
            .and_then(|v| crate::codec::kafka::batch::BatchHeader::parse(&v).ok())
            .map_or(base + 1, |h| h.last_offset() + 1);
        let to = resume.filter(|_| same).and_then(keys::part_log_offset);
        p.note_damage(
            next,
            to,
            format!("unreadable storage block after offset {base}: {error}"),
        );
    }
    // The partition whose data resumes after it, if another one.
    if let Some((p, base)) = resume.and_then(|k| replica_of(manager, k)) {
        if !same {
            p.note_damage(
                p.log_start_offset(),
                Some(base),
                format!("unreadable storage block before offset {base}: {error}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::tests::make_batch;

    #[test]
    fn batches_must_match_their_keys_and_move_forward() {
        let id = [3u8; 16];
        let batch_at = |base: i64| {
            let mut b = make_batch(2, 9, 0, 0);
            b[0..8].copy_from_slice(&base.to_be_bytes());
            b
        };
        let mut last = None;
        check_batch(&keys::part_log_key(&id, 0, 0), &batch_at(0), &mut last).expect("first");
        check_batch(&keys::part_log_key(&id, 0, 2), &batch_at(2), &mut last).expect("next");
        assert!(check_batch(&keys::part_log_key(&id, 0, 3), &batch_at(3), &mut last).is_err());
        assert!(check_batch(&keys::part_log_key(&id, 0, 9), &batch_at(8), &mut last).is_err());
        // Another partition starts over.
        check_batch(&keys::part_log_key(&id, 1, 0), &batch_at(0), &mut last).expect("p1");
        assert!(check_batch(&[1, 2, 3], &batch_at(0), &mut last).is_err());
    }
}

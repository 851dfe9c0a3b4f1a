//! `raftka check <data-dir>`: verifies a stopped node's data without changing it. Opens
//! RocksDB read-only, reads every column family with block checksums verified (reporting
//! and skipping unreadable ranges), checks every stored record batch (header, length,
//! CRC32C, stored under its own base offset, offsets increasing within the partition),
//! lost-range markers left by a partition-log rebuild, the Raft log (entries decode, under
//! their index, no gaps) and the metadata image (loads, invariants hold). Prints a summary;
//! the caller exits non-zero on any problem. Sits beside `node` and `admin`.

use crate::replication::verify_stored_batch;
use crate::storage::rebuild::{LostRange, TAG_LOST};
use crate::storage::walk::WalkEvent;
use crate::storage::{keys, Cf, Store};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Problems listed in full (the rest are counted).
const PROBLEMS_SHOWN: usize = 100;

/// The outcome of a check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The printable summary.
    pub text: String,
    pub problems: usize,
}

#[derive(Debug, Default)]
struct PartitionSummary {
    batches: u64,
    bytes: u64,
    first: Option<i64>,
    last: Option<i64>,
}

/// Checks the data directory `dir`.
///
/// # Errors
/// The store cannot be opened read-only (no database there, or RocksDB refuses).
pub fn run(dir: &Path) -> Result<CheckReport, String> {
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let mut problems: Vec<String> = Vec::new();
    let mut text = String::new();
    let _ = writeln!(text, "raftka check {}", dir.display());
    if crate::storage::rebuild::requested(dir) {
        problems
            .push("a rebuild of the partition log is pending (it runs at the next start)".into());
    }
    let ctrl = crate::controller::verify::verify(&store, &mut problems);
    let name = |k: &[u8]| -> String {
        let topic = k
            .get(..16)
            .and_then(|id| <[u8; 16]>::try_from(id).ok())
            .and_then(|id| ctrl.topic_names.get(&id).cloned())
            .unwrap_or_else(|| {
                k.get(..16)
                    .and_then(|id| uuid::Uuid::from_slice(id).ok())
                    .map_or_else(|| "?".to_owned(), |u| u.to_string())
            });
        let partition = k
            .get(16..20)
            .and_then(|p| <[u8; 4]>::try_from(p).ok())
            .map_or(-1, i32::from_be_bytes);
        format!("{topic}-{partition}")
    };
    // Generic pass over the small column families: checksums only.
    let mut cf_lines = Vec::new();
    for cf in [Cf::RaftMeta, Cf::MetaSnapshot] {
        let mut unreadable = 0;
        match store.walk(cf, &[], None, |e| {
            if let WalkEvent::Unreadable { error, .. } = e {
                unreadable += 1;
                problems.push(format!("{}: unreadable entries: {error}", cf.name()));
            }
            true
        }) {
            Ok(s) => cf_lines.push(format!(
                "  {:<14} {:>10} entries {:>14} bytes",
                cf.name(),
                s.entries,
                s.bytes
            )),
            Err(e) => problems.push(format!("{}: {e}", cf.name())),
        }
        let _ = unreadable;
    }
    // Partition state: checksums, and lost-range markers.
    let mut state_entries = 0u64;
    match store.walk(Cf::PartState, &[], None, |e| {
        match e {
            WalkEvent::Entry(k, v) => {
                state_entries += 1;
                if k.len() == 21 && k[20] == TAG_LOST {
                    let what = LostRange::decode(v).map_or_else(
                        || "undecodable".to_owned(),
                        |r| format!("{:?}..{:?}", r.after_base, r.before_base),
                    );
                    problems.push(format!(
                        "part_state: {} has offsets lost to corrupt storage (batches after \
                         base {what}); a follower re-fetches them at its next start",
                        name(k)
                    ));
                }
            }
            WalkEvent::Unreadable { error, .. } => {
                problems.push(format!("part_state: unreadable entries: {error}"));
            }
        }
        true
    }) {
        Ok(s) => cf_lines.push(format!(
            "  {:<14} {:>10} entries {:>14} bytes",
            "part_state", s.entries, s.bytes
        )),
        Err(e) => problems.push(format!("part_state: {e}")),
    }
    let _ = state_entries;
    // Partition logs: every batch.
    let mut partitions: BTreeMap<[u8; 20], PartitionSummary> = BTreeMap::new();
    let mut last: Option<([u8; 20], i64)> = None;
    match store.walk(Cf::PartLog, &[], None, |e| {
        match e {
            WalkEvent::Entry(k, v) => {
                let (Some(prefix), Some(base)) = (
                    k.get(..20).and_then(|p| <[u8; 20]>::try_from(p).ok()),
                    keys::part_log_offset(k).filter(|_| k.len() == 28),
                ) else {
                    problems.push(format!("part_log: malformed key {k:02x?}"));
                    return true;
                };
                let p = partitions.entry(prefix).or_default();
                p.batches += 1;
                p.bytes += v.len() as u64;
                match verify_stored_batch(base, v) {
                    Ok(h) => {
                        if let Some((lp, prev_last)) = last {
                            if lp == prefix && base <= prev_last {
                                problems.push(format!(
                                    "part_log: {} batch at {base} overlaps the previous one \
                                     (ends at {prev_last})",
                                    name(k)
                                ));
                            }
                        }
                        p.first.get_or_insert(base);
                        p.last = Some(h.last_offset());
                        last = Some((prefix, h.last_offset()));
                    }
                    Err(why) => {
                        problems.push(format!("part_log: {} batch at {base}: {why}", name(k)));
                    }
                }
            }
            WalkEvent::Unreadable {
                after,
                resume_at,
                error,
            } => {
                let at = |k: &Option<Vec<u8>>| {
                    k.as_deref().map_or_else(
                        || "-".to_owned(),
                        |k| {
                            format!(
                                "{} offset {}",
                                name(k),
                                keys::part_log_offset(k).unwrap_or(-1)
                            )
                        },
                    )
                };
                problems.push(format!(
                    "part_log: unreadable batches after {} and before {}: {error}",
                    at(&after),
                    at(&resume_at)
                ));
            }
        }
        true
    }) {
        Ok(s) => cf_lines.push(format!(
            "  {:<14} {:>10} batches {:>14} bytes in {} partitions",
            "part_log",
            s.entries,
            s.bytes,
            partitions.len()
        )),
        Err(e) => problems.push(format!("part_log: {e}")),
    }
    let _ = writeln!(
        text,
        "  {:<14} {:>10} entries, indexes {}..{}",
        "raft_log",
        ctrl.raft_entries,
        ctrl.first_index.map_or("-".into(), |i| i.to_string()),
        ctrl.last_index.map_or("-".into(), |i| i.to_string()),
    );
    for l in cf_lines {
        let _ = writeln!(text, "{l}");
    }
    let _ = writeln!(
        text,
        "  metadata image: applied index {}, {} topics, {} znodes",
        ctrl.applied_index.map_or("-".into(), |i| i.to_string()),
        ctrl.topics,
        ctrl.znodes
    );
    for (prefix, p) in &partitions {
        let _ = writeln!(
            text,
            "  {:<40} {:>8} batches {:>12} bytes  offsets {}..{}",
            name(prefix),
            p.batches,
            p.bytes,
            p.first.map_or("-".into(), |o| o.to_string()),
            p.last.map_or("-".into(), |o| o.to_string()),
        );
    }
    if problems.is_empty() {
        let _ = writeln!(text, "OK: no problems found");
    } else {
        let _ = writeln!(text, "{} problem(s):", problems.len());
        for p in problems.iter().take(PROBLEMS_SHOWN) {
            let _ = writeln!(text, "  - {p}");
        }
        if problems.len() > PROBLEMS_SHOWN {
            let _ = writeln!(text, "  ... and {} more", problems.len() - PROBLEMS_SHOWN);
        }
    }
    Ok(CheckReport {
        text,
        problems: problems.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::tests::make_batch;
    use crate::storage::Batch;

    #[test]
    fn a_clean_store_passes_and_a_bad_batch_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = [5u8; 16];
        {
            let s = Store::open(dir.path()).expect("open");
            let mut b = Batch::new();
            for base in [0i64, 3] {
                let mut v = make_batch(3, 9, 0, base as i32);
                v[0..8].copy_from_slice(&base.to_be_bytes());
                b.put(&s, Cf::PartLog, &keys::part_log_key(&id, 0, base), &v);
            }
            s.write(b, true).expect("write");
            s.flush_all().expect("flush");
        }
        let r = run(dir.path()).expect("check");
        assert_eq!(r.problems, 0, "{}", r.text);
        assert!(r.text.contains("OK"), "{}", r.text);
        {
            let s = Store::open(dir.path()).expect("open");
            let mut v = make_batch(3, 9, 0, 6);
            v[0..8].copy_from_slice(&6i64.to_be_bytes());
            let n = v.len();
            v[n - 1] ^= 1;
            let mut b = Batch::new();
            b.put(&s, Cf::PartLog, &keys::part_log_key(&id, 0, 6), &v);
            s.write(b, true).expect("write");
        }
        let r = run(dir.path()).expect("check");
        assert_eq!(r.problems, 1, "{}", r.text);
        assert!(r.text.contains("CRC32C"), "{}", r.text);
        assert!(run(&dir.path().join("nowhere")).is_err());
    }
}

//! Rebuild of the `part_log` column family without its corrupt blocks, run by `Store::open`
//! when a rebuild was requested (`<data dir>/part_log.rebuild`).
//!
//! Why a rebuild: RocksDB 7.8 cannot drop one damaged SST file safely through this binding
//! (`DeleteFile` is not exposed, `DeleteFilesInRanges` skips L0, `RepairDB` throws away the
//! whole file with every good block of every partition in it). A corrupt block also stays
//! harmful after the partition above it is truncated and re-fetched: backward seeks (how a
//! fetch finds the batch holding its offset) still step through the deleted keys into the
//! bad block, and any compaction that reads it stops every write of the database with an
//! unrecoverable background error. So the readable data is copied out and the column family
//! is replaced:
//!
//! 1. walk `part_log` with checksums verified, writing every readable entry into SST files in
//!    `<data dir>/part_log.rebuild.d/` and noting each unreadable key range;
//! 2. write a *lost-range marker* (`part_state` tag `x`) for every partition whose keys fall
//!    in an unreadable range (its own prefix, or a partition known to `part_state` between two
//!    prefixes), fsynced, then mark the request `staged`;
//! 3. drop `part_log`, create it empty and ingest the staged files (copies: a crash before the
//!    request file is removed redoes step 3 from the same files), then remove the request.
//!
//! The replication layer turns a marker into a repair: a follower truncates to before the lost
//! range and re-fetches it from the leader; a leader answers KAFKA_STORAGE_ERROR inside it.

use super::walk::{walk, WalkEvent};
use super::{keys, StorageError, CF_PART_LOG, CF_PART_STATE};
use rocksdb::{IngestExternalFileOptions, Options, SstFileWriter, WriteBatch, WriteOptions, DB};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The request file in the data directory.
pub const REQUEST_FILE: &str = "part_log.rebuild";
const STAGING_DIR: &str = "part_log.rebuild.d";
const STAGED: &str = "staged";
/// Largest staged SST file.
const STAGED_FILE_BYTES_MAX: u64 = 256 << 20;

/// `part_state` tag of a lost-range marker: value = after (i64 BE) | before (i64 BE), `-1`
/// for "from the partition's start" / "to its end". `after` and `before` are batch base
/// offsets that were readable; every batch strictly between them is lost.
pub const TAG_LOST: u8 = b'x';

/// A partition's lost range, in batch base offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostRange {
    /// Base offset of the last readable batch before the loss (`None`: from the start).
    pub after_base: Option<i64>,
    /// Base offset of the first readable batch after the loss (`None`: to the end).
    pub before_base: Option<i64>,
}

impl LostRange {
    pub fn encode(&self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&self.after_base.unwrap_or(-1).to_be_bytes());
        v[8..].copy_from_slice(&self.before_base.unwrap_or(-1).to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let a = i64::from_be_bytes(v.get(..8)?.try_into().ok()?);
        let b = i64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
        Some(Self {
            after_base: (a >= 0).then_some(a),
            before_base: (b >= 0).then_some(b),
        })
    }

    /// The union of two lost ranges of one partition (it may cover readable batches between
    /// them: those are re-fetched too, or reported as lost by a leader).
    pub fn merge(self, other: Self) -> Self {
        let after_base = match (self.after_base, other.after_base) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        let before_base = match (self.before_base, other.before_base) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        Self {
            after_base,
            before_base,
        }
    }
}

/// An unreadable key range: `(last readable key before, first readable key after)`.
type Hole = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What a rebuild did.
#[derive(Debug, Clone, Default)]
pub struct RebuildReport {
    pub entries_kept: u64,
    pub unreadable_ranges: u64,
    pub partitions_marked: usize,
}

fn request_path(data_dir: &Path) -> PathBuf {
    data_dir.join(REQUEST_FILE)
}

/// Whether a rebuild is pending for this data directory.
pub fn requested(data_dir: &Path) -> bool {
    request_path(data_dir).exists()
}

fn io(path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Dir {
        path: path.display().to_string(),
        source: e,
    }
}

/// Writes `text` to `path` atomically (temp file, fsync, rename, fsync of the directory).
fn write_atomically(path: &Path, text: &str) -> Result<(), StorageError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
    }
    Ok(())
}

/// Records a rebuild request (done at the next open of the store).
///
/// # Errors
/// The request file cannot be written.
pub fn request(data_dir: &Path, reason: &str) -> Result<(), StorageError> {
    let path = request_path(data_dir);
    if path.exists() {
        return Ok(());
    }
    let line: String = reason.chars().filter(|c| *c != '\n').take(500).collect();
    write_atomically(&path, &format!("requested {line}\n"))
}

/// Runs (or finishes) a requested rebuild on `db`, opened with automatic compactions off.
///
/// # Errors
/// Storage failures; the request stays and the next open tries again.
pub(super) fn run(
    db: &mut DB,
    data_dir: &Path,
    part_log_opts: &Options,
) -> Result<RebuildReport, StorageError> {
    let req = request_path(data_dir);
    let text = std::fs::read_to_string(&req).map_err(|e| io(&req, e))?;
    let staging = data_dir.join(STAGING_DIR);
    let mut report = RebuildReport::default();
    if text.trim() != STAGED {
        tracing::warn!(request = %text.trim(), "rebuilding the partition log without its unreadable blocks");
        report = stage(db, &staging, part_log_opts)?;
        write_atomically(&req, STAGED)?;
    }
    swap_in(db, &staging, part_log_opts)?;
    std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
    std::fs::remove_file(&req).map_err(|e| io(&req, e))?;
    tracing::warn!(
        entries_kept = report.entries_kept,
        unreadable_ranges = report.unreadable_ranges,
        partitions_marked = report.partitions_marked,
        "partition log rebuilt"
    );
    Ok(report)
}

/// Steps 1 and 2: stage the readable entries, write the lost-range markers.
fn stage(db: &DB, staging: &Path, opts: &Options) -> Result<RebuildReport, StorageError> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(|e| io(staging, e))?;
    }
    std::fs::create_dir_all(staging).map_err(|e| io(staging, e))?;
    let cf = db
        .cf_handle(CF_PART_LOG)
        .ok_or_else(|| corrupt("part_log column family missing"))?;
    let mut writer: Option<SstFileWriter<'_>> = None;
    let mut files = 0u32;
    let mut holes: Vec<Hole> = Vec::new();
    let mut failed: Option<rocksdb::Error> = None;
    let mut report = RebuildReport::default();
    let stats = walk(db, cf, &[], None, |e| {
        let res = match e {
            WalkEvent::Entry(k, v) => {
                let w = match writer.as_mut() {
                    Some(w) if w.file_size() < STAGED_FILE_BYTES_MAX => w,
                    _ => {
                        if let Some(mut w) = writer.take() {
                            if let Err(e) = w.finish() {
                                failed = Some(e);
                                return false;
                            }
                        }
                        files += 1;
                        let w = SstFileWriter::create(opts);
                        if let Err(e) = w.open(staging.join(format!("{files:06}.sst"))) {
                            failed = Some(e);
                            return false;
                        }
                        writer.insert(w)
                    }
                };
                report.entries_kept += 1;
                w.put(k, v)
            }
            WalkEvent::Unreadable {
                after,
                resume_at,
                error,
            } => {
                tracing::error!(
                    after = ?after.as_deref().map(hex),
                    resume_at = ?resume_at.as_deref().map(hex),
                    error = %error,
                    "part_log: unreadable key range dropped by the rebuild"
                );
                holes.push((after, resume_at));
                Ok(())
            }
        };
        match res {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(mut w) = writer.take() {
        w.finish()?;
    }
    report.unreadable_ranges = stats.unreadable_ranges;
    let markers = lost_markers(db, &holes)?;
    report.partitions_marked = markers.len();
    let state = db
        .cf_handle(CF_PART_STATE)
        .ok_or_else(|| corrupt("part_state column family missing"))?;
    let mut wb = WriteBatch::default();
    for (prefix, range) in markers {
        let mut k = prefix.to_vec();
        k.push(TAG_LOST);
        let merged = match db.get_cf(state, &k)? {
            Some(v) => LostRange::decode(&v).map_or(range, |old| old.merge(range)),
            None => range,
        };
        wb.put_cf(state, &k, merged.encode());
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    db.write_opt(wb, &wo)?;
    Ok(report)
}

/// Step 3: replace `part_log` with the staged files.
fn swap_in(db: &mut DB, staging: &Path, opts: &Options) -> Result<(), StorageError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(staging)
        .map_err(|e| io(staging, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    files.sort();
    if db.cf_handle(CF_PART_LOG).is_some() {
        db.drop_cf(CF_PART_LOG)?;
    }
    db.create_cf(CF_PART_LOG, opts)?;
    if files.is_empty() {
        return Ok(());
    }
    let cf = db
        .cf_handle(CF_PART_LOG)
        .ok_or_else(|| corrupt("part_log column family missing after create"))?;
    let mut io_opts = IngestExternalFileOptions::default();
    // Copies, so that a crash before the request file is gone can ingest them again.
    io_opts.set_move_files(false);
    db.ingest_external_file_cf_opts(cf, &io_opts, files)?;
    Ok(())
}

/// The partitions (20-byte key prefixes) each unreadable range touches, with their ranges.
fn lost_markers(db: &DB, holes: &[Hole]) -> Result<BTreeMap<[u8; 20], LostRange>, StorageError> {
    let mut out: BTreeMap<[u8; 20], LostRange> = BTreeMap::new();
    let mut add = |p: [u8; 20], r: LostRange| {
        out.entry(p)
            .and_modify(|cur| *cur = cur.merge(r))
            .or_insert(r);
    };
    for (after, resume) in holes {
        let pa = after.as_deref().and_then(split_key);
        let pr = resume.as_deref().and_then(split_key);
        match (pa, pr) {
            (Some((a, ao)), Some((r, ro))) if a == r => add(
                a,
                LostRange {
                    after_base: Some(ao),
                    before_base: Some(ro),
                },
            ),
            _ => {
                if let Some((a, ao)) = pa {
                    add(
                        a,
                        LostRange {
                            after_base: Some(ao),
                            before_base: None,
                        },
                    );
                }
                if let Some((r, ro)) = pr {
                    add(
                        r,
                        LostRange {
                            after_base: None,
                            before_base: Some(ro),
                        },
                    );
                }
                // Partitions strictly between: any whose data lay entirely in the range.
                for p in partitions_between(db, pa.map(|x| x.0), pr.map(|x| x.0))? {
                    add(
                        p,
                        LostRange {
                            after_base: None,
                            before_base: None,
                        },
                    );
                }
            }
        }
    }
    Ok(out)
}

/// `part_log` key → (partition prefix, batch base offset).
fn split_key(k: &[u8]) -> Option<([u8; 20], i64)> {
    let prefix: [u8; 20] = k.get(..20)?.try_into().ok()?;
    Some((prefix, keys::part_log_offset(k)?))
}

/// Partition prefixes known to `part_state` strictly between `lo` and `hi` (`None`: open).
fn partitions_between(
    db: &DB,
    lo: Option<[u8; 20]>,
    hi: Option<[u8; 20]>,
) -> Result<Vec<[u8; 20]>, StorageError> {
    let cf = db
        .cf_handle(CF_PART_STATE)
        .ok_or_else(|| corrupt("part_state column family missing"))?;
    let start = match lo {
        // The next partition prefix: the first key after every key of `lo`'s partition.
        Some(p) => match super::walk::add_pow2(&p, 0) {
            Some(next) => next,
            None => return Ok(Vec::new()),
        },
        None => Vec::new(),
    };
    let mut found: Vec<[u8; 20]> = Vec::new();
    walk(db, cf, &start, hi.as_ref().map(|h| &h[..]), |e| {
        if let WalkEvent::Entry(k, _) = e {
            if let Some(p) = k.get(..20).and_then(|p| <[u8; 20]>::try_from(p).ok()) {
                if Some(p) != lo && found.last() != Some(&p) {
                    found.push(p);
                }
            }
        }
        true
    })?;
    Ok(found)
}

fn corrupt(reason: &str) -> StorageError {
    StorageError::Corrupt {
        cf: CF_PART_LOG,
        reason: reason.to_owned(),
    }
}

fn hex(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Batch, Cf, Store};

    fn corrupt_middle_of(dir: &Path, marker: u8) {
        let db_dir = dir.join("raftka.db");
        let mut ssts: Vec<PathBuf> = std::fs::read_dir(&db_dir)
            .expect("ls")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sst"))
            .collect();
        ssts.sort();
        let needle = [marker; 64];
        for sst in ssts {
            let mut data = std::fs::read(&sst).expect("read");
            if let Some(first) = data.windows(64).position(|w| w == needle) {
                let at = first + 50 * 1040;
                data[at] ^= 0xff;
                std::fs::write(&sst, data).expect("write");
                return;
            }
        }
        panic!("no sst holds the value bytes");
    }

    #[test]
    fn a_rebuild_keeps_every_readable_entry_and_marks_the_lost_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let topic = [9u8; 16];
        {
            let s = Store::open(dir.path()).expect("open");
            for p in 0..4i32 {
                let mut b = Batch::new();
                for off in 0..100i64 {
                    b.put(
                        &s,
                        Cf::PartLog,
                        &keys::part_log_key(&topic, p, off * 10),
                        &[b'a' + p as u8; 1000],
                    );
                }
                // Partition 3 is known to part_state only by its epoch entry.
                b.put(
                    &s,
                    Cf::PartState,
                    &keys::part_state_key(&topic, p, b'e', &keys::u64_key(0)),
                    &keys::u64_key(0),
                );
                s.write(b, true).expect("write");
            }
            s.flush_all().expect("flush");
        }
        corrupt_middle_of(dir.path(), b'b');
        {
            let s = Store::open(dir.path()).expect("open with a corrupt block");
            let floor = keys::part_log_key(&topic, 1, 0);
            let end = keys::part_log_key(&topic, 2, 0);
            assert!(s
                .scan(Cf::PartLog, &floor, &end, usize::MAX, |_, _| true)
                .is_err());
            assert_eq!(s.health().corruptions().len(), 1);
            s.request_rebuild("test").expect("request");
        }
        assert!(requested(dir.path()));
        let s = Store::open(dir.path()).expect("open and rebuild");
        assert!(!requested(dir.path()));
        assert!(!dir.path().join(STAGING_DIR).exists());
        let mut offsets: Vec<Vec<i64>> = vec![Vec::new(); 4];
        for (p, offs) in offsets.iter_mut().enumerate() {
            let p = p as i32;
            let rows = s
                .scan(
                    Cf::PartLog,
                    &keys::part_log_key(&topic, p, 0),
                    &keys::part_log_key(&topic, p + 1, 0),
                    usize::MAX,
                    |_, _| true,
                )
                .expect("every partition reads after the rebuild");
            offs.extend(rows.iter().filter_map(|(k, _)| keys::part_log_offset(k)));
        }
        assert_eq!(offsets[0].len(), 100);
        assert_eq!(offsets[2].len(), 100);
        assert_eq!(offsets[3].len(), 100);
        let lost = 100 - offsets[1].len();
        assert!(
            lost > 0 && lost < 10,
            "one block of partition 1 lost: {lost}"
        );
        // Backward seeks into the lost range work again.
        let hit = s
            .seek_for_prev(
                Cf::PartLog,
                &keys::part_log_key(&topic, 1, 500),
                &keys::part_log_key(&topic, 1, 0),
            )
            .expect("seek")
            .expect("a batch");
        assert!(keys::part_log_offset(&hit.0).is_some());
        // The marker names the readable batches around the hole.
        let marker = s
            .get(
                Cf::PartState,
                &keys::part_state_key(&topic, 1, TAG_LOST, &[]),
            )
            .expect("get")
            .and_then(|v| LostRange::decode(&v))
            .expect("marker for partition 1");
        let (a, b) = (
            marker.after_base.expect("after"),
            marker.before_base.expect("before"),
        );
        assert!(offsets[1].contains(&a) && offsets[1].contains(&b));
        assert!(!offsets[1].iter().any(|o| *o > a && *o < b));
        for p in [0, 2, 3] {
            assert!(s
                .get(
                    Cf::PartState,
                    &keys::part_state_key(&topic, p, TAG_LOST, &[])
                )
                .expect("get")
                .is_none());
        }
    }

    #[test]
    fn lost_ranges_round_trip_and_merge() {
        let a = LostRange {
            after_base: Some(10),
            before_base: Some(20),
        };
        assert_eq!(LostRange::decode(&a.encode()), Some(a));
        let open = LostRange {
            after_base: None,
            before_base: None,
        };
        assert_eq!(LostRange::decode(&open.encode()), Some(open));
        let b = LostRange {
            after_base: Some(30),
            before_base: Some(40),
        };
        assert_eq!(
            a.merge(b),
            LostRange {
                after_base: Some(10),
                before_base: Some(40)
            }
        );
        assert_eq!(a.merge(open), open);
        assert_eq!(LostRange::decode(&[0; 3]), None);
    }
}

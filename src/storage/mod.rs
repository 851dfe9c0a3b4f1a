//! One RocksDB per node with the column families `raft_log`, `raft_meta`, `meta_snapshot`,
//! `part_log` and `part_state`. Key encodings are big-endian so byte order is numeric order.
//! Knows nothing about Kafka or openraft; imports only `types`.
//!
//! Durability: ordinary writes go to the WAL without fsync (they survive a process crash, as
//! they are in the OS page cache). Callers that must survive a machine crash (Raft vote and log
//! appends, `acks=all` produce) either write with `sync = true` or call [`WalSync::sync_after`],
//! which group-commits: one fsync covers every write completed before it started.

mod wal_sync;

pub use wal_sync::WalSync;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};
use std::path::Path;
use std::sync::Arc;

pub const CF_RAFT_LOG: &str = "raft_log";
pub const CF_RAFT_META: &str = "raft_meta";
pub const CF_META_SNAPSHOT: &str = "meta_snapshot";
pub const CF_PART_LOG: &str = "part_log";
pub const CF_PART_STATE: &str = "part_state";
const CFS: [&str; 5] = [
    CF_RAFT_LOG,
    CF_RAFT_META,
    CF_META_SNAPSHOT,
    CF_PART_LOG,
    CF_PART_STATE,
];

/// A storage failure. RocksDB errors are not recoverable by the caller; they are reported
/// upward (the request fails) and logged.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("cannot create data dir {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt value under {cf}: {reason}")]
    Corrupt { cf: &'static str, reason: String },
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// Column family selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    RaftLog,
    RaftMeta,
    MetaSnapshot,
    PartLog,
    PartState,
}

impl Cf {
    fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => CF_RAFT_LOG,
            Cf::RaftMeta => CF_RAFT_META,
            Cf::MetaSnapshot => CF_META_SNAPSHOT,
            Cf::PartLog => CF_PART_LOG,
            Cf::PartState => CF_PART_STATE,
        }
    }
}

/// The node's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    wal: Arc<WalSync>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish()
    }
}

/// A set of writes applied atomically.
#[derive(Default)]
pub struct Batch {
    inner: WriteBatch,
    ops: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("ops", &self.ops).finish()
    }
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }
    fn cf(store: &Store, cf: Cf) -> &rocksdb::ColumnFamily {
        // Every CF in `CFS` is created at open, so the handle always exists.
        store
            .db
            .cf_handle(cf.name())
            .expect("column family created at open")
    }
    pub fn put(&mut self, store: &Store, cf: Cf, key: &[u8], value: &[u8]) {
        self.inner.put_cf(Self::cf(store, cf), key, value);
        self.ops += 1;
    }
    pub fn delete(&mut self, store: &Store, cf: Cf, key: &[u8]) {
        self.inner.delete_cf(Self::cf(store, cf), key);
        self.ops += 1;
    }
    /// Deletes `[from, to)` with one range tombstone.
    pub fn delete_range(&mut self, store: &Store, cf: Cf, from: &[u8], to: &[u8]) {
        self.inner.delete_range_cf(Self::cf(store, cf), from, to);
        self.ops += 1;
    }
}

impl Store {
    /// Opens (creating if needed) the store under `dir/raftka.db`.
    ///
    /// # Errors
    /// The directory cannot be created or RocksDB refuses to open (e.g. locked by another node).
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("raftka.db");
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        opts.set_max_total_wal_size(256 << 20);
        opts.set_keep_log_file_num(3);
        let cf_opts = |name: &str| {
            let mut o = Options::default();
            if name == CF_PART_LOG {
                // Record batches are often already compressed by the producer; large write
                // buffers keep appends sequential.
                o.set_write_buffer_size(64 << 20);
                o.set_compression_type(rocksdb::DBCompressionType::None);
            } else {
                o.set_write_buffer_size(8 << 20);
                o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            }
            ColumnFamilyDescriptor::new(name, o)
        };
        let db = DB::open_cf_descriptors(&opts, &path, CFS.iter().map(|n| cf_opts(n)))?;
        let db = Arc::new(db);
        Ok(Self {
            wal: Arc::new(WalSync::new(db.clone())),
            db,
        })
    }

    fn handle(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        // Every CF in `CFS` is created at open, so the handle always exists.
        self.db
            .cf_handle(cf.name())
            .expect("column family created at open")
    }

    /// Applies `batch` atomically. `sync = true` fsyncs the WAL before returning.
    ///
    /// # Errors
    /// RocksDB write failure.
    pub fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch.inner, &wo)?;
        self.wal.note_write();
        Ok(())
    }

    /// # Errors
    /// RocksDB read failure.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.handle(cf), key)?)
    }

    /// Entries with `from <= key < to`, in key order, at most `limit` of them, stopping early
    /// once `budget` returns false for an entry (that entry is included).
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
        mut more: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<Vec<KeyValue>, StorageError> {
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.handle(cf),
            IteratorMode::From(from, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if &*k >= to || out.len() >= limit {
                break;
            }
            let go_on = more(&k, &v);
            out.push((k, v));
            if !go_on {
                break;
            }
        }
        Ok(out)
    }

    /// Visits the entries with `from <= key < to` in key order without collecting them, until
    /// `visit` returns false. Memory stays at one entry however long the range is.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn for_each(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let mut it = self.db.raw_iterator_cf(self.handle(cf));
        it.seek(from);
        while it.valid() {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k < to => {
                    if !visit(k, v) {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// The last entry with `key <= at` and `key >= floor`.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn seek_for_prev(
        &self,
        cf: Cf,
        at: &[u8],
        floor: &[u8],
    ) -> Result<Option<KeyValue>, StorageError> {
        let mut it = self.db.raw_iterator_cf(self.handle(cf));
        it.seek_for_prev(at);
        if !it.valid() {
            it.status()?;
            return Ok(None);
        }
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k >= floor => Ok(Some((k.into(), v.into()))),
            _ => Ok(None),
        }
    }

    /// Group-committed fsync: see [`WalSync`].
    pub fn wal(&self) -> &Arc<WalSync> {
        &self.wal
    }

    /// Asks RocksDB to compact `[from, to)` so range-deleted data leaves the disk.
    pub fn compact_range(&self, cf: Cf, from: &[u8], to: &[u8]) {
        self.db
            .compact_range_cf(self.handle(cf), Some(from), Some(to));
    }

    /// Total live SST + memtable bytes of a CF (for metrics and tests).
    pub fn cf_size_bytes(&self, cf: Cf) -> u64 {
        let h = self.handle(cf);
        let sst = self
            .db
            .property_int_value_cf(h, "rocksdb.live-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0);
        let mem = self
            .db
            .property_int_value_cf(h, "rocksdb.cur-size-all-mem-tables")
            .ok()
            .flatten()
            .unwrap_or(0);
        sst + mem
    }

    /// Flushes memtables and syncs the WAL (graceful shutdown).
    ///
    /// # Errors
    /// RocksDB failure.
    pub fn flush_all(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        for cf in CFS {
            if let Some(h) = self.db.cf_handle(cf) {
                self.db.flush_cf(h)?;
            }
        }
        Ok(())
    }
}

/// A key/value pair read from RocksDB.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Runs a blocking storage call on the bounded blocking pool.
///
/// # Errors
/// The closure's error, or `Join` if the task panicked or was cancelled.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Join(e.to_string()))?
}

/// Key helpers (big-endian).
pub mod keys {
    pub fn u64_key(n: u64) -> [u8; 8] {
        n.to_be_bytes()
    }

    pub fn read_u64(k: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?))
    }

    /// `topic_id (16) | partition (4) | offset (8)`: a partition log key. Offsets are
    /// non-negative, so their big-endian bytes order numerically.
    pub fn part_log_key(topic_id: &[u8; 16], partition: i32, offset: i64) -> [u8; 28] {
        let mut k = [0u8; 28];
        k[..16].copy_from_slice(topic_id);
        k[16..20].copy_from_slice(&(partition as u32).to_be_bytes());
        k[20..].copy_from_slice(&(offset.max(0) as u64).to_be_bytes());
        k
    }

    /// The offset part of a partition log key.
    pub fn part_log_offset(k: &[u8]) -> Option<i64> {
        Some(u64::from_be_bytes(k.get(20..28)?.try_into().ok()?) as i64)
    }

    /// `topic_id | partition | tag | suffix`: partition state keys.
    pub fn part_state_key(topic_id: &[u8; 16], partition: i32, tag: u8, suffix: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(21 + suffix.len());
        k.extend_from_slice(topic_id);
        k.extend_from_slice(&(partition as u32).to_be_bytes());
        k.push(tag);
        k.extend_from_slice(suffix);
        k
    }

    /// The range covering every key of one topic (`[topic_id, topic_id + 1)`).
    pub fn topic_range(topic_id: &[u8; 16]) -> (Vec<u8>, Vec<u8>) {
        let from = topic_id.to_vec();
        let n = u128::from_be_bytes(*topic_id);
        let to = match n.checked_add(1) {
            Some(m) => m.to_be_bytes().to_vec(),
            None => vec![0xff; 17],
        };
        (from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_scan_seek_and_range_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let t = [7u8; 16];
        let mut b = Batch::new();
        for off in [0i64, 5, 10] {
            b.put(
                &s,
                Cf::PartLog,
                &keys::part_log_key(&t, 0, off),
                &off.to_be_bytes(),
            );
        }
        b.put(
            &s,
            Cf::PartLog,
            &keys::part_log_key(&t, 1, 0),
            b"other partition",
        );
        s.write(b, true).expect("write");
        let floor = keys::part_log_key(&t, 0, 0);
        let hit = s
            .seek_for_prev(Cf::PartLog, &keys::part_log_key(&t, 0, 7), &floor)
            .expect("seek")
            .expect("found");
        assert_eq!(keys::part_log_offset(&hit.0), Some(5));
        let all = s
            .scan(
                Cf::PartLog,
                &floor,
                &keys::part_log_key(&t, 1, 0),
                100,
                |_, _| true,
            )
            .expect("scan");
        assert_eq!(all.len(), 3);
        let (from, to) = keys::topic_range(&t);
        let mut b = Batch::new();
        b.delete_range(&s, Cf::PartLog, &from, &to);
        s.write(b, false).expect("write");
        assert!(s
            .scan(Cf::PartLog, &from, &to, 100, |_, _| true)
            .expect("scan")
            .is_empty());
        drop(s);
        let s = Store::open(dir.path()).expect("reopen");
        assert!(s
            .get(Cf::PartLog, &keys::part_log_key(&t, 0, 0))
            .expect("get")
            .is_none());
    }
}

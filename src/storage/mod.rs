//! One RocksDB per node with the column families `raft_log`, `raft_meta`, `meta_snapshot`,
//! `part_log` and `part_state`. Key encodings are big-endian so byte order is numeric order.
//! Knows nothing about Kafka or openraft; imports only `types`.
//!
//! Durability: ordinary writes go to the WAL without fsync (they survive a process crash, as
//! they are in the OS page cache). Callers that must survive a machine crash (Raft vote and log
//! appends, `acks=all` produce) either write with `sync = true` or call [`WalSync::sync_after`],
//! which group-commits: one fsync covers every write completed before it started. A failed
//! fsync is sticky for the writes it covered (see `wal_sync`).
//!
//! Threads: RocksDB calls run on the bounded blocking pool ([`blocking`]), except two bounded
//! ones on the async task: reads from memory (`ReadTier::Cached`, never the disk) and log
//! appends of ≤ 1 MiB that RocksDB takes without delay ([`Store::write_unsynced`]); each falls
//! back to the blocking pool when RocksDB would need the disk or would stall the write.
//!
//! Faults: every read verifies block checksums; corruption is recorded in [`StorageHealth`]
//! (with the column family and SST file) and returned as an error, never a panic. A failed
//! write is recorded too and clears with the next successful one; RocksDB recovers from a
//! full disk by itself once space is freed (its default `SstFileManager` polls free space),
//! and [`DiskMonitor`] refuses appends before the disk gets there. The partition log can be
//! rebuilt without its unreadable blocks at open (`rebuild`).

pub mod disk;
mod health;
pub mod rebuild;
mod wal_sync;
pub mod walk;

pub use disk::{DiskLevel, DiskMonitor, DiskSnapshot, DiskThresholds, NoSpace};
pub use health::{is_corruption, is_no_space, sst_file_in, Corruption, StorageHealth, WriteFault};
pub use wal_sync::{WalSync, WalSyncError};

use rocksdb::{ColumnFamilyDescriptor, Options, ReadOptions, WriteBatch, WriteOptions, DB};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const CF_RAFT_LOG: &str = "raft_log";
pub const CF_RAFT_META: &str = "raft_meta";
pub const CF_META_SNAPSHOT: &str = "meta_snapshot";
pub const CF_PART_LOG: &str = "part_log";
pub const CF_PART_STATE: &str = "part_state";
/// Every column family, in a fixed order.
pub const CFS: [&str; 5] = [
    CF_RAFT_LOG,
    CF_RAFT_META,
    CF_META_SNAPSHOT,
    CF_PART_LOG,
    CF_PART_STATE,
];
/// RocksDB's own info log: one file at most this large, a few kept.
const INFO_LOG_BYTES_MAX: usize = 32 << 20;
/// Free space below which the store is not opened (the caller waits for space).
const OPEN_FREE_BYTES_MIN: u64 = 16 << 20;
/// How long a critical write waits between retries while the disk is full.
const FULL_DISK_RETRY: Duration = Duration::from_secs(1);
/// Largest batch `Store::write_unsynced` writes on the calling async task (larger ones go to
/// the blocking pool): a memtable insert and WAL append of this size take well under a
/// millisecond.
pub const INLINE_WRITE_BYTES_MAX: usize = 1 << 20;

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
    #[error("log dir nearly full: {free_bytes} bytes free, appends need {min_bytes} (log.dir.free.bytes.min)")]
    DiskFull { free_bytes: u64, min_bytes: u64 },
    /// A [`ReadTier::Cached`] read reached data that is only on disk.
    #[error("data not in memory (a cache-only read)")]
    NotCached,
}

/// Where a read may take its data from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTier {
    /// Memtables, the block cache, and the disk (blocking: call off the async runtime).
    Any,
    /// Memtables and the block cache only: never waits for the disk, so it may run on an async
    /// task (a tail read finds its batches in the memtable); ends with `NotCached` otherwise.
    Cached,
}

impl StorageError {
    /// Whether this reports corrupt data (RocksDB checksum or a value that fails its check).
    pub fn is_corruption(&self) -> bool {
        match self {
            StorageError::Rocks(e) => is_corruption(e),
            StorageError::Corrupt { .. } => true,
            _ => false,
        }
    }

    /// Whether this is a lack of disk space (refused by the monitor or by RocksDB).
    pub fn is_no_space(&self) -> bool {
        match self {
            StorageError::Rocks(e) => is_no_space(e),
            StorageError::DiskFull { .. } => true,
            _ => false,
        }
    }
}

impl From<NoSpace> for StorageError {
    fn from(n: NoSpace) -> Self {
        StorageError::DiskFull {
            free_bytes: n.free_bytes,
            min_bytes: n.min_bytes,
        }
    }
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
    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => CF_RAFT_LOG,
            Cf::RaftMeta => CF_RAFT_META,
            Cf::MetaSnapshot => CF_META_SNAPSHOT,
            Cf::PartLog => CF_PART_LOG,
            Cf::PartState => CF_PART_STATE,
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Free-space thresholds for appends.
    pub disk: DiskThresholds,
    /// RocksDB's memory bounds.
    pub memory: StoreMemory,
}

/// RocksDB's memory bounds (README › Configuration, "Memory": the rest of a loaded node's
/// resident memory is request and fetch data in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreMemory {
    /// `storage.memtable.bytes.max`: all column families' memtables together (RocksDB's
    /// `db_write_buffer_size`; a flush starts when it is reached).
    pub memtable_bytes: usize,
    /// `storage.block.cache.bytes`: one LRU block cache shared by every column family
    /// (without it each column family has its own).
    pub block_cache_bytes: usize,
}

impl Default for StoreMemory {
    fn default() -> Self {
        Self {
            memtable_bytes: 128 << 20,
            block_cache_bytes: 32 << 20,
        }
    }
}

/// The node's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    wal: Arc<WalSync>,
    health: Arc<StorageHealth>,
    disk: Arc<DiskMonitor>,
    dir: PathBuf,
    closing: Arc<AtomicBool>,
    /// Cleared for good when a fast WAL fsync or its fallback failed (`wal_sync_fn`).
    sync_beside_writes: Arc<AtomicBool>,
    /// Tests: `write_unsynced` treats its inline attempt as refused (RocksDB would stall).
    #[cfg(test)]
    refuse_inline_writes: Arc<AtomicBool>,
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

impl Batch {
    /// The serialized size of the batch (its records and RocksDB's per-entry framing).
    pub fn size_in_bytes(&self) -> usize {
        self.inner.size_in_bytes()
    }

    /// A copy of the batch (to retry a write that RocksDB refused).
    fn duplicate(&self) -> Self {
        Self {
            inner: WriteBatch::from_data(self.inner.data()),
            ops: self.ops,
        }
    }
}

/// The options of every column family (the same at every open, the rebuild included);
/// `cache`: the block cache shared by every column family.
fn cf_options(name: &str, auto_compactions: bool, cache: Option<&rocksdb::Cache>) -> Options {
    let mut o = Options::default();
    if let Some(cache) = cache {
        let mut t = rocksdb::BlockBasedOptions::default();
        t.set_block_cache(cache);
        o.set_block_based_table_factory(&t);
    }
    if name == CF_PART_LOG {
        // Record batches are often already compressed by the producer; large write
        // buffers keep appends sequential.
        o.set_write_buffer_size(64 << 20);
        o.set_compression_type(rocksdb::DBCompressionType::None);
    } else {
        o.set_write_buffer_size(8 << 20);
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    }
    o.set_disable_auto_compactions(!auto_compactions);
    o
}

fn db_options(memory: &StoreMemory) -> Options {
    let mut opts = Options::default();
    opts.set_db_write_buffer_size(memory.memtable_bytes);
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_bytes_per_sync(1 << 20);
    opts.set_max_total_wal_size(256 << 20);
    // Stop writes at the first failed WAL write or fsync (they are then refused until
    // RocksDB recovers and has flushed its memtables) and check SST sizes at open. Without
    // it a failed WAL write is ignored and later records follow a torn one.
    opts.set_paranoid_checks(true);
    // RocksDB's own info log (`LOG` in the database directory) is written at FATAL only.
    // Debian's librocksdb is built with assertions, and its info logger ignores a failed
    // append and asserts on the next one: on a full disk the first warning RocksDB logged
    // about the ENOSPC failed, the second aborted the process
    // (`WritableFileWriter::AssertFalseAndGetStatusForPrevError`). That was the disk-full
    // abort. The same build defaults to DEBUG (a line per WAL sync), which also filled the
    // disk faster. Everything an operator needs is logged by raftka itself (write failures,
    // corruption, free space); RocksDB's LOG keeps its header and fatal errors.
    opts.set_log_level(rocksdb::LogLevel::Fatal);
    opts.set_max_log_file_size(INFO_LOG_BYTES_MAX);
    opts.set_keep_log_file_num(3);
    opts
}

fn open_db(
    path: &Path,
    auto_compactions: bool,
    memory: &StoreMemory,
) -> Result<DB, rocksdb::Error> {
    let cache = rocksdb::Cache::new_lru_cache(memory.block_cache_bytes)?;
    DB::open_cf_descriptors(
        &db_options(memory),
        path,
        CFS.iter().map(|n| {
            ColumnFamilyDescriptor::new(*n, cf_options(n, auto_compactions, Some(&cache)))
        }),
    )
}

/// Read options of every read: block checksums verified (RocksDB's default, stated here).
/// The WAL fsync `WalSync` runs (see its module doc for the group commit and the failure rules).
///
/// **While nothing has gone wrong, `DB::flush_wal(true)`**: RocksDB's `SyncWAL` fsyncs the WAL
/// files (and their directory) beside its write queue, so appends keep going during the fsync.
/// An empty write with `sync = true` is a write-queue entry: every append behind it waited for
/// the whole fsync (3–8 ms here, over 100 ms at times; the `append` stage of an `acks=all`
/// produce took 2.5 ms at the median for that reason, docs/benchmarks.md).
///
/// **Otherwise the empty sync write** — once a write or an fsync has failed in this process,
/// and while free space is below the warning threshold (`DiskMonitor::roomy`). `SyncWAL` on
/// a WAL writer whose *write* failed trips an assertion in a RocksDB built with them
/// (Debian's: `WritableFileWriter::AssertFalseAndGetStatusForPrevError`, which allows only an
/// earlier failed sync) and so aborts the process; the empty write is refused without
/// touching that writer while RocksDB stands still after a write error. A write fails for
/// lack of space (kept away by the free-space gate: appends are refused well before, and the
/// fast path ends earlier still) or for an I/O error of the disk itself: only an I/O error
/// arriving during a running fsync remains, the case where Kafka too stops the broker (its
/// only log dir failed).
fn wal_sync_fn(
    db: Arc<DB>,
    health: Arc<StorageHealth>,
    disk: Arc<DiskMonitor>,
    beside_writes: Arc<AtomicBool>,
) -> wal_sync::SyncFn {
    Arc::new(move || {
        if sync_beside_writes(&beside_writes, &health, &disk) {
            let res = db.flush_wal(true).map_err(|e| e.to_string());
            if res.is_err() {
                beside_writes.store(false, Ordering::Release);
            }
            return res;
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        let res = db.write_opt(WriteBatch::default(), &wo);
        if res.is_err() {
            // The WAL writer may now carry a failed write's error (this write is not counted
            // in `StorageHealth`): `SyncWAL` must never run again in this process.
            beside_writes.store(false, Ordering::Release);
        }
        res.map_err(|e| e.to_string())
    })
}

/// Whether the group-commit fsync runs beside RocksDB's write queue (`wal_sync_fn`): no
/// write or fsync failed in this process (`beside_writes` is cleared for good by a failed
/// fsync) and free space is roomy. Otherwise the fsync is an entry in the write queue.
fn sync_beside_writes(
    beside_writes: &AtomicBool,
    health: &StorageHealth,
    disk: &DiskMonitor,
) -> bool {
    beside_writes.load(Ordering::Acquire) && health.write_errors() == 0 && disk.roomy()
}

/// Walks `it` from where it stands to `to` (exclusive) until `visit` returns false; never
/// steps past the entry it stops at. The RocksDB error that ended the walk, if any.
fn walk_to(
    it: &mut rocksdb::DBRawIterator<'_>,
    to: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), rocksdb::Error> {
    while it.valid() {
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            break;
        };
        if k >= to || !visit(k, v) {
            return Ok(());
        }
        it.next();
    }
    it.status()
}

/// RocksDB's read tier "memtables and block cache only" (`kBlockCacheTier`). rocksdb 0.20.1
/// takes a `ReadTier` in `ReadOptions::set_read_tier` but does not export the type; its
/// `serde1` feature derives `Deserialize` for it, so the value is made from its name (checked
/// by `tests::a_cached_read_never_goes_to_disk`).
fn block_cache_tier<T: serde::de::DeserializeOwned>() -> T {
    serde_json::from_str("\"BlockCache\"").expect("rocksdb's ReadTier has a BlockCache variant")
}

fn read_options() -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_verify_checksums(true);
    ro
}

impl Store {
    /// Opens (creating if needed) the store under `dir/raftka.db` with default options.
    ///
    /// # Errors
    /// See [`Store::open_with`].
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with(dir, &StoreOptions::default())
    }

    /// Opens (creating if needed) the store under `dir/raftka.db`, first finishing a
    /// requested rebuild of the partition log.
    ///
    /// # Errors
    /// The directory cannot be created or RocksDB refuses to open (locked by another node,
    /// no space to replay the WAL, a damaged MANIFEST).
    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("raftka.db");
        // RocksDB's open writes (its LOG header, a new MANIFEST and WAL, the replayed WAL as
        // L0 files): refuse to start it on a disk that cannot take that, rather than have it
        // fail half-way (the caller waits for space and tries again).
        if let Ok(st) = rustix::fs::statvfs(dir) {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            if free < OPEN_FREE_BYTES_MIN {
                return Err(StorageError::DiskFull {
                    free_bytes: free,
                    min_bytes: OPEN_FREE_BYTES_MIN,
                });
            }
        }
        if rebuild::requested(dir) {
            // Compactions stay off while the rebuild reads: one that read the bad block
            // would stop every write with an unrecoverable error.
            let mut db = open_db(&path, false, &options.memory)?;
            rebuild::run(&mut db, dir, &cf_options(CF_PART_LOG, true, None))?;
        }
        let db = Arc::new(open_db(&path, true, &options.memory)?);
        Ok(Self::assemble(dir, db, options))
    }

    /// The store around an open database.
    fn assemble(dir: &Path, db: Arc<DB>, options: &StoreOptions) -> Self {
        let health = Arc::new(StorageHealth::default());
        let disk = Arc::new(DiskMonitor::new(dir, options.disk));
        let sync_beside_writes = Arc::new(AtomicBool::new(true));
        let wal = Arc::new(WalSync::new(wal_sync_fn(
            db.clone(),
            health.clone(),
            disk.clone(),
            sync_beside_writes.clone(),
        )));
        Self {
            wal,
            sync_beside_writes,
            health,
            disk,
            dir: dir.to_path_buf(),
            closing: Arc::new(AtomicBool::new(false)),
            db,
            #[cfg(test)]
            refuse_inline_writes: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Opens the store of a stopped node read-only (for `raftka check`): nothing in the
    /// directory is changed (no WAL replay into new files, no compaction); writes fail.
    ///
    /// # Errors
    /// No database in `dir`, or RocksDB refuses to open it.
    pub fn open_read_only(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join("raftka.db");
        if !path.join("CURRENT").exists() {
            return Err(StorageError::Dir {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no RocksDB database here",
                ),
            });
        }
        let mut opts = db_options(&StoreMemory::default());
        opts.create_if_missing(false);
        opts.create_missing_column_families(false);
        let db = Arc::new(DB::open_cf_descriptors_read_only(
            &opts,
            &path,
            CFS.iter()
                .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n, false, None))),
            false,
        )?);
        Ok(Self {
            wal: Arc::new(WalSync::new(Arc::new(|| Err("read-only store".to_owned())))),
            health: Arc::new(StorageHealth::default()),
            disk: Arc::new(DiskMonitor::new(dir, DiskThresholds::default())),
            dir: dir.to_path_buf(),
            closing: Arc::new(AtomicBool::new(true)),
            sync_beside_writes: Arc::new(AtomicBool::new(false)),
            db,
            #[cfg(test)]
            refuse_inline_writes: Arc::new(AtomicBool::new(false)),
        })
    }

    fn handle(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        // Every CF in `CFS` is created at open, so the handle always exists.
        self.db
            .cf_handle(cf.name())
            .expect("column family created at open")
    }

    /// Notes a read error: corruption is recorded with its column family and file.
    fn read_error(&self, cf: Cf, e: rocksdb::Error) -> StorageError {
        if is_corruption(&e) {
            self.health.corruption_found(cf.name(), &e);
        }
        StorageError::Rocks(e)
    }

    /// Applies `batch` atomically. `sync = true` fsyncs the WAL before returning.
    ///
    /// # Errors
    /// RocksDB write failure (recorded in [`StorageHealth`] until a write succeeds).
    pub fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.recorded(self.db.write_opt(batch.inner, &wo))
    }

    /// A write's outcome, recorded: a WAL ticket and a cleared fault, or the fault.
    fn recorded(&self, res: Result<(), rocksdb::Error>) -> Result<(), StorageError> {
        match res {
            Ok(()) => {
                self.wal.note_write();
                self.health.write_succeeded();
                Ok(())
            }
            Err(e) => {
                self.health.write_failed(&e);
                Err(e.into())
            }
        }
    }

    /// Writes `batch` without fsync and returns the WAL ticket to fsync through
    /// (`WalSync::sync_after`), without a thread hand-off where RocksDB does not have to wait:
    /// a batch of at most `INLINE_WRITE_BYTES_MAX` is first written on the calling task with
    /// `no_slowdown` — a memtable insert and a buffered WAL append, tens of microseconds —
    /// and only if RocksDB would delay or stop it (its write throttle: `Incomplete`, nothing
    /// applied) or the batch is larger does it go to the blocking pool as before, as it
    /// does while the WAL fsync is not beside the write queue (`wal_sync_fn`): RocksDB runs
    /// its writes one group at a time, and a write on the task would wait behind each
    /// fsync. A write still queues behind a running group, which is a `sync = true` Raft
    /// write at times (metadata changes: rare, one fsync each). A log
    /// append is one of these per produced partition and per follower round, on the
    /// `acks=all` latency path: on a busy machine each of the hand-off's two thread switches
    /// is a wait for a core (docs/benchmarks.md: produce p50 −25 % at 20,000 records/s on
    /// 3 nodes; the CPU per megabyte did not fall).
    ///
    /// # Errors
    /// Write failures (recorded in `StorageHealth` as `write` does).
    pub async fn write_unsynced(&self, batch: Batch) -> Result<u64, StorageError> {
        // While the group-commit fsync is an entry in RocksDB's write queue (after a failure,
        // or with little free space), a write on the task would wait behind whole fsyncs.
        let inline = batch.size_in_bytes() <= INLINE_WRITE_BYTES_MAX
            && sync_beside_writes(&self.sync_beside_writes, &self.health, &self.disk);
        let batch = if inline {
            // A refused write is not applied but consumes the batch: keep a copy to hand over.
            let retry = batch.duplicate();
            if self.write_now(batch.inner)? {
                return Ok(self.wal.current_ticket());
            }
            retry
        } else {
            batch
        };
        let store = self.clone();
        blocking(move || {
            store.write(batch, false)?;
            Ok(store.wal().current_ticket())
        })
        .await
    }

    /// One write on the calling thread that RocksDB refuses rather than delays or stops,
    /// recorded as `write` records it: `Ok(false)` when it was refused (`Incomplete`, nothing
    /// applied, nothing recorded).
    fn write_now(&self, batch: WriteBatch) -> Result<bool, StorageError> {
        #[cfg(test)]
        if self.refuse_inline_writes.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut wo = WriteOptions::default();
        wo.set_no_slowdown(true);
        match self.db.write_opt(batch, &wo) {
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(false),
            res => self.recorded(res).map(|()| true),
        }
    }

    /// Writes `batch` for a caller that cannot give up on a full disk (Raft): while RocksDB
    /// refuses writes for lack of space, waits and retries (a refused write was not
    /// applied), until it succeeds, fails otherwise, or the store is closing.
    ///
    /// # Errors
    /// Any other write failure, or the store closing while the disk is full.
    pub async fn write_retrying(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        let mut attempt = 0u64;
        loop {
            let (store, b) = (self.clone(), batch.duplicate());
            match blocking(move || store.write(b, sync)).await {
                Err(e) if e.is_no_space() && !self.is_closing() => {
                    attempt += 1;
                    if attempt == 1 || attempt % 60 == 0 {
                        tracing::warn!(attempt, error = %e, "metadata write waits for free space");
                    }
                    tokio::time::sleep(FULL_DISK_RETRY).await;
                }
                other => return other,
            }
        }
    }

    /// # Errors
    /// RocksDB read failure.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .get_cf_opt(self.handle(cf), key, &read_options())
            .map_err(|e| self.read_error(cf, e))
    }

    /// Entries with `from <= key < to`, in key order, at most `limit` of them, stopping early
    /// once `more` returns false for an entry (that entry is included). Never reads past the
    /// entry it stops at (so a stop before a damaged neighbouring block does not fail).
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
        more: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<Vec<KeyValue>, StorageError> {
        match self.scan_partial(cf, from, to, limit, more) {
            (out, None) => Ok(out),
            (_, Some(e)) => Err(e),
        }
    }

    /// Like [`Store::scan`], but keeps the entries read before a read error.
    pub fn scan_partial(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
        mut more: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> (Vec<KeyValue>, Option<StorageError>) {
        let mut out = Vec::new();
        if limit == 0 {
            return (out, None);
        }
        let err = self.scan_visit(cf, from, to, |k, v| {
            let go_on = more(k, v);
            out.push((k.into(), v.into()));
            go_on && out.len() < limit
        });
        (out, err)
    }

    /// Visits the entries with `from <= key < to` in key order, with checksums verified, until
    /// `visit` returns false; the slices are RocksDB's own (no copy). Never reads past the
    /// entry it stops at. The read error that ended the walk, if any.
    pub fn scan_visit(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Option<StorageError> {
        let mut ro = read_options();
        ro.set_iterate_upper_bound(to.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.handle(cf), ro);
        it.seek(from);
        walk_to(&mut it, to, visit)
            .err()
            .map(|e| self.read_error(cf, e))
    }

    /// Visits a partition log's batches from the one holding `at`: the entry at `at` if there is
    /// one, else the last entry before it (not below `bounds.start`) if `holds(value)` says it
    /// reaches `at`, else the first entry after it; then every entry up to `bounds.end`, in
    /// key order, with checksums verified, until `visit` returns false. One iterator; the
    /// common case (a batch starts exactly at `at`) is one seek. Never reads past the entry it
    /// stops at. With [`ReadTier::Cached`] nothing is read from disk: the walk ends with
    /// [`StorageError::NotCached`] at the first block that is not in memory (the caller may
    /// keep what it visited, or read again with [`ReadTier::Any`] off the async runtime).
    pub fn scan_from_holder(
        &self,
        cf: Cf,
        bounds: std::ops::Range<&[u8]>,
        at: &[u8],
        tier: ReadTier,
        holds: impl FnOnce(&[u8]) -> bool,
        visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Option<StorageError> {
        let (floor, to) = (bounds.start, bounds.end);
        let mut ro = read_options();
        ro.set_iterate_lower_bound(floor.to_vec());
        ro.set_iterate_upper_bound(to.to_vec());
        if tier == ReadTier::Cached {
            ro.set_read_tier(block_cache_tier());
        }
        let mut it = self.db.raw_iterator_cf_opt(self.handle(cf), ro);
        it.seek(at);
        if !(it.valid() && it.key() == Some(at)) {
            if let Err(e) = it.status() {
                return Some(self.tiered_read_error(cf, e, tier));
            }
            // The batch holding `at` may start before it.
            if it.valid() {
                it.prev();
            } else {
                it.seek_for_prev(at);
            }
            let before = if it.valid() {
                it.value().map(holds)
            } else {
                None
            };
            match before {
                Some(true) => {}
                Some(false) => it.next(),
                None => {
                    if let Err(e) = it.status() {
                        return Some(self.tiered_read_error(cf, e, tier));
                    }
                    it.seek(at);
                }
            }
        }
        walk_to(&mut it, to, visit)
            .err()
            .map(|e| self.tiered_read_error(cf, e, tier))
    }

    /// A read error; with [`ReadTier::Cached`], RocksDB's "incomplete" is the data not being
    /// in memory, not a failure.
    fn tiered_read_error(&self, cf: Cf, e: rocksdb::Error, tier: ReadTier) -> StorageError {
        if tier == ReadTier::Cached && e.kind() == rocksdb::ErrorKind::Incomplete {
            StorageError::NotCached
        } else {
            self.read_error(cf, e)
        }
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
        let mut ro = read_options();
        ro.set_iterate_lower_bound(floor.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.handle(cf), ro);
        it.seek_for_prev(at);
        if !it.valid() {
            it.status().map_err(|e| self.read_error(cf, e))?;
            return Ok(None);
        }
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k >= floor => Ok(Some((k.into(), v.into()))),
            _ => Ok(None),
        }
    }

    /// A verified walk over `[from, to)` of `cf` that reports unreadable ranges instead of
    /// stopping at them (the scrubber). Blocking.
    ///
    /// # Errors
    /// A read error other than corruption.
    pub fn walk(
        &self,
        cf: Cf,
        from: &[u8],
        to: Option<&[u8]>,
        visit: impl FnMut(walk::WalkEvent<'_>) -> bool,
    ) -> Result<walk::WalkStats, StorageError> {
        walk::walk(&self.db, self.handle(cf), from, to, visit).map_err(|e| self.read_error(cf, e))
    }

    /// Group-committed fsync: see [`WalSync`].
    pub fn wal(&self) -> &Arc<WalSync> {
        &self.wal
    }

    /// Read and write faults seen so far.
    pub fn health(&self) -> &Arc<StorageHealth> {
        &self.health
    }

    /// Free space of the data directory and the append admission check.
    pub fn disk(&self) -> &Arc<DiskMonitor> {
        &self.disk
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Asks for a rebuild of the partition log without its unreadable blocks at the next
    /// open (recorded on disk, so a crash before then does not lose the request).
    ///
    /// # Errors
    /// The request file cannot be written.
    pub fn request_rebuild(&self, reason: &str) -> Result<(), StorageError> {
        rebuild::request(&self.dir, reason)?;
        self.health.request_rebuild(reason.to_owned());
        Ok(())
    }

    /// Marks the store as closing: critical writes stop waiting for free space.
    pub fn set_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Probes whether RocksDB accepts writes again after a failure (an empty write); clears
    /// the recorded fault if so.
    pub fn probe_writable(&self) -> bool {
        self.write(Batch::new(), false).is_ok()
    }

    /// Reclaims the space of a deleted `[from, to)`: RocksDB's manual compaction of the range
    /// (not Kafka's log compaction), so range-deleted data leaves the disk.
    pub fn reclaim_range(&self, cf: Cf, from: &[u8], to: &[u8]) {
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

    /// Flushes memtables and syncs the WAL (graceful shutdown). The WAL sync goes through
    /// the write path (see `wal_sync`), so it is refused rather than attempted on a WAL that
    /// failed.
    ///
    /// # Errors
    /// RocksDB failure.
    pub fn flush_all(&self) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        if let Err(e) = self.db.write_opt(WriteBatch::default(), &wo) {
            self.health.write_failed(&e);
            return Err(e.into());
        }
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

    /// The range covering every key of one partition (`[topic_id | p, topic_id | p + 1)`;
    /// partitions are non-negative, so `p + 1` fits the 4 bytes).
    pub fn partition_range(topic_id: &[u8; 16], partition: i32) -> (Vec<u8>, Vec<u8>) {
        let p = partition.max(0) as u32;
        let mut from = topic_id.to_vec();
        from.extend_from_slice(&p.to_be_bytes());
        let mut to = topic_id.to_vec();
        to.extend_from_slice(&(p + 1).to_be_bytes());
        (from, to)
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

    /// A log append is written on the calling task while RocksDB takes writes at once, and
    /// goes to the blocking pool — still applied, once — when RocksDB would slow it down or
    /// when the batch is larger than the inline bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unsynced_write_hands_over_when_rocksdb_would_stall() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let t = [9u8; 16];
        let put = |off: i64, len: usize| {
            let mut b = Batch::new();
            b.put(
                &s,
                Cf::PartLog,
                &keys::part_log_key(&t, 0, off),
                &vec![off as u8; len],
            );
            b
        };
        let get = |off: i64| {
            s.get(Cf::PartLog, &keys::part_log_key(&t, 0, off))
                .expect("get")
                .map(|v| v.len())
        };
        let t1 = s.write_unsynced(put(1, 100)).await.expect("inline write");
        assert!(t1 >= 1);
        // RocksDB's refusal of a write that may not wait: `Incomplete`, nothing applied.
        // Provoking a real stall needs L0 files that no compaction removes, which this
        // build's options do not allow for long; the refusal is simulated here.
        s.refuse_inline_writes.store(true, Ordering::Release);
        let t2 = s.write_unsynced(put(2, 100)).await.expect("handed over");
        assert!(t2 > t1);
        s.refuse_inline_writes.store(false, Ordering::Release);
        // A batch above the inline bound goes to the blocking pool directly.
        let big = INLINE_WRITE_BYTES_MAX + 1;
        let t3 = s.write_unsynced(put(3, big)).await.expect("large batch");
        assert!(t3 > t2);
        assert_eq!((get(1), get(2), get(3)), (Some(100), Some(100), Some(big)));
        assert!(s.health().write_fault().is_none());
    }

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

    /// Visited offsets of `scan_from_holder` over partition 0 of `t`, where each value is its
    /// batch's last offset.
    fn from_holder(
        s: &Store,
        t: &[u8; 16],
        at: i64,
        tier: ReadTier,
    ) -> Result<Vec<i64>, StorageError> {
        let mut seen = Vec::new();
        let holds = |v: &[u8]| keys::read_u64(v).is_some_and(|last| last as i64 >= at);
        let err = s.scan_from_holder(
            Cf::PartLog,
            &keys::part_log_key(t, 0, 0)[..]..&keys::part_log_key(t, 1, 0)[..],
            &keys::part_log_key(t, 0, at),
            tier,
            holds,
            |k, _| {
                seen.extend(keys::part_log_offset(k));
                true
            },
        );
        err.map_or(Ok(seen), Err)
    }

    #[test]
    fn a_read_starts_at_the_batch_holding_its_offset_and_a_cached_read_never_goes_to_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let t = [3u8; 16];
        let mut b = Batch::new();
        // Batches [0, 2], [5, 9], [10, 12] (a gap after 2, as compaction leaves), and another
        // partition's batch right after.
        for (base, last) in [(0i64, 2u64), (5, 9), (10, 12)] {
            b.put(
                &s,
                Cf::PartLog,
                &keys::part_log_key(&t, 0, base),
                &keys::u64_key(last),
            );
        }
        b.put(
            &s,
            Cf::PartLog,
            &keys::part_log_key(&t, 1, 0),
            &keys::u64_key(0),
        );
        s.write(b, false).expect("write");
        let cases: [(i64, &[i64]); 6] = [
            (0, &[0, 5, 10]),
            (1, &[0, 5, 10]),
            (3, &[5, 10]),
            (7, &[5, 10]),
            (12, &[10]),
            (13, &[]),
        ];
        for tier in [ReadTier::Any, ReadTier::Cached] {
            for (at, want) in cases {
                assert_eq!(
                    from_holder(&s, &t, at, tier).expect("read"),
                    want,
                    "at {at}, {tier:?}"
                );
            }
        }
        // On disk only (flushed, reopened: an empty block cache): a cached read refuses, a read
        // from disk answers and fills the cache, after which the cached read answers too.
        s.flush_all().expect("flush");
        drop(s);
        let s = Store::open(dir.path()).expect("reopen");
        assert!(matches!(
            from_holder(&s, &t, 7, ReadTier::Cached),
            Err(StorageError::NotCached)
        ));
        assert_eq!(
            from_holder(&s, &t, 7, ReadTier::Any).expect("read"),
            [5, 10]
        );
        assert_eq!(
            from_holder(&s, &t, 7, ReadTier::Cached).expect("cached"),
            [5, 10]
        );
        for (at, want) in cases {
            assert_eq!(
                from_holder(&s, &t, at, ReadTier::Any).expect("read"),
                want,
                "at {at}, on disk"
            );
        }
    }
}

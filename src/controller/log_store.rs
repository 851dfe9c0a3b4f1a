//! The Raft log and vote in RocksDB: entries in `raft_log` (key = index, big-endian), the vote,
//! the committed log id and the last purged log id in `raft_meta`.
//!
//! Durability: the vote and appended entries are fsynced before openraft is told they are
//! persisted (Raft's safety depends on both surviving a machine crash). Truncation is fsynced
//! too (rare, and a truncated suffix must not come back). Purge and the committed log id are
//! not: losing them only means some already-applied entries reappear, and RocksDB's WAL is
//! written in order, so any later fsync makes them durable as well.

use super::codec::{decode_disk, encode_disk};
use super::types::{Entry, LogId, RaftStorageError, TypeConfig, Vote};
use crate::storage::{self, blocking, keys, Batch, Cf, Store, CF_RAFT_LOG, CF_RAFT_META};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const LAST_PURGED_KEY: &[u8] = b"last_purged";

/// Bytes of entries one `limited_get_log_entries` call returns at most; at least one entry is
/// always returned. Small on purpose: openraft 0.9 gives every AppendEntries the heartbeat
/// interval as its deadline, so a batch must travel and decode well within it.
const REPLICATION_READ_BYTES_MAX: usize = 1 << 20;

/// The log store. Cheap to clone; clones share the same RocksDB and are also the log reader.
#[derive(Debug, Clone)]
pub(crate) struct LogStore {
    store: Store,
}

impl LogStore {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    async fn get_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static [u8],
    ) -> Result<Option<T>, storage::StorageError> {
        let store = self.store.clone();
        blocking(move || match store.get(Cf::RaftMeta, key)? {
            None => Ok(None),
            Some(v) => decode_disk(CF_RAFT_META, &v).map(Some),
        })
        .await
    }

    async fn put_meta(
        &self,
        key: &'static [u8],
        value: Vec<u8>,
        sync: bool,
    ) -> Result<(), storage::StorageError> {
        let mut batch = Batch::new();
        batch.put(&self.store, Cf::RaftMeta, key, &value);
        // A full disk stalls the vote/commit write until space is freed instead of stopping
        // Raft on this node for good.
        self.store.write_retrying(batch, sync).await
    }

    /// Entries with index in `[start, end)`, stopping after `bytes_max` bytes of values (the
    /// entry that crosses the budget is included). Each entry's index is checked against its
    /// key: the log on disk must be what was written.
    async fn read_entries(
        &self,
        start: u64,
        end: u64,
        bytes_max: usize,
    ) -> Result<Vec<Entry>, storage::StorageError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let store = self.store.clone();
        blocking(move || {
            let mut bytes = 0usize;
            let rows = store.scan(
                Cf::RaftLog,
                &keys::u64_key(start),
                &keys::u64_key(end),
                usize::MAX,
                |_, v| {
                    bytes = bytes.saturating_add(v.len());
                    bytes < bytes_max
                },
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for (k, v) in rows {
                let entry: Entry = decode_disk(CF_RAFT_LOG, &v)?;
                if keys::read_u64(&k) != Some(entry.log_id.index) {
                    return Err(storage::StorageError::Corrupt {
                        cf: CF_RAFT_LOG,
                        reason: format!("entry {} stored under another key", entry.log_id),
                    });
                }
                out.push(entry);
            }
            Ok(out)
        })
        .await
    }

    async fn last_entry_log_id(&self) -> Result<Option<LogId>, storage::StorageError> {
        let store = self.store.clone();
        blocking(move || {
            let Some((k, v)) =
                store.seek_for_prev(Cf::RaftLog, &keys::u64_key(u64::MAX), &keys::u64_key(0))?
            else {
                return Ok(None);
            };
            let entry: Entry = decode_disk(CF_RAFT_LOG, &v)?;
            if keys::read_u64(&k) != Some(entry.log_id.index) {
                return Err(storage::StorageError::Corrupt {
                    cf: CF_RAFT_LOG,
                    reason: format!("last entry {} stored under another key", entry.log_id),
                });
            }
            Ok(Some(entry.log_id))
        })
        .await
    }
}

/// `[start, end)` of a range of log indexes.
fn index_range(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

fn read_logs_err(e: storage::StorageError) -> RaftStorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_logs_err(e: impl std::error::Error + 'static) -> RaftStorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let (start, end) = index_range(&range);
        self.read_entries(start, end, usize::MAX)
            .await
            .map_err(read_logs_err)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        self.read_entries(start, end, REPLICATION_READ_BYTES_MAX)
            .await
            .map_err(read_logs_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftStorageError> {
        let last_purged_log_id: Option<LogId> = self
            .get_meta(LAST_PURGED_KEY)
            .await
            .map_err(read_logs_err)?;
        let last = self.last_entry_log_id().await.map_err(read_logs_err)?;
        // No assertion that `last > last_purged`: openraft's conformance suite appends below the
        // purge point on purpose, and openraft itself reconciles the two.
        Ok(LogState {
            last_log_id: last.or(last_purged_log_id),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), RaftStorageError> {
        let value = encode_disk(vote)
            .map_err(|e| RaftStorageError::from(StorageIOError::write_vote(&e)))?;
        // fsync: a vote granted and then forgotten in a crash allows two leaders in one term.
        self.put_meta(VOTE_KEY, value, true)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, RaftStorageError> {
        self.get_meta(VOTE_KEY)
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), RaftStorageError> {
        let value = encode_disk(&committed).map_err(write_logs_err)?;
        // No fsync: the committed id is a hint that lets a restart re-apply sooner; losing it
        // is safe (the leader re-sends it).
        self.put_meta(COMMITTED_KEY, value, false)
            .await
            .map_err(write_logs_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, RaftStorageError> {
        let committed: Option<Option<LogId>> =
            self.get_meta(COMMITTED_KEY).await.map_err(read_logs_err)?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let store = self.store.clone();
        let staged = blocking(move || {
            let mut batch = Batch::new();
            let mut prev: Option<u64> = None;
            for entry in &entries {
                let index = entry.log_id.index;
                // openraft hands over consecutive entries; a hole would corrupt the log.
                assert!(
                    prev.is_none_or(|p| p + 1 == index),
                    "non-consecutive append at {index} after {prev:?}"
                );
                prev = Some(index);
                let value = encode_disk(entry).map_err(|e| storage::StorageError::Corrupt {
                    cf: CF_RAFT_LOG,
                    reason: format!("cannot encode entry {}: {e}", entry.log_id),
                })?;
                batch.put(&store, Cf::RaftLog, &keys::u64_key(index), &value);
            }
            Ok(batch)
        })
        .await;
        // fsync before signalling: openraft counts this node's copy toward the quorum as soon
        // as the callback fires. A full disk stalls the append until space is freed.
        let res = match staged {
            Ok(batch) if batch.is_empty() => Ok(()),
            Ok(batch) => self.store.write_retrying(batch, true).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_logs_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        tracing::debug!(%log_id, "truncate raft log");
        let mut batch = Batch::new();
        batch.delete_range(
            &self.store,
            Cf::RaftLog,
            &keys::u64_key(log_id.index),
            &keys::u64_key(u64::MAX),
        );
        self.store
            .write_retrying(batch, true)
            .await
            .map_err(write_logs_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        tracing::debug!(%log_id, "purge raft log");
        let prev: Option<LogId> = self
            .get_meta(LAST_PURGED_KEY)
            .await
            .map_err(read_logs_err)?;
        assert!(
            prev.is_none_or(|p| p.index <= log_id.index),
            "purge went backwards: {prev:?} -> {log_id}"
        );
        let value = encode_disk(&log_id).map_err(write_logs_err)?;
        let mut batch = Batch::new();
        batch.put(&self.store, Cf::RaftMeta, LAST_PURGED_KEY, &value);
        let end = log_id.index.saturating_add(1);
        batch.delete_range(
            &self.store,
            Cf::RaftLog,
            &keys::u64_key(0),
            &keys::u64_key(end),
        );
        self.store
            .write_retrying(batch, false)
            .await
            .map_err(write_logs_err)
    }
}

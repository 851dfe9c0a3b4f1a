//! One partition replica on this node: its log in the `part_log` column family (one entry per
//! record batch, keyed by base offset), producer state, ended transactions and leader-epoch
//! cache in `part_state`, and the offsets that matter: log start, log end (LEO), high
//! watermark (HW) and last stable offset (LSO, `txn.rs`). A client's transactional batch
//! that would open a transaction here needs its KIP-890 verification guard (`verify.rs`).
//!
//! Appends are serialised by the partition's mutex (offsets are assigned under it); reads take
//! no lock and see whole batches only.

use super::epoch_cache::EpochCache;
use super::producer_state::{ProducerEntry, ProducerStateTable, SeqCheck};
use super::txn_index::{self, TxnEvent, TxnTracker, TAG_TXN};
use crate::codec::kafka::batch::{self, BatchHeader};
use crate::codec::kafka::records;
use crate::storage::{self, keys, Batch, Cf, ReadTier, StorageError, Store};
use crate::types::{NodeId, TopicId, TopicName};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

mod damage;
mod follower;
mod hw_checkpoint;
pub(crate) mod leader;
mod maintenance;
mod replicated;
mod scan;
pub(crate) mod txn;
pub(crate) mod verify;

pub use damage::{verify_stored_batch, Damage, DamageKind};
pub use follower::{FollowerAppend, FollowerError};
pub use maintenance::DeleteRecordsError;
pub use replicated::ReplicatedError;

const TAG_PRODUCER: u8 = b'p';
const TAG_EPOCH: u8 = b'e';
const TAG_LOG_START: u8 = b's';
/// Lost-range marker written by the partition-log rebuild (see `storage::rebuild`).
const TAG_LOST: u8 = crate::storage::rebuild::TAG_LOST;
/// Most bytes a read from memory makes on an async task ([`Partition::read_cached`]): about
/// 0.1 ms of copying and checking, so a worker thread is not held for long.
pub const INLINE_READ_BYTES_MAX: usize = 1 << 20;

/// The largest chunk a log read copies batches into (an answer larger than one chunk is
/// joined once at the end).
const READ_CHUNK_MAX: usize = 1 << 20;
/// Unused reservation a log read's answer may keep; with more it is copied to its size.
const READ_SLACK_MAX: usize = 64 << 10;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("this replica is not the leader")]
    NotLeader,
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
    #[error("producer epoch is stale (current {current})")]
    InvalidProducerEpoch { current: i16 },
    #[error("transaction coordinator epoch is stale (current {current})")]
    CoordinatorFenced { current: i32 },
    /// A batch that would open a transaction without a live verification guard: the
    /// transaction ended between its verification and the append (KIP-890).
    #[error("the producer's transaction is not open on this partition")]
    InvalidTxnState,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Options for a leader append, resolved from the topic's configs.
#[derive(Debug, Clone, Copy)]
pub struct AppendOptions {
    pub log_append_time: bool,
    pub now_ms: i64,
}

/// Where an appended (or deduplicated) batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// `-1` unless the topic uses LogAppendTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The WAL ticket to pass to `WalSync::sync_after` for durability.
    pub wal_ticket: u64,
    pub duplicate: bool,
}

struct LogInner {
    log_end_offset: i64,
    producers: ProducerStateTable,
    epochs: EpochCache,
    /// KIP-890 verification guards of producers about to open a transaction here.
    guards: verify::Guards,
}

/// A partition replica.
pub struct Partition {
    pub topic: TopicName,
    pub partition: i32,
    pub topic_id: TopicId,
    local: NodeId,
    key_id: [u8; 16],
    store: Store,
    log: tokio::sync::Mutex<LogInner>,
    hw_tx: watch::Sender<i64>,
    log_end: AtomicI64,
    log_start: AtomicI64,
    leader_epoch: AtomicI32,
    is_leader: AtomicBool,
    replica_state: Mutex<ReplicaState>,
    /// Woken whenever the log end offset moves (followers' fetches long-poll on it).
    leo_notify: tokio::sync::Notify,
    /// The HW loaded at open is this replica's LEO, not a replicated HW; until a leader's HW
    /// is adopted (or this replica leads), a truncation below it is legitimate.
    hw_provisional: AtomicBool,
    /// A range of this replica's log that cannot be served (see `damage.rs`).
    damage: Mutex<Option<Damage>>,
    /// Open and unreplicated transactions (the LSO). Changed under the log mutex, after the
    /// write that carries the change; read without it.
    txns: Mutex<TxnTracker>,
}

#[derive(Default)]
struct ReplicaState {
    isr: Vec<NodeId>,
    /// Leader side, per follower: the fsynced log end offset it reported (counts for the HW).
    follower_log_end: HashMap<NodeId, i64>,
    /// Leader side, per follower: when it last was caught up with this log end offset.
    follower_caught_up: HashMap<NodeId, std::time::Instant>,
    /// Leader side, per follower: the time and leader LEO of its previous fetch.
    follower_last_fetch: HashMap<NodeId, (std::time::Instant, i64)>,
    /// Leader side: this replica's LEO when it became leader in its current epoch (Kafka's
    /// `leaderEpochStartOffsetOpt`); until the HW reaches it, records the previous leader
    /// acknowledged may lie above this leader's HW (see `hw_lags_epoch_start`).
    epoch_start_offset: i64,
    /// The partition epoch of the image `isr` came from.
    partition_epoch: i32,
    /// Leader side: replicas this leader proposed to add to the ISR, each with the partition
    /// epoch its proposal was based on (KIP-497's maximal ISR). From the moment the proposal
    /// may commit they count for the HW like ISR members, so the controller's ISR is never a
    /// superset of the leader's: a record the HW covers is on every replica that can be
    /// elected. Cleared only when an image with a newer partition epoch is applied (then the
    /// addition is in the ISR or the proposal is stale and can never commit), never on a
    /// proposal timeout, whose outcome is unknown.
    pending_isr: Vec<(NodeId, i32)>,
    /// Leader side: the highest HW computed in this leadership (published or about to be).
    /// A replica joins the ISR only with every record below it (see `isr_proposal`).
    hw_computed: i64,
}

impl ReplicaState {
    /// Within a leadership a follower's fsynced log only grows: a late report or a fetch that
    /// waited in a long-poll never lowers it.
    fn raise_follower_log_end(&mut self, follower: NodeId, durable: i64) {
        let e = self.follower_log_end.entry(follower).or_insert(durable);
        *e = (*e).max(durable);
    }
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("log_end", &self.log_end.load(Ordering::Relaxed))
            .field("hw", &*self.hw_tx.borrow())
            .finish()
    }
}

impl Partition {
    /// Opens the replica, loading LEO, log start, producer state and the epoch cache.
    /// Blocking (RocksDB reads): call through `storage::blocking`.
    ///
    /// # Errors
    /// Storage failures or corrupt state.
    pub fn open(
        store: Store,
        local: NodeId,
        topic: TopicName,
        partition: i32,
        topic_id: TopicId,
    ) -> Result<Self, StorageError> {
        let key_id = *topic_id.0.as_bytes();
        let floor = keys::part_log_key(&key_id, partition, 0);
        let last = store.seek_for_prev(
            Cf::PartLog,
            &keys::part_log_key(&key_id, partition, i64::MAX),
            &floor,
        )?;
        let log_start_key = keys::part_state_key(&key_id, partition, TAG_LOG_START, &[]);
        let mut log_start = match store.get(Cf::PartState, &log_start_key)? {
            Some(v) => keys::read_u64(&v).ok_or(StorageError::Corrupt {
                cf: "part_state",
                reason: "log start".into(),
            })? as i64,
            None => 0,
        };
        let log_end_offset = match &last {
            Some((_, v)) => {
                let h = BatchHeader::parse(v).map_err(|e| StorageError::Corrupt {
                    cf: "part_log",
                    reason: e.to_string(),
                })?;
                h.last_offset() + 1
            }
            None => log_start,
        };
        log_start = log_start.min(log_end_offset);
        let mut producers = Vec::new();
        let mut epochs = Vec::new();
        let mut ended = Vec::new();
        let from = keys::part_state_key(&key_id, partition, 0, &[]);
        let to = keys::part_state_key(&key_id, partition, u8::MAX, &[]);
        for (k, v) in store.scan(Cf::PartState, &from, &to, usize::MAX, |_, _| true)? {
            let suffix = &k[21..];
            match k[20] {
                TAG_PRODUCER => {
                    let pid = keys::read_u64(suffix).ok_or(StorageError::Corrupt {
                        cf: "part_state",
                        reason: "producer key".into(),
                    })? as i64;
                    let e: ProducerEntry =
                        serde_json::from_slice(&v).map_err(|e| StorageError::Corrupt {
                            cf: "part_state",
                            reason: e.to_string(),
                        })?;
                    producers.push((pid, e));
                }
                TAG_EPOCH => {
                    let epoch = keys::read_u64(suffix).ok_or(StorageError::Corrupt {
                        cf: "part_state",
                        reason: "epoch key".into(),
                    })? as i32;
                    let start = keys::read_u64(&v).ok_or(StorageError::Corrupt {
                        cf: "part_state",
                        reason: "epoch value".into(),
                    })? as i64;
                    epochs.push((epoch, start));
                }
                TAG_TXN => {
                    let t = keys::read_u64(suffix)
                        .and_then(|last| txn_index::decode(last as i64, &v))
                        .ok_or(StorageError::Corrupt {
                            cf: "part_state",
                            reason: "ended transaction".into(),
                        })?;
                    ended.push(t);
                }
                _ => {}
            }
        }
        // A checkpointed HW was replicated; without one (first start) the HW is provisional.
        let hw_checkpointed = hw_checkpoint::load(&store, &key_id, partition)?;
        let damage = damage::load_lost_range(
            &store,
            &key_id,
            partition,
            log_start,
            log_end_offset,
            hw_checkpointed,
        )?;
        // A lost tail keeps the log end where the acknowledged offsets ended: they are never
        // handed out again (a follower truncates below the loss and re-fetches anyway).
        let log_end_offset = damage
            .as_ref()
            .and_then(|d| d.to)
            .map_or(log_end_offset, |t| t.max(log_end_offset));
        if let Some(d) = &damage {
            tracing::error!(
                topic = %topic,
                partition,
                from = d.from,
                to = ?d.to,
                "replica lost offsets to corrupt storage (rebuilt without them)"
            );
        }
        let initial_hw =
            hw_checkpointed.map_or(log_end_offset, |hw| hw.max(log_start).min(log_end_offset));
        let (hw_tx, _) = watch::channel(initial_hw);
        let producers = ProducerStateTable::from_entries(producers);
        // Ended transactions whose marker is not below the loaded HW stay unstable.
        let txns = TxnTracker::rebuild(
            &producers,
            ended.into_iter().filter(|t| t.last_offset >= initial_hw),
        );
        Ok(Self {
            topic,
            partition,
            topic_id,
            local,
            key_id,
            store,
            log: tokio::sync::Mutex::new(LogInner {
                log_end_offset,
                producers,
                epochs: EpochCache::from_entries(epochs),
                guards: verify::Guards::default(),
            }),
            hw_tx,
            log_end: AtomicI64::new(log_end_offset),
            log_start: AtomicI64::new(log_start),
            leader_epoch: AtomicI32::new(0),
            is_leader: AtomicBool::new(false),
            replica_state: Mutex::new(ReplicaState::default()),
            leo_notify: tokio::sync::Notify::new(),
            hw_provisional: AtomicBool::new(hw_checkpointed.is_none()),
            damage: Mutex::new(damage),
            txns: Mutex::new(txns),
        })
    }

    pub fn high_watermark(&self) -> i64 {
        *self.hw_tx.borrow()
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }
    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire)
    }
    /// Notified whenever the high watermark moves (fetch long-polls wait on it).
    pub fn subscribe_hw(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Applies the leadership and ISR from the metadata image whose partition epoch is
    /// `partition_epoch`.
    pub fn update_role(
        &self,
        leader: Option<NodeId>,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[NodeId],
    ) {
        let me_leader = leader == Some(self.local);
        let was_leader = self.is_leader.load(Ordering::Acquire);
        let old_epoch = self.leader_epoch.swap(leader_epoch, Ordering::AcqRel);
        self.is_leader.store(me_leader, Ordering::Release);
        if let Ok(mut st) = self.replica_state.lock() {
            st.isr = isr.to_vec();
            st.partition_epoch = partition_epoch;
            // A proposal based on an older partition epoch either committed (its additions
            // are in `isr` now) or can never commit.
            st.pending_isr
                .retain(|(_, e)| me_leader && *e >= partition_epoch);
            if me_leader && (!was_leader || old_epoch != leader_epoch) {
                // A new leadership: progress learned in an earlier one is stale. Followers
                // start out as caught up (Kafka's lastCaughtUpTime = election time).
                st.follower_log_end.clear();
                st.follower_last_fetch.clear();
                let now = std::time::Instant::now();
                st.follower_caught_up = isr.iter().map(|n| (*n, now)).collect();
                st.epoch_start_offset = self.log_end_offset();
                st.hw_computed = self.high_watermark();
            }
        }
        if me_leader {
            self.hw_provisional.store(false, Ordering::Release);
            self.maybe_advance_hw();
        }
        if was_leader && (!me_leader || old_epoch != leader_epoch) {
            // Wake acks=all waiters of the lost leadership (they re-check the role).
            self.hw_tx.send_modify(|_| {});
        }
    }

    /// Whether this leader's high watermark is still below the offset its leader epoch
    /// started at. A new leader only learns the followers' log ends from their next fetches,
    /// so right after an election its HW may be below records the previous leader already
    /// acknowledged (acks=all: the whole ISR, this replica included, has them). Kafka
    /// (KIP-207) answers ListOffsets with OFFSET_NOT_AVAILABLE meanwhile rather than a "latest
    /// offset" that hides acknowledged records and would move backwards for the client.
    pub fn hw_lags_epoch_start(&self) -> bool {
        if !self.is_leader() {
            return false;
        }
        let start = match self.replica_state.lock() {
            Ok(st) => st.epoch_start_offset,
            Err(_) => return false,
        };
        self.high_watermark() < start
    }

    /// HW = min LEO over the ISR and the pending additions (the maximal ISR; this node's LEO
    /// for itself). It never moves backwards.
    fn maybe_advance_hw(&self) {
        let leo = self.log_end_offset();
        // Compute under the replica-state lock, publish after releasing it: a HW waiter may
        // hold the watch's read lock while it reads the replica state.
        let hw = {
            let Ok(mut st) = self.replica_state.lock() else {
                return;
            };
            let hw = st
                .isr
                .iter()
                .chain(st.pending_isr.iter().map(|(n, _)| n))
                .filter(|n| **n != self.local)
                .map(|n| st.follower_log_end.get(n).copied().unwrap_or(0))
                .fold(leo, i64::min);
            st.hw_computed = st.hw_computed.max(hw);
            hw
        };
        self.hw_tx.send_if_modified(|cur| {
            if hw > *cur {
                *cur = hw;
                true
            } else {
                false
            }
        });
        // Re-read the LEO: a concurrent append may have moved both past the `leo` read above.
        // A leader's LEO only grows, so HW <= the current LEO must hold.
        assert!(
            self.high_watermark() <= self.log_end_offset(),
            "high watermark passed the log end offset"
        );
    }

    /// Appends one validated batch as leader: dedupes idempotent retries, assigns offsets,
    /// and writes the batch with its producer state in one RocksDB batch (no fsync; see
    /// `AppendInfo::wal_ticket`).
    ///
    /// # Errors
    /// Not the leader, sequence / epoch violations, storage failures.
    pub async fn append_leader(
        &self,
        raw: Bytes,
        h: BatchHeader,
        opts: AppendOptions,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(raw, h, opts, false, None).await
    }

    /// [`Self::append_leader`] for a client's produce: a transactional batch that would open
    /// the producer's transaction here must present the verification guard it took
    /// ([`Self::begin_txn_verification`]), still in place (no marker since), else
    /// INVALID_TXN_STATE.
    ///
    /// # Errors
    /// As [`Self::append_leader`], and [`AppendError::InvalidTxnState`].
    pub async fn append_produced(
        &self,
        raw: Bytes,
        h: BatchHeader,
        opts: AppendOptions,
        guard: Option<u64>,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(raw, h, opts, false, Some(guard)).await
    }

    /// [`Self::append_leader`] for a batch a coordinator writes on a producer's behalf
    /// (TxnOffsetCommit's transactional offsets): only the producer epoch is checked, not the
    /// sequence, as Kafka checks appends of origin `COORDINATOR`.
    ///
    /// # Errors
    /// Not the leader, a stale producer epoch, storage failures.
    pub async fn append_coordinator(
        &self,
        raw: Bytes,
        h: BatchHeader,
        opts: AppendOptions,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(raw, h, opts, true, None).await
    }

    async fn append_checked(
        &self,
        raw: Bytes,
        h: BatchHeader,
        opts: AppendOptions,
        epoch_only: bool,
        verified: Option<Option<u64>>,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.log.lock().await;
        if !self.is_leader() {
            return Err(AppendError::NotLeader);
        }
        // A client's batch opening a transaction needs its verification guard intact.
        if let (true, Some(guard)) = (h.is_transactional(), verified) {
            let open = log
                .producers
                .get(h.producer_id)
                .is_some_and(|e| e.epoch == h.producer_epoch && e.txn_first_offset.is_some());
            if !open && !guard.is_some_and(|t| log.guards.holds(h.producer_id, t)) {
                return Err(AppendError::InvalidTxnState);
            }
        }
        match log.producers.check(&h, None) {
            SeqCheck::Append => {}
            SeqCheck::Duplicate { .. } | SeqCheck::OutOfOrder { .. } if epoch_only => {}
            SeqCheck::Duplicate {
                base_offset,
                last_offset,
            } => {
                return Ok(AppendInfo {
                    base_offset,
                    last_offset,
                    log_append_time: -1,
                    log_start_offset: self.log_start_offset(),
                    wal_ticket: self.store.wal().current_ticket(),
                    duplicate: true,
                });
            }
            SeqCheck::OutOfOrder { expected, got } => {
                return Err(AppendError::OutOfOrderSequence { expected, got })
            }
            SeqCheck::StaleEpoch { current } => {
                return Err(AppendError::InvalidProducerEpoch { current })
            }
        }
        // Refused before the disk fills: RocksDB keeps the space it needs to work.
        if let Err(no_space) = self.store.disk().admit(raw.len() as u64) {
            crate::metrics::inc(&crate::metrics::global().appends_refused_no_space, 1);
            return Err(StorageError::from(no_space).into());
        }
        let base_offset = log.log_end_offset;
        let leader_epoch = self.leader_epoch();
        let mut bytes = BytesMut::from(&raw[..]);
        bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
        bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        let log_append_time = if opts.log_append_time {
            batch::set_log_append_time(&mut bytes, opts.now_ms);
            opts.now_ms
        } else {
            -1
        };
        let bytes = bytes.freeze();
        let last_offset = base_offset + i64::from(h.last_offset_delta);

        let mut wb = Batch::new();
        wb.put(
            &self.store,
            Cf::PartLog,
            &keys::part_log_key(&self.key_id, self.partition, base_offset),
            &bytes,
        );
        let producer_update = if h.has_producer_id() && h.base_sequence >= 0 {
            let entry = log.producers.updated_entry(&h, base_offset, None);
            debug_assert!(!h.is_transactional() || entry.txn_first_offset.is_some());
            let v = serde_json::to_vec(&entry).map_err(|e| StorageError::Corrupt {
                cf: "part_state",
                reason: e.to_string(),
            })?;
            wb.put(
                &self.store,
                Cf::PartState,
                &self.state_key(TAG_PRODUCER, &keys::u64_key(h.producer_id as u64)),
                &v,
            );
            Some(entry)
        } else {
            None
        };
        let mut epochs = log.epochs.clone();
        if epochs.assign(leader_epoch, base_offset) {
            wb.put(
                &self.store,
                Cf::PartState,
                &self.state_key(TAG_EPOCH, &keys::u64_key(leader_epoch as u64)),
                &keys::u64_key(base_offset as u64),
            );
        }
        let wal_ticket = self.store.write_unsynced(wb).await?;
        // The write is in: publish the new state.
        log.log_end_offset = last_offset + 1;
        log.epochs = epochs;
        if let Some(entry) = producer_update {
            if let (true, Some(first_offset)) = (h.is_transactional(), entry.txn_first_offset) {
                self.apply_txn_events([TxnEvent::Began {
                    first_offset,
                    producer_id: h.producer_id,
                }]);
                log.guards.clear(h.producer_id);
            }
            log.producers.insert(h.producer_id, entry);
        }
        self.log_end.store(last_offset + 1, Ordering::Release);
        drop(log);
        self.leo_notify.notify_waiters();
        self.maybe_advance_hw();
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time,
            log_start_offset: self.log_start_offset(),
            wal_ticket,
            duplicate: false,
        })
    }

    fn state_key(&self, tag: u8, suffix: &[u8]) -> Vec<u8> {
        keys::part_state_key(&self.key_id, self.partition, tag, suffix)
    }

    /// Reads whole batches from the one containing `fetch_offset` up to (excluding) `upper`,
    /// stopping once `max_bytes` is reached; the first batch is returned even if larger.
    /// Every batch is checked (`damage::verify_stored_batch`) before it is returned: a bad
    /// one ends the read there (the batches before it are returned; if it is the first, the
    /// read fails), and the damage is recorded and logged. Blocking.
    ///
    /// # Errors
    /// Storage failures, or the read starts in a damaged range.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<Bytes, StorageError> {
        self.read_within(fetch_offset, max_bytes, upper, true)
    }

    /// [`Self::read`], with the first batch exempt from `max_bytes` only if `min_one` (Kafka's
    /// `minOneMessage`, KIP-74): without it, a first batch larger than `max_bytes` gives an
    /// empty read, so a fetch response's later partitions never exceed its byte budget.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_within(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper: i64,
        min_one: bool,
    ) -> Result<Bytes, StorageError> {
        self.read_tiered(fetch_offset, max_bytes, upper, min_one, None)
    }

    /// [`Self::read_within`] from memory only (memtables and the block cache), so it may run
    /// on an async task: a tail read (a follower or a consumer keeping up) finds its batches
    /// in the memtable. Copies at most `copy_max` bytes (the caller's share of
    /// [`INLINE_READ_BYTES_MAX`]): a read that would need more ends there, and fails with
    /// `NotCached` if its first batch does not fit (the blocking pool then reads it, within
    /// `max_bytes` as always, so the cap never changes what a read can return). It also ends
    /// early, like a Kafka read at the end of a segment, at the first block not in memory, and
    /// fails with `NotCached` if that is the first.
    ///
    /// # Errors
    /// As [`Self::read`], and `NotCached`.
    pub fn read_cached(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper: i64,
        min_one: bool,
        copy_max: usize,
    ) -> Result<Bytes, StorageError> {
        self.read_tiered(fetch_offset, max_bytes, upper, min_one, Some(copy_max))
    }

    /// [`Self::read_cached`] within `copy_left` (reduced by what it copies), and where that
    /// does not answer, [`Self::read_within`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub async fn read_async(
        self: &Arc<Self>,
        fetch_offset: i64,
        max_bytes: usize,
        upper: i64,
        min_one: bool,
        copy_left: &mut usize,
    ) -> Result<Bytes, StorageError> {
        match self.read_cached(fetch_offset, max_bytes, upper, min_one, *copy_left) {
            Err(StorageError::NotCached) => {
                let p = self.clone();
                storage::blocking(move || p.read_within(fetch_offset, max_bytes, upper, min_one))
                    .await
            }
            Ok(b) => {
                *copy_left = copy_left.saturating_sub(b.len());
                Ok(b)
            }
            other => other,
        }
    }

    fn read_tiered(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper: i64,
        min_one: bool,
        in_memory: Option<usize>,
    ) -> Result<Bytes, StorageError> {
        // `Some(copy_max)`: from memory only, copying at most that (`read_cached`).
        let (tier, copy_max) = match in_memory {
            Some(copy_max) => (ReadTier::Cached, copy_max),
            None => (ReadTier::Any, usize::MAX),
        };
        if fetch_offset >= upper || (!min_one && max_bytes == 0) {
            return Ok(Bytes::new());
        }
        let upper = self.check_damage(fetch_offset, upper)?;
        let floor = keys::part_log_key(&self.key_id, self.partition, 0);
        let at = keys::part_log_key(&self.key_id, self.partition, fetch_offset);
        let end = keys::part_log_key(&self.key_id, self.partition, upper);
        let holds = |v: &[u8]| BatchHeader::parse(v).is_ok_and(|h| h.last_offset() >= fetch_offset);
        // Batches are copied once, from RocksDB's block into the answer (checked on the way),
        // in chunks of at most READ_CHUNK_MAX: an answer that fits one chunk is that chunk
        // (copied once more, to its size, if most of the chunk would stay unused); a larger
        // one is joined once at the end (no growing buffer that is copied again and again).
        let chunk_cap = max_bytes.clamp(1, READ_CHUNK_MAX);
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut cur = BytesMut::with_capacity(chunk_cap);
        let mut total = 0usize;
        let mut next = fetch_offset;
        let mut first = true;
        let mut damaged = None;
        let mut oversize = false;
        let err = self.store.scan_from_holder(
            Cf::PartLog,
            &floor[..]..&end[..],
            &at,
            tier,
            holds,
            |k, v| {
                if (!first || !min_one) && total + v.len() > max_bytes {
                    return false;
                }
                if total + v.len() > copy_max {
                    // More than this read may copy on the async task: what it has, or, if it
                    // has nothing, the blocking pool's read.
                    oversize = total == 0;
                    return false;
                }
                first = false;
                let key_base = keys::part_log_offset(k).unwrap_or(-1);
                match verify_stored_batch(key_base, v) {
                    Ok(h) => next = h.last_offset() + 1,
                    Err(reason) => {
                        // That batch only: its block read fine, so the next batch is intact.
                        let at = if key_base >= 0 { key_base } else { next };
                        damaged = Some(self.note_damage(at, Some(at + 1), reason));
                        return false;
                    }
                }
                if !cur.is_empty() && cur.len() + v.len() > cur.capacity() {
                    let full = std::mem::replace(&mut cur, BytesMut::with_capacity(chunk_cap));
                    chunks.push(full.freeze());
                }
                cur.extend_from_slice(v);
                total += v.len();
                // Stop at the batch that reaches `upper`: reading on would touch the next block,
                // which may belong to (and be damaged in) another partition.
                total < max_bytes && next < upper
            },
        );
        let out = if chunks.is_empty() {
            if cur.capacity() > 2 * cur.len() + READ_SLACK_MAX {
                Bytes::copy_from_slice(&cur)
            } else {
                cur.freeze()
            }
        } else {
            let mut joined = BytesMut::with_capacity(total);
            for c in &chunks {
                joined.extend_from_slice(c);
            }
            joined.extend_from_slice(&cur);
            joined.freeze()
        };
        if let Some(e) = damaged {
            return if out.is_empty() { Err(e) } else { Ok(out) };
        }
        if oversize {
            return Err(StorageError::NotCached);
        }
        if let Some(e) = err {
            let e = self.read_failed(next, e);
            if out.is_empty() {
                return Err(e);
            }
        }
        Ok(out)
    }

    /// A read error at `offset`: corruption is recorded as damage (and logged); anything else
    /// is returned as it is.
    fn read_failed(&self, offset: i64, e: StorageError) -> StorageError {
        if e.is_corruption() {
            self.note_damage(offset, None, e.to_string())
        } else {
            e
        }
    }

    /// The leader epoch and its end offset for OffsetsForLeaderEpoch.
    pub async fn end_offset_for_epoch(&self, leader_epoch: i32) -> (i32, i64) {
        let log = self.log.lock().await;
        log.epochs.end_offset_for(leader_epoch, log.log_end_offset)
    }

    /// The first offset whose record timestamp is `>= timestamp_ms` (with that timestamp),
    /// or `None` if there is none below `upper`. Blocking; walks batch headers (one at a time)
    /// and decodes only the batch that holds the answer, within `decompressed_bytes_max`.
    ///
    /// # Errors
    /// Storage failures; `Corrupt` if that batch's records cannot be decoded (logged and
    /// counted).
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
        upper: i64,
        decompressed_bytes_max: usize,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let from = keys::part_log_key(&self.key_id, self.partition, self.log_start_offset());
        let to = keys::part_log_key(&self.key_id, self.partition, upper);
        let mut found: Option<Box<[u8]>> = None;
        self.store.for_each(Cf::PartLog, &from, &to, |_, v| {
            match BatchHeader::parse(v) {
                Ok(h) if h.max_timestamp >= timestamp_ms => {
                    found = Some(v.into());
                    false
                }
                _ => true,
            }
        })?;
        let Some(raw) = found else { return Ok(None) };
        self.first_record_at_or_after(&raw, timestamp_ms, decompressed_bytes_max)
            .map(Some)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    /// Blocking; keeps one batch in memory.
    ///
    /// # Errors
    /// Storage failures; `Corrupt` as for [`Self::offset_for_timestamp`].
    pub fn max_timestamp_offset(
        &self,
        upper: i64,
        decompressed_bytes_max: usize,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let from = keys::part_log_key(&self.key_id, self.partition, self.log_start_offset());
        let to = keys::part_log_key(&self.key_id, self.partition, upper);
        let mut best: Option<(i64, Box<[u8]>)> = None;
        self.store.for_each(Cf::PartLog, &from, &to, |_, v| {
            if let Ok(h) = BatchHeader::parse(v) {
                if best.as_ref().is_none_or(|(ts, _)| h.max_timestamp > *ts) {
                    best = Some((h.max_timestamp, v.into()));
                }
            }
            true
        })?;
        let Some((ts, raw)) = best else {
            return Ok(None);
        };
        self.first_record_at_or_after(&raw, ts, decompressed_bytes_max)
            .map(Some)
    }

    /// Finds the first record with timestamp `>= ts` in one stored batch (the batch's base
    /// offset and max timestamp under LogAppendTime, where records carry no real timestamp).
    ///
    /// # Errors
    /// `Corrupt` when the batch's records cannot be decoded: logged with the partition and
    /// offset and counted, never expanded past the decompression budget.
    fn first_record_at_or_after(
        &self,
        raw: &[u8],
        ts: i64,
        decompressed_bytes_max: usize,
    ) -> Result<(i64, i64), StorageError> {
        let h = BatchHeader::parse(raw).map_err(|e| StorageError::Corrupt {
            cf: "part_log",
            reason: e.to_string(),
        })?;
        if h.is_log_append_time() {
            return Ok((h.base_offset, h.max_timestamp));
        }
        let mut hit = None;
        let walked = records::walk_records(raw, decompressed_bytes_max, |_, r| {
            let t = h.base_timestamp.saturating_add(r.timestamp_delta);
            if t >= ts {
                hit = Some((h.base_offset + i64::from(r.offset_delta), t));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = walked {
            report_undecodable(&self.topic, self.partition, h.base_offset, &e);
            return Err(StorageError::Corrupt {
                cf: "part_log",
                reason: format!("batch at offset {}: {e}", h.base_offset),
            });
        }
        Ok(hit.unwrap_or((h.base_offset, h.max_timestamp)))
    }

    /// Deletes every stored key of a topic (its log and state). Blocking.
    ///
    /// # Errors
    /// Storage failures.
    pub fn delete_topic_data(store: &Store, topic_id: &TopicId) -> Result<(), StorageError> {
        let (from, to) = keys::topic_range(topic_id.0.as_bytes());
        Self::delete_range(store, &from, &to)
    }

    /// Deletes every stored key of one partition of a topic (a replica moved off this node).
    ///
    /// # Errors
    /// RocksDB failure.
    pub fn delete_partition_data(
        store: &Store,
        topic_id: &TopicId,
        partition: i32,
    ) -> Result<(), StorageError> {
        let (from, to) = keys::partition_range(topic_id.0.as_bytes(), partition);
        Self::delete_range(store, &from, &to)
    }

    fn delete_range(store: &Store, from: &[u8], to: &[u8]) -> Result<(), StorageError> {
        let mut wb = Batch::new();
        wb.delete_range(store, Cf::PartLog, from, to);
        wb.delete_range(store, Cf::PartState, from, to);
        store.write(wb, false)?;
        store.reclaim_range(Cf::PartLog, from, to);
        Ok(())
    }
}

/// Logs (rate-limited) and counts a stored batch whose records cannot be decoded.
pub(crate) fn report_undecodable(
    topic: &TopicName,
    partition: i32,
    offset: i64,
    e: &records::RecordError,
) {
    static LAST_LOG_MS: AtomicI64 = AtomicI64::new(0);
    let m = crate::metrics::global();
    crate::metrics::inc(&m.stored_batches_undecodable, 1);
    if crate::metrics::log_allowed(&LAST_LOG_MS, 10_000) {
        tracing::error!(%topic, partition, offset, error = %e, "stored record batch cannot be decoded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::tests::make_batch;

    fn open(dir: &std::path::Path) -> (Store, Partition) {
        let store = Store::open(dir).expect("open");
        let id = TopicId(uuid::Uuid::from_u128(42));
        let p = Partition::open(
            store.clone(),
            NodeId(1),
            TopicName::new("t").expect("valid"),
            0,
            id,
        )
        .expect("open partition");
        p.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1)]);
        (store, p)
    }

    /// Node 1 leading a fresh partition with follower node 2.
    fn two_replica_leader(store: Store, id: u128) -> Partition {
        let t = TopicName::new("t").expect("valid");
        let p = Partition::open(store, NodeId(1), t, 0, TopicId(uuid::Uuid::from_u128(id)))
            .expect("open partition");
        p.update_role(Some(NodeId(1)), 0, 0, &[NodeId(1), NodeId(2)]);
        p
    }

    /// Appends a 3-record batch with base sequence `seq` as leader.
    async fn append3(p: &Partition, seq: i32) {
        let b = Bytes::from(make_batch(3, 9, 0, seq));
        let h = batch::validate_record_set(&b).expect("valid")[0];
        p.append_leader(b, h, opts()).await.expect("append");
    }

    fn opts() -> AppendOptions {
        AppendOptions {
            log_append_time: false,
            now_ms: 0,
        }
    }

    #[tokio::test]
    async fn append_read_dedupe_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, p) = open(dir.path());
        let b1 = Bytes::from(make_batch(3, 9, 0, 0));
        let h1 = batch::validate_record_set(&b1).expect("valid")[0];
        let a = p
            .append_leader(b1.clone(), h1, opts())
            .await
            .expect("append");
        assert_eq!((a.base_offset, a.last_offset, a.duplicate), (0, 2, false));
        let again = p.append_leader(b1, h1, opts()).await.expect("dedupe");
        assert_eq!((again.base_offset, again.duplicate), (0, true));
        let b2 = Bytes::from(make_batch(2, 9, 0, 3));
        let h2 = batch::validate_record_set(&b2).expect("valid")[0];
        p.append_leader(b2, h2, opts()).await.expect("append");
        let gap = Bytes::from(make_batch(1, 9, 0, 9));
        let hg = batch::validate_record_set(&gap).expect("valid")[0];
        assert!(matches!(
            p.append_leader(gap, hg, opts()).await,
            Err(AppendError::OutOfOrderSequence {
                expected: 5,
                got: 9
            })
        ));
        assert_eq!((p.log_end_offset(), p.high_watermark()), (5, 5));
        // A read at an offset inside the first batch returns that whole batch first.
        let data = p.read(1, 1, 5).expect("read");
        let hs = batch::validate_record_set(&data).expect("stored batches stay valid");
        assert_eq!(hs.len(), 1);
        assert_eq!((hs[0].base_offset, hs[0].partition_leader_epoch), (0, 3));
        let all = p.read(0, 1 << 20, 5).expect("read");
        assert_eq!(batch::validate_record_set(&all).expect("valid").len(), 2);
        assert!(p.read(5, 1 << 20, 5).expect("read").is_empty());
        assert_eq!(p.end_offset_for_epoch(3).await, (3, 5));
        store.wal().sync_after(a.wal_ticket).await.expect("fsync");
        drop(p);
        drop(store);
        let (_store, p) = open(dir.path());
        assert_eq!(p.log_end_offset(), 5);
        let b1 = Bytes::from(make_batch(3, 9, 0, 0));
        let h1 = batch::validate_record_set(&b1).expect("valid")[0];
        assert!(
            p.append_leader(b1, h1, opts())
                .await
                .expect("dedupe after reopen")
                .duplicate
        );
        assert_eq!(
            p.offset_for_timestamp(0, 5, 1 << 20).expect("lookup"),
            Some((0, 1000))
        );
        assert_eq!(
            p.offset_for_timestamp(5000, 5, 1 << 20).expect("lookup"),
            None
        );
    }

    /// Reads from memory copy at most their share, never answer differently from a read that
    /// may go to disk except by ending earlier, and hand over (`NotCached`) when their first
    /// batch does not fit or is on disk; `read_async` then answers from the blocking pool.
    #[tokio::test]
    async fn a_read_from_memory_is_bounded_and_hands_over_to_the_blocking_pool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, p) = open(dir.path());
        for seq in [0, 3, 6] {
            append3(&p, seq).await;
        }
        let all = p.read(0, 1 << 20, 9).expect("read");
        let one = batch::validate_record_set(&all).expect("valid")[0].total_len();
        assert_eq!(all.len(), 3 * one);
        // In the memtable: the same answer, from the batch holding the offset.
        assert_eq!(
            p.read_cached(4, 1 << 20, 9, true, 1 << 20).expect("cached"),
            all.slice(one..)
        );
        // A copy bound of two batches ends the read there; of less than one, hands over.
        assert_eq!(
            p.read_cached(0, 1 << 20, 9, true, 2 * one + 1)
                .expect("cached"),
            all.slice(..2 * one)
        );
        assert!(matches!(
            p.read_cached(0, 1 << 20, 9, true, one - 1),
            Err(StorageError::NotCached)
        ));
        // The byte limit of the read itself comes first (KIP-74: without min_one, empty).
        assert!(p
            .read_cached(0, one - 1, 9, false, 0)
            .expect("empty")
            .is_empty());
        let p = Arc::new(p);
        let mut left = one - 1;
        assert_eq!(
            p.read_async(0, 1 << 20, 9, true, &mut left)
                .await
                .expect("pool"),
            all
        );
        assert_eq!(left, one - 1, "the blocking pool's read is not counted");
        let mut left = 1 << 20;
        assert_eq!(
            p.read_async(3, 1 << 20, 9, true, &mut left)
                .await
                .expect("memory"),
            all.slice(one..)
        );
        assert_eq!(left, (1 << 20) - 2 * one);
        // Flushed and reopened (opening the partition reads its last batch back into the block
        // cache, so either path may answer; `storage::tests` covers a read of uncached data):
        // the same answer.
        store.flush_all().expect("flush");
        drop(p);
        drop(store);
        let (_store, p) = open(dir.path());
        let mut left = 1 << 20;
        assert_eq!(
            Arc::new(p)
                .read_async(0, 1 << 20, 9, true, &mut left)
                .await
                .expect("read"),
            all
        );
    }

    /// A leader elected with a HW below its log end (the previous leader acknowledged records
    /// its followers had not learned the HW of yet) reports that its HW lags the epoch start
    /// until the followers' fetches move it there (ListOffsets answers OFFSET_NOT_AVAILABLE
    /// meanwhile instead of a "latest offset" below acknowledged records).
    #[tokio::test]
    async fn new_leader_hw_lags_epoch_start_until_followers_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let p = two_replica_leader(store, 7);
        let (n1, n2) = (NodeId(1), NodeId(2));
        for seq in [0, 3] {
            append3(&p, seq).await;
        }
        // Node 2 has the first batch only; the HW covers what the whole ISR has.
        p.record_follower_fetch(n2, 3, 3);
        assert_eq!((p.high_watermark(), p.log_end_offset()), (3, 6));
        // The first leadership's own start: nothing was acknowledged before it.
        assert!(!p.hw_lags_epoch_start());
        // Node 2 leads epoch 1 for a while, then this replica is elected again (epoch 2) with
        // its LEO of 6 but still the HW of 3.
        p.update_role(Some(n2), 1, 1, &[n2, n1]);
        assert!(!p.hw_lags_epoch_start(), "a follower never reports the lag");
        p.update_role(Some(n1), 2, 2, &[n1, n2]);
        assert_eq!(p.high_watermark(), 3);
        assert!(p.hw_lags_epoch_start());
        // A role refresh in the same epoch keeps the epoch start.
        p.update_role(Some(n1), 2, 2, &[n1, n2]);
        assert!(p.hw_lags_epoch_start());
        p.record_follower_fetch(n2, 5, 5);
        assert!(
            p.hw_lags_epoch_start(),
            "HW 5 is still below the epoch start 6"
        );
        p.record_follower_fetch(n2, 6, 6);
        assert_eq!(p.high_watermark(), 6);
        assert!(!p.hw_lags_epoch_start());
    }

    /// A pipelining follower: the fetch offset drives its caught-up time, only the fsynced
    /// part moves the high watermark; a checked `Durable` report moves it too, and neither a
    /// late report nor a fetch re-checked in its long-poll lowers what was recorded.
    #[tokio::test]
    async fn only_fsynced_follower_offsets_move_the_high_watermark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let p = two_replica_leader(store, 8);
        let (n1, n2) = (NodeId(1), NodeId(2));
        for seq in [0, 3, 6] {
            append3(&p, seq).await;
        }
        // Node 2 holds 6 records, 3 of them fsynced.
        p.record_follower_fetch(n2, 6, 3);
        assert_eq!(p.high_watermark(), 3);
        // Its fsync ends while the fetch waits: the report moves the HW.
        p.record_follower_durable(n2, 6);
        assert_eq!(p.high_watermark(), 6);
        // The same fetch checked again in its long-poll, and a late report, change nothing.
        p.record_follower_fetch(n2, 6, 3);
        p.record_follower_durable(n2, 4);
        append3(&p, 9).await;
        p.record_follower_fetch(n2, 9, 6);
        assert_eq!(p.high_watermark(), 6);
        p.record_follower_fetch(n2, 12, 12);
        assert_eq!(p.high_watermark(), 12);
        // A new leadership starts from nothing.
        p.update_role(Some(n2), 1, 1, &[n2, n1]);
        p.update_role(Some(n1), 2, 2, &[n1, n2]);
        append3(&p, 12).await;
        p.record_follower_fetch(n2, 15, 13);
        assert_eq!(p.high_watermark(), 13);
    }

    /// KIP-497's maximal ISR: from the moment the leader proposes adding node 3, node 3 counts
    /// for the HW, until an image with a newer partition epoch is applied, whatever it holds.
    /// Without it a record could be acknowledged by nodes 1 and 2 after the controller had
    /// committed the ISR [1, 2, 3], and node 3, without that record, be elected.
    #[tokio::test]
    async fn a_proposed_isr_addition_counts_for_the_hw_until_a_newer_partition_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let p = two_replica_leader(store, 9);
        let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
        let replicas = [n1, n2, n3];
        let lag = std::time::Duration::from_secs(30);
        append3(&p, 0).await;
        p.record_follower_fetch(n2, 3, 3);
        assert_eq!(p.high_watermark(), 3);
        // Node 3 has fetched but not fsynced everything below the HW: not added.
        p.record_follower_fetch(n3, 3, 2);
        assert_eq!(p.isr_proposal(&replicas, lag, 0), None);
        p.record_follower_durable(n3, 3);
        // A proposal decided on an image this replica has not applied is not made.
        assert_eq!(p.isr_proposal(&replicas, lag, 1), None);
        assert!(p.pending_isr_additions().is_empty());
        assert_eq!(p.isr_proposal(&replicas, lag, 0), Some(vec![n1, n2, n3]));
        assert_eq!(p.pending_isr_additions(), vec![n3]);
        // Nodes 1 and 2 have the next batch; node 3, pending, does not: the HW waits.
        append3(&p, 3).await;
        p.record_follower_fetch(n2, 6, 6);
        assert_eq!(
            p.high_watermark(),
            3,
            "the HW waits for the pending addition"
        );
        // The same image applied again (the proposal's outcome still unknown) keeps it.
        p.update_role(Some(n1), 0, 0, &[n1, n2]);
        p.record_follower_fetch(n2, 6, 6);
        assert_eq!(p.high_watermark(), 3);
        p.record_follower_fetch(n3, 6, 6);
        assert_eq!(p.high_watermark(), 6);
        // The expansion committed: node 3 is an ISR member, nothing is pending.
        p.update_role(Some(n1), 0, 1, &[n1, n2, n3]);
        assert!(p.pending_isr_additions().is_empty());
        // Another change committed instead of a proposal: the stale proposal is dropped.
        p.update_role(Some(n1), 0, 2, &[n1, n2]);
        p.record_follower_fetch(n3, 6, 6);
        assert_eq!(p.isr_proposal(&replicas, lag, 2), Some(vec![n1, n2, n3]));
        append3(&p, 6).await;
        p.record_follower_fetch(n2, 9, 9);
        assert_eq!(p.high_watermark(), 6);
        p.update_role(Some(n1), 0, 3, &[n1, n2]);
        assert!(p.pending_isr_additions().is_empty());
        p.record_follower_fetch(n2, 9, 9);
        assert_eq!(
            p.high_watermark(),
            9,
            "ISR [1, 2] again once the proposal is stale"
        );
        // Losing the leadership drops what this leader had pending.
        p.record_follower_fetch(n3, 9, 9);
        assert_eq!(p.isr_proposal(&replicas, lag, 3), Some(vec![n1, n2, n3]));
        p.update_role(Some(n2), 1, 4, &[n2, n1]);
        assert!(p.pending_isr_additions().is_empty());
    }

    /// A pending addition that stops fetching while its proposal's outcome is unknown would
    /// hold the HW forever: once it is no longer caught up, the leader proposes the current
    /// ISR again at the same partition epoch, whose commit moves the epoch.
    #[tokio::test]
    async fn a_pending_addition_that_died_is_ended_by_reproposing_the_isr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let p = two_replica_leader(store, 10);
        let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
        let replicas = [n1, n2, n3];
        let lag = std::time::Duration::from_millis(200);
        append3(&p, 0).await;
        p.record_follower_fetch(n2, 3, 3);
        p.record_follower_fetch(n3, 3, 3);
        assert_eq!(p.isr_proposal(&replicas, lag, 0), Some(vec![n1, n2, n3]));
        // Still caught up: the expansion is simply proposed again.
        assert_eq!(p.isr_proposal(&replicas, lag, 0), Some(vec![n1, n2, n3]));
        // Fenced (no longer among the live replicas): the ISR is proposed again at once.
        assert_eq!(p.isr_proposal(&[n1, n2], lag, 0), Some(vec![n1, n2]));
        append3(&p, 3).await;
        tokio::time::sleep(lag * 2).await;
        p.record_follower_fetch(n2, 6, 6);
        assert_eq!(p.high_watermark(), 3);
        assert_eq!(p.isr_proposal(&replicas, lag, 0), Some(vec![n1, n2]));
        p.update_role(Some(n1), 0, 1, &[n1, n2]);
        assert_eq!(p.isr_proposal(&replicas, lag, 1), None);
        p.record_follower_fetch(n2, 6, 6);
        assert_eq!(p.high_watermark(), 6);
    }
}

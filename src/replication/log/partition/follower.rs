//! The follower side of a partition replica: append the leader's batches as they are (offsets
//! and leader epochs kept), truncate on divergence, adopt the leader's high watermark.

use super::{Partition, TAG_EPOCH, TAG_LOST, TAG_PRODUCER};
use crate::codec::kafka::batch::{self, BatchHeader};
use crate::codec::kafka::control::Marker;
use crate::replication::log::txn_index::{self, TxnEvent, TxnTracker, TAG_TXN};
use crate::replication::log::{ProducerEntry, ProducerStateTable};
use crate::replication::EpochCache;
use crate::storage::{self, keys, Batch, Cf, StorageError};
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// Why a follower append was refused.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    #[error("this replica leads the partition")]
    Leader,
    #[error("leader epoch changed while fetching (fetched at {fetched}, now {current})")]
    EpochChanged { fetched: i32, current: i32 },
    #[error("invalid records from the leader: {0}")]
    Invalid(String),
    #[error("batch overlaps the log end: log end offset {expected}, batch base offset {got}")]
    Gap { expected: i64, got: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a follower append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerAppend {
    pub batches: usize,
    pub log_end_offset: i64,
    /// The WAL ticket to fsync before this LEO is reported to the leader.
    pub wal_ticket: u64,
}

/// Replays one batch of a producer into `table` (a data batch's sequence and transaction
/// start, or a marker's end of the transaction): what the leader's append did, for a follower
/// and for the rebuild after truncation. Returns the transaction change.
fn replay_batch(
    table: &mut ProducerStateTable,
    h: &BatchHeader,
    marker: Option<Marker>,
    prev: Option<&ProducerEntry>,
) -> Option<TxnEvent> {
    if let Some(m) = marker {
        let (entry, ended) =
            table.marker_entry(h.producer_id, h.producer_epoch, m, h.base_offset, prev);
        table.insert(h.producer_id, entry);
        return ended.map(TxnEvent::Ended);
    }
    if h.is_control() {
        // Another control record type: no producer state changes.
        return None;
    }
    let entry = table.updated_entry(h, h.base_offset, prev);
    let began = match (h.is_transactional(), entry.txn_first_offset) {
        (true, Some(first_offset)) if first_offset == h.base_offset => Some(TxnEvent::Began {
            first_offset,
            producer_id: h.producer_id,
        }),
        _ => None,
    };
    table.insert(h.producer_id, entry);
    began
}

impl Partition {
    /// Appends batches fetched from the leader at `fetched_leader_epoch`, keeping their offsets
    /// and leader epochs, updating producer state from the batch headers (so idempotent dedupe
    /// survives a failover) and the leader-epoch cache, all in one RocksDB write (no fsync:
    /// the fetcher fsyncs through `WalSync::sync_after` before reporting its LEO). Batches
    /// below the log end offset (already present) are skipped.
    ///
    /// # Errors
    /// This replica leads, the leader epoch moved on, invalid or non-contiguous records,
    /// storage failures.
    pub async fn append_follower(
        &self,
        records: Bytes,
        fetched_leader_epoch: i32,
    ) -> Result<FollowerAppend, FollowerError> {
        let mut log = self.log.lock().await;
        if self.is_leader() {
            return Err(FollowerError::Leader);
        }
        let current = self.leader_epoch();
        if current != fetched_leader_epoch {
            return Err(FollowerError::EpochChanged {
                fetched: fetched_leader_epoch,
                current,
            });
        }
        let headers = batch::validate_record_set(&records)
            .map_err(|e| FollowerError::Invalid(e.to_string()))?;
        // A follower short of space falls behind (and out of the ISR) instead of filling the
        // disk; it catches up once space is freed.
        self.store
            .disk()
            .admit(records.len() as u64)
            .map_err(StorageError::from)?;
        let mut wb = Batch::new();
        let mut producers = ProducerStateTable::default();
        let mut touched = Vec::new();
        let mut txn_events = Vec::new();
        let mut epochs: EpochCache = log.epochs.clone();
        let mut leo = log.log_end_offset;
        let mut pos = 0usize;
        let mut appended = 0usize;
        for h in &headers {
            let len = h.total_len();
            let raw = records.slice(pos..pos + len);
            pos += len;
            if h.last_offset() < leo {
                continue;
            }
            // A batch straddling the log end would mean the two logs disagree on batch
            // boundaries. A batch *after* the log end is fine: compaction on the leader removes
            // whole batches and shortens others, so offsets may skip (Kafka allows the same).
            if h.base_offset < leo {
                return Err(FollowerError::Gap {
                    expected: leo,
                    got: h.base_offset,
                });
            }
            wb.put(
                &self.store,
                Cf::PartLog,
                &keys::part_log_key(&self.key_id, self.partition, h.base_offset),
                &raw,
            );
            if h.has_producer_id() && (h.base_sequence >= 0 || h.is_control()) {
                let prev = producers
                    .get(h.producer_id)
                    .cloned()
                    .or_else(|| log.producers.get(h.producer_id).cloned());
                let marker = Self::marker_of(h, &raw).map_err(FollowerError::Invalid)?;
                let event = replay_batch(&mut producers, h, marker, prev.as_ref());
                if let Some(TxnEvent::Ended(t)) = &event {
                    wb.put(
                        &self.store,
                        Cf::PartState,
                        &self.state_key(TAG_TXN, &keys::u64_key(t.last_offset as u64)),
                        &txn_index::encode(t),
                    );
                }
                txn_events.extend(event);
                touched.push(h.producer_id);
            }
            if epochs.assign(h.partition_leader_epoch, h.base_offset) {
                wb.put(
                    &self.store,
                    Cf::PartState,
                    &self.state_key(TAG_EPOCH, &keys::u64_key(h.partition_leader_epoch as u64)),
                    &keys::u64_key(h.base_offset as u64),
                );
            }
            leo = h.last_offset() + 1;
            appended += 1;
        }
        if appended == 0 {
            return Ok(FollowerAppend {
                batches: 0,
                log_end_offset: leo,
                wal_ticket: self.store.wal().current_ticket(),
            });
        }
        touched.sort_unstable();
        touched.dedup();
        let mut updates = Vec::with_capacity(touched.len());
        for pid in touched {
            if let Some(e) = producers.get(pid) {
                let v = serde_json::to_vec(e).map_err(|e| StorageError::Corrupt {
                    cf: "part_state",
                    reason: e.to_string(),
                })?;
                wb.put(
                    &self.store,
                    Cf::PartState,
                    &self.state_key(TAG_PRODUCER, &keys::u64_key(pid as u64)),
                    &v,
                );
                updates.push((pid, e.clone()));
            }
        }
        let wal_ticket = self.store.write_unsynced(wb).await?;
        log.log_end_offset = leo;
        log.epochs = epochs;
        for (pid, e) in updates {
            log.producers.insert(pid, e);
        }
        self.apply_txn_events(txn_events);
        self.log_end.store(leo, Ordering::Release);
        drop(log);
        self.leo_notify.notify_waiters();
        Ok(FollowerAppend {
            batches: appended,
            log_end_offset: leo,
            wal_ticket,
        })
    }

    /// Adopts the leader's high watermark, capped at this replica's log end offset. A
    /// follower's HW may move backwards only while it is provisional (right after open).
    pub fn adopt_leader_hw(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.log_end_offset());
        let provisional = self.hw_provisional.swap(false, Ordering::AcqRel);
        self.hw_tx.send_if_modified(|cur| {
            if hw > *cur || (provisional && hw != *cur) {
                *cur = hw;
                true
            } else {
                false
            }
        });
        assert!(
            self.high_watermark() <= self.log_end_offset(),
            "follower high watermark passed its log end offset"
        );
    }

    /// Truncates the log to `offset` (exclusive end): deletes the batches at and above it,
    /// the leader epochs that start there, and rebuilds producer state from the remaining log
    /// (Kafka rebuilds from snapshots; a scan of batch headers is the simple equivalent).
    /// Truncating below a replicated high watermark should never be asked for (it drops
    /// records this replica saw committed); if the leader asks, it is followed, counted
    /// (`raftka_truncations_below_hw_total`) and logged as an error.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn truncate_to(&self, offset: i64) -> Result<i64, FollowerError> {
        self.truncate_inner(offset, false).await
    }

    /// `truncate_to`; with `repair`, also drops the rebuild's lost-range marker in the same
    /// write, and a truncation below the high watermark is the expected repair (logged by the
    /// caller) rather than an error.
    pub(super) async fn truncate_inner(
        &self,
        offset: i64,
        repair: bool,
    ) -> Result<i64, FollowerError> {
        let mut log = self.log.lock().await;
        if self.is_leader() {
            return Err(FollowerError::Leader);
        }
        if offset >= log.log_end_offset && !repair {
            return Ok(log.log_end_offset);
        }
        let offset = offset.min(log.log_end_offset);
        // Truncation points are batch boundaries; if `offset` falls inside a batch, drop it all.
        let floor = keys::part_log_key(&self.key_id, self.partition, 0);
        let at = keys::part_log_key(&self.key_id, self.partition, offset);
        let store = self.store.clone();
        let containing =
            storage::blocking(move || store.seek_for_prev(Cf::PartLog, &at, &floor)).await?;
        let mut offset = offset.max(self.log_start_offset());
        if let Some((_, v)) = containing {
            if let Ok(h) = BatchHeader::parse(&v) {
                if h.base_offset < offset && h.last_offset() >= offset {
                    offset = h.base_offset;
                }
            }
        }
        let provisional = self.hw_provisional.load(Ordering::Acquire);
        let below_hw = !provisional && offset < self.high_watermark();
        if below_hw && !repair {
            // The leader's log ends below what this replica saw committed. As in Kafka
            // (AbstractFetcherThread: "Truncating to offset below high watermark"), follow
            // the leader rather than stop replicating; loudly, since it means the records
            // between were not on the leader when it was elected.
            crate::metrics::inc(&crate::metrics::global().truncations_below_hw, 1);
            tracing::error!(
                topic = %self.topic,
                partition = self.partition,
                offset,
                high_watermark = self.high_watermark(),
                leader_epoch = self.leader_epoch(),
                "truncating below the high watermark (to the leader's log)"
            );
        }
        let mut epochs = log.epochs.clone();
        let dropped: Vec<i32> = epochs
            .entries()
            .iter()
            .filter(|(_, s)| *s >= offset)
            .map(|(e, _)| *e)
            .collect();
        epochs.truncate_from(offset);
        let (key_id, partition, store) = (self.key_id, self.partition, self.store.clone());
        let log_start = self.log_start_offset();
        let producers = storage::blocking(move || {
            let mut wb = Batch::new();
            wb.delete_range(
                &store,
                Cf::PartLog,
                &keys::part_log_key(&key_id, partition, offset),
                &keys::part_log_key(&key_id, partition, i64::MAX),
            );
            for e in dropped {
                wb.delete(
                    &store,
                    Cf::PartState,
                    &keys::part_state_key(&key_id, partition, TAG_EPOCH, &keys::u64_key(e as u64)),
                );
            }
            wb.delete_range(
                &store,
                Cf::PartState,
                &keys::part_state_key(&key_id, partition, TAG_PRODUCER, &[]),
                &keys::part_state_key(&key_id, partition, TAG_PRODUCER + 1, &[]),
            );
            wb.delete_range(
                &store,
                Cf::PartState,
                &keys::part_state_key(&key_id, partition, TAG_TXN, &keys::u64_key(offset as u64)),
                &keys::part_state_key(&key_id, partition, TAG_TXN + 1, &[]),
            );
            if repair {
                wb.delete(
                    &store,
                    Cf::PartState,
                    &keys::part_state_key(&key_id, partition, TAG_LOST, &[]),
                );
            }
            // Rebuild producer state from what remains.
            let mut table = ProducerStateTable::default();
            let from = keys::part_log_key(&key_id, partition, log_start);
            let to = keys::part_log_key(&key_id, partition, offset);
            let mut pids = Vec::new();
            // Streamed (a scan would hold the whole remaining log in memory); only headers
            // are needed.
            store.walk(Cf::PartLog, &from, Some(&to), |e| {
                if let crate::storage::walk::WalkEvent::Entry(_, v) = e {
                    if let Ok(h) = BatchHeader::parse(v) {
                        if h.has_producer_id() && (h.base_sequence >= 0 || h.is_control()) {
                            // A stored marker that no longer decodes ends nothing (it was
                            // verified when written; the damage scrub reports it).
                            let marker = Self::marker_of(&h, v).ok().flatten();
                            replay_batch(&mut table, &h, marker, None);
                            pids.push(h.producer_id);
                        }
                    }
                }
                true
            })?;
            pids.sort_unstable();
            pids.dedup();
            for pid in &pids {
                if let Some(e) = table.get(*pid) {
                    let v = serde_json::to_vec(e).map_err(|e| StorageError::Corrupt {
                        cf: "part_state",
                        reason: e.to_string(),
                    })?;
                    wb.put(
                        &store,
                        Cf::PartState,
                        &keys::part_state_key(
                            &key_id,
                            partition,
                            TAG_PRODUCER,
                            &keys::u64_key(*pid as u64),
                        ),
                        &v,
                    );
                }
            }
            // Truncation must be durable before this replica reports the lower LEO.
            store.write(wb, true)?;
            Ok(table)
        })
        .await?;
        log.log_end_offset = offset;
        log.epochs = epochs;
        if let Ok(mut t) = self.txns.lock() {
            t.truncated(&producers, offset);
        }
        log.producers = producers;
        self.log_end.store(offset, Ordering::Release);
        if provisional || below_hw {
            self.hw_tx.send_if_modified(|cur| {
                let changed = *cur > offset;
                *cur = (*cur).min(offset);
                changed
            });
        }
        assert!(
            self.high_watermark() <= offset,
            "high watermark above the log end offset after truncation"
        );
        Ok(offset)
    }

    /// Empties this follower's log and restarts it at `log_start` (the leader's log start
    /// offset), when the follower is so far behind that the leader no longer has the offsets
    /// it needs (retention or DeleteRecords removed them). Everything below the leader's log
    /// start was below its high watermark, so nothing uncommitted is skipped.
    ///
    /// # Errors
    /// This replica leads, storage failures.
    pub async fn reset_to(&self, log_start: i64) -> Result<(), FollowerError> {
        let mut log = self.log.lock().await;
        if self.is_leader() {
            return Err(FollowerError::Leader);
        }
        if log_start <= log.log_end_offset {
            return Ok(());
        }
        let (key_id, partition, store) = (self.key_id, self.partition, self.store.clone());
        storage::blocking(move || {
            let mut wb = Batch::new();
            wb.delete_range(
                &store,
                Cf::PartLog,
                &keys::part_log_key(&key_id, partition, 0),
                &keys::part_log_key(&key_id, partition, i64::MAX),
            );
            wb.delete_range(
                &store,
                Cf::PartState,
                &keys::part_state_key(&key_id, partition, 0, &[]),
                &keys::part_state_key(&key_id, partition, u8::MAX, &[]),
            );
            wb.put(
                &store,
                Cf::PartState,
                &keys::part_state_key(&key_id, partition, super::TAG_LOG_START, &[]),
                &keys::u64_key(log_start as u64),
            );
            store.write(wb, true)
        })
        .await?;
        log.log_end_offset = log_start;
        log.epochs = EpochCache::default();
        log.producers = ProducerStateTable::default();
        if let Ok(mut t) = self.txns.lock() {
            *t = TxnTracker::default();
        }
        self.log_start.store(log_start, Ordering::Release);
        self.log_end.store(log_start, Ordering::Release);
        self.hw_provisional.store(false, Ordering::Release);
        self.hw_tx.send_replace(log_start);
        Ok(())
    }

    /// The latest leader epoch in this replica's log (`-1` if empty): the follower's
    /// `last_fetched_epoch`.
    pub async fn last_epoch(&self) -> i32 {
        self.log.lock().await.epochs.latest_epoch().unwrap_or(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::tests::make_batch;
    use crate::replication::log::AppendOptions;
    use crate::replication::log::FetchPosition;
    use crate::storage::Store;
    use crate::types::{NodeId, TopicId, TopicName};

    fn open(dir: &std::path::Path, local: i32) -> (Store, Partition) {
        let store = Store::open(dir).expect("open");
        let id = TopicId(uuid::Uuid::from_u128(7));
        let p = Partition::open(
            store.clone(),
            NodeId(local),
            TopicName::new("t").expect("valid"),
            0,
            id,
        )
        .expect("open partition");
        (store, p)
    }

    async fn lead_append(p: &Partition, seq: i32, n: i32) {
        let b = Bytes::from(make_batch(n, 9, 0, seq));
        let h = batch::validate_record_set(&b).expect("valid")[0];
        p.append_leader(
            b,
            h,
            AppendOptions {
                log_append_time: false,
                now_ms: 0,
            },
        )
        .await
        .expect("append");
    }

    #[tokio::test]
    async fn follower_copies_batches_truncates_and_keeps_producer_state() {
        let (da, db) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (_sa, leader) = open(da.path(), 1);
        leader.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(2)]);
        lead_append(&leader, 0, 3).await;
        lead_append(&leader, 3, 2).await;
        // The follower has not fetched yet: the HW stays at 0.
        assert_eq!((leader.log_end_offset(), leader.high_watermark()), (5, 0));

        let (_sb, follower) = open(db.path(), 2);
        follower.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(2)]);
        assert_eq!(
            leader.check_fetch_position(0, -1).await,
            FetchPosition::Valid
        );
        let records = leader
            .read(0, 1 << 20, leader.log_end_offset())
            .expect("read");
        let a = follower
            .append_follower(records.clone(), 3)
            .await
            .expect("append");
        assert_eq!((a.batches, a.log_end_offset), (2, 5));
        assert_eq!(
            follower
                .append_follower(records.clone(), 3)
                .await
                .expect("idempotent")
                .batches,
            0
        );
        assert!(matches!(
            follower.append_follower(records, 4).await,
            Err(FollowerError::EpochChanged { .. })
        ));
        assert_eq!(follower.last_epoch().await, 3);
        // The next fetch reports LEO 5: the HW moves, and the follower adopts it.
        leader.record_follower_fetch(NodeId(2), 5, 5);
        assert_eq!(leader.high_watermark(), 5);
        follower.adopt_leader_hw(leader.high_watermark());
        assert_eq!(follower.high_watermark(), 5);
        // Divergence: a follower ahead in epoch 3, or with an unknown older epoch.
        assert_eq!(
            leader.check_fetch_position(5, 3).await,
            FetchPosition::Valid
        );
        assert_eq!(
            leader.check_fetch_position(7, 3).await,
            FetchPosition::Diverging {
                leader_epoch: 3,
                end_offset: 5
            }
        );
        assert_eq!(
            leader.check_fetch_position(7, 2).await,
            FetchPosition::Diverging {
                leader_epoch: -1,
                end_offset: 0
            }
        );

        // Failover: the follower leads in epoch 4 and still recognises the producer's retries.
        follower.update_role(Some(NodeId(2)), 4, 4, &[NodeId(2)]);
        let retry = Bytes::from(make_batch(2, 9, 0, 3));
        let h = batch::validate_record_set(&retry).expect("valid")[0];
        let dup = follower
            .append_leader(
                retry,
                h,
                AppendOptions {
                    log_append_time: false,
                    now_ms: 0,
                },
            )
            .await
            .expect("dedupe");
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 3);
    }

    #[tokio::test]
    async fn a_follower_accepts_offset_gaps_left_by_compaction() {
        let (da, db) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (_sa, leader) = open(da.path(), 1);
        leader.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(2)]);
        lead_append(&leader, 0, 3).await;
        lead_append(&leader, 3, 2).await;
        lead_append(&leader, 5, 2).await;
        let all = leader
            .read(0, 1 << 20, leader.log_end_offset())
            .expect("read");
        let hs = batch::validate_record_set(&all).expect("valid");
        let (a, b) = (hs[0].total_len(), hs[1].total_len());
        // What a compacted leader sends: the middle batch (offsets 3..4) is gone.
        let mut gapped = bytes::BytesMut::from(&all[..a]);
        gapped.extend_from_slice(&all[a + b..]);
        let (_sb, follower) = open(db.path(), 2);
        follower.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(2)]);
        let r = follower
            .append_follower(gapped.freeze(), 3)
            .await
            .expect("gaps are allowed");
        assert_eq!((r.batches, r.log_end_offset), (2, 7));
        // A batch that straddles the log end is refused.
        let (_sc, other) = open(tempfile::tempdir().expect("tempdir").path(), 3);
        other.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(3)]);
        other
            .append_follower(all.slice(..a), 3)
            .await
            .expect("first batch");
        let straddling = Bytes::from(make_batch(3, 9, 0, 0));
        assert!(matches!(
            other.append_follower(straddling, 3).await,
            Err(FollowerError::Gap { .. }) | Ok(FollowerAppend { batches: 0, .. })
        ));
    }

    #[tokio::test]
    async fn truncation_drops_batches_epochs_and_producer_state() {
        let (da, db) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (_sa, leader) = open(da.path(), 1);
        leader.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1)]);
        lead_append(&leader, 0, 3).await;
        lead_append(&leader, 3, 2).await;
        let (_sb, f) = open(db.path(), 2);
        f.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1), NodeId(2)]);
        f.append_follower(leader.read(0, 1 << 20, 5).expect("read"), 1)
            .await
            .expect("append");
        // Inside the second batch: the whole batch goes.
        assert_eq!(f.truncate_to(4).await.expect("truncate"), 3);
        assert_eq!((f.log_end_offset(), f.high_watermark()), (3, 0));
        assert!(f.read(3, 1 << 20, 10).expect("read").is_empty());
        // Producer state was rebuilt: sequence 3 is next again, not a duplicate.
        f.update_role(Some(NodeId(2)), 2, 2, &[NodeId(2)]);
        let next = Bytes::from(make_batch(1, 9, 0, 3));
        let h = batch::validate_record_set(&next).expect("valid")[0];
        let a = f
            .append_leader(
                next,
                h,
                AppendOptions {
                    log_append_time: false,
                    now_ms: 0,
                },
            )
            .await
            .expect("append");
        assert_eq!((a.base_offset, a.duplicate), (3, false));
        assert_eq!(f.end_offset_for_epoch(1).await, (1, 3));
    }

    #[tokio::test]
    async fn a_follower_behind_the_log_start_restarts_there() {
        let (da, db) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (_sa, leader) = open(da.path(), 1);
        leader.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1)]);
        lead_append(&leader, 0, 3).await;
        lead_append(&leader, 3, 2).await;
        lead_append(&leader, 5, 1).await;
        let (sb, f) = open(db.path(), 2);
        f.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1), NodeId(2)]);
        f.reset_to(5).await.expect("reset");
        assert_eq!(
            (f.log_start_offset(), f.log_end_offset(), f.high_watermark()),
            (5, 5, 5)
        );
        let a = f
            .append_follower(leader.read(5, 1 << 20, 6).expect("read"), 1)
            .await
            .expect("append");
        assert_eq!(a.log_end_offset, 6);
        sb.wal().sync_after(a.wal_ticket).await.expect("fsync");
        drop(f);
        drop(sb);
        let (_sb, f) = open(db.path(), 2);
        assert_eq!((f.log_start_offset(), f.log_end_offset()), (5, 6));
    }
}

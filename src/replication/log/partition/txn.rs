//! Transactions on a partition replica (KIP-98): the leader's append of COMMIT / ABORT markers,
//! the last stable offset, and the aborted transactions a `read_committed` fetch is told about.

use super::{AppendError, AppendInfo, Partition, TAG_PRODUCER};
use crate::codec::kafka::batch::{self, BatchHeader};
use crate::codec::kafka::control::{self, Marker};
use crate::replication::log::producer_state::{CompletedTxn, MarkerCheck};
use crate::replication::log::txn_index::{self, TxnEvent, TAG_TXN};
use crate::storage::{self, keys, Batch, Cf, StorageError};
use std::sync::atomic::Ordering;

/// At most this many stored ended transactions are looked at past the end of a fetch's data
/// for ones that began inside it (transactions that span the end): a bound on the scan that
/// real producers never reach (it would take that many transactions ending while one stays
/// open across the fetch's end).
const SPANNING_SCAN_MAX: usize = 10_000;

/// An aborted transaction a `read_committed` consumer must skip: its producer and first offset
/// (Fetch's `aborted_transactions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// One producer's state on this partition (DescribeProducers, `kafka-transactions.sh
/// describe-producers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 before its first idempotent batch (a producer known from a marker only).
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, -1 outside one.
    pub current_txn_start_offset: i64,
}

impl Partition {
    /// Every producer this replica keeps state for, by producer id.
    pub async fn active_producers(&self) -> Vec<ProducerView> {
        let log = self.log.lock().await;
        let mut out: Vec<ProducerView> = log
            .producers
            .iter()
            .map(|(pid, e)| {
                let last = e.batches.back();
                ProducerView {
                    producer_id: pid,
                    producer_epoch: e.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_seq),
                    last_timestamp: last.map_or(-1, |b| b.timestamp),
                    coordinator_epoch: e.coordinator_epoch,
                    current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
                }
            })
            .collect();
        out.sort_unstable_by_key(|v| v.producer_id);
        out
    }

    /// The last stable offset: below it every transaction has ended and its marker is
    /// replicated (Kafka's LSO; the HW when no transaction is open). Never below the log
    /// start: after DeleteRecords past an open transaction's first offset Kafka reports the
    /// log start (`updateFirstUnstableOffset`), and so does this.
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset_at(self.high_watermark())
    }

    /// The high watermark and the last stable offset computed from it: one consistent pair
    /// (`lso <= hw`). Reading the two separately can pair an old HW with an LSO computed
    /// from a newer one, which a client would see as a stable offset above the HW.
    pub fn stable_offsets(&self) -> (i64, i64) {
        let hw = self.high_watermark();
        (hw, self.last_stable_offset_at(hw))
    }

    fn last_stable_offset_at(&self, hw: i64) -> i64 {
        let floor = self.log_start_offset().min(hw);
        match self.txns.lock() {
            Ok(mut t) => t.last_stable_offset(hw).min(hw).max(floor),
            // A panic while holding it is a bug elsewhere; the HW bounds what we may serve
            // then, and nothing unstable is ever shown as stable: serve the log start.
            Err(_) => self.log_start_offset(),
        }
    }

    /// Open transactions here: (first offset, producer id), oldest first.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.txns
            .lock()
            .map(|t| t.open().collect())
            .unwrap_or_default()
    }

    /// Applies tracker changes (caller holds the log mutex; the write carrying them is in).
    pub(super) fn apply_txn_events(&self, events: impl IntoIterator<Item = TxnEvent>) {
        if let Ok(mut t) = self.txns.lock() {
            for e in events {
                t.apply(e);
            }
        }
    }

    /// Appends a transaction marker as leader (WriteTxnMarkers): checks the producer and
    /// coordinator epochs as Kafka does, ends the producer's open transaction here (storing
    /// it in the ended-transactions index), all in one write (no fsync; see `wal_ticket`).
    ///
    /// `tv2`: the marker is of transaction version 2 (its epoch must be greater than the
    /// last one seen, see `ProducerStates::check_marker`).
    ///
    /// # Errors
    /// Not the leader, a stale producer epoch, a stale coordinator epoch, storage failures.
    pub async fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        tv2: bool,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.log.lock().await;
        if !self.is_leader() {
            return Err(AppendError::NotLeader);
        }
        // The transaction ends: a verification of it in flight no longer stands.
        log.guards.clear(producer_id);
        match log.producers.check_marker(
            producer_id,
            producer_epoch,
            marker.coordinator_epoch,
            tv2,
            None,
        ) {
            MarkerCheck::Append => {}
            MarkerCheck::StaleEpoch { current } => {
                return Err(AppendError::InvalidProducerEpoch { current })
            }
            MarkerCheck::CoordinatorFenced { current } => {
                return Err(AppendError::CoordinatorFenced { current })
            }
        }
        let raw = control::encode(producer_id, producer_epoch, marker, now_ms);
        if let Err(no_space) = self.store.disk().admit(raw.len() as u64) {
            crate::metrics::inc(&crate::metrics::global().appends_refused_no_space, 1);
            return Err(StorageError::from(no_space).into());
        }
        let offset = log.log_end_offset;
        let leader_epoch = self.leader_epoch();
        let bytes = batch::assign_offsets(&raw, offset, leader_epoch);
        let (entry, ended) =
            log.producers
                .marker_entry(producer_id, producer_epoch, marker, offset, None);
        let mut wb = Batch::new();
        wb.put(
            &self.store,
            Cf::PartLog,
            &keys::part_log_key(&self.key_id, self.partition, offset),
            &bytes,
        );
        self.put_producer(&mut wb, producer_id, &entry)?;
        if let Some(t) = &ended {
            wb.put(
                &self.store,
                Cf::PartState,
                &self.state_key(TAG_TXN, &keys::u64_key(offset as u64)),
                &txn_index::encode(t),
            );
        }
        let mut epochs = log.epochs.clone();
        if epochs.assign(leader_epoch, offset) {
            wb.put(
                &self.store,
                Cf::PartState,
                &self.state_key(super::TAG_EPOCH, &keys::u64_key(leader_epoch as u64)),
                &keys::u64_key(offset as u64),
            );
        }
        let store = self.store.clone();
        let wal_ticket = storage::blocking(move || {
            store.write(wb, false)?;
            Ok(store.wal().current_ticket())
        })
        .await?;
        log.log_end_offset = offset + 1;
        log.epochs = epochs;
        log.producers.insert(producer_id, entry);
        self.apply_txn_events(ended.map(TxnEvent::Ended));
        self.log_end.store(offset + 1, Ordering::Release);
        drop(log);
        self.leo_notify.notify_waiters();
        self.maybe_advance_hw();
        Ok(AppendInfo {
            base_offset: offset,
            last_offset: offset,
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            wal_ticket,
            duplicate: false,
        })
    }

    /// Adds the stored form of a producer's entry to `wb`.
    pub(super) fn put_producer(
        &self,
        wb: &mut Batch,
        producer_id: i64,
        entry: &crate::replication::log::producer_state::ProducerEntry,
    ) -> Result<(), StorageError> {
        let v = serde_json::to_vec(entry).map_err(|e| StorageError::Corrupt {
            cf: "part_state",
            reason: e.to_string(),
        })?;
        wb.put(
            &self.store,
            Cf::PartState,
            &self.state_key(TAG_PRODUCER, &keys::u64_key(producer_id as u64)),
            &v,
        );
        Ok(())
    }

    /// The aborted transactions that a `read_committed` fetch of `[fetch_offset, data_end)`
    /// must be told about: those whose marker is at or after `fetch_offset` and whose first
    /// offset is before `data_end` (Kafka's `collectAbortedTransactions`), oldest marker
    /// first. Blocking (reads the stored index).
    ///
    /// # Errors
    /// Storage failures, a corrupt index entry.
    pub fn aborted_transactions(
        &self,
        fetch_offset: i64,
        data_end: i64,
    ) -> Result<Vec<AbortedTxn>, StorageError> {
        let mut out = Vec::new();
        self.ended_transactions(fetch_offset, data_end, |t| {
            if t.aborted {
                out.push(AbortedTxn {
                    producer_id: t.producer_id,
                    first_offset: t.first_offset,
                });
            }
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each stored ended transaction whose marker is at or after `from` and
    /// whose first offset is before `data_end`, oldest marker first, until `f` says stop;
    /// at most [`SPANNING_SCAN_MAX`] entries with the marker at or past `data_end` are looked
    /// at. Blocking.
    ///
    /// # Errors
    /// Storage failures, a corrupt index entry.
    pub(crate) fn ended_transactions(
        &self,
        from: i64,
        data_end: i64,
        mut f: impl FnMut(CompletedTxn) -> bool,
    ) -> Result<(), StorageError> {
        if data_end <= from {
            return Ok(());
        }
        let lo = self.state_key(TAG_TXN, &keys::u64_key(from.max(0) as u64));
        let hi = self.state_key(TAG_TXN + 1, &[]);
        let mut past_end = 0usize;
        let mut bad = false;
        self.store.for_each(Cf::PartState, &lo, &hi, |k, v| {
            let Some(t) = k
                .get(21..)
                .and_then(keys::read_u64)
                .and_then(|last| txn_index::decode(last as i64, v))
            else {
                bad = true;
                return false;
            };
            if t.last_offset >= data_end {
                past_end += 1;
            }
            (t.first_offset >= data_end || f(t)) && past_end < SPANNING_SCAN_MAX
        })?;
        if bad {
            return Err(StorageError::Corrupt {
                cf: "part_state",
                reason: "ended transaction".into(),
            });
        }
        Ok(())
    }

    /// The transaction marker in a stored or fetched batch, as a state change.
    ///
    /// # Errors
    /// A control batch whose marker cannot be decoded.
    pub(super) fn marker_of(h: &BatchHeader, raw: &[u8]) -> Result<Option<Marker>, String> {
        control::parse(h, raw).map_err(|e| format!("control batch at {}: {e}", h.base_offset))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::codec::kafka::batch::tests::{make_batch, set_transactional};
    use crate::replication::log::AppendOptions;
    use crate::storage::Store;
    use crate::types::{NodeId, TopicId, TopicName};
    use bytes::Bytes;

    fn open(dir: &std::path::Path, local: i32) -> (Store, Partition) {
        let store = Store::open(dir).expect("open");
        let p = Partition::open(
            store.clone(),
            NodeId(local),
            TopicName::new("t").expect("valid"),
            0,
            TopicId(uuid::Uuid::from_u128(11)),
        )
        .expect("open partition");
        (store, p)
    }

    /// Appends `n` records of producer `pid` (epoch 0, sequence `seq`), transactional or not.
    async fn append(p: &Partition, pid: i64, seq: i32, n: i32, txn: bool) -> i64 {
        let mut raw = make_batch(n, pid, 0, seq);
        if txn {
            set_transactional(&mut raw);
        }
        let h = batch::validate_record_set(&raw).expect("valid")[0];
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: 0,
        };
        p.append_leader(Bytes::from(raw), h, opts)
            .await
            .expect("append")
            .base_offset
    }

    /// Appends a COMMIT / ABORT marker of `pid` (epoch 0, coordinator epoch 1) as leader.
    pub(in crate::replication::log::partition) async fn end(
        p: &Partition,
        pid: i64,
        commit: bool,
    ) -> i64 {
        let m = Marker {
            commit,
            coordinator_epoch: 1,
        };
        p.append_marker(pid, 0, m, false, 0)
            .await
            .expect("marker")
            .base_offset
    }

    fn aborted(p: &Partition, from: i64, to: i64) -> Vec<(i64, i64)> {
        p.aborted_transactions(from, to)
            .expect("index")
            .into_iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// The HW and LSO a fetch reports are one pair: while appends move the HW, the LSO read
    /// with it is never above it (reading them one after the other once paired an old HW with
    /// a newer LSO and stopped a debug node on the fetch assertion).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stable_offsets_are_one_pair_while_the_hw_moves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_store, p) = open(dir.path(), 1);
        p.update_role(Some(NodeId(1)), 0, 0, &[NodeId(1)]);
        let p = std::sync::Arc::new(p);
        let reader = {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut pairs = 0u64;
                loop {
                    let (hw, lso) = p.stable_offsets();
                    assert!(lso <= hw, "lso {lso} above hw {hw}");
                    pairs += 1;
                    if hw >= 300 {
                        return pairs;
                    }
                }
            })
        };
        for seq in 0..300 {
            append(&p, 9, seq, 1, false).await;
        }
        assert!(reader.join().expect("reader") > 0);
        assert_eq!(p.stable_offsets(), (300, 300));
    }

    /// One leader: the LSO stops at the first open transaction, moves once the marker is
    /// replicated, aborted transactions are listed for the fetches that overlap them, and
    /// a restart keeps both the open transaction and the index.
    #[tokio::test]
    async fn leader_lso_aborted_index_and_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, p) = open(dir.path(), 1);
        p.update_role(Some(NodeId(1)), 0, 0, &[NodeId(1)]);
        assert_eq!(append(&p, 5, 0, 3, true).await, 0); // txn of 5: 0..=2
        assert_eq!(append(&p, 9, 0, 2, false).await, 3); // plain: 3..=4
        assert_eq!(append(&p, 6, 0, 1, true).await, 5); // txn of 6: 5
        assert_eq!((p.high_watermark(), p.last_stable_offset()), (6, 0));
        assert_eq!(end(&p, 5, false).await, 6); // abort 5
        assert_eq!((p.high_watermark(), p.last_stable_offset()), (7, 5));
        assert_eq!(p.open_transactions(), vec![(5, 6)]);
        assert_eq!(end(&p, 6, true).await, 7); // commit 6
        assert_eq!(p.last_stable_offset(), 8);
        assert_eq!(aborted(&p, 0, 8), vec![(5, 0)]);
        assert_eq!(aborted(&p, 6, 8), vec![(5, 0)], "the marker is at 6");
        assert!(aborted(&p, 7, 8).is_empty());
        assert!(aborted(&p, 0, 0).is_empty());
        // A retried marker ends nothing; a marker from an older coordinator is fenced.
        assert_eq!(end(&p, 6, true).await, 8);
        assert!(matches!(
            p.append_marker(
                6,
                0,
                Marker {
                    commit: false,
                    coordinator_epoch: 0
                },
                false,
                0
            )
            .await,
            Err(AppendError::CoordinatorFenced { current: 1 })
        ));
        // A stale producer epoch is refused.
        assert!(matches!(
            p.append_marker(
                6,
                -1,
                Marker {
                    commit: false,
                    coordinator_epoch: 1
                },
                false,
                0
            )
            .await,
            Err(AppendError::InvalidProducerEpoch { current: 0 })
        ));
        // Producer 7 opens a transaction, then the node restarts.
        assert_eq!(append(&p, 7, 0, 2, true).await, 9);
        assert_eq!(p.last_stable_offset(), 9);
        store
            .wal()
            .sync_after(store.wal().current_ticket())
            .await
            .expect("fsync");
        drop(p);
        drop(store);
        let (_store, p) = open(dir.path(), 1);
        p.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1)]);
        assert_eq!(p.open_transactions(), vec![(9, 7)]);
        assert_eq!(p.last_stable_offset(), 9);
        assert_eq!(aborted(&p, 0, 11), vec![(5, 0)]);
        end(&p, 7, false).await;
        assert_eq!(aborted(&p, 0, 12), vec![(5, 0), (7, 9)]);
        assert_eq!(p.last_stable_offset(), 12);
    }

    /// A follower replays markers from the leader's batches; a truncation below a marker
    /// reopens its transaction; an ended transaction is unstable until the follower's HW
    /// passes its marker.
    #[tokio::test]
    async fn follower_replays_markers_and_truncation_reopens() {
        let (da, db) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (_sa, leader) = open(da.path(), 1);
        leader.update_role(Some(NodeId(1)), 2, 2, &[NodeId(1)]);
        append(&leader, 5, 0, 3, true).await; // 0..=2
        end(&leader, 5, false).await; // 3
        append(&leader, 5, 3, 1, true).await; // 4 (a new transaction, same epoch)
        let (_sb, follower) = open(db.path(), 2);
        follower.update_role(Some(NodeId(1)), 2, 2, &[NodeId(1), NodeId(2)]);
        let records = leader.read(0, 1 << 20, 5).expect("read");
        let a = follower.append_follower(records, 2).await.expect("append");
        assert_eq!(a.log_end_offset, 5);
        assert_eq!(follower.open_transactions(), vec![(4, 5)]);
        follower.adopt_leader_hw(3);
        assert_eq!(
            follower.last_stable_offset(),
            0,
            "the marker at 3 is not below the HW"
        );
        follower.adopt_leader_hw(5);
        assert_eq!(follower.last_stable_offset(), 4);
        assert_eq!(aborted(&follower, 0, 5), vec![(5, 0)]);
        // Truncated below the marker (as after an unclean election): the first transaction
        // is open again and its index entry is gone.
        follower.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(2)]);
        let hw_provisional_reset = follower.truncate_inner(3, true).await.expect("truncate");
        assert_eq!(hw_provisional_reset, 3);
        assert_eq!(follower.open_transactions(), vec![(0, 5)]);
        assert!(aborted(&follower, 0, 3).is_empty());
        assert_eq!(follower.last_stable_offset(), 0);
    }

    /// KIP-890's guard: a batch verified before its transaction was aborted here is refused;
    /// a batch that would open a transaction without a guard is refused; a verified one opens
    /// it and later batches need none.
    #[tokio::test]
    async fn a_verification_overtaken_by_a_marker_does_not_open_a_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_store, p) = open(dir.path(), 1);
        p.update_role(Some(NodeId(1)), 0, 0, &[NodeId(1)]);
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: 0,
        };
        let txn_batch = |seq: i32| {
            let mut raw = make_batch(2, 5, 0, seq);
            set_transactional(&mut raw);
            let h = batch::validate_record_set(&raw).expect("valid")[0];
            (Bytes::from(raw), h)
        };
        // Verified, then the client's abort reaches the partition first: refused.
        let token = p.begin_txn_verification(5, 0, 0).await.expect("room");
        assert!(token.is_some());
        end(&p, 5, false).await;
        let (raw, h) = txn_batch(0);
        assert!(matches!(
            p.append_produced(raw.clone(), h, opts, token).await,
            Err(AppendError::InvalidTxnState)
        ));
        // No guard at all: refused too; nothing was written, nothing is open.
        assert!(matches!(
            p.append_produced(raw.clone(), h, opts, None).await,
            Err(AppendError::InvalidTxnState)
        ));
        assert_eq!(p.log_end_offset(), 1, "the marker only");
        assert!(p.open_transactions().is_empty());
        // A fresh verification: the batch opens the transaction, the next needs no guard.
        let token = p.begin_txn_verification(5, 0, 0).await.expect("room");
        assert_eq!(
            p.append_produced(raw, h, opts, token)
                .await
                .expect("append")
                .base_offset,
            1
        );
        assert_eq!(p.begin_txn_verification(5, 0, 0).await, Ok(None));
        let (raw, h) = txn_batch(2);
        assert_eq!(
            p.append_produced(raw, h, opts, None)
                .await
                .expect("append")
                .base_offset,
            3
        );
        assert_eq!(p.open_transactions(), vec![(1, 5)]);
        // A failed verification releases its guard.
        let token = p
            .begin_txn_verification(7, 0, 0)
            .await
            .expect("room")
            .expect("guard");
        p.end_txn_verification(7, token).await;
        assert!(!p.log.lock().await.guards.holds(7, token));
    }

    /// DeleteRecords past an open transaction's first offset: the LSO is the new log start
    /// until the transaction ends (Kafka's), then the HW.
    #[tokio::test]
    async fn the_lso_never_falls_below_the_log_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_store, p) = open(dir.path(), 1);
        let p = std::sync::Arc::new(p);
        p.update_role(Some(NodeId(1)), 0, 0, &[NodeId(1)]);
        assert_eq!(append(&p, 5, 0, 2, true).await, 0); // txn of 5: 0..=1
        assert_eq!(append(&p, 9, 0, 2, false).await, 2); // plain: 2..=3
        assert_eq!(append(&p, 9, 2, 2, false).await, 4); // plain: 4..=5
        assert_eq!(p.last_stable_offset(), 0);
        assert_eq!(p.delete_records_before(4).await.expect("deleted"), 4);
        assert_eq!(p.log_start_offset(), 4);
        assert_eq!(
            p.last_stable_offset(),
            4,
            "the log start, not the deleted first offset"
        );
        end(&p, 5, true).await;
        assert_eq!(p.last_stable_offset(), p.high_watermark());
    }
}

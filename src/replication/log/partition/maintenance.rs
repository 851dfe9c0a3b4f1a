//! The I/O half of segments, retention and DeleteRecords on a partition replica: maintaining
//! the segment index (`part_state` tag `g`), deleting whole segments or batches below a new log
//! start offset with range deletes, and persisting the log start offset (tag `s`). The
//! decisions are pure and live in `replication::segments` / `replication::retention`.

use super::{Partition, TAG_LOG_START};
use crate::codec::kafka::batch::BatchHeader;
use crate::replication::log::txn_index::TAG_TXN;
use crate::replication::retention::RetentionPlan;
use crate::replication::segments::{index_batch, BatchSummary, RollPolicy, SegmentMeta};
use crate::storage::{self, keys, Batch, Cf, StorageError};
use std::sync::atomic::Ordering;

/// `part_state` tag of the segment index (suffix: segment base offset, 8 bytes BE).
pub(crate) const TAG_SEGMENT: u8 = b'g';
/// Batches read per storage call while indexing.
const INDEX_SCAN_CHUNK: usize = 16;

fn corrupt(reason: &str) -> StorageError {
    StorageError::Corrupt {
        cf: "part_state",
        reason: reason.to_owned(),
    }
}

/// Why DeleteRecords was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    #[error("offset {offset} is above the high watermark {high_watermark}")]
    OffsetOutOfRange { offset: i64, high_watermark: i64 },
    #[error("this replica is not the leader")]
    NotLeader,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Partition {
    /// The node's store (for size metrics).
    pub fn store(&self) -> &crate::storage::Store {
        &self.store
    }

    fn segment_key(&self, base_offset: i64) -> Vec<u8> {
        keys::part_state_key(
            &self.key_id,
            self.partition,
            TAG_SEGMENT,
            &keys::u64_key(base_offset.max(0) as u64),
        )
    }

    /// The segment index, oldest first (may lag the log; see [`Partition::index_segments`]).
    /// Blocking read.
    ///
    /// # Errors
    /// Storage failures or a corrupt index entry.
    pub fn load_segments(&self) -> Result<Vec<SegmentMeta>, StorageError> {
        let from = self.segment_key(0);
        let to = keys::part_state_key(&self.key_id, self.partition, TAG_SEGMENT + 1, &[]);
        self.store
            .scan(Cf::PartState, &from, &to, usize::MAX, |_, _| true)?
            .iter()
            .map(|(_, v)| SegmentMeta::decode(v).ok_or_else(|| corrupt("segment entry")))
            .collect()
    }

    /// The bytes this replica's log occupies: the sum of its stored batches (what Kafka reports
    /// as a partition's size). The segment index gives the indexed part; the batches past it
    /// (appended since the last retention pass) are summed from their stored lengths, one at a
    /// time. Blocking.
    ///
    /// # Errors
    /// Storage failures or a corrupt index entry.
    pub fn size_bytes(&self) -> Result<u64, StorageError> {
        let log_start = self.log_start_offset();
        let segments = self.load_segments()?;
        let indexed: u64 = segments
            .iter()
            .filter(|s| s.last_offset >= log_start)
            .map(|s| s.bytes)
            .sum();
        let tail_from = segments
            .last()
            .map_or(log_start, |s| (s.last_offset + 1).max(log_start));
        let from = keys::part_log_key(&self.key_id, self.partition, tail_from);
        let to = keys::part_log_key(&self.key_id, self.partition, i64::MAX);
        let mut tail = 0u64;
        self.store.for_each(Cf::PartLog, &from, &to, |_, v| {
            tail += v.len() as u64;
            true
        })?;
        Ok(indexed + tail)
    }

    /// The segment index (empty on a storage error, which is logged by the caller's next I/O).
    pub async fn segments(self: &std::sync::Arc<Self>) -> Vec<SegmentMeta> {
        let p = self.clone();
        storage::blocking(move || p.load_segments())
            .await
            .unwrap_or_default()
    }

    /// Indexes batches below the high watermark that are not in the segment index yet (at most
    /// about `bytes_max` of them per call), rolling segments by `policy`; drops index entries
    /// wholly below the log start offset (deleted by DeleteRecords) or at or above the log end
    /// offset (truncated). Only below-HW data is indexed, so the index never needs truncating
    /// on a healthy replica.
    ///
    /// # Errors
    /// Storage failures or corrupt batches / index entries.
    pub async fn index_segments(
        self: &std::sync::Arc<Self>,
        policy: RollPolicy,
        bytes_max: u64,
    ) -> Result<usize, StorageError> {
        let p = self.clone();
        storage::blocking(move || p.index_segments_blocking(policy, bytes_max)).await
    }

    fn index_segments_blocking(
        &self,
        policy: RollPolicy,
        bytes_max: u64,
    ) -> Result<usize, StorageError> {
        let log_start = self.log_start_offset();
        let leo = self.log_end_offset();
        let upper = self.high_watermark().min(leo);
        let mut wb = Batch::new();
        let mut index = Vec::new();
        for s in self.load_segments()? {
            if s.last_offset < log_start || s.last_offset >= leo {
                wb.delete(&self.store, Cf::PartState, &self.segment_key(s.base_offset));
            } else {
                index.push(s);
            }
        }
        let mut next = index.last().map_or(0, |s| s.last_offset + 1);
        let mut indexed_bytes = 0u64;
        let mut changed: Vec<SegmentMeta> = Vec::new();
        let end = keys::part_log_key(&self.key_id, self.partition, upper);
        'scan: while next < upper && indexed_bytes < bytes_max {
            let from = keys::part_log_key(&self.key_id, self.partition, next);
            let chunk = self
                .store
                .scan(Cf::PartLog, &from, &end, INDEX_SCAN_CHUNK, |_, _| true)?;
            if chunk.is_empty() {
                break;
            }
            for (_, v) in &chunk {
                let h = BatchHeader::parse(v).map_err(|e| StorageError::Corrupt {
                    cf: "part_log",
                    reason: e.to_string(),
                })?;
                if h.last_offset() >= upper {
                    break 'scan;
                }
                let b = BatchSummary {
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    bytes: v.len() as u64,
                    max_timestamp: h.max_timestamp,
                };
                let seg = index_batch(&mut index, &b, policy);
                match changed.last_mut() {
                    Some(c) if c.base_offset == seg.base_offset => *c = seg,
                    _ => changed.push(seg),
                }
                next = b.last_offset + 1;
                indexed_bytes += b.bytes;
            }
        }
        for s in &changed {
            wb.put(
                &self.store,
                Cf::PartState,
                &self.segment_key(s.base_offset),
                &s.encode(),
            );
        }
        let n = changed.len();
        if !wb.is_empty() {
            self.store.write(wb, false)?;
        }
        Ok(n)
    }

    /// Deletes the planned segments: one range delete on `part_log` below the new log start
    /// offset, one on the segment index, and the new log start offset persisted, in one
    /// RocksDB write; then compacts the range so the disk space is reclaimed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_segments(
        self: &std::sync::Arc<Self>,
        plan: &RetentionPlan,
    ) -> Result<(), StorageError> {
        let range = {
            let _log = self.log.lock().await;
            let target = plan.new_log_start.min(self.high_watermark());
            self.advance_log_start(target, target).await?
        };
        // Outside the log mutex: appends go on while the space is reclaimed.
        if let Some(range) = range {
            reclaim(&self.store, range).await;
        }
        Ok(())
    }

    /// Moves the log start offset to `new_log_start`, deleting every stored batch whose base
    /// offset is below `cut` (callers pass the base offset of the batch holding
    /// `new_log_start`, which Kafka keeps). Caller holds the log mutex, and reclaims the
    /// returned key range's disk space (`compact`) after releasing it.
    async fn advance_log_start(
        self: &std::sync::Arc<Self>,
        new_log_start: i64,
        cut: i64,
    ) -> Result<Option<KeyRange>, StorageError> {
        let current = self.log_start_offset();
        if new_log_start <= current {
            return Ok(None);
        }
        assert!(
            new_log_start <= self.log_end_offset(),
            "log start offset passed the log end offset"
        );
        // Readers see the new start first (OFFSET_OUT_OF_RANGE below it), then the data goes.
        self.log_start.store(new_log_start, Ordering::Release);
        let p = self.clone();
        let written = storage::blocking(move || {
            let floor = keys::part_log_key(&p.key_id, p.partition, 0);
            let cut_key = keys::part_log_key(&p.key_id, p.partition, cut);
            let mut wb = Batch::new();
            wb.delete_range(&p.store, Cf::PartLog, &floor, &cut_key);
            // Segments whose base is below the cut lost (some of) their data; the index drops
            // wholly deleted ones on its next pass and keeps a straddling one.
            let seg_floor = p.segment_key(0);
            let mut seg_cut = p.segment_key(cut);
            if let Some(s) = p
                .load_segments()?
                .into_iter()
                .find(|s| s.last_offset >= cut)
            {
                seg_cut = p.segment_key(s.base_offset.min(cut));
            }
            wb.delete_range(&p.store, Cf::PartState, &seg_floor, &seg_cut);
            // Ended transactions whose marker went with the log (their data went before it).
            wb.delete_range(
                &p.store,
                Cf::PartState,
                &keys::part_state_key(&p.key_id, p.partition, TAG_TXN, &[]),
                &keys::part_state_key(
                    &p.key_id,
                    p.partition,
                    TAG_TXN,
                    &keys::u64_key(new_log_start as u64),
                ),
            );
            wb.put(
                &p.store,
                Cf::PartState,
                &keys::part_state_key(&p.key_id, p.partition, TAG_LOG_START, &[]),
                &keys::u64_key(new_log_start as u64),
            );
            p.store.write(wb, false)?;
            Ok((floor, cut_key))
        })
        .await;
        match written {
            Ok(range) => Ok(Some(range)),
            Err(e) => {
                // Nothing was deleted: make the data reachable again.
                self.log_start.store(current, Ordering::Release);
                Err(e)
            }
        }
    }

    /// DeleteRecords: moves the log start offset to `offset` (`-1` = the high watermark),
    /// deleting whole batches below it; a batch straddling `offset` is kept, as in Kafka.
    /// Returns the new log start offset (the low watermark).
    ///
    /// # Errors
    /// Not the leader, an offset above the high watermark, storage failures.
    pub async fn delete_records_before(
        self: &std::sync::Arc<Self>,
        offset: i64,
    ) -> Result<i64, DeleteRecordsError> {
        let log = self.log.lock().await;
        if !self.is_leader() {
            return Err(DeleteRecordsError::NotLeader);
        }
        let hw = self.high_watermark();
        let offset = if offset == -1 { hw } else { offset };
        if offset < 0 || offset > hw {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                offset,
                high_watermark: hw,
            });
        }
        if offset <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        let cut = self.base_of_batch_holding(offset).await?;
        let range = self.advance_log_start(offset, cut).await?;
        drop(log);
        if let Some(range) = range {
            reclaim(&self.store, range).await;
        }
        Ok(self.log_start_offset())
    }

    /// The base offset of the stored batch that contains `offset`, or `offset` itself.
    async fn base_of_batch_holding(
        self: &std::sync::Arc<Self>,
        offset: i64,
    ) -> Result<i64, StorageError> {
        let p = self.clone();
        storage::blocking(move || {
            let floor = keys::part_log_key(&p.key_id, p.partition, 0);
            let at = keys::part_log_key(&p.key_id, p.partition, offset);
            Ok(match p.store.seek_for_prev(Cf::PartLog, &at, &floor)? {
                Some((_, v)) => match BatchHeader::parse(&v) {
                    Ok(h) if h.last_offset() >= offset => h.base_offset,
                    _ => offset,
                },
                None => offset,
            })
        })
        .await
    }

    /// Follower side of retention / DeleteRecords (Kafka's `maybeIncrementLogStartOffset`):
    /// adopts the leader's log start offset from a fetch response, up to this replica's high
    /// watermark, deleting the batches below it. Returns this replica's log start offset.
    /// Called by the follower fetcher after each response.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn adopt_leader_log_start(
        self: &std::sync::Arc<Self>,
        leader_log_start: i64,
    ) -> Result<i64, StorageError> {
        if leader_log_start <= self.log_start_offset() {
            // The common case on every fetch: nothing to do, no lock taken.
            return Ok(self.log_start_offset());
        }
        let _log = self.log.lock().await;
        let target = leader_log_start
            .min(self.high_watermark())
            .min(self.log_end_offset());
        if self.is_leader() || target <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        let cut = self.base_of_batch_holding(target).await?;
        if let Some(range) = self.advance_log_start(target, cut).await? {
            reclaim_in_background(&self.store, range);
        }
        Ok(self.log_start_offset())
    }
}

/// `part_state` tag of the compaction checkpoint: the offset the last clean reached.
pub(crate) const TAG_CLEANED: u8 = b'c';

impl Partition {
    fn cleaned_key(&self) -> Vec<u8> {
        keys::part_state_key(&self.key_id, self.partition, TAG_CLEANED, &[])
    }

    /// The offset the last compaction reached (0 if never compacted).
    pub async fn cleaned_offset(self: &std::sync::Arc<Self>) -> i64 {
        let p = self.clone();
        storage::blocking(move || {
            Ok(p.store
                .get(Cf::PartState, &p.cleaned_key())?
                .and_then(|v| keys::read_u64(&v))
                .map_or(0, |n| n as i64))
        })
        .await
        .unwrap_or(0)
    }

    /// Compacts `segments` (a prefix of the index, all below the high watermark): keeps, per
    /// key, the newest record among them. Phase 1 (no lock) builds the key map (bounded by
    /// [`OFFSET_MAP_ENTRIES_MAX`]: the pass ends at the segment where it fills) and rebuilds
    /// the batches that lose records; phase 2 writes, in one RocksDB batch under the log mutex,
    /// the rebuilt batches (same keys: a cleaned batch keeps its base offset), the deletion of
    /// emptied ones, the updated index entries and the checkpoint; then the range is
    /// compacted. A batch whose records cannot be decoded is reported and left as it is.
    /// Returns the cleaned segments' bytes before and after.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn compact_segments(
        self: &std::sync::Arc<Self>,
        segments: Vec<SegmentMeta>,
        policy: crate::replication::compaction::CompactionPolicy,
        now_ms: i64,
        decompressed_bytes_max: usize,
    ) -> Result<(u64, u64), StorageError> {
        let p = self.clone();
        let plan = storage::blocking(move || {
            p.plan_clean(&segments, policy, now_ms, decompressed_bytes_max)
        })
        .await?;
        let Some(last) = plan.last().map(|c| c.segment.last_offset) else {
            return Ok((0, 0));
        };
        // Phase 2 (log lock, so retention and DeleteRecords cannot move the log start meanwhile).
        let log = self.log.lock().await;
        let log_start = self.log_start_offset();
        let p = self.clone();
        let done = storage::blocking(move || {
            let mut wb = Batch::new();
            let (mut before, mut after) = (0u64, 0u64);
            for c in &plan {
                before += c.segment.bytes;
                after += c.bytes_after;
                for (base, change) in &c.changes {
                    let key = keys::part_log_key(&p.key_id, p.partition, *base);
                    match change {
                        None => wb.delete(&p.store, Cf::PartLog, &key),
                        // Below a log start that moved meanwhile: already deleted; a put
                        // would bring it back.
                        Some((_, last_in_batch)) if *last_in_batch < log_start => {}
                        Some((b, _)) => wb.put(&p.store, Cf::PartLog, &key, b),
                    }
                }
                for m in &c.markers_removed {
                    wb.delete(
                        &p.store,
                        Cf::PartState,
                        &keys::part_state_key(
                            &p.key_id,
                            p.partition,
                            TAG_TXN,
                            &keys::u64_key(*m as u64),
                        ),
                    );
                }
                if c.segment.last_offset >= log_start {
                    let updated = SegmentMeta {
                        bytes: c.bytes_after,
                        ..c.segment
                    };
                    wb.put(
                        &p.store,
                        Cf::PartState,
                        &p.segment_key(c.segment.base_offset),
                        &updated.encode(),
                    );
                }
            }
            wb.put(
                &p.store,
                Cf::PartState,
                &p.cleaned_key(),
                &keys::u64_key((last + 1) as u64),
            );
            p.store.write(wb, false)?;
            let first = plan.first().map_or(0, |c| c.segment.base_offset);
            let floor = keys::part_log_key(&p.key_id, p.partition, first);
            let end = keys::part_log_key(&p.key_id, p.partition, last + 1);
            Ok((before, after, floor, end))
        })
        .await;
        drop(log);
        let (before, after, floor, end) = done?;
        reclaim(&self.store, (floor, end)).await;
        Ok((before, after))
    }

    /// Phase 1 of [`Self::compact_segments`]: the key map, then per batch what changes.
    /// Transactions as Kafka's cleaner treats them: a committed transaction's records are
    /// data like any other, an aborted one's are dropped, a marker goes once it is past
    /// `delete.retention.ms` and nothing of its transaction is left (and its entry in the
    /// index of ended transactions with it). Blocking.
    fn plan_clean(
        &self,
        segments: &[SegmentMeta],
        policy: crate::replication::compaction::CompactionPolicy,
        now_ms: i64,
        cap: usize,
    ) -> Result<Vec<SegmentClean>, StorageError> {
        use crate::replication::compaction::{
            classify_batch, keep_record, rewrite_batch, BatchClass, EndedTxns, MarkerTracker,
            OffsetMap, Rewrite, TxnOutcome, ENDED_TXNS_MAX, OFFSET_MAP_ENTRIES_MAX,
        };
        let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
            return Ok(Vec::new());
        };
        let mut ended = EndedTxns::default();
        self.ended_transactions(first.base_offset, last.last_offset + 1, |t| {
            ended.add(t.producer_id, t.first_offset, t.last_offset, t.aborted);
            ended.len() < ENDED_TXNS_MAX
        })?;
        let mut map = OffsetMap::new();
        let mut unreadable = std::collections::HashSet::new();
        let mut included = 0;
        for (i, seg) in segments.iter().enumerate() {
            let (from, to) = self.segment_range(seg);
            let mut full = false;
            self.store.for_each(Cf::PartLog, &from, &to, |k, v| {
                let base = keys::part_log_offset(k).unwrap_or(0);
                if let Err(e) = map.add_batch(v, cap, &ended) {
                    super::report_undecodable(&self.topic, self.partition, base, &e);
                    unreadable.insert(base);
                }
                full = map.len() > OFFSET_MAP_ENTRIES_MAX;
                !full
            })?;
            if full {
                // Keys of the unfinished segment stay in the map: each is a newer record
                // that really exists, so using it for the earlier segments is still right.
                if i == 0 {
                    tracing::warn!(topic = %self.topic, partition = self.partition, segment = seg.base_offset, keys = map.len(), "compaction skipped: one segment holds more keys than one pass may remember");
                }
                break;
            }
            included = i + 1;
        }
        let mut markers = MarkerTracker::default();
        let mut out = Vec::with_capacity(included);
        for seg in &segments[..included] {
            let (from, to) = self.segment_range(seg);
            let mut clean = SegmentClean {
                segment: *seg,
                changes: Vec::new(),
                bytes_after: 0,
                markers_removed: Vec::new(),
            };
            let mut failed = None;
            self.store.for_each(Cf::PartLog, &from, &to, |k, v| {
                let base = keys::part_log_offset(k).unwrap_or(0);
                let (h, class) = match BatchHeader::parse(v) {
                    Ok(h) if !unreadable.contains(&base) => (h, classify_batch(&h, &ended)),
                    parsed => {
                        // Left as it is; a transaction's batch left keeps its marker.
                        if let Ok(h) = parsed {
                            if h.is_transactional() && !h.is_control() {
                                markers.batch_kept(h.producer_id);
                            }
                        }
                        clean.bytes_after += v.len() as u64;
                        return true;
                    }
                };
                match class {
                    BatchClass::Marker => {
                        if markers.marker_removable(h.producer_id, h.max_timestamp, policy, now_ms)
                        {
                            clean.changes.push((base, None));
                            clean.markers_removed.push(h.last_offset());
                        } else {
                            clean.bytes_after += v.len() as u64;
                        }
                        return true;
                    }
                    BatchClass::Transactional(TxnOutcome::Aborted) => {
                        clean.changes.push((base, None));
                        return true;
                    }
                    BatchClass::Transactional(TxnOutcome::Unknown) => {
                        markers.batch_kept(h.producer_id);
                        clean.bytes_after += v.len() as u64;
                        return true;
                    }
                    BatchClass::Transactional(TxnOutcome::Committed) | BatchClass::Data => {}
                }
                let keep = |key: Option<&[u8]>, null: bool, offset: i64, ts: i64| {
                    keep_record(key, null, offset, ts, &map, policy, now_ms)
                };
                let kept = match rewrite_batch(v, keep, cap) {
                    Ok(Rewrite::Unchanged) => {
                        clean.bytes_after += v.len() as u64;
                        true
                    }
                    Ok(Rewrite::Dropped) => {
                        clean.changes.push((base, None));
                        false
                    }
                    Ok(Rewrite::Rebuilt(b)) => {
                        let last = BatchHeader::parse(&b).map_or(base, |h| h.last_offset());
                        clean.bytes_after += b.len() as u64;
                        clean.changes.push((base, Some((b, last))));
                        true
                    }
                    Err(e) => {
                        // Decoded in the first pass, so a failure here is a codec fault.
                        failed = Some(e);
                        return false;
                    }
                };
                if kept && class != BatchClass::Data {
                    markers.batch_kept(h.producer_id);
                }
                true
            })?;
            if let Some(e) = failed {
                return Err(StorageError::Corrupt {
                    cf: "part_log",
                    reason: format!("compaction of segment {}: {e}", seg.base_offset),
                });
            }
            out.push(clean);
        }
        Ok(out)
    }

    fn segment_range(&self, seg: &SegmentMeta) -> ([u8; 28], [u8; 28]) {
        (
            keys::part_log_key(&self.key_id, self.partition, seg.base_offset),
            keys::part_log_key(&self.key_id, self.partition, seg.last_offset + 1),
        )
    }
}

/// What one compaction pass changes in one segment: per stored batch (by base offset), its
/// deletion (`None`) or its rebuilt bytes and last offset; the offsets of the markers it
/// removes (their entries in the index of ended transactions go with them).
#[derive(Debug)]
struct SegmentClean {
    segment: SegmentMeta,
    changes: Vec<(i64, Option<(bytes::Bytes, i64)>)>,
    bytes_after: u64,
    markers_removed: Vec<i64>,
}

/// A `[from, to)` range of partition-log keys.
type KeyRange = ([u8; 28], [u8; 28]);

/// Reclaims the disk space of a deleted or rewritten key range (a RocksDB manual compaction
/// on the blocking pool). Never called under the partition's log mutex: a compaction can
/// take most of a second, and under the mutex it stalled appends (p99 of a retention soak
/// went from ~50 ms to ~0.8 s).
async fn reclaim(store: &crate::storage::Store, (from, to): KeyRange) {
    let store = store.clone();
    let _ = tokio::task::spawn_blocking(move || store.reclaim_range(Cf::PartLog, &from, &to)).await;
}

/// [`compact`] without waiting, for the follower's fetch loop (which must not stall behind a
/// compaction).
fn reclaim_in_background(store: &crate::storage::Store, range: KeyRange) {
    let store = store.clone();
    drop(tokio::spawn(async move { reclaim(&store, range).await }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::{self, tests::make_batch};
    use crate::replication::retention::{plan_retention, RetentionPolicy};
    use crate::replication::AppendOptions;
    use crate::storage::Store;
    use crate::types::{NodeId, TopicId, TopicName};
    use bytes::Bytes;
    use std::sync::Arc;

    fn open(dir: &std::path::Path) -> Arc<Partition> {
        let store = Store::open(dir).expect("open");
        let p = Partition::open(
            store,
            NodeId(1),
            TopicName::new("t").expect("valid"),
            0,
            TopicId(uuid::Uuid::from_u128(7)),
        )
        .expect("open partition");
        p.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1)]);
        Arc::new(p)
    }

    #[tokio::test]
    async fn index_retention_delete_records_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path());
        let mut len = 0;
        for i in 0..10 {
            let b = Bytes::from(make_batch(1, 9, 0, i));
            len = b.len() as u64;
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
        let roll = RollPolicy {
            segment_bytes: 2 * len,
            segment_ms: i64::MAX,
        };
        assert_eq!(p.index_segments(roll, u64::MAX).await.expect("index"), 5);
        assert_eq!(
            p.index_segments(roll, u64::MAX).await.expect("index again"),
            0
        );
        let segs = p.segments().await;
        assert_eq!(
            segs.iter()
                .map(|s| (s.base_offset, s.last_offset))
                .collect::<Vec<_>>(),
            vec![(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
        );
        let policy = RetentionPolicy {
            delete: true,
            retention_ms: 0,
            retention_bytes: -1,
        };
        let plan = plan_retention(&segs, policy, i64::MAX, p.high_watermark(), 3).expect("plan");
        p.delete_segments(&plan).await.expect("delete");
        assert_eq!(p.log_start_offset(), 6);
        assert_eq!(p.segments().await.first().map(|s| s.base_offset), Some(6));
        let data = p.read(6, 1 << 20, 10).expect("read");
        assert_eq!(
            batch::validate_record_set(&data).expect("valid")[0].base_offset,
            6
        );
        assert!(p.read(0, 1 << 20, 6).expect("read").is_empty());
        assert_eq!(p.delete_records_before(7).await.expect("delete records"), 7);
        assert!(matches!(
            p.delete_records_before(11).await,
            Err(DeleteRecordsError::OffsetOutOfRange { .. })
        ));
        drop(p);
        let p = open(dir.path());
        assert_eq!((p.log_start_offset(), p.log_end_offset()), (7, 10));
        p.index_segments(roll, u64::MAX)
            .await
            .expect("index after reopen");
        assert_eq!(
            p.segments()
                .await
                .iter()
                .map(|s| s.base_offset)
                .collect::<Vec<_>>(),
            vec![6, 8]
        );
        // DeleteRecords up to the HW empties the log; the start offset survives a reopen.
        assert_eq!(p.delete_records_before(-1).await.expect("delete all"), 10);
        drop(p);
        let p = open(dir.path());
        assert_eq!((p.log_start_offset(), p.log_end_offset()), (10, 10));
    }

    /// A keyed batch of `(key, value)` records (one producer-less v2 batch, base offset 0).
    fn keyed_batch(recs: &[(&str, Option<&str>)], ts: i64) -> Bytes {
        producer_batch(recs, ts, -1, -1, false)
    }

    /// A keyed v2 batch of producer `pid` (epoch 0, first sequence `seq`), transactional or not.
    fn producer_batch(
        recs: &[(&str, Option<&str>)],
        ts: i64,
        pid: i64,
        seq: i32,
        transactional: bool,
    ) -> Bytes {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: if pid < 0 { -1 } else { 0 },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if pid < 0 { i as i32 } else { seq + i as i32 },
                timestamp: ts,
                key: Some(Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut out = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Zstd,
            },
        )
        .expect("encode");
        out.freeze()
    }

    /// Appends one batch as leader; returns its base offset.
    async fn append_one(p: &Partition, b: Bytes) -> i64 {
        let h = batch::validate_record_set(&b).expect("valid")[0];
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: 1_000,
        };
        p.append_leader(b, h, opts)
            .await
            .expect("append")
            .base_offset
    }

    /// Indexes one segment per batch and compacts all but the last (active) one at 10,000 ms.
    async fn compact_all_but_active(
        p: &Arc<Partition>,
        policy: crate::replication::compaction::CompactionPolicy,
    ) {
        let roll = RollPolicy {
            segment_bytes: 1,
            segment_ms: i64::MAX,
        };
        p.index_segments(roll, u64::MAX).await.expect("index");
        let segs = p.segments().await;
        let n = segs.len() - 1;
        p.compact_segments(segs[..n].to_vec(), policy, 10_000, 1 << 20)
            .await
            .expect("compaction");
    }

    /// (base offset, records, is a marker) of every stored batch below `end`.
    fn layout(p: &Partition, end: i64) -> Vec<(i64, i32, bool)> {
        let data = p.read(0, 1 << 20, end).expect("read");
        batch::validate_record_set(&data)
            .expect("valid after compaction")
            .iter()
            .map(|h| (h.base_offset, h.records_count, h.is_control()))
            .collect()
    }

    /// The aborted transactions a read_committed fetch of `[0, end)` is told about.
    fn aborted(p: &Partition, end: i64) -> Vec<(i64, i64)> {
        p.aborted_transactions(0, end)
            .expect("index")
            .into_iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Transactions in a compacted log, as Kafka's cleaner treats them: a committed
    /// transaction's records are data that make older records of their keys obsolete, an
    /// aborted one's are dropped, a marker stays while its transaction has data left or until
    /// `delete.retention.ms` has passed, and its entry in the index of ended transactions
    /// (what read_committed fetches are told) goes with it. Before, transactional records
    /// were never compacted at all (a changelog written with exactly-once only grew).
    #[tokio::test]
    async fn compaction_drops_aborted_data_compacts_committed_data_and_ends_markers() {
        use super::super::txn::tests::end;
        use crate::replication::compaction::CompactionPolicy;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path());
        let ts = 1_000;
        let txn =
            |recs: &[(&str, Option<&str>)], pid, seq| producer_batch(recs, ts, pid, seq, true);
        let plain = |recs: &[(&str, Option<&str>)]| keyed_batch(recs, ts);
        assert_eq!(
            append_one(&p, plain(&[("a", Some("1")), ("e", Some("1"))])).await,
            0
        );
        assert_eq!(
            append_one(&p, txn(&[("a", Some("2")), ("b", Some("1"))], 5, 0)).await,
            2
        );
        assert_eq!(end(&p, 5, false).await, 4);
        assert_eq!(
            append_one(&p, txn(&[("a", Some("3")), ("e", Some("2"))], 6, 0)).await,
            5
        );
        assert_eq!(end(&p, 6, true).await, 7);
        assert_eq!(append_one(&p, plain(&[("b", Some("2"))])).await, 8);
        assert_eq!(append_one(&p, txn(&[("d", Some("1"))], 6, 2)).await, 9);
        assert_eq!(end(&p, 6, true).await, 10);
        assert_eq!(append_one(&p, plain(&[("a", Some("4"))])).await, 11);
        assert_eq!(append_one(&p, plain(&[("z", Some("active"))])).await, 12);
        assert_eq!(p.last_stable_offset(), 13);
        assert_eq!(aborted(&p, 13), vec![(5, 2)]);
        let mut policy = CompactionPolicy {
            compact: true,
            min_cleanable_dirty_ratio: 0.0,
            min_compaction_lag_ms: 0,
            delete_retention_ms: i64::MAX,
        };
        compact_all_but_active(&p, policy).await;
        // 0..1 (a, e) obsolete: a by 11, e by the committed e@6; 2..3 aborted; the abort
        // marker stays until delete.retention.ms; 5..6 keeps e@6 only; b@8 is the newest b
        // (the aborted b@3 never counted); d@9 committed; every commit marker has data left.
        let mut want = vec![
            (4, 1, true),
            (5, 1, false),
            (7, 1, true),
            (8, 1, false),
            (9, 1, false),
            (10, 1, true),
            (11, 1, false),
            (12, 1, false),
        ];
        assert_eq!(layout(&p, 13), want);
        assert_eq!(
            aborted(&p, 13),
            vec![(5, 2)],
            "the abort marker is still there"
        );
        // Past delete.retention.ms: the abort marker (nothing of its transaction left) goes,
        // and with it the index entry; the commit markers stay with their data.
        policy.delete_retention_ms = 0;
        compact_all_but_active(&p, policy).await;
        want.remove(0);
        assert_eq!(layout(&p, 13), want);
        assert!(aborted(&p, 13).is_empty());
        drop(p);
        let p = open(dir.path());
        assert!(
            aborted(&p, 13).is_empty(),
            "the index entry stays gone after a reopen"
        );
        // Once a committed transaction's data is obsolete, its marker goes too.
        assert_eq!(append_one(&p, plain(&[("e", Some("3"))])).await, 13);
        assert_eq!(append_one(&p, plain(&[("d", Some("2"))])).await, 14);
        assert_eq!(append_one(&p, plain(&[("y", Some("active"))])).await, 15);
        compact_all_but_active(&p, policy).await;
        let left: Vec<i64> = layout(&p, 16).iter().map(|b| b.0).collect();
        assert_eq!(left, vec![8, 11, 12, 13, 14, 15]);
    }

    /// A CRC-valid batch whose one record claims 2^31-1 headers (issue 14's stored poison),
    /// as an older version accepted it unread.
    fn poison_batch() -> Bytes {
        let mut rec = vec![0u8, 0, 0, 2, b'k', 2, b'v'];
        rec.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
        let mut payload = Vec::new();
        crate::codec::kafka::records::put_varint(&mut payload, rec.len() as i32);
        payload.extend_from_slice(&rec);
        let mut b = make_batch(1, -1, -1, -1);
        b.truncate(61);
        b.extend_from_slice(&payload);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    /// Stored poison is reported, never decoded without bounds or panicked on: ListOffsets by
    /// timestamp answers an error for that batch, and the cleaner leaves it in place while it
    /// compacts the batches around it.
    #[tokio::test]
    async fn stored_poison_is_reported_by_readers_and_skipped_by_the_cleaner() {
        use crate::replication::compaction::CompactionPolicy;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path());
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: 0,
        };
        let batches = [
            keyed_batch(&[("a", Some("1")), ("b", Some("1"))], 1_000),
            poison_batch(),
            keyed_batch(&[("a", Some("2")), ("c", Some("1"))], 2_000),
            keyed_batch(&[("b", Some("2"))], 3_000),
            keyed_batch(&[("z", Some("active"))], 4_000),
        ];
        for b in &batches {
            let h = batch::validate_record_set(b).expect("valid header")[0];
            p.append_leader(b.clone(), h, opts).await.expect("append");
        }
        assert_eq!(p.log_end_offset(), 7);
        let undecodable = || {
            crate::metrics::global()
                .stored_batches_undecodable
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let before = undecodable();
        // Answers that lie outside the poisoned batch are still found.
        assert!(matches!(
            p.offset_for_timestamp(1_000, 7, 1 << 20),
            Ok(Some((0, 1_000)))
        ));
        assert_eq!(
            p.offset_for_timestamp(1_500, 7, 1 << 20).expect("lookup"),
            Some((3, 2_000))
        );
        // With the first batch gone, the poison (offset 2, timestamp 1000) holds the answer.
        p.delete_records_before(2).await.expect("move log start");
        assert!(matches!(
            p.offset_for_timestamp(0, 3, 1 << 20),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(undecodable() > before);
        // Compaction of [2..=5] (the last segment stays active).
        let roll = RollPolicy {
            segment_bytes: 1,
            segment_ms: i64::MAX,
        };
        p.index_segments(roll, u64::MAX).await.expect("index");
        let segs = p.segments().await;
        assert_eq!(segs.len(), 4, "{segs:?}");
        let policy = CompactionPolicy {
            compact: true,
            min_cleanable_dirty_ratio: 0.0,
            min_compaction_lag_ms: 0,
            delete_retention_ms: i64::MAX,
        };
        let n = segs.len() - 1;
        p.compact_segments(segs[..n].to_vec(), policy, 10_000, 1 << 20)
            .await
            .expect("compaction runs around the poison");
        let data = p.read(2, 1 << 20, 7).expect("read");
        let hs = batch::validate_record_set(&data).expect("valid after compaction");
        let bases: Vec<(i64, i32)> = hs
            .iter()
            .map(|h| (h.base_offset, h.records_count))
            .collect();
        // The poison stays as it is; a@3 and c@4 are the newest of their keys, b@5 too, and
        // z@6 is in the active segment.
        assert_eq!(bases, vec![(2, 1), (3, 2), (5, 1), (6, 1)]);
    }
}

//! The I/O half of segments, retention and DeleteRecords on a partition replica: maintaining
//! the segment index (`part_state` tag `g`), deleting whole segments or batches below a new log
//! start offset with range deletes, and persisting the log start offset (tag `s`). The
//! decisions are pure and live in `replication::segments` / `replication::retention`.

use super::{Partition, TAG_LOG_START};
use crate::codec::kafka::batch::BatchHeader;
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
            compact(&self.store, range).await;
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
            compact(&self.store, range).await;
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
            compact_in_background(&self.store, range);
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

    /// Rewrites `segments` (a prefix of the index, all below the high watermark) keeping, per
    /// key, the newest record among them, in one RocksDB write per pass (range delete of each
    /// segment + the re-encoded batches + the updated index entries + the checkpoint), then
    /// compacts the range. Returns the segments' bytes before and after.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn compact_segments(
        self: &std::sync::Arc<Self>,
        segments: Vec<SegmentMeta>,
        policy: crate::replication::compaction::CompactionPolicy,
        now_ms: i64,
    ) -> Result<(u64, u64), StorageError> {
        use crate::replication::compaction::{keep_record, latest_offsets, rewrite_batch};
        let Some(last) = segments.last().map(|s| s.last_offset) else {
            return Ok((0, 0));
        };
        let p = self.clone();
        // Phase 1 (no lock): read, build the key map, re-encode.
        let rewritten = storage::blocking(move || {
            let floor = keys::part_log_key(&p.key_id, p.partition, 0);
            let end = keys::part_log_key(&p.key_id, p.partition, last + 1);
            let stored = p
                .store
                .scan(Cf::PartLog, &floor, &end, usize::MAX, |_, _| true)?;
            let mut decoded = Vec::with_capacity(stored.len());
            for (_, v) in &stored {
                let mut b = bytes::Bytes::copy_from_slice(v);
                decoded.push(
                    kafka_protocol::records::RecordBatchDecoder::decode(&mut b)
                        .map(|s| s.records)
                        .unwrap_or_default(),
                );
            }
            let latest = latest_offsets(decoded.iter().flatten());
            let mut out: Vec<(SegmentMeta, Vec<(i64, bytes::Bytes)>)> =
                segments.iter().map(|s| (*s, Vec::new())).collect();
            for (k, v) in &stored {
                let base = keys::part_log_offset(k).unwrap_or(0);
                let kept = match rewrite_batch(v, |r| keep_record(r, &latest, policy, now_ms)) {
                    Ok(Some(b)) => Some((
                        BatchHeader::parse(&b)
                            .map(|h| h.base_offset)
                            .unwrap_or(base),
                        b,
                    )),
                    Ok(None) => None,
                    // Undecodable (should not happen: validated on append): keep it as is.
                    Err(_) => Some((base, bytes::Bytes::copy_from_slice(v))),
                };
                let Some(kept) = kept else { continue };
                if let Some(slot) = out.iter_mut().rev().find(|(s, _)| s.base_offset <= base) {
                    slot.1.push(kept);
                } else if let Some(first) = out.first_mut() {
                    first.1.push(kept);
                }
            }
            Ok(out)
        })
        .await?;
        // Phase 2 (log lock, so retention and DeleteRecords cannot move the log start meanwhile).
        let log = self.log.lock().await;
        let log_start = self.log_start_offset();
        let p = self.clone();
        let done = storage::blocking(move || {
            let mut wb = Batch::new();
            let (mut before, mut after) = (0u64, 0u64);
            let floor = keys::part_log_key(&p.key_id, p.partition, 0);
            let end = keys::part_log_key(&p.key_id, p.partition, last + 1);
            for (seg, batches) in &rewritten {
                before += seg.bytes;
                let from = keys::part_log_key(&p.key_id, p.partition, seg.base_offset);
                let to = keys::part_log_key(&p.key_id, p.partition, seg.last_offset + 1);
                wb.delete_range(&p.store, Cf::PartLog, &from, &to);
                let mut bytes = 0u64;
                for (base, b) in batches {
                    let last_in_batch = BatchHeader::parse(b).map_or(*base, |h| h.last_offset());
                    if last_in_batch < log_start {
                        continue;
                    }
                    wb.put(
                        &p.store,
                        Cf::PartLog,
                        &keys::part_log_key(&p.key_id, p.partition, *base),
                        b,
                    );
                    bytes += b.len() as u64;
                }
                after += bytes;
                if seg.last_offset >= log_start {
                    let updated = SegmentMeta { bytes, ..*seg };
                    wb.put(
                        &p.store,
                        Cf::PartState,
                        &p.segment_key(seg.base_offset),
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
            Ok((before, after, floor, end))
        })
        .await;
        drop(log);
        let (before, after, floor, end) = done?;
        compact(&self.store, (floor, end)).await;
        Ok((before, after))
    }
}

/// A `[from, to)` range of partition-log keys.
type KeyRange = ([u8; 28], [u8; 28]);

/// Reclaims the disk space of a deleted or rewritten key range (a RocksDB manual compaction
/// on the blocking pool). Never called under the partition's log mutex: a compaction can
/// take most of a second, and under the mutex it stalled appends (p99 of a retention soak
/// went from ~50 ms to ~0.8 s).
async fn compact(store: &crate::storage::Store, (from, to): KeyRange) {
    let store = store.clone();
    let _ = tokio::task::spawn_blocking(move || store.compact_range(Cf::PartLog, &from, &to)).await;
}

/// [`compact`] without waiting, for the follower's fetch loop (which must not stall behind a
/// compaction).
fn compact_in_background(store: &crate::storage::Store, range: KeyRange) {
    let store = store.clone();
    drop(tokio::spawn(async move { compact(&store, range).await }));
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
        p.update_role(Some(NodeId(1)), 1, &[NodeId(1)]);
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
}

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
const INDEX_SCAN_CHUNK: usize = 128;

fn corrupt(reason: &str) -> StorageError {
    StorageError::Corrupt { cf: "part_state", reason: reason.to_owned() }
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
    fn segment_key(&self, base_offset: i64) -> Vec<u8> {
        keys::part_state_key(&self.key_id, self.partition, TAG_SEGMENT, &keys::u64_key(base_offset.max(0) as u64))
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
        storage::blocking(move || p.load_segments()).await.unwrap_or_default()
    }

    /// Indexes batches below the high watermark that are not in the segment index yet (at most
    /// about `bytes_max` of them per call), rolling segments by `policy`; drops index entries
    /// wholly below the log start offset (deleted by DeleteRecords) or at or above the log end
    /// offset (truncated). Only below-HW data is indexed, so the index never needs truncating
    /// on a healthy replica.
    ///
    /// # Errors
    /// Storage failures or corrupt batches / index entries.
    pub async fn index_segments(self: &std::sync::Arc<Self>, policy: RollPolicy, bytes_max: u64) -> Result<usize, StorageError> {
        let p = self.clone();
        storage::blocking(move || p.index_segments_blocking(policy, bytes_max)).await
    }

    fn index_segments_blocking(&self, policy: RollPolicy, bytes_max: u64) -> Result<usize, StorageError> {
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
            let chunk = self.store.scan(Cf::PartLog, &from, &end, INDEX_SCAN_CHUNK, |_, _| true)?;
            if chunk.is_empty() {
                break;
            }
            for (_, v) in &chunk {
                let h = BatchHeader::parse(v).map_err(|e| StorageError::Corrupt { cf: "part_log", reason: e.to_string() })?;
                if h.last_offset() >= upper {
                    break 'scan;
                }
                let b = BatchSummary { base_offset: h.base_offset, last_offset: h.last_offset(), bytes: v.len() as u64, max_timestamp: h.max_timestamp };
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
            wb.put(&self.store, Cf::PartState, &self.segment_key(s.base_offset), &s.encode());
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
    pub async fn delete_segments(self: &std::sync::Arc<Self>, plan: &RetentionPlan) -> Result<(), StorageError> {
        let _log = self.log.lock().await;
        let target = plan.new_log_start.min(self.high_watermark());
        self.advance_log_start(target, target).await
    }

    /// Moves the log start offset to `new_log_start`, deleting every stored batch whose base
    /// offset is below `cut` (callers pass the base offset of the batch holding
    /// `new_log_start`, which Kafka keeps). Caller holds the log mutex.
    async fn advance_log_start(self: &std::sync::Arc<Self>, new_log_start: i64, cut: i64) -> Result<(), StorageError> {
        let current = self.log_start_offset();
        if new_log_start <= current {
            return Ok(());
        }
        assert!(new_log_start <= self.log_end_offset(), "log start offset passed the log end offset");
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
            if let Some(s) = p.load_segments()?.into_iter().find(|s| s.last_offset >= cut) {
                seg_cut = p.segment_key(s.base_offset.min(cut));
            }
            wb.delete_range(&p.store, Cf::PartState, &seg_floor, &seg_cut);
            wb.put(&p.store, Cf::PartState, &keys::part_state_key(&p.key_id, p.partition, TAG_LOG_START, &[]), &keys::u64_key(new_log_start as u64));
            p.store.write(wb, false)?;
            p.store.compact_range(Cf::PartLog, &floor, &cut_key);
            Ok(())
        })
        .await;
        if written.is_err() {
            // Nothing was deleted: make the data reachable again.
            self.log_start.store(current, Ordering::Release);
        }
        written
    }

    /// DeleteRecords: moves the log start offset to `offset` (`-1` = the high watermark),
    /// deleting whole batches below it; a batch straddling `offset` is kept, as in Kafka.
    /// Returns the new log start offset (the low watermark).
    ///
    /// # Errors
    /// Not the leader, an offset above the high watermark, storage failures.
    pub async fn delete_records_before(self: &std::sync::Arc<Self>, offset: i64) -> Result<i64, DeleteRecordsError> {
        let _log = self.log.lock().await;
        if !self.is_leader() {
            return Err(DeleteRecordsError::NotLeader);
        }
        let hw = self.high_watermark();
        let offset = if offset == -1 { hw } else { offset };
        if offset < 0 || offset > hw {
            return Err(DeleteRecordsError::OffsetOutOfRange { offset, high_watermark: hw });
        }
        if offset <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        let p = self.clone();
        let cut = storage::blocking(move || {
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
        .await?;
        self.advance_log_start(offset, cut).await?;
        Ok(self.log_start_offset())
    }
}

//! Log compaction (`cleanup.policy=compact` / `compact,delete`): the pure decisions (which
//! segments to clean, which records survive) and the driver that rewrites segments.
//!
//! A pass cleans a prefix of the non-active segments below the high watermark whose newest
//! record is at least `min.compaction.lag.ms` old, when the share of bytes written since the
//! last clean (the dirty part) is at least `min.cleanable.dirty.ratio`. Within that prefix it
//! keeps, per key, only the record with the highest offset; a tombstone (null value) that
//! survives is dropped too once it is older than `delete.retention.ms`. Batches are re-encoded
//! with their original offsets (gaps allowed), timestamps and producer id / epoch / sequences
//! and fresh CRCs. Transactions (below the last stable offset only) as Kafka's cleaner treats
//! them: committed records are data, aborted ones are dropped, a marker goes once it is past
//! `delete.retention.ms` with nothing of its transaction left (`EndedTxns`, `MarkerTracker`). Every replica compacts its own copy (below its high watermark); followers
//! accept the offset gaps a compacted leader sends.

use super::partition::Partition;
use super::retention::effective_config;
use super::segments::SegmentMeta;
use crate::codec::kafka::batch::BatchHeader;
use crate::codec::kafka::records::{self, RecordError};
use crate::config::Config;
use crate::metadata::TopicImage;
use bytes::Bytes;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::ops::ControlFlow;
use std::sync::Arc;
use tracing::{info, warn};

/// Segment bytes cleaned per partition per pass at most (bounds the key map and the I/O).
pub const CLEAN_BYTES_PER_PASS_MAX: u64 = 64 << 20;

/// A topic's compaction settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    pub compact: bool,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub delete_retention_ms: i64,
}

/// The topic's compaction policy from its effective configs.
pub fn compaction_policy(config: &Config, topic: &TopicImage) -> CompactionPolicy {
    let get = |n: &str| effective_config(config, topic, n).unwrap_or_default();
    CompactionPolicy {
        compact: get("cleanup.policy")
            .split(',')
            .any(|p| p.trim() == "compact"),
        min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
            .trim()
            .parse()
            .unwrap_or(0.5),
        min_compaction_lag_ms: get("min.compaction.lag.ms").trim().parse().unwrap_or(0),
        delete_retention_ms: get("delete.retention.ms")
            .trim()
            .parse()
            .unwrap_or(86_400_000),
    }
}

/// How many leading segments to clean, or `None` if the partition is not worth cleaning.
/// `first_dirty` is the offset the previous clean reached.
pub fn plan_compaction(
    segments: &[SegmentMeta],
    first_dirty: i64,
    policy: CompactionPolicy,
    now_ms: i64,
    high_watermark: i64,
    bytes_max: u64,
) -> Option<usize> {
    if !policy.compact || segments.len() < 2 {
        return None;
    }
    let mut n = 0;
    let mut total = 0u64;
    for pair in segments.windows(2) {
        let (seg, next) = (pair[0], pair[1]);
        let lagged = now_ms.saturating_sub(seg.max_timestamp) >= policy.min_compaction_lag_ms;
        if next.base_offset > high_watermark
            || !lagged
            || (n > 0 && total.saturating_add(seg.bytes) > bytes_max)
        {
            break;
        }
        total = total.saturating_add(seg.bytes);
        n += 1;
    }
    let cleanable = segments.get(..n)?;
    let dirty: u64 = cleanable
        .iter()
        .filter(|s| s.last_offset >= first_dirty)
        .map(|s| s.bytes)
        .sum();
    if dirty == 0 || total == 0 {
        return None;
    }
    (dirty as f64 / total as f64 >= policy.min_cleanable_dirty_ratio).then_some(n)
}

/// The most distinct keys one pass remembers (Kafka's `log.cleaner.dedupe.buffer.size` plays
/// this role): ~40 bytes each, so the map stays under ~100 MiB however well the batches
/// compress. A pass stops at the segment where the map fills.
pub const OFFSET_MAP_ENTRIES_MAX: usize = 2_000_000;

/// The newest offset of every key seen, by a 128-bit digest of the key (two SipHash keys
/// drawn at random per pass, so keys cannot be chosen to collide), as Kafka's cleaner keeps an
/// MD5 per key rather than the key itself.
#[derive(Debug)]
pub struct OffsetMap {
    map: HashMap<u128, i64>,
    hashers: (RandomState, RandomState),
}

impl Default for OffsetMap {
    fn default() -> Self {
        Self::new()
    }
}

impl OffsetMap {
    pub fn new() -> Self {
        Self {
            map: HashMap::new(),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    fn digest(&self, key: &[u8]) -> u128 {
        let a = self.hashers.0.hash_one(key);
        let b = self.hashers.1.hash_one(key);
        (u128::from(a) << 64) | u128::from(b)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records `offset` as the newest for `key` if it is newer than what is known.
    pub fn put(&mut self, key: &[u8], offset: i64) {
        let e = self.map.entry(self.digest(key)).or_insert(offset);
        *e = (*e).max(offset);
    }

    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&self.digest(key)).copied()
    }

    /// Adds every keyed record of one stored batch of data: plain batches and those of
    /// committed transactions (markers and aborted or undecided transactions' records make no
    /// earlier record obsolete, as in Kafka's `buildOffsetMap`).
    ///
    /// # Errors
    /// The batch's records cannot be decoded within `decompressed_bytes_max`.
    pub fn add_batch(
        &mut self,
        raw: &[u8],
        decompressed_bytes_max: usize,
        ended: &EndedTxns,
    ) -> Result<(), RecordError> {
        let h = BatchHeader::parse(raw).map_err(|e| RecordError::Corrupt(e.to_string()))?;
        match classify_batch(&h, ended) {
            BatchClass::Data | BatchClass::Transactional(TxnOutcome::Committed) => {}
            BatchClass::Marker | BatchClass::Transactional(_) => return Ok(()),
        }
        records::walk_records(raw, decompressed_bytes_max, |_, r| {
            if let Some(k) = r.key {
                self.put(k, h.base_offset + i64::from(r.offset_delta));
            }
            ControlFlow::Continue(())
        })
    }
}

/// The most ended transactions one pass remembers (24 bytes each, plus the map's overhead);
/// a transactional batch of a transaction past this many is treated as undecided (kept).
pub const ENDED_TXNS_MAX: usize = 1_000_000;

/// How a transactional batch's transaction ended, as the partition's stored index of ended
/// transactions says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    Committed,
    Aborted,
    /// No ended transaction of the producer covers the batch (the index holds none, or more
    /// than [`ENDED_TXNS_MAX`] were in the pass): kept as it is.
    Unknown,
}

/// The ended transactions of one pass's range, per producer: first offset, marker offset,
/// aborted (Kafka's cleaner reads its aborted-transaction index for the same purpose).
#[derive(Debug, Default)]
pub struct EndedTxns {
    by_producer: HashMap<i64, Vec<(i64, i64, bool)>>,
    len: usize,
}

impl EndedTxns {
    /// Adds one ended transaction; a producer's transactions must come in offset order (the
    /// index is read by marker offset, and one producer's transactions do not overlap).
    pub fn add(&mut self, producer_id: i64, first_offset: i64, marker_offset: i64, aborted: bool) {
        let v = self.by_producer.entry(producer_id).or_default();
        debug_assert!(v.last().is_none_or(|l| l.1 < first_offset));
        v.push((first_offset, marker_offset, aborted));
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How the transaction holding `producer_id`'s batch at `offset` ended.
    pub fn outcome(&self, producer_id: i64, offset: i64) -> TxnOutcome {
        let Some(v) = self.by_producer.get(&producer_id) else {
            return TxnOutcome::Unknown;
        };
        let i = v.partition_point(|e| e.0 <= offset);
        match i.checked_sub(1).map(|i| v[i]) {
            Some((_, marker, aborted)) if offset < marker => {
                if aborted {
                    TxnOutcome::Aborted
                } else {
                    TxnOutcome::Committed
                }
            }
            _ => TxnOutcome::Unknown,
        }
    }
}

/// What kind of stored batch the cleaner looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchClass {
    /// Not transactional: compacted by key.
    Data,
    /// A transaction's records: compacted by key once committed, dropped once aborted.
    Transactional(TxnOutcome),
    /// A COMMIT / ABORT marker.
    Marker,
}

pub fn classify_batch(h: &BatchHeader, ended: &EndedTxns) -> BatchClass {
    if h.is_control() {
        BatchClass::Marker
    } else if h.is_transactional() {
        BatchClass::Transactional(ended.outcome(h.producer_id, h.base_offset))
    } else {
        BatchClass::Data
    }
}

/// Whether a marker may go (Kafka's `CleanedTransactionMetadata`): once it is older than
/// `delete.retention.ms` (a `read_committed` reader positioned inside the transaction has had
/// that long to reach it) and no batch of its transaction is left in the log. Fed the
/// producer's batches in offset order, the survivors of this pass included.
#[derive(Debug, Default)]
pub struct MarkerTracker {
    /// Producers with a transactional batch kept since their last marker.
    pending: std::collections::HashSet<i64>,
}

impl MarkerTracker {
    /// A transactional batch of `producer_id` stays in the log.
    pub fn batch_kept(&mut self, producer_id: i64) {
        self.pending.insert(producer_id);
    }

    /// Whether the marker of `producer_id` with `max_timestamp` may be removed now; either
    /// way it ends the producer's transaction for what follows.
    pub fn marker_removable(
        &mut self,
        producer_id: i64,
        max_timestamp: i64,
        policy: CompactionPolicy,
        now_ms: i64,
    ) -> bool {
        let data_left = self.pending.remove(&producer_id);
        !data_left && now_ms.saturating_sub(max_timestamp) > policy.delete_retention_ms
    }
}

/// Whether a record survives compaction: the newest of its key, and not an expired tombstone.
/// Records without a key (only possible from before the topic was compacted) are kept.
pub fn keep_record(
    key: Option<&[u8]>,
    value_is_null: bool,
    offset: i64,
    timestamp: i64,
    latest: &OffsetMap,
    policy: CompactionPolicy,
    now_ms: i64,
) -> bool {
    let Some(k) = key else { return true };
    if latest.latest(k).is_some_and(|o| o > offset) {
        return false;
    }
    !(value_is_null && now_ms.saturating_sub(timestamp) > policy.delete_retention_ms)
}

/// What compaction does to one stored batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Every record survives: the stored bytes stay as they are.
    Unchanged,
    /// No record survives.
    Dropped,
    /// Some records survive, in this rebuilt batch (same base offset, offset range, producer
    /// fields and codec; fresh CRC).
    Rebuilt(Bytes),
}

/// Applies compaction to one stored batch: keeps the survivors' encoded records byte for
/// byte (headers, duplicate header keys and all) and rebuilds the batch around them.
///
/// # Errors
/// The batch's records cannot be decoded, or re-compression fails.
pub fn rewrite_batch(
    raw: &[u8],
    keep: impl Fn(Option<&[u8]>, bool, i64, i64) -> bool,
    decompressed_bytes_max: usize,
) -> Result<Rewrite, RecordError> {
    let h = BatchHeader::parse(raw).map_err(|e| RecordError::Corrupt(e.to_string()))?;
    if h.is_control() {
        // Transaction markers stay: a read_committed reader needs them to end transactions.
        return Ok(Rewrite::Unchanged);
    }
    let mut kept = Vec::new();
    let (mut kept_count, mut total) = (0i32, 0i32);
    let mut max_ts = -1i64;
    records::walk_records(raw, decompressed_bytes_max, |_, r| {
        total += 1;
        let offset = h.base_offset + i64::from(r.offset_delta);
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        if keep(r.key, r.value.is_none(), offset, ts) {
            kept_count += 1;
            max_ts = max_ts.max(ts);
            records::put_varint(&mut kept, r.body.len() as i32);
            kept.extend_from_slice(r.body);
        }
        ControlFlow::Continue(())
    })?;
    if kept_count == 0 {
        return Ok(Rewrite::Dropped);
    }
    if kept_count == total {
        return Ok(Rewrite::Unchanged);
    }
    // LogAppendTime batches keep their append time; CreateTime ones get their survivors' max.
    let max_ts = if h.is_log_append_time() {
        h.max_timestamp
    } else {
        max_ts
    };
    records::rebuild_batch(raw, &kept, kept_count, max_ts).map(|b| Rewrite::Rebuilt(b.into()))
}

/// One compaction pass over one partition. Every replica compacts its own log below its high
/// watermark, as in Kafka, so a new leader serves a compacted log.
pub async fn compact_partition(
    p: &Arc<Partition>,
    config: &Config,
    topic: &TopicImage,
    now_ms: i64,
) {
    let policy = compaction_policy(config, topic);
    if !policy.compact {
        return;
    }
    let segments = p.segments().await;
    let first_dirty = p.cleaned_offset().await;
    let Some(n) = plan_compaction(
        &segments,
        first_dirty,
        policy,
        now_ms,
        // Only what is stable: an open transaction may still end either way.
        p.last_stable_offset(),
        CLEAN_BYTES_PER_PASS_MAX,
    ) else {
        return;
    };
    match p
        .compact_segments(
            segments[..n].to_vec(),
            policy,
            now_ms,
            config.limits.decompressed_batch_bytes_max,
        )
        .await
    {
        Ok((before, after)) => {
            info!(topic = %p.topic, partition = p.partition, segments = n, bytes_before = before, bytes_after = after, "compacted segments")
        }
        Err(e) => warn!(topic = %p.topic, partition = p.partition, error = %e, "compaction failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    };

    const POLICY: CompactionPolicy = CompactionPolicy {
        compact: true,
        min_cleanable_dirty_ratio: 0.5,
        min_compaction_lag_ms: 0,
        delete_retention_ms: 1000,
    };

    fn seg(base: i64, last: i64, bytes: u64, ts: i64) -> SegmentMeta {
        SegmentMeta {
            base_offset: base,
            last_offset: last,
            bytes,
            max_timestamp: ts,
            created_ms: ts,
        }
    }

    fn rec(offset: i64, key: &str, value: Option<&str>, ts: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 7,
            producer_epoch: 1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: ts,
            key: Some(Bytes::from(key.to_owned())),
            value: value.map(|v| Bytes::from(v.to_owned())),
            headers: Default::default(),
        }
    }

    fn encode(recs: &[Record], compression: Compression) -> BytesMut {
        let mut raw = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut raw,
            recs.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        raw
    }

    const CAP: usize = 1 << 20;

    #[test]
    fn plan_respects_active_segment_lag_hw_and_dirty_ratio() {
        let segs = vec![
            seg(0, 9, 100, 1000),
            seg(10, 19, 100, 2000),
            seg(20, 29, 100, 3000),
        ];
        assert_eq!(
            plan_compaction(&segs, 0, POLICY, 5000, 30, u64::MAX),
            Some(2)
        );
        // Cleaned up to 20 already: nothing dirty in the cleanable part.
        assert_eq!(plan_compaction(&segs, 20, POLICY, 5000, 30, u64::MAX), None);
        // 10..19 dirty = 50% of the cleanable bytes: just enough; at 0.6 not.
        assert_eq!(
            plan_compaction(&segs, 10, POLICY, 5000, 30, u64::MAX),
            Some(2)
        );
        assert_eq!(
            plan_compaction(
                &segs,
                10,
                CompactionPolicy {
                    min_cleanable_dirty_ratio: 0.6,
                    ..POLICY
                },
                5000,
                30,
                u64::MAX
            ),
            None
        );
        // min.compaction.lag.ms keeps the second segment out.
        assert_eq!(
            plan_compaction(
                &segs,
                0,
                CompactionPolicy {
                    min_compaction_lag_ms: 3500,
                    ..POLICY
                },
                5000,
                30,
                u64::MAX
            ),
            Some(1)
        );
        // Below the HW only; bounded bytes; delete-only topics never.
        assert_eq!(
            plan_compaction(&segs, 0, POLICY, 5000, 15, u64::MAX),
            Some(1)
        );
        assert_eq!(plan_compaction(&segs, 0, POLICY, 5000, 30, 150), Some(1));
        assert_eq!(
            plan_compaction(
                &segs,
                0,
                CompactionPolicy {
                    compact: false,
                    ..POLICY
                },
                5000,
                30,
                u64::MAX
            ),
            None
        );
    }

    #[test]
    fn keeps_last_value_per_key_and_expires_tombstones() {
        let recs = [
            rec(0, "a", Some("1"), 100),
            rec(1, "b", Some("1"), 100),
            rec(2, "a", Some("2"), 100),
            rec(3, "b", None, 100),
            rec(4, "c", None, 4000),
        ];
        let mut latest = OffsetMap::new();
        latest
            .add_batch(
                &encode(&recs, Compression::None),
                CAP,
                &EndedTxns::default(),
            )
            .expect("decodes");
        assert_eq!(latest.len(), 3);
        let kept: Vec<i64> = recs
            .iter()
            .filter(|r| {
                keep_record(
                    r.key.as_deref(),
                    r.value.is_none(),
                    r.offset,
                    r.timestamp,
                    &latest,
                    POLICY,
                    4500,
                )
            })
            .map(|r| r.offset)
            .collect();
        // a=2 survives; b's tombstone is old (4400 ms > 1000) and goes; c's is recent and stays.
        assert_eq!(kept, vec![2, 4]);
    }

    #[test]
    fn rewrite_keeps_offsets_producer_fields_and_a_valid_crc() {
        let recs = [
            rec(10, "a", Some("1"), 100),
            rec(11, "a", Some("2"), 101),
            rec(12, "b", Some("3"), 102),
        ];
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut raw = encode(&recs, c);
            let mut latest = OffsetMap::new();
            latest
                .add_batch(&raw, CAP, &EndedTxns::default())
                .expect("decodes");
            let keep = |k: Option<&[u8]>, null: bool, o: i64, t: i64| {
                keep_record(k, null, o, t, &latest, POLICY, 200)
            };
            let Rewrite::Rebuilt(out) = rewrite_batch(&raw, keep, CAP).expect("rewrite") else {
                panic!("{c:?}: one record goes");
            };
            let headers = crate::codec::kafka::batch::validate_record_set(&out)
                .expect("valid CRC and header");
            let h = headers[0];
            // Kafka keeps a cleaned v2 batch's base offset, offset range and base sequence.
            assert_eq!(
                (
                    h.base_offset,
                    h.last_offset(),
                    h.producer_id,
                    h.base_sequence,
                    h.records_count
                ),
                (10, 12, 7, 10, 2),
                "{c:?}"
            );
            assert_eq!(h.compression(), raw[22] as i16 & 7);
            let set = RecordBatchDecoder::decode(&mut out.clone()).expect("decode");
            let got: Vec<(i64, i64)> = set
                .records
                .iter()
                .map(|r| (r.offset, r.timestamp))
                .collect();
            assert_eq!(got, vec![(11, 101), (12, 102)], "{c:?}");
            assert_eq!(h.max_timestamp, 102);
            assert_eq!(
                rewrite_batch(&raw, |_, _, _, _| false, CAP).expect("rewrite"),
                Rewrite::Dropped
            );
            assert_eq!(
                rewrite_batch(&raw, |_, _, _, _| true, CAP).expect("rewrite"),
                Rewrite::Unchanged
            );
            // A LogAppendTime batch stays LogAppendTime with its append time.
            crate::codec::kafka::batch::set_log_append_time(&mut raw, 5_000);
            let Rewrite::Rebuilt(out) =
                rewrite_batch(&raw, |_, _, o, _| o == 12, CAP).expect("rewrite")
            else {
                panic!("one survivor");
            };
            let h = crate::codec::kafka::batch::validate_record_set(&out).expect("valid")[0];
            assert!(h.is_log_append_time());
            assert_eq!((h.base_offset, h.max_timestamp), (10, 5_000));
        }
    }

    #[test]
    fn ended_transactions_cover_their_batches_and_markers_wait_for_their_data() {
        let mut ended = EndedTxns::default();
        ended.add(5, 2, 4, true); // 2..=3, abort marker at 4
        ended.add(6, 5, 7, false); // 5..=6, commit marker at 7
        ended.add(5, 8, 9, false); // 8, commit marker at 9
        let o = |pid, off| ended.outcome(pid, off);
        assert_eq!(o(5, 1), TxnOutcome::Unknown, "before its first offset");
        assert_eq!(o(5, 2), TxnOutcome::Aborted);
        assert_eq!(o(5, 3), TxnOutcome::Aborted);
        assert_eq!(o(6, 6), TxnOutcome::Committed);
        assert_eq!(o(5, 8), TxnOutcome::Committed);
        assert_eq!(
            o(5, 10),
            TxnOutcome::Unknown,
            "after the last marker: still open"
        );
        assert_eq!(
            o(7, 3),
            TxnOutcome::Unknown,
            "a producer the index does not know"
        );
        assert_eq!(ended.len(), 3);
        let policy = CompactionPolicy {
            delete_retention_ms: 100,
            ..POLICY
        };
        let mut m = MarkerTracker::default();
        m.batch_kept(6);
        assert!(!m.marker_removable(6, 0, policy, 1_000), "its data is left");
        assert!(
            m.marker_removable(6, 0, policy, 1_000),
            "the next one has none"
        );
        assert!(
            !m.marker_removable(5, 950, policy, 1_000),
            "inside delete.retention.ms"
        );
    }

    #[test]
    fn undecodable_batches_are_errors_not_panics() {
        let mut raw = encode(&[rec(0, "a", Some("1"), 1)], Compression::None).to_vec();
        // The record claims 2^31-1 headers (the last byte is its header count 0).
        let n = raw.len();
        raw.truncate(n - 1);
        raw.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
        let len = (raw.len() - 12) as i32;
        raw[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&raw[21..]);
        raw[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(OffsetMap::new()
            .add_batch(&raw, CAP, &EndedTxns::default())
            .is_err());
        assert!(rewrite_batch(&raw, |_, _, _, _| true, CAP).is_err());
    }
}

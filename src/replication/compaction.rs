//! Log compaction (`cleanup.policy=compact` / `compact,delete`): the pure decisions (which
//! segments to clean, which records survive) and the driver that rewrites segments.
//!
//! A pass cleans a prefix of the non-active segments below the high watermark whose newest
//! record is at least `min.compaction.lag.ms` old, when the share of bytes written since the
//! last clean (the dirty part) is at least `min.cleanable.dirty.ratio`. Within that prefix it
//! keeps, per key, only the record with the highest offset; a tombstone (null value) that
//! survives is dropped too once it is older than `delete.retention.ms`. Batches are re-encoded
//! with their original offsets (gaps allowed), timestamps and producer id / epoch / sequences
//! and fresh CRCs. Every replica compacts its own copy (below its high watermark); followers
//! accept the offset gaps a compacted leader sends.

use super::partition::Partition;
use super::retention::effective_config;
use super::segments::SegmentMeta;
use crate::config::Config;
use crate::metadata::TopicImage;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use std::collections::HashMap;
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

/// The newest offset of every key among `records` (offset order not required).
pub fn latest_offsets<'a>(records: impl Iterator<Item = &'a Record>) -> HashMap<Bytes, i64> {
    let mut map: HashMap<Bytes, i64> = HashMap::new();
    for r in records {
        if let Some(k) = &r.key {
            let e = map.entry(k.clone()).or_insert(r.offset);
            *e = (*e).max(r.offset);
        }
    }
    map
}

/// Whether a record survives compaction: the newest of its key, and not an expired tombstone.
/// Records without a key (only possible from before the topic was compacted) are kept.
pub fn keep_record(
    r: &Record,
    latest: &HashMap<Bytes, i64>,
    policy: CompactionPolicy,
    now_ms: i64,
) -> bool {
    let Some(k) = &r.key else { return true };
    if latest.get(k).is_some_and(|o| *o > r.offset) {
        return false;
    }
    !(r.value.is_none() && now_ms.saturating_sub(r.timestamp) > policy.delete_retention_ms)
}

/// Re-encodes the survivors of one stored batch (`None` if none survive). Offsets,
/// timestamps, producer fields and compression are kept; the CRC is recomputed.
///
/// # Errors
/// The batch cannot be decoded or encoded.
pub fn rewrite_batch(raw: &[u8], keep: impl Fn(&Record) -> bool) -> Result<Option<Bytes>, String> {
    let mut buf = Bytes::copy_from_slice(raw);
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
    let compression = match raw.get(22).map(|a| a & 0x07) {
        Some(1) => Compression::Gzip,
        Some(2) => Compression::Snappy,
        Some(3) => Compression::Lz4,
        Some(4) => Compression::Zstd,
        _ => Compression::None,
    };
    let mut kept: Vec<Record> = set.records.into_iter().filter(|r| keep(r)).collect();
    let Some(first) = kept.first().map(|r| r.offset) else {
        return Ok(None);
    };
    for r in &mut kept {
        if r.producer_id < 0 {
            // Keeps `offset - sequence` constant so the encoder writes one batch with base
            // sequence -1 (no producer).
            r.sequence = i32::try_from(r.offset - first)
                .unwrap_or(i32::MAX)
                .wrapping_sub(1);
        }
    }
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        kept.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| e.to_string())?;
    // The encoder has no timestamp-type option: restore LogAppendTime (attribute bit 3 and
    // the batch max timestamp), which also recomputes the CRC.
    if raw.get(22).is_some_and(|a| a & 0x08 != 0) {
        let max_ts = raw
            .get(35..43)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(-1, i64::from_be_bytes);
        if out.len() >= 61 {
            crate::codec::kafka::batch::set_log_append_time(&mut out, max_ts);
        }
    }
    Ok(Some(out.freeze()))
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
        p.high_watermark(),
        CLEAN_BYTES_PER_PASS_MAX,
    ) else {
        return;
    };
    match p
        .compact_segments(segments[..n].to_vec(), policy, now_ms)
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
        let latest = latest_offsets(recs.iter());
        let kept: Vec<i64> = recs
            .iter()
            .filter(|r| keep_record(r, &latest, POLICY, 4500))
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
        let mut raw = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut raw,
            recs.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        let latest = latest_offsets(recs.iter());
        let out = rewrite_batch(&raw, |r| keep_record(r, &latest, POLICY, 200))
            .expect("rewrite")
            .expect("survivors");
        let headers =
            crate::codec::kafka::batch::validate_record_set(&out).expect("valid CRC and header");
        assert_eq!(
            (
                headers[0].base_offset,
                headers[0].producer_id,
                headers[0].base_sequence
            ),
            (11, 7, 11)
        );
        let set = RecordBatchDecoder::decode(&mut out.clone()).expect("decode");
        let got: Vec<(i64, i64)> = set
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect();
        assert_eq!(got, vec![(11, 101), (12, 102)]);
        assert_eq!(rewrite_batch(&raw, |_| false).expect("rewrite"), None);
        // A LogAppendTime batch stays LogAppendTime with its append time.
        crate::codec::kafka::batch::set_log_append_time(&mut raw, 5_000);
        let out = rewrite_batch(&raw, |r| r.offset == 12)
            .expect("rewrite")
            .expect("survivor");
        let h = crate::codec::kafka::batch::validate_record_set(&out).expect("valid")[0];
        assert!(h.is_log_append_time());
        assert_eq!((h.base_offset, h.max_timestamp), (12, 5_000));
    }
}

//! Time- and size-based retention: the pure decision ([`plan_retention`]) and the periodic
//! driver ([`run_retention`]) that indexes new data into segments, deletes whole expired
//! segments with one range delete each, and runs the compaction pass (`compaction.rs`).
//!
//! Kafka's rules: only segments entirely below the high watermark are candidates; the active
//! (last) segment is never deleted; segments go oldest first while their newest record is older
//! than `retention.ms` (`-1` = forever) or the partition is larger than `retention.bytes` by at
//! least the segment's size (`-1` = unbounded); the first segment that qualifies for neither
//! stops the pass. Only the partition leader deletes; the log start offset it reaches is
//! persisted and reported to clients (ListOffsets earliest, Fetch OFFSET_OUT_OF_RANGE).

use super::partition::Partition;
use super::segments::{RollPolicy, SegmentMeta};
use crate::config::topic::topic_config_def;
use crate::config::Config;
use crate::metadata::TopicImage;
use crate::types::now_ms;
use std::sync::Arc;
use tracing::{info, warn};

/// Segments deleted per partition per pass at most (bounded work; the next pass continues).
pub const SEGMENTS_PER_PASS_MAX: usize = 64;
/// Batch bytes indexed per partition per pass at most.
pub const INDEX_BYTES_PER_PASS_MAX: u64 = 256 << 20;

/// A topic's retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `cleanup.policy` contains `delete`.
    pub delete: bool,
    /// `retention.ms`; negative = keep forever.
    pub retention_ms: i64,
    /// `retention.bytes`; negative = unbounded.
    pub retention_bytes: i64,
}

/// What a retention pass should do to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Oldest-first prefix of the segment list to delete.
    pub delete: Vec<SegmentMeta>,
    /// The log start offset after the deletion (the first kept segment's base offset).
    pub new_log_start: i64,
}

/// Decides which segments to delete. `segments` are in offset order; the last one is active.
pub fn plan_retention(
    segments: &[SegmentMeta],
    policy: RetentionPolicy,
    now_ms: i64,
    high_watermark: i64,
    max_segments: usize,
) -> Option<RetentionPlan> {
    if !policy.delete || segments.len() < 2 {
        return None;
    }
    let total: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut excess: i64 = if policy.retention_bytes < 0 {
        0
    } else {
        i64::try_from(total)
            .unwrap_or(i64::MAX)
            .saturating_sub(policy.retention_bytes)
    };
    let mut delete = Vec::new();
    for pair in segments.windows(2) {
        let (seg, next) = (pair[0], pair[1]);
        if delete.len() >= max_segments || next.base_offset > high_watermark {
            break;
        }
        let expired = policy.retention_ms >= 0
            && seg.max_timestamp >= 0
            && now_ms.saturating_sub(seg.max_timestamp) > policy.retention_ms;
        let seg_bytes = i64::try_from(seg.bytes).unwrap_or(i64::MAX);
        let oversize = policy.retention_bytes >= 0 && excess >= seg_bytes;
        if !(expired || oversize) {
            break;
        }
        excess = excess.saturating_sub(seg_bytes);
        delete.push(seg);
    }
    let kept = segments.get(delete.len())?;
    (!delete.is_empty()).then_some(RetentionPlan {
        delete,
        new_log_start: kept.base_offset,
    })
}

/// A topic config's effective value: the topic override, else the broker default.
pub fn effective_config(config: &Config, topic: &TopicImage, name: &str) -> Option<String> {
    if let Some(v) = topic.configs.get(name) {
        return Some(v.clone());
    }
    topic_config_def(name).map(|d| config.topic_default(d).0)
}

fn config_i64(config: &Config, topic: &TopicImage, name: &str, fallback: i64) -> i64 {
    effective_config(config, topic, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(fallback)
}

/// The topic's roll policy (`segment.bytes`, `segment.ms`).
pub fn roll_policy(config: &Config, topic: &TopicImage) -> RollPolicy {
    RollPolicy {
        segment_bytes: u64::try_from(config_i64(config, topic, "segment.bytes", 1 << 30))
            .unwrap_or(1 << 30)
            .max(1),
        segment_ms: config_i64(config, topic, "segment.ms", 604_800_000),
    }
}

/// The topic's retention policy.
pub fn retention_policy(config: &Config, topic: &TopicImage) -> RetentionPolicy {
    let cleanup =
        effective_config(config, topic, "cleanup.policy").unwrap_or_else(|| "delete".into());
    RetentionPolicy {
        delete: cleanup.split(',').any(|p| p.trim() == "delete"),
        retention_ms: config_i64(config, topic, "retention.ms", 604_800_000),
        retention_bytes: config_i64(config, topic, "retention.bytes", -1),
    }
}

/// RocksDB's live size of the whole `part_log` column family (SST + memtables).
async fn part_log_bytes(p: &Partition) -> u64 {
    let store = p.store().clone();
    crate::storage::blocking(move || Ok(store.cf_size_bytes(crate::storage::Cf::PartLog)))
        .await
        .unwrap_or(0)
}

/// Indexes the data appended since the last pass into segments (rolling by the topic's
/// `segment.bytes` / `segment.ms`); false when indexing failed (logged).
pub async fn index_partition(p: &Arc<Partition>, config: &Config, topic: &TopicImage) -> bool {
    let roll = roll_policy(config, topic);
    if let Err(e) = p.index_segments(roll, INDEX_BYTES_PER_PASS_MAX).await {
        warn!(topic = %p.topic, partition = p.partition, error = %e, "segment indexing failed");
        return false;
    }
    true
}

/// One retention pass over one partition: index new data, then (leader only) delete.
pub async fn retain_partition(p: &Arc<Partition>, config: &Config, topic: &TopicImage) {
    if !index_partition(p, config, topic).await {
        return;
    }
    if !p.is_leader() {
        return;
    }
    let policy = retention_policy(config, topic);
    let segments = p.segments().await;
    let Some(plan) = plan_retention(
        &segments,
        policy,
        now_ms(),
        p.high_watermark(),
        SEGMENTS_PER_PASS_MAX,
    ) else {
        return;
    };
    let part_log_bytes_before = part_log_bytes(p).await;
    let deleted = p.delete_segments(&plan).await;
    let part_log_bytes_after = part_log_bytes(p).await;
    match deleted {
        Ok(()) => info!(
            topic = %p.topic, partition = p.partition, segments = plan.delete.len(),
            bytes = plan.delete.iter().map(|s| s.bytes).sum::<u64>(), log_start_offset = plan.new_log_start,
            part_log_bytes_before, part_log_bytes_after,
            "retention deleted segments"
        ),
        Err(e) => {
            warn!(topic = %p.topic, partition = p.partition, error = %e, "retention delete failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, last: i64, bytes: u64, ts: i64) -> SegmentMeta {
        SegmentMeta {
            base_offset: base,
            last_offset: last,
            bytes,
            max_timestamp: ts,
            created_ms: ts,
        }
    }

    fn segs() -> Vec<SegmentMeta> {
        vec![
            seg(0, 9, 100, 1_000),
            seg(10, 19, 100, 2_000),
            seg(20, 29, 100, 3_000),
            seg(30, 31, 20, 4_000),
        ]
    }

    const TIME: RetentionPolicy = RetentionPolicy {
        delete: true,
        retention_ms: 1_500,
        retention_bytes: -1,
    };

    #[test]
    fn time_retention_deletes_expired_prefix_never_the_active_segment() {
        let p = plan_retention(&segs(), TIME, 3_600, 32, 64).expect("plan");
        assert_eq!(
            p.delete.iter().map(|s| s.base_offset).collect::<Vec<_>>(),
            vec![0, 10]
        );
        assert_eq!(p.new_log_start, 20);
        // Everything expired: still the active segment stays.
        let p = plan_retention(&segs(), TIME, 1_000_000, 32, 64).expect("plan");
        assert_eq!(p.delete.len(), 3);
        assert_eq!(p.new_log_start, 30);
        // Nothing expired.
        assert_eq!(plan_retention(&segs(), TIME, 2_000, 32, 64), None);
    }

    #[test]
    fn forever_and_compact_only_delete_nothing() {
        let forever = RetentionPolicy {
            retention_ms: -1,
            ..TIME
        };
        assert_eq!(plan_retention(&segs(), forever, i64::MAX, 32, 64), None);
        let compact = RetentionPolicy {
            delete: false,
            ..TIME
        };
        assert_eq!(plan_retention(&segs(), compact, i64::MAX, 32, 64), None);
        assert_eq!(plan_retention(&segs()[..1], TIME, i64::MAX, 32, 64), None);
    }

    #[test]
    fn size_retention_keeps_total_within_limit() {
        let size = RetentionPolicy {
            delete: true,
            retention_ms: -1,
            retention_bytes: 150,
        };
        // 320 bytes, 170 over: the first segment (100) goes; the second would leave 120 < 150.
        let p = plan_retention(&segs(), size, 0, 32, 64).expect("plan");
        assert_eq!(
            p.delete.iter().map(|s| s.base_offset).collect::<Vec<_>>(),
            vec![0]
        );
        let size0 = RetentionPolicy {
            retention_bytes: 0,
            ..size
        };
        assert_eq!(
            plan_retention(&segs(), size0, 0, 32, 64)
                .expect("plan")
                .delete
                .len(),
            3
        );
    }

    #[test]
    fn only_below_the_high_watermark_and_bounded() {
        // The second segment ends past the HW (next base 20 > hw 15): only the first may go.
        let p = plan_retention(&segs(), TIME, 1_000_000, 15, 64).expect("plan");
        assert_eq!(p.delete.len(), 1);
        assert_eq!(plan_retention(&segs(), TIME, 1_000_000, 5, 64), None);
        let p = plan_retention(&segs(), TIME, 1_000_000, 32, 2).expect("plan");
        assert_eq!((p.delete.len(), p.new_log_start), (2, 20));
    }
}

//! Segments over the RocksDB partition log (pure). A segment is a run of consecutive record
//! batches `[base_offset, last_offset]`; because `part_log` keys are `… | base_offset`, a whole
//! segment is removable with one range delete `[base_offset, next segment's base_offset)`.
//!
//! The index lives in `part_state` under tag `g` + segment base offset. It is built from the
//! batch headers below the high watermark (data that is never truncated), so every replica
//! derives the same segments from the same log, whichever path appended the batches.

/// One segment of a partition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMeta {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Stored batch bytes in the segment.
    pub bytes: u64,
    /// Largest batch max-timestamp in the segment (`-1` if none).
    pub max_timestamp: i64,
    /// The segment's rolling base time: the max timestamp of its first batch (Kafka's
    /// `rollingBasedTimestamp`); `segment.ms` is measured from it.
    pub created_ms: i64,
}

/// Encoded size of a [`SegmentMeta`] value.
pub const SEGMENT_VALUE_LEN: usize = 40;

impl SegmentMeta {
    /// A segment holding only `b`.
    pub fn starting_with(b: &BatchSummary) -> Self {
        Self {
            base_offset: b.base_offset,
            last_offset: b.last_offset,
            bytes: b.bytes,
            max_timestamp: b.max_timestamp,
            created_ms: b.max_timestamp,
        }
    }

    /// Fixed-width big-endian encoding (versioned by its length).
    pub fn encode(&self) -> [u8; SEGMENT_VALUE_LEN] {
        let mut v = [0u8; SEGMENT_VALUE_LEN];
        v[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        v[8..16].copy_from_slice(&self.last_offset.to_be_bytes());
        v[16..24].copy_from_slice(&self.bytes.to_be_bytes());
        v[24..32].copy_from_slice(&self.max_timestamp.to_be_bytes());
        v[32..40].copy_from_slice(&self.created_ms.to_be_bytes());
        v
    }

    /// Decodes a stored value; `None` if it is not a valid segment.
    pub fn decode(v: &[u8]) -> Option<Self> {
        if v.len() != SEGMENT_VALUE_LEN {
            return None;
        }
        let i = |r: std::ops::Range<usize>| {
            v.get(r)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(i64::from_be_bytes)
        };
        let s = Self {
            base_offset: i(0..8)?,
            last_offset: i(8..16)?,
            bytes: u64::try_from(i(16..24)?).ok()?,
            max_timestamp: i(24..32)?,
            created_ms: i(32..40)?,
        };
        (s.base_offset >= 0 && s.last_offset >= s.base_offset).then_some(s)
    }
}

/// What the index needs to know about one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: u64,
    pub max_timestamp: i64,
}

/// When to roll to a new segment (`segment.bytes`, `segment.ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    pub segment_bytes: u64,
    pub segment_ms: i64,
}

/// Whether `next` starts a new segment after `active` (Kafka's `shouldRoll`: the segment
/// would grow past `segment.bytes`, or the batch's timestamp is more than `segment.ms` past
/// the segment's first batch). A non-empty segment is always kept, however large the batch.
pub fn should_roll(active: &SegmentMeta, next: &BatchSummary, policy: RollPolicy) -> bool {
    let too_big =
        active.bytes > 0 && active.bytes.saturating_add(next.bytes) > policy.segment_bytes;
    let too_old = active.created_ms >= 0
        && next.max_timestamp.saturating_sub(active.created_ms) > policy.segment_ms;
    too_big || too_old
}

/// Adds `batch` to the index (extending the last segment or rolling a new one) and returns the
/// segment that changed, to be persisted. Batches must arrive in offset order.
///
/// # Panics
/// If `batch` does not come after the last indexed segment (a broken caller invariant).
pub fn index_batch(
    index: &mut Vec<SegmentMeta>,
    batch: &BatchSummary,
    policy: RollPolicy,
) -> SegmentMeta {
    assert!(
        batch.last_offset >= batch.base_offset,
        "batch offsets out of order"
    );
    match index.last_mut() {
        Some(active) if !should_roll(active, batch, policy) => {
            assert!(
                batch.base_offset > active.last_offset,
                "batch indexed twice"
            );
            active.last_offset = batch.last_offset;
            active.bytes = active.bytes.saturating_add(batch.bytes);
            active.max_timestamp = active.max_timestamp.max(batch.max_timestamp);
            *active
        }
        last => {
            assert!(
                last.is_none_or(|a| batch.base_offset > a.last_offset),
                "batch indexed twice"
            );
            let s = SegmentMeta::starting_with(batch);
            index.push(s);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(base: i64, n: i64, bytes: u64, ts: i64) -> BatchSummary {
        BatchSummary {
            base_offset: base,
            last_offset: base + n - 1,
            bytes,
            max_timestamp: ts,
        }
    }

    const P: RollPolicy = RollPolicy {
        segment_bytes: 100,
        segment_ms: 1000,
    };

    #[test]
    fn rolls_by_bytes_and_time() {
        let mut idx = Vec::new();
        index_batch(&mut idx, &b(0, 2, 60, 10), P);
        index_batch(&mut idx, &b(2, 1, 40, 20), P); // 100 bytes: still fits
        assert_eq!(idx.len(), 1);
        index_batch(&mut idx, &b(3, 1, 1, 30), P); // 101 > 100: roll
        assert_eq!(idx.len(), 2);
        assert_eq!(
            (
                idx[0].base_offset,
                idx[0].last_offset,
                idx[0].bytes,
                idx[0].max_timestamp
            ),
            (0, 2, 100, 20)
        );
        index_batch(&mut idx, &b(4, 1, 1, 1031), P); // 1031 - 30 > 1000: roll
        assert_eq!(idx.len(), 3);
        // One batch larger than a segment still gets a segment of its own.
        index_batch(&mut idx, &b(5, 1, 500, 1032), P);
        index_batch(&mut idx, &b(6, 1, 1, 1033), P);
        assert_eq!(
            idx.iter().map(|s| s.base_offset).collect::<Vec<_>>(),
            vec![0, 3, 4, 5, 6]
        );
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let s = SegmentMeta {
            base_offset: 5,
            last_offset: 9,
            bytes: 123,
            max_timestamp: -1,
            created_ms: 77,
        };
        assert_eq!(SegmentMeta::decode(&s.encode()), Some(s));
        assert_eq!(SegmentMeta::decode(&[0u8; 39]), None);
        let bad = SegmentMeta {
            base_offset: 9,
            last_offset: 5,
            ..s
        };
        assert_eq!(SegmentMeta::decode(&bad.encode()), None);
    }
}

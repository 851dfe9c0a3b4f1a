//! Record batch v2 (magic 2) headers. Batches are stored as received; the broker only reads the
//! 61-byte header, checks the CRC32C, and rewrites `base_offset` / `partition_leader_epoch`
//! (both outside the CRC). Records are never decoded on the produce path.

use bytes::{Bytes, BytesMut};

/// Size of the v2 batch header.
pub const HEADER_LEN: usize = 61;
/// `base_offset (8) + batch_length (4)`: bytes before what `batch_length` counts.
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

/// Why a produced record set was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record set truncated: {0}")]
    Truncated(&'static str),
    #[error("unsupported magic {0}; only record batch v2 is accepted")]
    Magic(i8),
    #[error("CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    Crc { stored: u32, computed: u32 },
    #[error("invalid batch: {0}")]
    Invalid(&'static str),
}

/// The header fields of one v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the header at the start of `b` (which must hold at least `HEADER_LEN` bytes).
    ///
    /// # Errors
    /// `Truncated` if `b` is shorter than a header.
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < HEADER_LEN {
            return Err(BatchError::Truncated("batch header"));
        }
        Ok(Self {
            base_offset: be_i64(b, 0),
            batch_length: be_i32(b, 8),
            partition_leader_epoch: be_i32(b, 12),
            magic: b[16] as i8,
            crc: be_i32(b, 17) as u32,
            attributes: be_i16(b, 21),
            last_offset_delta: be_i32(b, 23),
            base_timestamp: be_i64(b, 27),
            max_timestamp: be_i64(b, 35),
            producer_id: be_i64(b, 43),
            producer_epoch: be_i16(b, 51),
            base_sequence: be_i32(b, 53),
            records_count: be_i32(b, 57),
        })
    }

    /// Total size of this batch on the wire.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The sequence number of the batch's last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// Splits and validates a produced record set: every batch is magic 2, complete, CRC-correct
/// and self-consistent. Returns the headers in order.
///
/// # Errors
/// The first problem found; nothing of the set may then be appended.
pub fn validate_record_set(set: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    if set.is_empty() {
        return Err(BatchError::Invalid("empty record set"));
    }
    while pos < set.len() {
        let rest = &set[pos..];
        if rest.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Truncated("batch length prefix"));
        }
        let magic = rest[16] as i8;
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        let h = BatchHeader::parse(rest)?;
        if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Invalid("batch length smaller than its header"));
        }
        let total = h.total_len();
        if total > rest.len() {
            return Err(BatchError::Truncated("batch body"));
        }
        let computed = crc32c::crc32c(&rest[CRC_START..total]);
        if computed != h.crc {
            return Err(BatchError::Crc {
                stored: h.crc,
                computed,
            });
        }
        if h.last_offset_delta < 0 || h.records_count < 0 {
            return Err(BatchError::Invalid("negative record count or offset delta"));
        }
        if h.records_count == 0 && !h.is_control() {
            return Err(BatchError::Invalid("batch without records"));
        }
        if h.records_count > 0 && h.last_offset_delta < h.records_count - 1 {
            // Compaction leaves fewer records than the offset range (Kafka keeps a cleaned
            // batch's last offset), never more.
            return Err(BatchError::Invalid(
                "more records than the batch's offset range",
            ));
        }
        if h.compression() > 4 {
            return Err(BatchError::Invalid("unknown compression codec"));
        }
        if h.has_producer_id() && (h.producer_epoch < 0 || h.base_sequence < 0) && !h.is_control() {
            return Err(BatchError::Invalid(
                "idempotent batch without epoch or sequence",
            ));
        }
        out.push(h);
        pos += total;
    }
    Ok(out)
}

/// The checks Kafka's `LogValidator.validateBatch` makes on a batch that comes from a client
/// (on top of [`validate_record_set`]): the offset range matches the record count, and no
/// control batch.
///
/// # Errors
/// `Invalid` with Kafka's reason.
pub fn check_produced_header(h: &BatchHeader) -> Result<(), BatchError> {
    if h.records_count <= 0 {
        return Err(BatchError::Invalid(
            "invalid reported count for record batch",
        ));
    }
    if h.last_offset_delta != h.records_count - 1 {
        return Err(BatchError::Invalid(
            "inconsistent batch offset range and count of records",
        ));
    }
    if h.is_control() {
        return Err(BatchError::Invalid(
            "clients are not allowed to write control records",
        ));
    }
    Ok(())
}

/// The offset after the last batch of a record set of whole stored batches (headers only, no
/// CRC check: the set was verified when read); `None` for an empty or malformed set.
#[must_use]
pub fn end_offset(set: &[u8]) -> Option<i64> {
    let mut pos = 0usize;
    let mut end = None;
    while pos + HEADER_LEN <= set.len() {
        let h = BatchHeader::parse(&set[pos..]).ok()?;
        let len = h.total_len();
        if len < HEADER_LEN {
            return None;
        }
        end = Some(h.last_offset() + 1);
        pos += len;
    }
    end
}

/// Rewrites the batch's max timestamp (CreateTime) and its CRC, as Kafka does when the records'
/// largest timestamp differs from what the producer put in the header.
pub fn set_max_timestamp(batch: &mut BytesMut, max_timestamp: i64) {
    batch[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Returns `batch` (one whole v2 batch) with `base_offset` and `partition_leader_epoch`
/// rewritten. Neither field is covered by the CRC, so the CRC stays valid.
pub fn assign_offsets(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Bytes {
    debug_assert!(batch.len() >= HEADER_LEN);
    let mut b = BytesMut::from(batch);
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    b.freeze()
}

/// Switches a batch to LogAppendTime with `now_ms` as its max timestamp and recomputes the CRC
/// (both fields are inside it).
pub fn set_log_append_time(batch: &mut BytesMut, now_ms: i64) {
    let attrs = be_i16(batch, 21) | 0x08;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Marks a batch built by [`make_batch`] transactional (attribute bit 4; fresh CRC).
    pub(crate) fn set_transactional(b: &mut [u8]) {
        let attrs = be_i16(b, 21) | 0x10;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    /// Builds a valid uncompressed v2 batch with `n` small records.
    pub(crate) fn make_batch(n: i32, producer_id: i64, epoch: i16, base_seq: i32) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..n {
            let r = [
                0u8,            // attributes
                0u8,            // timestamp delta (varint 0)
                (i as u8) << 1, // offset delta (zigzag varint, small)
                1u8,            // key length -1 (zigzag)
                2u8,            // value length 1
                b'x',
                0u8, // headers count
            ];
            records.push(r.len() as u8 * 2);
            records.extend_from_slice(&r);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // batch length, fixed below
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, fixed below
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(n - 1).to_be_bytes());
        b.extend_from_slice(&1_000i64.to_be_bytes());
        b.extend_from_slice(&1_000i64.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&base_seq.to_be_bytes());
        b.extend_from_slice(&n.to_be_bytes());
        b.extend_from_slice(&records);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn valid_batches_pass_and_offsets_rewrite_keeps_crc() {
        let mut set = make_batch(3, -1, -1, -1);
        set.extend(make_batch(2, 7, 0, 3));
        let hs = validate_record_set(&set).expect("valid");
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[1].last_sequence(), 4);
        let one = &set[..hs[0].total_len()];
        let moved = assign_offsets(one, 42, 5);
        let h = validate_record_set(&moved).expect("still valid")[0];
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (42, 5, 44)
        );
    }

    #[test]
    fn corruptions_are_rejected() {
        let good = make_batch(2, -1, -1, -1);
        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(
            validate_record_set(&bad_crc),
            Err(BatchError::Crc { .. })
        ));
        let mut magic1 = good.clone();
        magic1[16] = 1;
        assert_eq!(validate_record_set(&magic1), Err(BatchError::Magic(1)));
        assert!(matches!(
            validate_record_set(&good[..good.len() - 1]),
            Err(BatchError::Truncated(_))
        ));
        assert!(validate_record_set(&[]).is_err());
        let mut t = BytesMut::from(&good[..]);
        set_log_append_time(&mut t, 99);
        let h = validate_record_set(&t).expect("crc recomputed")[0];
        assert!(h.is_log_append_time() && h.max_timestamp == 99);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate_record_set(&data);
        }

        #[test]
        fn mutated_batches_never_panic(pos in 0usize..80, byte in any::<u8>()) {
            let mut b = make_batch(3, 1, 0, 0);
            let p = pos % b.len();
            b[p] = byte;
            let _ = validate_record_set(&b);
        }
    }
}

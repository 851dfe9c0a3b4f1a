//! The records of `__transaction_state`, in Kafka's own schemas (`TransactionLogKey` and
//! `TransactionLogValue` of `transaction-coordinator/src/main/resources/common/message/`), so
//! that the log reads like Kafka's. Key: version 0, the transactional id. Value v0 (Kafka
//! 2.x–3.x, fixed fields) or v1 (flexible, KIP-890's tagged fields: previous and next producer
//! id, client transaction version); v1 is written only when a tagged field differs from its
//! default, as Kafka does for clients of transaction version < 2. A null value is a tombstone
//! (an expired transactional id). Sans-io; every length is checked against the bytes left
//! before anything is sized from it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: i16 },
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Kafka's `TransactionState` (the stored byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnStatus {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnStatus {
    #[must_use]
    pub fn code(self) -> i8 {
        match self {
            TxnStatus::Empty => 0,
            TxnStatus::Ongoing => 1,
            TxnStatus::PrepareCommit => 2,
            TxnStatus::PrepareAbort => 3,
            TxnStatus::CompleteCommit => 4,
            TxnStatus::CompleteAbort => 5,
            TxnStatus::Dead => 6,
            TxnStatus::PrepareEpochFence => 7,
        }
    }

    #[must_use]
    pub fn from_code(c: i8) -> Option<Self> {
        Some(match c {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            6 => TxnStatus::Dead,
            7 => TxnStatus::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name `kafka-transactions.sh` and DescribeTransactions show.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
            TxnStatus::Dead => "Dead",
            TxnStatus::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The states Kafka's `TransactionMetadata` may move to this one from
    /// (`validPreviousStates`).
    #[must_use]
    pub fn valid_previous(self) -> &'static [TxnStatus] {
        use TxnStatus::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }
}

/// The partitions of one topic in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTopic {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// `TransactionLogValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    /// v1 tag 0 (default -1).
    pub previous_producer_id: i64,
    /// v1 tag 1 (default -1).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    /// Null on the wire is read as empty.
    pub partitions: Vec<TxnTopic>,
    pub last_update_ms: i64,
    pub start_ms: i64,
    /// v1 tag 2 (default 0).
    pub client_transaction_version: i16,
}

// ---- keys ------------------------------------------------------------------------------------

/// Encodes `TransactionLogKey` v0.
#[must_use]
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(0);
    put_str(&mut b, transactional_id);
    b.freeze()
}

/// Decodes a key.
///
/// # Errors
/// Truncated, or a version other than 0.
pub fn decode_key(raw: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader(raw);
    let version = r.i16("key version")?;
    if version != 0 {
        return Err(RecordError::Version {
            what: "TransactionLogKey",
            version,
        });
    }
    r.str("transactional id")
}

// ---- values ----------------------------------------------------------------------------------

impl TxnLogValue {
    fn needs_v1(&self) -> bool {
        self.previous_producer_id != -1
            || self.next_producer_id != -1
            || self.client_transaction_version != 0
    }
}

/// Encodes a value (v0 unless a v1 tagged field is set).
#[must_use]
pub fn encode_value(v: &TxnLogValue) -> Bytes {
    let flexible = v.needs_v1();
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(i16::from(flexible));
    b.put_i64(v.producer_id);
    b.put_i16(v.producer_epoch);
    b.put_i32(v.timeout_ms);
    b.put_i8(v.status.code());
    if flexible {
        put_uvarint(&mut b, v.partitions.len() as u64 + 1);
    } else {
        b.put_i32(i32::try_from(v.partitions.len()).unwrap_or(i32::MAX));
    }
    for t in &v.partitions {
        if flexible {
            put_compact_str(&mut b, &t.topic);
            put_uvarint(&mut b, t.partitions.len() as u64 + 1);
        } else {
            put_str(&mut b, &t.topic);
            b.put_i32(i32::try_from(t.partitions.len()).unwrap_or(i32::MAX));
        }
        for p in &t.partitions {
            b.put_i32(*p);
        }
        if flexible {
            put_uvarint(&mut b, 0); // the partition schema's tagged fields
        }
    }
    b.put_i64(v.last_update_ms);
    b.put_i64(v.start_ms);
    if flexible {
        let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tags.push((0, v.previous_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tags.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_transaction_version != 0 {
            tags.push((2, v.client_transaction_version.to_be_bytes().to_vec()));
        }
        put_uvarint(&mut b, tags.len() as u64);
        for (tag, data) in tags {
            put_uvarint(&mut b, tag);
            put_uvarint(&mut b, data.len() as u64);
            b.put_slice(&data);
        }
    }
    b.freeze()
}

/// Decodes a value (v0 or v1).
///
/// # Errors
/// Truncated fields, an unknown version or status, lengths larger than the bytes left.
pub fn decode_value(raw: &[u8]) -> Result<TxnLogValue, RecordError> {
    let mut r = Reader(raw);
    let version = r.i16("value version")?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::Version {
            what: "TransactionLogValue",
            version,
        });
    }
    let flexible = version >= 1;
    let producer_id = r.i64("producer id")?;
    let producer_epoch = r.i16("producer epoch")?;
    let timeout_ms = r.i32("transaction timeout")?;
    let status = TxnStatus::from_code(r.i8("transaction status")?)
        .ok_or(RecordError::Invalid("transaction status"))?;
    // Each topic takes at least 3 bytes (v1: name length, array length, tags), each partition 4.
    let topics = if flexible {
        r.compact_len("partitions", 3)?
    } else {
        r.array_len("partitions", 6)?
    };
    let mut partitions = Vec::with_capacity(topics.unwrap_or(0).min(64));
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            r.compact_str("topic")?
        } else {
            r.str("topic")?
        };
        let n = if flexible {
            r.compact_len("partition ids", 4)?
        } else {
            r.array_len("partition ids", 4)?
        }
        .ok_or(RecordError::Invalid("null partition ids"))?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(r.i32("partition id")?);
        }
        if flexible {
            r.skip_tags()?;
        }
        partitions.push(TxnTopic {
            topic,
            partitions: ids,
        });
    }
    let mut v = TxnLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        status,
        partitions,
        last_update_ms: r.i64("last update timestamp")?,
        start_ms: r.i64("start timestamp")?,
        client_transaction_version: 0,
    };
    if flexible {
        let n = r.uvarint("tag count")?;
        for _ in 0..n {
            let tag = r.uvarint("tag")?;
            let size = usize::try_from(r.uvarint("tag size")?)
                .map_err(|_| RecordError::Invalid("tag size"))?;
            let data = r.take(size, "tagged field")?;
            match (tag, data.len()) {
                (0, 8) => v.previous_producer_id = i64::from_be_bytes(to_array(data)),
                (1, 8) => v.next_producer_id = i64::from_be_bytes(to_array(data)),
                (2, 2) => v.client_transaction_version = i16::from_be_bytes(to_array(data)),
                (0..=2, _) => return Err(RecordError::Invalid("tagged field size")),
                _ => {} // unknown tags are skipped, as Kafka's readers do
            }
        }
    }
    Ok(v)
}

fn to_array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

// ---- primitives ------------------------------------------------------------------------------

fn put_str(b: &mut BytesMut, s: &str) {
    // Transactional ids and topic names come from validated requests (far below i16::MAX).
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(&s.as_bytes()[..len as usize]);
}

fn put_compact_str(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u64 + 1);
    b.put_slice(s.as_bytes());
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn need(&self, n: usize, what: &'static str) -> Result<(), RecordError> {
        if self.0.remaining() < n {
            return Err(RecordError::Truncated(what));
        }
        Ok(())
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        self.need(n, what)?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i8(&mut self, what: &'static str) -> Result<i8, RecordError> {
        self.need(1, what)?;
        Ok(self.0.get_i8())
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        self.need(2, what)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        self.need(4, what)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        self.need(8, what)?;
        Ok(self.0.get_i64())
    }
    fn uvarint(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            self.need(1, what)?;
            let byte = self.0.get_u8();
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Invalid(what))
    }
    fn utf8(bytes: &[u8], what: &'static str) -> Result<String, RecordError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| RecordError::Invalid(what))
    }
    fn str(&mut self, what: &'static str) -> Result<String, RecordError> {
        let len = self.i16(what)?;
        let len = usize::try_from(len).map_err(|_| RecordError::Invalid(what))?;
        let s = self.take(len, what)?;
        Self::utf8(s, what)
    }
    fn compact_str(&mut self, what: &'static str) -> Result<String, RecordError> {
        let n = self.uvarint(what)?;
        let len = usize::try_from(n.checked_sub(1).ok_or(RecordError::Invalid(what))?)
            .map_err(|_| RecordError::Invalid(what))?;
        let s = self.take(len, what)?;
        Self::utf8(s, what)
    }
    /// An i32 array length (-1 = null), refused when `len * min_each` exceeds what is left.
    fn array_len(
        &mut self,
        what: &'static str,
        min_each: usize,
    ) -> Result<Option<usize>, RecordError> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| RecordError::Invalid(what))?;
        self.bounded(n, min_each, what)
    }
    /// A compact array length (0 = null), bounded as [`Self::array_len`].
    fn compact_len(
        &mut self,
        what: &'static str,
        min_each: usize,
    ) -> Result<Option<usize>, RecordError> {
        let n = self.uvarint(what)?;
        if n == 0 {
            return Ok(None);
        }
        let n = usize::try_from(n - 1).map_err(|_| RecordError::Invalid(what))?;
        self.bounded(n, min_each, what)
    }
    fn bounded(
        &self,
        n: usize,
        min_each: usize,
        what: &'static str,
    ) -> Result<Option<usize>, RecordError> {
        if n.saturating_mul(min_each) > self.0.remaining() {
            return Err(RecordError::Truncated(what));
        }
        Ok(Some(n))
    }
    fn skip_tags(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint("tag count")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = usize::try_from(self.uvarint("tag size")?)
                .map_err(|_| RecordError::Invalid("tag size"))?;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> TxnLogValue {
        TxnLogValue {
            producer_id: 4000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: vec![
                TxnTopic {
                    topic: "out".into(),
                    partitions: vec![0, 2],
                },
                TxnTopic {
                    topic: "__consumer_offsets".into(),
                    partitions: vec![17],
                },
            ],
            last_update_ms: 1_700_000_000_500,
            start_ms: 1_700_000_000_000,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn keys_and_values_round_trip_in_kafkas_layout() {
        let k = encode_key("tx-1");
        assert_eq!(&k[..], &[0, 0, 0, 4, b't', b'x', b'-', b'1']);
        assert_eq!(decode_key(&k), Ok("tx-1".into()));
        let v = value();
        let raw = encode_value(&v);
        // v0: version, producer id, epoch, timeout, status, then a classic array.
        assert_eq!(&raw[..2], &[0, 0]);
        assert_eq!(raw[16], 1, "status Ongoing");
        assert_eq!(&raw[17..21], &[0, 0, 0, 2], "two topics");
        assert_eq!(decode_value(&raw), Ok(v.clone()));
        // A KIP-890 field makes it v1 (flexible) and it survives.
        let v1 = TxnLogValue {
            next_producer_id: 4001,
            client_transaction_version: 2,
            status: TxnStatus::PrepareCommit,
            ..v
        };
        let raw1 = encode_value(&v1);
        assert_eq!(&raw1[..2], &[0, 1]);
        assert_eq!(decode_value(&raw1), Ok(v1));
    }

    #[test]
    fn malformed_values_are_errors_and_bounded() {
        let raw = encode_value(&value());
        for cut in 0..raw.len() {
            assert!(decode_value(&raw[..cut]).is_err(), "cut at {cut}");
        }
        // A topic count far beyond the bytes is refused before anything is sized from it.
        let mut huge = raw.to_vec();
        huge[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            decode_value(&huge),
            Err(RecordError::Truncated("partitions"))
        );
        let mut bad = raw.to_vec();
        bad[16] = 42;
        assert_eq!(
            decode_value(&bad),
            Err(RecordError::Invalid("transaction status"))
        );
        let mut v9 = raw.to_vec();
        v9[1] = 9;
        assert!(matches!(
            decode_value(&v9),
            Err(RecordError::Version { .. })
        ));
        assert!(decode_key(&[0, 1, 0, 0]).is_err());
    }

    #[test]
    fn status_codes_and_transitions_are_kafkas() {
        for c in 0..=7 {
            let s = TxnStatus::from_code(c).expect("known");
            assert_eq!(s.code(), c);
        }
        assert_eq!(TxnStatus::from_code(8), None);
        assert!(TxnStatus::PrepareCommit
            .valid_previous()
            .contains(&TxnStatus::Ongoing));
        assert!(!TxnStatus::CompleteCommit
            .valid_previous()
            .contains(&TxnStatus::Ongoing));
    }
}

//! The records of `__transaction_state`, in Kafka's own schemas (`TransactionLogKey` and
//! `TransactionLogValue` of `transaction-coordinator/src/main/resources/common/message/`), so
//! that the log reads like Kafka's. Key: version 0, the transactional id. Value v0 (Kafka
//! 2.x–3.x, fixed fields) or v1 (flexible, KIP-890's tagged fields: previous and next producer
//! id, client transaction version); v1 is written only when a tagged field differs from its
//! default, as Kafka does for clients of transaction version < 2. A null value is a tombstone
//! (an expired transactional id). Sans-io; every length is checked against the bytes left
//! before anything is sized from it.

pub use crate::codec::kafka::schema::RecordError;
use crate::codec::kafka::schema::{put_compact_str, put_str, put_uvarint, Reader};
use bytes::{BufMut, Bytes, BytesMut};

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
            // Transaction version 2 also aborts with nothing open (KIP-890).
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
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

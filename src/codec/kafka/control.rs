//! Control batches (KIP-98): the COMMIT and ABORT markers that the end of a transaction writes
//! into every partition it touched. Kafka's `EndTransactionMarker`: one uncompressed v2 batch
//! with the transactional and control attribute bits, the producer's id and epoch, base
//! sequence -1 and a single record whose key is `(version i16 = 0, type i16)` (0 ABORT,
//! 1 COMMIT; other types such as KRaft's LEADER_CHANGE are not transaction markers) and whose
//! value is `(version i16 = 0, coordinator epoch i32)`.

use super::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::records::{self, put_varint, put_varlong, RecordError};
use std::ops::ControlFlow;

/// Control record types (Kafka's `ControlRecordType`).
const ABORT: i16 = 0;
const COMMIT: i16 = 1;
/// Attributes of a marker batch: transactional (0x10) | control (0x20), no compression.
const MARKER_ATTRIBUTES: i16 = 0x30;
/// A marker record is a few dozen bytes; a control batch whose first record needs more to
/// decode is not one this broker wrote or accepts.
const MARKER_DECODE_MAX: usize = 4096;

/// The end of a transaction in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Encodes the marker batch (base offset 0, partition leader epoch -1: the leader's append
/// assigns both, outside the CRC).
#[must_use]
pub fn encode(producer_id: i64, producer_epoch: i16, marker: Marker, timestamp_ms: i64) -> Vec<u8> {
    let mut body = Vec::with_capacity(16);
    body.push(0u8); // record attributes
    put_varlong(&mut body, 0); // timestamp delta
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, 4);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&(if marker.commit { COMMIT } else { ABORT }).to_be_bytes());
    put_varint(&mut body, 6);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    put_varint(&mut body, 0); // headers
    let mut rec = Vec::with_capacity(body.len() + 2);
    put_varint(&mut rec, i32::try_from(body.len()).unwrap_or(0));
    rec.extend_from_slice(&body);

    let mut b = Vec::with_capacity(HEADER_LEN + rec.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_length = i32::try_from(HEADER_LEN - LOG_OVERHEAD + rec.len()).unwrap_or(0);
    b.extend_from_slice(&batch_length.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    b.extend_from_slice(&MARKER_ATTRIBUTES.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes()); // records
    b.extend_from_slice(&rec);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The transaction marker in control batch `raw` (one whole stored batch), `None` for a
/// batch that is not a control batch or holds another control record type.
///
/// # Errors
/// A control batch whose record cannot be decoded, or whose marker value is short.
pub fn parse(h: &BatchHeader, raw: &[u8]) -> Result<Option<Marker>, RecordError> {
    if !h.is_control() {
        return Ok(None);
    }
    let mut found: Option<Result<Option<Marker>, RecordError>> = None;
    records::walk_records(raw, MARKER_DECODE_MAX, |_, r| {
        found = Some(decode(r.key, r.value));
        ControlFlow::Break(())
    })?;
    found.unwrap_or(Ok(None))
}

/// The marker in one control record (its key and value), `None` for another control type.
///
/// # Errors
/// A key shorter than 4 bytes, a marker value shorter than 6, negative versions.
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<Marker>, RecordError> {
    let invalid = |what: &str| Err(RecordError::Corrupt(what.to_string()));
    let Some(key) = key.filter(|k| k.len() >= 4) else {
        return invalid("control record key shorter than 4 bytes");
    };
    let version = i16::from_be_bytes([key[0], key[1]]);
    if version < 0 {
        return invalid("negative control record key version");
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        ABORT => false,
        COMMIT => true,
        _ => return Ok(None),
    };
    let Some(v) = value.filter(|v| v.len() >= 6) else {
        return invalid("transaction marker value shorter than 6 bytes");
    };
    if i16::from_be_bytes([v[0], v[1]]) < 0 {
        return invalid("negative transaction marker version");
    }
    Ok(Some(Marker {
        commit,
        coordinator_epoch: i32::from_be_bytes([v[2], v[3], v[4], v[5]]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch;

    #[test]
    fn markers_round_trip_and_validate() {
        for commit in [true, false] {
            let m = Marker {
                commit,
                coordinator_epoch: 7,
            };
            let raw = encode(42, 3, m, 1_000);
            let hs = batch::validate_record_set(&raw).expect("a valid batch");
            let h = hs[0];
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (42, 3, -1)
            );
            assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
            assert_eq!(parse(&h, &raw), Ok(Some(m)));
        }
        // A data batch is not a marker.
        let data = batch::tests::make_batch(1, 1, 0, 0);
        let h = BatchHeader::parse(&data).expect("header");
        assert_eq!(parse(&h, &data), Ok(None));
    }
}

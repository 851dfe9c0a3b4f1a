//! Kafka's old message formats (magic 0 and 1, "message sets"), which Produce v0–v2 carry and
//! Fetch v0–v3 return (sans-io). raftka stores only v2 batches, as Kafka ≥ 3.0 does:
//!
//! - [`up_convert`] validates a produced message set as Kafka's `LogValidator` does for old
//!   magics (CRC-32 of every message, outer and inner; sizes; no nested compression; inner
//!   magic equal to the wrapper's; magic-1 inner offsets relative and consecutive from 0) and
//!   turns it into one v2 batch with the same keys, values, timestamps (magic 0 has none: -1)
//!   and codec;
//! - [`down_convert`] turns stored v2 batches into a message set of magic 0 or 1 for a client
//!   that cannot read v2: one message per record (headers dropped, as Kafka does), compressed
//!   batches as one compressed wrapper message (magic 1: inner offsets relative to the first
//!   record, the wrapper carrying the last offset), control batches left out.
//!
//! Every length read from the bytes is checked against what remains before it is used, and
//! decompression runs through the same budget as v2 batches (`decompressed_bytes_max`).

use super::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::records::{self, compress, put_varint, put_varlong, RecordError};
use std::ops::ControlFlow;

/// Bytes before a message's CRC-covered part: offset (8), size (4).
const MESSAGE_LOG_OVERHEAD: usize = 12;
/// Smallest magic-0 message after the log overhead: crc, magic, attributes, key and value
/// lengths.
const MESSAGE_MIN_V0: usize = 4 + 1 + 1 + 4 + 4;
/// Magic 1 adds an 8-byte timestamp.
const MESSAGE_MIN_V1: usize = MESSAGE_MIN_V0 + 8;
/// Codec bits of a message's attributes.
const CODEC_MASK: i8 = 0x07;
/// Timestamp type bit (magic 1): LogAppendTime.
const TIMESTAMP_TYPE_BIT: i8 = 0x08;
/// Kafka's "no timestamp".
pub const NO_TIMESTAMP: i64 = -1;

fn corrupt(msg: impl Into<String>) -> RecordError {
    RecordError::Corrupt(msg.into())
}

/// One message of a message set, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub offset: i64,
    pub magic: i8,
    pub attributes: i8,
    /// Magic 1's timestamp; [`NO_TIMESTAMP`] for magic 0.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

impl Message<'_> {
    /// The codec of a wrapper message (0 = a plain message).
    pub fn codec(&self) -> i16 {
        i16::from(self.attributes & CODEC_MASK)
    }
}

/// Whether `set` starts with a message of magic 0 or 1 (the magic byte is at the same place
/// in every format: after offset, length and the 4-byte CRC / leader epoch).
pub fn is_legacy(set: &[u8]) -> bool {
    set.len() > 16 && matches!(set[16], 0 | 1)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads a length-prefixed (i32, -1 = null) byte field at `*pos` within `body`.
fn nullable_bytes<'a>(
    body: &'a [u8],
    pos: &mut usize,
    what: &str,
) -> Result<Option<&'a [u8]>, RecordError> {
    if body.len() - *pos < 4 {
        return Err(corrupt(format!(
            "message truncated before its {what} length"
        )));
    }
    let len = be_i32(body, *pos);
    *pos += 4;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| corrupt(format!("{what} length {len}")))?;
    if len > body.len() - *pos {
        return Err(corrupt(format!(
            "{what} of {len} bytes with only {} left in the message",
            body.len() - *pos
        )));
    }
    let v = &body[*pos..*pos + len];
    *pos += len;
    Ok(Some(v))
}

/// Parses the message set `set` message by message, handing each to `f`. Every message must
/// be whole, carry a correct CRC-32 and be exactly as long as its fields.
///
/// # Errors
/// `Corrupt` for a malformed, truncated or CRC-failing message or an unknown magic.
pub fn walk_messages<'a>(
    set: &'a [u8],
    mut f: impl FnMut(Message<'a>) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    let mut pos = 0;
    while pos < set.len() {
        if set.len() - pos < MESSAGE_LOG_OVERHEAD {
            return Err(corrupt("message set ends inside a message header"));
        }
        let offset = be_i64(set, pos);
        let size = be_i32(set, pos + 8);
        let size = usize::try_from(size).map_err(|_| corrupt(format!("message size {size}")))?;
        let start = pos + MESSAGE_LOG_OVERHEAD;
        if size > set.len() - start {
            return Err(corrupt(format!(
                "message of {size} bytes with only {} left in the message set",
                set.len() - start
            )));
        }
        let body = &set[start..start + size];
        if body.len() < MESSAGE_MIN_V0 {
            return Err(corrupt(format!("message of {size} bytes is too small")));
        }
        let stored = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let computed = crc32fast::hash(&body[4..]);
        if stored != computed {
            return Err(corrupt(format!(
                "message at offset {offset} is corrupt (stored crc = {stored}, computed crc = {computed})"
            )));
        }
        let magic = body[4] as i8;
        let attributes = body[5] as i8;
        let mut p = 6;
        let timestamp = match magic {
            0 => NO_TIMESTAMP,
            1 => {
                if body.len() < MESSAGE_MIN_V1 {
                    return Err(corrupt(format!("message of {size} bytes is too small")));
                }
                p += 8;
                be_i64(body, 6)
            }
            m => return Err(corrupt(format!("unknown message magic {m}"))),
        };
        let key = nullable_bytes(body, &mut p, "key")?;
        let value = nullable_bytes(body, &mut p, "value")?;
        if p != body.len() {
            return Err(corrupt(format!(
                "message at offset {offset} has {} bytes after its value",
                body.len() - p
            )));
        }
        f(Message {
            offset,
            magic,
            attributes,
            timestamp,
            key,
            value,
        })?;
        pos = start + size;
    }
    Ok(())
}

/// A v2 batch built from a produced message set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpConverted {
    /// One whole v2 batch (base offset 0, no producer id), ready for the v2 produce path.
    pub batch: Vec<u8>,
    pub records: i32,
    /// The magic of the messages (0 or 1).
    pub magic: i8,
}

/// Accumulates records into an uncompressed v2 records payload.
#[derive(Debug, Default)]
struct PayloadBuilder {
    payload: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    body: Vec<u8>,
}

impl PayloadBuilder {
    fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), RecordError> {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        if self.count == 0 {
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.body.clear();
        self.body.push(0); // record attributes
        put_varlong(&mut self.body, timestamp.wrapping_sub(base));
        put_varint(&mut self.body, self.count);
        for field in [key, value] {
            match field {
                None => put_varint(&mut self.body, -1),
                Some(b) => {
                    let len = i32::try_from(b.len()).map_err(|_| corrupt("field too large"))?;
                    put_varint(&mut self.body, len);
                    self.body.extend_from_slice(b);
                }
            }
        }
        put_varint(&mut self.body, 0); // headers
        let len = i32::try_from(self.body.len()).map_err(|_| corrupt("record too large"))?;
        put_varint(&mut self.payload, len);
        self.payload.extend_from_slice(&self.body);
        self.count = self
            .count
            .checked_add(1)
            .ok_or_else(|| corrupt("too many messages"))?;
        Ok(())
    }
}

/// Validates a produced magic-0/1 message set and converts it to one v2 batch (Kafka's
/// up-conversion on write). A compressed wrapper's inner messages become records of a batch
/// with the wrapper's codec; a magic-1 wrapper with LogAppendTime gives its inner records the
/// wrapper's timestamp. `decompressed_bytes_max` bounds the inner bytes of all wrappers.
///
/// # Errors
/// `Corrupt` for malformed messages, nested compression, inner messages whose magic differs
/// from their wrapper's, non-consecutive magic-1 inner offsets, mixed magics, zstd (which old
/// formats cannot carry), an empty set; `Compression` / `TooLarge` as for v2 batches.
pub fn up_convert(set: &[u8], decompressed_bytes_max: usize) -> Result<UpConverted, RecordError> {
    let mut b = PayloadBuilder::default();
    let mut magic: Option<i8> = None;
    let mut codec: i16 = 0;
    let mut budget = decompressed_bytes_max;
    walk_messages(set, |m| {
        if *magic.get_or_insert(m.magic) != m.magic {
            return Err(corrupt("a message set mixes magic 0 and magic 1 messages"));
        }
        match m.codec() {
            0 => b.push(m.timestamp, m.key, m.value),
            c @ 1..=3 => {
                if codec != 0 && codec != c {
                    return Err(corrupt("a message set mixes compression codecs"));
                }
                codec = c;
                let inner = if c == 3 && m.magic == 0 {
                    // Kafka 0.8/0.9 clients (and librdkafka at magic 0) write the LZ4 frame
                    // header checksum wrongly (KAFKA-3160); Kafka ignores it at magic 0.
                    let mut frame = m
                        .value
                        .ok_or_else(|| corrupt("compressed message with a null value"))?
                        .to_vec();
                    lz4_set_header_checksum(&mut frame, false)?;
                    inflate(c, Some(&frame), &mut budget)?
                } else {
                    inflate(c, m.value, &mut budget)?
                };
                let log_append = m.magic == 1 && m.attributes & TIMESTAMP_TYPE_BIT != 0;
                let mut expected: i64 = 0;
                walk_messages(&inner, |im| {
                    if im.codec() != 0 {
                        return Err(corrupt(
                            "Compressed outer record should not have an inner record with a compression attribute set",
                        ));
                    }
                    if im.magic != m.magic {
                        return Err(corrupt(format!(
                            "inner message magic {} does not match its wrapper's magic {}",
                            im.magic, m.magic
                        )));
                    }
                    if m.magic == 1 {
                        if im.offset != expected {
                            return Err(corrupt(format!(
                                "inner message offsets must be consecutive from 0: found {} where {expected} was expected",
                                im.offset
                            )));
                        }
                        expected += 1;
                    }
                    let ts = if log_append {
                        m.timestamp
                    } else {
                        im.timestamp
                    };
                    b.push(ts, im.key, im.value)
                })?;
                if m.magic == 1 && expected == 0 {
                    return Err(corrupt("compressed message without inner messages"));
                }
                Ok(())
            }
            c => Err(corrupt(format!(
                "compression codec {c} ({}) is not allowed in magic {} messages",
                records::codec_name(c),
                m.magic
            ))),
        }
    })?;
    let Some(magic) = magic else {
        return Err(corrupt("empty message set"));
    };
    if b.count == 0 {
        return Err(corrupt("message set without records"));
    }
    let batch = v2_batch(codec, &b)?;
    Ok(UpConverted {
        batch,
        records: b.count,
        magic,
    })
}

/// Sets the header checksum (HC) of the LZ4 frame at the start of `frame`: the LZ4 frame
/// format's (xxh32 of the frame descriptor) or, with `legacy`, Kafka 0.8's (xxh32 of the
/// magic number and the descriptor, KAFKA-3160), which magic-0 readers expect.
///
/// # Errors
/// Not an LZ4 frame.
pub fn lz4_set_header_checksum(frame: &mut [u8], legacy: bool) -> Result<(), RecordError> {
    const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
    if frame.len() < 7 || frame[..4] != LZ4_MAGIC {
        return Err(corrupt("not an LZ4 frame"));
    }
    let flags = frame[4];
    let mut hc_at = 6; // magic, FLG, BD
    if flags & 0x08 != 0 {
        hc_at += 8; // content size
    }
    if flags & 0x01 != 0 {
        hc_at += 4; // dictionary id
    }
    if hc_at >= frame.len() {
        return Err(corrupt("truncated LZ4 frame header"));
    }
    let from = if legacy { 0 } else { 4 };
    frame[hc_at] = (xxh32(&frame[from..hc_at], 0) >> 8) as u8;
    Ok(())
}

/// XXH32 (the LZ4 frame format's header and content checksum).
fn xxh32(input: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round = |acc: u32, w: u32| {
        acc.wrapping_add(w.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    };
    let mut rest = input;
    let mut h = if input.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 16 {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, word(&rest[i * 4..]));
            }
            rest = &rest[16..];
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    // The length modulo 2^32, as the algorithm defines it.
    h = h.wrapping_add(input.len() as u32);
    while rest.len() >= 4 {
        h = h
            .wrapping_add(word(rest).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        rest = &rest[4..];
    }
    for b in rest {
        h = h
            .wrapping_add(u32::from(*b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

/// Decompresses a wrapper's value, charging its size to `budget`.
fn inflate(codec: i16, value: Option<&[u8]>, budget: &mut usize) -> Result<Vec<u8>, RecordError> {
    let value = value.ok_or_else(|| corrupt("compressed message with a null value"))?;
    let out = records::decompress_all(codec, value, *budget)?;
    *budget -= out.len();
    Ok(out)
}

/// Wraps an uncompressed records payload into a v2 batch (base offset 0, no producer).
fn v2_batch(codec: i16, b: &PayloadBuilder) -> Result<Vec<u8>, RecordError> {
    let payload = compress(codec, &b.payload)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, set below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    out.extend_from_slice(&codec.to_be_bytes()); // attributes: codec, CreateTime
    out.extend_from_slice(&(b.count - 1).to_be_bytes()); // last offset delta
    out.extend_from_slice(&b.base_timestamp.unwrap_or(NO_TIMESTAMP).to_be_bytes());
    out.extend_from_slice(&b.max_timestamp.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    out.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&b.count.to_be_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&payload);
    let len = i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| corrupt("batch too large"))?;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Why stored batches cannot be down-converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownConvertError {
    /// A zstd batch: magic 0/1 cannot carry zstd (Kafka: UNSUPPORTED_COMPRESSION_TYPE).
    #[error("zstd-compressed records cannot be sent to a client that reads only magic {0}")]
    Zstd(i8),
    #[error(transparent)]
    Records(#[from] RecordError),
}

/// Appends one message (log overhead included) to `out`.
fn put_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), RecordError> {
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // size, set below
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    out.push(magic as u8);
    out.push(attributes as u8);
    if magic == 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                let len = i32::try_from(b.len()).map_err(|_| corrupt("field too large"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let size = i32::try_from(out.len() - start - MESSAGE_LOG_OVERHEAD)
        .map_err(|_| corrupt("message too large"))?;
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The result of a down-conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownConverted {
    /// The message set.
    pub bytes: Vec<u8>,
    /// Offset after the last message included (the next fetch offset), if any was.
    pub next_offset: Option<i64>,
}

/// Converts the stored v2 batches in `batches` (whole batches, as read from the log) into a
/// magic-`magic` message set for a client that asked from `fetch_offset`. Records below
/// `fetch_offset` inside an uncompressed batch are skipped (a compressed batch is sent whole,
/// as Kafka does). Output stops before the message that would take it past `max_bytes`,
/// except that the first message is always included whole when `min_one_message` (Fetch v3
/// and later); without it, a first message larger than `max_bytes` is cut at `max_bytes`, the
/// partial message by which a client of Fetch v0–v2 learns that a message is too large.
///
/// # Errors
/// `Zstd` for a zstd batch; `Records` for stored bytes that do not decode.
pub fn down_convert(
    batches: &[u8],
    magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
    min_one_message: bool,
    decompressed_bytes_max: usize,
) -> Result<DownConverted, DownConvertError> {
    assert!(magic == 0 || magic == 1, "down-conversion to magic {magic}");
    let mut out = DownConverted::default();
    let mut pos = 0;
    let mut unit = Vec::new();
    while batches.len() - pos >= HEADER_LEN {
        let h = BatchHeader::parse(&batches[pos..]).map_err(|e| corrupt(e.to_string()))?;
        let total = h.total_len();
        if total < HEADER_LEN || total > batches.len() - pos {
            break; // a partial batch at the end of a read
        }
        let batch = &batches[pos..pos + total];
        pos += total;
        if h.is_control() || h.last_offset() < fetch_offset {
            continue;
        }
        let codec = h.compression();
        if codec == 4 {
            return Err(DownConvertError::Zstd(magic));
        }
        let log_append = h.is_log_append_time();
        let ts_of = |delta: i64| {
            if log_append {
                h.max_timestamp
            } else if h.base_timestamp == NO_TIMESTAMP {
                NO_TIMESTAMP
            } else {
                h.base_timestamp.wrapping_add(delta)
            }
        };
        let ts_attr = if magic == 1 && log_append {
            TIMESTAMP_TYPE_BIT
        } else {
            0
        };
        // Each unit (one message, or one wrapper) is built whole, then kept if it fits.
        let fits = |unit: &[u8], next: i64, out: &mut DownConverted| -> bool {
            let first = out.bytes.is_empty();
            if out.bytes.len() + unit.len() <= max_bytes || (first && min_one_message) {
                out.bytes.extend_from_slice(unit);
                out.next_offset = Some(next);
                true
            } else {
                if first {
                    out.bytes
                        .extend_from_slice(&unit[..max_bytes.min(unit.len())]);
                }
                false
            }
        };
        if codec == 0 {
            let mut full = false;
            let mut err = None;
            records::walk_records(batch, decompressed_bytes_max, |_, r| {
                let offset = h.base_offset + i64::from(r.offset_delta);
                if offset < fetch_offset {
                    return ControlFlow::Continue(());
                }
                unit.clear();
                if let Err(e) = put_message(
                    &mut unit,
                    offset,
                    magic,
                    ts_attr,
                    ts_of(r.timestamp_delta),
                    r.key,
                    r.value,
                ) {
                    err = Some(e);
                    return ControlFlow::Break(());
                }
                if fits(&unit, offset + 1, &mut out) {
                    ControlFlow::Continue(())
                } else {
                    full = true;
                    ControlFlow::Break(())
                }
            })?;
            if let Some(e) = err {
                return Err(e.into());
            }
            if full {
                return Ok(out);
            }
        } else {
            let mut inner = Vec::new();
            let mut first_offset = None;
            let mut last_offset = h.base_offset;
            let mut max_ts = NO_TIMESTAMP;
            let mut err = None;
            records::walk_records(batch, decompressed_bytes_max, |_, r| {
                let offset = h.base_offset + i64::from(r.offset_delta);
                let base = *first_offset.get_or_insert(offset);
                let inner_offset = if magic == 1 { offset - base } else { offset };
                let ts = ts_of(r.timestamp_delta);
                max_ts = max_ts.max(ts);
                last_offset = offset;
                match put_message(&mut inner, inner_offset, magic, ts_attr, ts, r.key, r.value) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        err = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })?;
            if let Some(e) = err {
                return Err(e.into());
            }
            if first_offset.is_none() {
                continue; // every record compacted away
            }
            let mut compressed = compress(codec, &inner)?;
            if codec == 3 && magic == 0 {
                // What a magic-0 reader expects (KAFKA-3160), as Kafka writes it there.
                lz4_set_header_checksum(&mut compressed, true)?;
            }
            unit.clear();
            let wrapper_ts = if log_append { h.max_timestamp } else { max_ts };
            put_message(
                &mut unit,
                last_offset,
                magic,
                ts_attr | codec as i8,
                wrapper_ts,
                None,
                Some(&compressed),
            )?;
            if !fits(&unit, last_offset + 1, &mut out) {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "legacy_tests.rs"]
mod tests;

//! The records inside a v2 record batch, read with every length bounded (sans-io).
//!
//! One walker serves every reader of record contents: produce validation (Kafka's
//! `LogValidator`), ListOffsets by timestamp, the compaction cleaner and the offsets loader.
//! Nothing here sizes an allocation from a count or length read off the wire or the disk:
//!
//! - an uncompressed batch is read in place (records borrow the batch's bytes; no copy);
//! - a compressed batch is decompressed as a stream through a counter that fails once the
//!   output passes the caller's `decompressed_bytes_max`, and each record is copied into one
//!   reused scratch buffer whose size is bounded by what is left of that budget, so memory
//!   is one record plus the codec's window (zstd windows above [`ZSTD_WINDOW_LOG_MAX`] are
//!   refused), never the whole expanded batch;
//! - a record's length must fit in what remains, every count is consumed one element at a
//!   time (each element takes at least one byte), and a batch must hold exactly the records
//!   its header declares, with nothing left over (Kafka: "Incorrect declared batch size").

use super::batch::{BatchHeader, HEADER_LEN};
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;

/// Largest zstd window a compressed batch may ask for: 2^24 = 16 MiB. Kafka clients compress
/// with zstd's default levels (windows of 2^21..2^23); a bigger window is refused rather than
/// allocated.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// Buffer between a decompressor and the record reader.
const STREAM_BUFFER_BYTES: usize = 32 << 10;
/// The smallest encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length, header count (one byte each).
pub const RECORD_BYTES_MIN: usize = 7;

/// Why the records of a batch could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not the records the header declares (Kafka's CorruptRecordException /
    /// InvalidRecordException).
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// The compressed payload does not decompress.
    #[error("cannot decompress {codec} records: {reason}")]
    Compression { codec: &'static str, reason: String },
    /// The batch expands past the decompression budget.
    #[error("record batch decompresses to more than {limit} bytes")]
    TooLarge { limit: usize },
}

fn corrupt(msg: impl Into<String>) -> RecordError {
    RecordError::Corrupt(msg.into())
}

/// One record, borrowed from the batch (uncompressed) or from the walker's scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: usize,
    /// The encoded headers, already checked to hold exactly `header_count` headers.
    pub headers: &'a [u8],
    /// The whole encoded record after its length prefix (attributes through headers).
    pub body: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The record's headers as (key, value); keys are never null in Kafka.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            cur: Cursor::new(self.headers),
            left: self.header_count,
        }
    }
}

/// Iterates the headers of a [`RecordView`] (validated when the view was made).
#[derive(Debug)]
pub struct HeaderIter<'a> {
    cur: Cursor<'a>,
    left: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_header(&mut self.cur).ok()
    }
}

/// A bounded reader over a byte slice: every read checks what remains.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| corrupt("record truncated"))?;
        self.pos += 1;
        Ok(v)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.remaining() {
            return Err(corrupt(format!(
                "field of {n} bytes with only {} left in the record",
                self.remaining()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn varlong(&mut self) -> Result<i64, RecordError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(corrupt("varlong longer than 10 bytes"))
    }
    fn varint(&mut self) -> Result<i32, RecordError> {
        let mut raw: u32 = 0;
        for i in 0..5 {
            let byte = self.u8()?;
            raw |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
            }
        }
        Err(corrupt("varint longer than 5 bytes"))
    }
    /// A nullable byte field: length -1 is null, any other negative length is corrupt.
    fn nullable_bytes(&mut self, what: &str) -> Result<Option<&'a [u8]>, RecordError> {
        let len = self.varint()?;
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(corrupt(format!("negative {what} length {n}"))),
            n => self.take(n as usize).map(Some),
        }
    }
}

fn read_header<'a>(c: &mut Cursor<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), RecordError> {
    let key_len = c.varint()?;
    if key_len < 0 {
        return Err(corrupt(format!("invalid header key length {key_len}")));
    }
    let key = c.take(key_len as usize)?;
    let value = c.nullable_bytes("header value")?;
    Ok((key, value))
}

/// Parses one record body (everything after its length prefix). The body must be consumed
/// exactly (Kafka: "Invalid record size").
fn parse_record(body: &[u8]) -> Result<RecordView<'_>, RecordError> {
    let mut c = Cursor::new(body);
    let attributes = c.u8()? as i8;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable_bytes("key")?;
    let value = c.nullable_bytes("value")?;
    let header_count = c.varint()?;
    if header_count < 0 {
        return Err(corrupt(format!("invalid header count {header_count}")));
    }
    let header_count = header_count as usize;
    let headers_start = c.pos;
    // Each header takes at least two bytes, so the loop is bounded by the record's length.
    if header_count > c.remaining() / 2 {
        return Err(corrupt(format!(
            "{header_count} headers cannot fit in {} bytes",
            c.remaining()
        )));
    }
    for _ in 0..header_count {
        read_header(&mut c)?;
    }
    let headers = &body[headers_start..c.pos];
    if c.remaining() != 0 {
        return Err(corrupt(format!(
            "record has {} bytes after its headers",
            c.remaining()
        )));
    }
    Ok(RecordView {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count,
        headers,
        body,
    })
}

/// The codec name of a compression attribute (0..=4), for messages.
pub fn codec_name(compression: i16) -> &'static str {
    match compression {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}

/// Marks the error a [`Capped`] reader returns once its budget is exhausted.
#[derive(Debug)]
struct BudgetExceeded;

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompression budget exceeded")
    }
}
impl std::error::Error for BudgetExceeded {}

fn is_budget_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<BudgetExceeded>())
}

/// Counts what a decompressor produces and fails once it passes `left`.
struct Capped<R> {
    inner: R,
    left: usize,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than the budget allows, so going over is detected.
        let want = buf.len().min(self.left.saturating_add(1));
        let n = self.inner.read(&mut buf[..want])?;
        if n > self.left {
            return Err(io::Error::other(BudgetExceeded));
        }
        self.left -= n;
        Ok(n)
    }
}

/// The Snappy payloads Kafka producers write: xerial's framing (Java) or one raw block.
struct SnappyReader<'a> {
    input: Cursor<'a>,
    xerial: bool,
    block: Vec<u8>,
    block_pos: usize,
    /// Output bytes still allowed; a block declaring more is refused before allocation.
    left: usize,
    done: bool,
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Snappy expands a block at most ~22x (a 3-byte copy yields 64 bytes).
fn snappy_expansion_max(n: usize) -> usize {
    n.saturating_mul(22).saturating_add(64)
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8], left: usize) -> Self {
        let xerial = input.len() >= 16 && input[..8] == XERIAL_MAGIC[..];
        let mut cur = Cursor::new(input);
        if xerial {
            cur.pos = 16; // magic (8), version (4), compatible version (4)
        }
        Self {
            input: cur,
            xerial,
            block: Vec::new(),
            block_pos: 0,
            left,
            done: false,
        }
    }

    fn next_block(&mut self) -> io::Result<bool> {
        let compressed: &[u8] = if self.xerial {
            if self.input.remaining() == 0 {
                return Ok(false);
            }
            let len_bytes = self
                .input
                .take(4)
                .map_err(|_| io::Error::other("truncated xerial block length"))?;
            let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            self.input
                .take(len as usize)
                .map_err(|_| io::Error::other("truncated xerial block"))?
        } else {
            if self.done {
                return Ok(false);
            }
            self.done = true;
            let rest = self.input.remaining();
            self.input
                .take(rest)
                .map_err(|_| io::Error::other("truncated snappy block"))?
        };
        let n = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if n > snappy_expansion_max(compressed.len()) {
            return Err(io::Error::other(format!(
                "snappy block declares {n} bytes from {} bytes",
                compressed.len()
            )));
        }
        if n > self.left {
            return Err(io::Error::other(BudgetExceeded));
        }
        self.left -= n;
        self.block.clear();
        self.block.resize(n, 0);
        let got = snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.block.truncate(got);
        self.block_pos = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.block_pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.block_pos);
        buf[..n].copy_from_slice(&self.block[self.block_pos..self.block_pos + n]);
        self.block_pos += n;
        Ok(n)
    }
}

fn decompressor<'a>(
    compression: i16,
    payload: &'a [u8],
    left: usize,
) -> Result<Box<dyn Read + 'a>, RecordError> {
    let codec = codec_name(compression);
    let err = |e: io::Error| RecordError::Compression {
        codec,
        reason: e.to_string(),
    };
    Ok(match compression {
        1 => Box::new(flate2::read::MultiGzDecoder::new(payload)),
        2 => Box::new(SnappyReader::new(payload, left)),
        3 => Box::new(lz4::Decoder::new(payload).map_err(err)?),
        4 => {
            let mut d = zstd::stream::read::Decoder::with_buffer(payload).map_err(err)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(err)?;
            Box::new(d)
        }
        other => return Err(corrupt(format!("unknown compression codec {other}"))),
    })
}

/// Reads the records of one v2 batch (`batch` = exactly one whole batch, header included) and
/// hands each to `f` with its index, until `f` breaks or the records end. Walking to the end
/// checks that the batch holds exactly `records_count` well-formed records; a walk that `f`
/// stops early checks only what it read.
///
/// # Errors
/// `Corrupt` for malformed records or counts, `Compression` for payloads that do not
/// decompress, `TooLarge` when a compressed batch expands past `decompressed_bytes_max`.
pub fn walk_records(
    batch: &[u8],
    decompressed_bytes_max: usize,
    mut f: impl FnMut(usize, &RecordView<'_>) -> ControlFlow<()>,
) -> Result<(), RecordError> {
    let h = BatchHeader::parse(batch).map_err(|e| corrupt(e.to_string()))?;
    if h.magic != 2 {
        return Err(corrupt(format!("magic {} is not a v2 batch", h.magic)));
    }
    let total = h.total_len();
    if total < HEADER_LEN || total > batch.len() {
        return Err(corrupt("batch length does not match its bytes"));
    }
    let count = usize::try_from(h.records_count)
        .map_err(|_| corrupt(format!("negative record count {}", h.records_count)))?;
    let payload = &batch[HEADER_LEN..total];
    if h.compression() == 0 {
        walk_plain(payload, count, &mut f)
    } else {
        walk_compressed(&h, payload, count, decompressed_bytes_max, &mut f)
    }
}

fn walk_plain(
    payload: &[u8],
    count: usize,
    f: &mut impl FnMut(usize, &RecordView<'_>) -> ControlFlow<()>,
) -> Result<(), RecordError> {
    if count > payload.len() / RECORD_BYTES_MIN {
        return Err(corrupt(format!(
            "{count} records cannot fit in {} bytes",
            payload.len()
        )));
    }
    let mut c = Cursor::new(payload);
    for i in 0..count {
        let len = c.varint()?;
        if len <= 0 {
            return Err(corrupt(format!("invalid record length {len}")));
        }
        let body = c.take(len as usize).map_err(|_| {
            corrupt(format!(
                "record {i} declares {len} bytes, batch has {} left (premature end)",
                c.remaining()
            ))
        })?;
        let r = parse_record(body)?;
        if f(i, &r).is_break() {
            return Ok(());
        }
    }
    if c.remaining() != 0 {
        return Err(corrupt(format!(
            "{} bytes remain after the {count} declared records",
            c.remaining()
        )));
    }
    Ok(())
}

/// Decompresses a whole payload of codec `compression` into memory, failing with `TooLarge`
/// once the output passes `budget` (the old formats' wrapper messages, whose inner message
/// set is parsed in place).
///
/// # Errors
/// `TooLarge` past the budget, `Compression` if the codec fails, `Corrupt` for an unknown
/// codec.
pub fn decompress_all(
    compression: i16,
    payload: &[u8],
    budget: usize,
) -> Result<Vec<u8>, RecordError> {
    let codec = codec_name(compression);
    let inner = decompressor(compression, payload, budget)?;
    let mut out = Vec::new();
    Capped {
        inner,
        left: budget,
    }
    .read_to_end(&mut out)
    .map_err(|e| {
        if is_budget_error(&e) {
            RecordError::TooLarge { limit: budget }
        } else {
            RecordError::Compression {
                codec,
                reason: e.to_string(),
            }
        }
    })?;
    Ok(out)
}

fn walk_compressed(
    h: &BatchHeader,
    payload: &[u8],
    count: usize,
    budget: usize,
    f: &mut impl FnMut(usize, &RecordView<'_>) -> ControlFlow<()>,
) -> Result<(), RecordError> {
    let codec = codec_name(h.compression());
    let io_err = |e: io::Error| {
        if is_budget_error(&e) {
            RecordError::TooLarge { limit: budget }
        } else if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt("records end before the declared count (premature end)")
        } else {
            RecordError::Compression {
                codec,
                reason: e.to_string(),
            }
        }
    };
    // A record takes at least RECORD_BYTES_MIN bytes of output.
    if count > budget / RECORD_BYTES_MIN {
        return Err(RecordError::TooLarge { limit: budget });
    }
    let inner = decompressor(h.compression(), payload, budget)?;
    let mut r = BufReader::with_capacity(
        STREAM_BUFFER_BYTES,
        Capped {
            inner,
            left: budget,
        },
    );
    let mut scratch: Vec<u8> = Vec::new();
    let mut produced: usize = 0;
    for i in 0..count {
        let len = read_varint(&mut r).map_err(io_err)?;
        if len <= 0 {
            return Err(corrupt(format!("invalid record length {len}")));
        }
        let len = len as usize;
        produced = produced.saturating_add(len);
        if produced > budget {
            return Err(RecordError::TooLarge { limit: budget });
        }
        scratch.clear();
        scratch.resize(len, 0);
        r.read_exact(&mut scratch).map_err(io_err)?;
        let rec = parse_record(&scratch)?;
        if f(i, &rec).is_break() {
            return Ok(());
        }
    }
    // Nothing may follow the declared records; reading to the end also checks the codec's
    // own trailer (gzip CRC, zstd checksum).
    if !r.fill_buf().map_err(io_err)?.is_empty() {
        return Err(corrupt(format!(
            "records remain after the {count} declared records"
        )));
    }
    Ok(())
}

/// A zigzag varint from a stream (at most 5 bytes).
fn read_varint(r: &mut impl BufRead) -> io::Result<i32> {
    let mut raw: u32 = 0;
    for i in 0..5 {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        raw |= u32::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "varint longer than 5 bytes",
    ))
}

/// Problems with one record that Kafka reports per record (KIP-467 `record_errors`) rather
/// than failing the batch's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    pub index: i32,
    pub message: String,
}

/// What a produced batch must satisfy beyond its structure (Kafka's `LogValidator`).
#[derive(Debug, Clone, Copy)]
pub struct ProducePolicy {
    /// `cleanup.policy` contains `compact`: every record needs a key.
    pub compacted: bool,
    /// For CreateTime topics: now, and how far before / after it a timestamp may lie
    /// (`message.timestamp.before.max.ms` / `after.max.ms`, `difference.max.ms`).
    pub now_ms: i64,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// The topic uses LogAppendTime (record timestamps are not checked).
    pub log_append_time: bool,
    pub decompressed_bytes_max: usize,
}

/// The outcome of validating a produced batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The largest record timestamp (-1 if none), which the stored header must carry.
    pub max_timestamp: i64,
    /// Records without a key in a compacted topic.
    pub keyless: Vec<RecordProblem>,
    /// Records whose timestamp is out of the allowed range.
    pub bad_timestamps: Vec<RecordProblem>,
}

/// Validates every record of a produced batch, as Kafka's `LogValidator` does: records
/// well-formed and exactly `records_count` of them, offset deltas `0..n` in order, and the
/// per-record policy (keys on compacted topics, timestamps in range).
///
/// # Errors
/// Structural problems (see [`walk_records`]) and out-of-order offset deltas; per-record
/// policy problems are returned in [`Validated`] instead so that all of them can be reported.
pub fn validate_produced(batch: &[u8], policy: &ProducePolicy) -> Result<Validated, RecordError> {
    let h = BatchHeader::parse(batch).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Validated {
        max_timestamp: -1,
        keyless: Vec::new(),
        bad_timestamps: Vec::new(),
    };
    let mut bad_delta: Option<(usize, i32)> = None;
    walk_records(batch, policy.decompressed_bytes_max, |i, r| {
        if i64::from(r.offset_delta) != i as i64 {
            bad_delta = Some((i, r.offset_delta));
            return ControlFlow::Break(());
        }
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        out.max_timestamp = out.max_timestamp.max(ts);
        let index = i as i32;
        if policy.compacted && r.key.is_none() {
            out.keyless.push(RecordProblem {
                index,
                message: "Compacted topic cannot accept message without key.".into(),
            });
        }
        if !policy.log_append_time && ts >= 0 {
            let early = policy.now_ms.saturating_sub(ts) > policy.timestamp_before_max_ms;
            let late = ts.saturating_sub(policy.now_ms) > policy.timestamp_after_max_ms;
            if early || late {
                out.bad_timestamps.push(RecordProblem {
                    index,
                    message: format!(
                        "Timestamp {ts} of message with offset {i} is out of range. The \
                         timestamp should be within [{}, {}]",
                        policy.now_ms.saturating_sub(policy.timestamp_before_max_ms),
                        policy.now_ms.saturating_add(policy.timestamp_after_max_ms)
                    ),
                });
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some((i, d)) = bad_delta {
        return Err(corrupt(format!(
            "record {i} has offset delta {d}; inner offsets must be consecutive from 0"
        )));
    }
    Ok(out)
}

/// Compresses a records payload with a batch codec (1 gzip, 2 snappy in xerial framing as
/// Java writes it, 3 lz4 frame, 4 zstd); 0 returns it unchanged.
///
/// # Errors
/// `Compression` if the codec fails, `Corrupt` for an unknown codec.
pub fn compress(compression: i16, payload: &[u8]) -> Result<Vec<u8>, RecordError> {
    use std::io::Write;
    let codec = codec_name(compression);
    let err = |e: io::Error| RecordError::Compression {
        codec,
        reason: e.to_string(),
    };
    match compression {
        0 => Ok(payload.to_vec()),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(payload).map_err(err)?;
            e.finish().map_err(err)
        }
        2 => {
            let mut out = Vec::with_capacity(payload.len() / 2 + 32);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in payload.chunks(32 << 10) {
                let block = enc
                    .compress_vec(chunk)
                    .map_err(|e| err(io::Error::other(e)))?;
                let len = u32::try_from(block.len()).map_err(|e| err(io::Error::other(e)))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        3 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())
                .map_err(err)?;
            e.write_all(payload).map_err(err)?;
            let (out, res) = e.finish();
            res.map_err(err)?;
            Ok(out)
        }
        4 => zstd::stream::encode_all(payload, 3).map_err(err),
        other => Err(corrupt(format!("unknown compression codec {other}"))),
    }
}

/// Builds a v2 batch from `original`'s header with only some of its records, as Kafka's
/// cleaner does: same base offset, last offset delta, base timestamp, producer fields and
/// codec (a cleaned batch keeps its offset range, so producer sequences stay right), the new
/// record count and max timestamp, and a fresh CRC. `kept` holds whole encoded records
/// (length prefix included), uncompressed; their deltas stay valid because the base
/// offset and base timestamp do not change.
///
/// # Errors
/// `Corrupt` if `original` has no valid header, `Compression` if re-compressing fails.
pub fn rebuild_batch(
    original: &[u8],
    kept: &[u8],
    kept_count: i32,
    max_timestamp: i64,
) -> Result<Vec<u8>, RecordError> {
    let h = BatchHeader::parse(original).map_err(|e| corrupt(e.to_string()))?;
    let payload = compress(h.compression(), kept)?;
    let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
    b.extend_from_slice(&original[..HEADER_LEN]);
    b.extend_from_slice(&payload);
    let batch_length = i32::try_from(b.len() - super::batch::LOG_OVERHEAD)
        .map_err(|_| corrupt("rebuilt batch too large"))?;
    b[8..12].copy_from_slice(&batch_length.to_be_bytes());
    b[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    b[57..61].copy_from_slice(&kept_count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(b)
}

/// Encodes `v` as a zigzag varint onto `out`.
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    let mut z = ((v << 1) ^ (v >> 31)) as u32;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Encodes `v` as a zigzag varlong onto `out`.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;

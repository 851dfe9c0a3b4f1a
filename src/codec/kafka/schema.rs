//! Primitives of Kafka's internal record schemas (the keys and values of `__consumer_offsets`
//! and `__transaction_state`): big-endian fixed fields, i16-length and compact strings, and a
//! bounded [`Reader`] whose every read checks the bytes left before anything is sized from a
//! length. Sans-io.

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

/// An i16-length string. Strings written come from validated requests, far below
/// `i16::MAX`; a longer one is cut there rather than mis-encoded.
pub fn put_str(b: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(&s.as_bytes()[..len as usize]);
}

/// A nullable i16-length string (-1 = null).
pub fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        None => b.put_i16(-1),
        Some(s) => put_str(b, s),
    }
}

/// i32-length bytes.
pub fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
    b.put_slice(v);
}

/// A compact (uvarint length + 1) string.
pub fn put_compact_str(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u64 + 1);
    b.put_slice(s.as_bytes());
}

/// An unsigned varint.
pub fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

/// A bounded reader over a stored record's bytes: every read checks what is left first.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn need(&self, n: usize, what: &'static str) -> Result<(), RecordError> {
        if self.0.remaining() < n {
            return Err(RecordError::Truncated(what));
        }
        Ok(())
    }
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        self.need(n, what)?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn i8(&mut self, what: &'static str) -> Result<i8, RecordError> {
        self.need(1, what)?;
        Ok(self.0.get_i8())
    }
    pub fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        self.need(2, what)?;
        Ok(self.0.get_i16())
    }
    pub fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        self.need(4, what)?;
        Ok(self.0.get_i32())
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        self.need(8, what)?;
        Ok(self.0.get_i64())
    }
    pub fn uvarint(&mut self, what: &'static str) -> Result<u64, RecordError> {
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
    pub fn utf8(bytes: &[u8], what: &'static str) -> Result<String, RecordError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| RecordError::Invalid(what))
    }
    pub fn str(&mut self, what: &'static str) -> Result<String, RecordError> {
        let len = self.i16(what)?;
        let len = usize::try_from(len).map_err(|_| RecordError::Invalid(what))?;
        let s = self.take(len, what)?;
        Self::utf8(s, what)
    }
    pub fn compact_str(&mut self, what: &'static str) -> Result<String, RecordError> {
        let n = self.uvarint(what)?;
        let len = usize::try_from(n.checked_sub(1).ok_or(RecordError::Invalid(what))?)
            .map_err(|_| RecordError::Invalid(what))?;
        let s = self.take(len, what)?;
        Self::utf8(s, what)
    }
    /// An i32 array length (-1 = null), refused when `len * min_each` exceeds what is left.
    pub fn array_len(
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
    pub fn compact_len(
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
    pub fn bounded(
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
    pub fn skip_tags(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint("tag count")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = usize::try_from(self.uvarint("tag size")?)
                .map_err(|_| RecordError::Invalid("tag size"))?;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
    /// A nullable i16-length string (-1 = null).
    pub fn nullable_str(&mut self, what: &'static str) -> Result<Option<String>, RecordError> {
        let len = self.i16(what)?;
        if len < 0 {
            return Ok(None);
        }
        let s = self.take(len as usize, what)?;
        Self::utf8(s, what).map(Some)
    }
    /// i32-length bytes (negative = empty).
    pub fn bytes(&mut self, what: &'static str) -> Result<Bytes, RecordError> {
        let len = self.i32(what)?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        Ok(Bytes::copy_from_slice(self.take(len as usize, what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_round_trip() {
        let mut b = BytesMut::new();
        put_str(&mut b, "ab");
        put_nullable_str(&mut b, None);
        put_bytes(&mut b, b"xyz");
        put_compact_str(&mut b, "c");
        put_uvarint(&mut b, 300);
        let raw = b.freeze();
        let mut r = Reader(&raw);
        assert_eq!(r.str("s"), Ok("ab".into()));
        assert_eq!(r.nullable_str("n"), Ok(None));
        assert_eq!(r.bytes("b"), Ok(Bytes::from_static(b"xyz")));
        assert_eq!(r.compact_str("c"), Ok("c".into()));
        assert_eq!(r.uvarint("v"), Ok(300));
        assert_eq!(r.i8("end"), Err(RecordError::Truncated("end")));
        // A length larger than what is left is an error, not an allocation.
        let mut r = Reader(&[0x7f, 0xff, b'a']);
        assert_eq!(r.str("s"), Err(RecordError::Truncated("s")));
        let mut r = Reader(&[0, 0, 0, 200, 0]);
        assert_eq!(r.array_len("a", 1), Err(RecordError::Truncated("a")));
        let mut r = Reader(&[0x80; 11]);
        assert_eq!(r.uvarint("v"), Err(RecordError::Invalid("v")));
    }
}

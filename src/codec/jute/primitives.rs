//! Jute primitives: big-endian ints and longs, one-byte bools, int-length-prefixed buffers and
//! strings (-1 = null) and vectors. The reader is bounded: it never trusts a wire length beyond
//! the bytes actually present and never pre-allocates from one.

use super::JuteError;

/// A bounded cursor over one decoded frame.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JuteError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn int(&mut self) -> Result<i32, JuteError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn long(&mut self) -> Result<i64, JuteError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// A length in `-1..=remaining`; `None` for -1 (null).
    fn len(&mut self) -> Result<Option<usize>, JuteError> {
        let n = self.int()?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| JuteError::BadLength(n))?;
        if n > self.remaining() {
            return Err(JuteError::BadLength(i32::try_from(n).unwrap_or(i32::MAX)));
        }
        Ok(Some(n))
    }

    /// A buffer; `None` is null (length -1).
    pub fn buffer(&mut self) -> Result<Option<Vec<u8>>, JuteError> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// A UTF-8 string; null decodes as an error (no op accepts a null path).
    pub fn ustring(&mut self) -> Result<String, JuteError> {
        let n = self.len()?.ok_or(JuteError::NullString)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| JuteError::BadUtf8)
    }

    /// A vector; each element takes at least `min_elem_bytes`, so the count is checked against
    /// the bytes left before anything is allocated. Null decodes as empty.
    pub fn vector<T>(
        &mut self,
        min_elem_bytes: usize,
        mut elem: impl FnMut(&mut Self) -> Result<T, JuteError>,
    ) -> Result<Vec<T>, JuteError> {
        let n = self.int()?;
        if n == -1 {
            return Ok(Vec::new());
        }
        let n = usize::try_from(n).map_err(|_| JuteError::BadLength(n))?;
        if n.saturating_mul(min_elem_bytes.max(1)) > self.remaining() {
            return Err(JuteError::BadLength(i32::try_from(n).unwrap_or(i32::MAX)));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(elem(self)?);
        }
        Ok(out)
    }
}

/// An append-only jute encoder.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(u8::from(v));
        self
    }

    fn len(&mut self, n: usize) -> &mut Self {
        // Frames are bounded far below 2 GiB by `zk_packet_bytes_max`.
        self.int(i32::try_from(n).unwrap_or(i32::MAX))
    }

    pub fn buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.int(-1),
            Some(b) => {
                self.len(b.len());
                self.buf.extend_from_slice(b);
                self
            }
        }
    }

    pub fn ustring(&mut self, v: &str) -> &mut Self {
        self.buffer(Some(v.as_bytes()))
    }

    pub fn strings(&mut self, v: &[String]) -> &mut Self {
        self.len(v.len());
        for s in v {
            self.ustring(s);
        }
        self
    }

    /// Prefixes the content with its int32 length (a complete frame).
    pub fn into_frame(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len() + 4);
        out.extend_from_slice(
            &i32::try_from(self.buf.len())
                .unwrap_or(i32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.buf);
        out
    }
}

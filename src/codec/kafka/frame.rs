//! Request framing: the 4-byte size prefix and the fixed start of every request header.

use bytes::{BufMut, Bytes, BytesMut};

/// Smallest request: api_key (2) + api_version (2) + correlation_id (4).
pub const REQUEST_HEADER_MIN: usize = 8;
/// The ApiVersions API key.
pub const API_VERSIONS_KEY: i16 = 18;

/// Why a frame was refused (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("frame of {0} bytes is smaller than a request header")]
    TooSmall(usize),
}

/// Checks a size prefix against the limit.
///
/// # Errors
/// Negative, too small or too large sizes.
pub fn check_size(size: i32, max: usize) -> Result<usize, FrameError> {
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if size < REQUEST_HEADER_MIN {
        return Err(FrameError::TooSmall(size));
    }
    Ok(size)
}

/// The fixed prefix of a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the fixed prefix (callers have checked `frame.len() >= REQUEST_HEADER_MIN`).
pub fn peek_header(frame: &[u8]) -> Option<HeaderPrefix> {
    if frame.len() < REQUEST_HEADER_MIN {
        return None;
    }
    Some(HeaderPrefix {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// The client id of a request header v1+ (after api key, version and correlation id: a
/// nullable i16-length string), read without decoding the rest; `None` if absent, null or
/// not within the frame. Used to name a client whose request cannot be decoded at all.
pub fn peek_client_id(frame: &[u8]) -> Option<String> {
    let at = REQUEST_HEADER_MIN;
    let len = i16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    let len = usize::try_from(len).ok()?;
    let bytes = frame.get(at + 2..at + 2 + len)?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// The KIP-511 answer to an ApiVersions request of a version we do not know: a **v0** body
/// (response header v0) with error 35 UNSUPPORTED_VERSION and only the ApiVersions entry, so
/// the client can retry with a version we support. Returned with its size prefix.
pub fn api_versions_fallback(correlation_id: i32, min: i16, max: i16) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + 4 + 2 + 4 + 6);
    b.put_i32(4 + 2 + 4 + 6);
    b.put_i32(correlation_id);
    b.put_i16(35);
    b.put_i32(1);
    b.put_i16(API_VERSIONS_KEY);
    b.put_i16(min);
    b.put_i16(max);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_is_byte_exact() {
        let f = api_versions_fallback(7, 0, 4);
        assert_eq!(
            &f[..],
            &[0, 0, 0, 16, 0, 0, 0, 7, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4][..]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(check_size(-1, 100), Err(FrameError::Negative(-1)));
        assert_eq!(
            check_size(101, 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(check_size(3, 100), Err(FrameError::TooSmall(3)));
        assert_eq!(check_size(50, 100), Ok(50));
    }
}

//! Value encodings of the controller. On disk every value is one format byte followed by the
//! JSON of the value, so the encoding can change later without misreading old data. On the
//! wire the format travels in the protobuf `format` field instead.

use crate::storage::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Format byte of controller values in RocksDB.
pub(crate) const DISK_FORMAT: u8 = 1;

/// Format of the JSON payloads in `proto/raft.proto` and `proto/controller.proto`.
pub(crate) const WIRE_FORMAT: u32 = 1;

/// `DISK_FORMAT | json(value)`.
///
/// # Errors
/// The value cannot be represented as JSON (for example a map with non-string keys).
pub(crate) fn encode_disk<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    out.push(DISK_FORMAT);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Decodes a value written by [`encode_disk`].
///
/// # Errors
/// `Corrupt` if the format byte is unknown or the JSON does not decode.
pub(crate) fn decode_disk<T: DeserializeOwned>(
    cf: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    match bytes.split_first() {
        Some((&DISK_FORMAT, json)) => {
            serde_json::from_slice(json).map_err(|e| StorageError::Corrupt {
                cf,
                reason: format!("undecodable value: {e}"),
            })
        }
        Some((format, _)) => Err(StorageError::Corrupt {
            cf,
            reason: format!("unknown value format {format}"),
        }),
        None => Err(StorageError::Corrupt {
            cf,
            reason: "empty value".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_values_round_trip_and_unknown_formats_are_refused() {
        let v = encode_disk(&vec![1u64, 2, 3]).expect("encodes");
        assert_eq!(v[0], DISK_FORMAT);
        assert_eq!(
            decode_disk::<Vec<u64>>("t", &v).expect("decodes"),
            vec![1, 2, 3]
        );
        let mut bad = v.clone();
        bad[0] = 9;
        assert!(decode_disk::<Vec<u64>>("t", &bad).is_err());
        assert!(decode_disk::<Vec<u64>>("t", &[]).is_err());
        assert!(decode_disk::<Vec<u64>>("t", &[DISK_FORMAT, b'{']).is_err());
    }
}

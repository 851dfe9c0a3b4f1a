//! Serde for znode data (`Option<Vec<u8>>`) as a base64 string: serde_json writes a `Vec<u8>`
//! as an array of numbers (~3.6 bytes per byte), which made every copy of the metadata (Raft
//! log entries, state machine rows, snapshots) about four times the data (issue 14, finding 9).
//! Base64 is 4/3. Decoding still accepts the old array form, so existing logs and snapshots
//! load.

use base64::Engine as _;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(b) => s.serialize_str(&B64.encode(b)),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    d.deserialize_option(OptVisitor)
}

struct OptVisitor;

impl<'de> Visitor<'de> for OptVisitor {
    type Value = Option<Vec<u8>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a base64 string or an array of bytes")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(BytesVisitor).map(Some)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string or an array of bytes")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        B64.decode(v).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Grown as elements decode; the source (a stored value) bounds the count.
        let mut out = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "super")]
        data: Option<Vec<u8>>,
    }

    #[test]
    fn base64_out_and_both_forms_in() {
        let t = T {
            data: Some(vec![0, 255, 7, 8]),
        };
        let json = serde_json::to_string(&t).expect("encodes");
        assert_eq!(json, r#"{"data":"AP8HCA=="}"#);
        assert_eq!(serde_json::from_str::<T>(&json).expect("decodes"), t);
        let old: T = serde_json::from_str(r#"{"data":[0,255,7,8]}"#).expect("old form");
        assert_eq!(old, t);
        let none = T { data: None };
        let json = serde_json::to_string(&none).expect("encodes");
        assert_eq!(json, r#"{"data":null}"#);
        assert_eq!(serde_json::from_str::<T>(&json).expect("decodes"), none);
        assert!(serde_json::from_str::<T>(r#"{"data":"!!"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"data":[256]}"#).is_err());
    }

    #[test]
    fn a_megabyte_of_data_costs_a_third_more_not_four_times() {
        let t = T {
            data: Some((0..1_000_000u64).map(|i| (i * 7919 % 251) as u8).collect()),
        };
        let json = serde_json::to_vec(&t).expect("encodes");
        assert!(json.len() < 1_340_000, "{}", json.len());
    }
}

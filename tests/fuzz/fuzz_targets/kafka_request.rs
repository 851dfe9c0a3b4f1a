//! A Kafka request frame (without its size prefix), as `kafka::connection` decodes it: the
//! header prefix, then the request header and body at the frame's API key and version. Must
//! never panic, and never allocate more than libFuzzer's malloc limit (the vendored decoders
//! pre-allocate at most 64 elements from a wire count).
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use raftka::codec::kafka::frame;

fuzz_target!(|data: &[u8]| {
    let Some(prefix) = frame::peek_header(data) else {
        return;
    };
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return;
    };
    let version = prefix.api_version;
    if version < 0 || version > 20 {
        return;
    }
    let mut buf = Bytes::copy_from_slice(data);
    if RequestHeader::decode(&mut buf, api_key.request_header_version(version)).is_err() {
        return;
    }
    let _ = RequestKind::decode(api_key, &mut buf, version);
});

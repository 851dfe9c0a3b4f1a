//! ZooKeeper frames (without the length prefix) as the facade decodes them: the connect
//! handshake and every request by opcode (multi included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftka::codec::jute::{ConnectRequest, Request};

fuzz_target!(|data: &[u8]| {
    let _ = ConnectRequest::decode(data);
    let _ = Request::decode(data);
});

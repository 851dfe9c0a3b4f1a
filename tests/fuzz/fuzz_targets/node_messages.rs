//! What a peer node sends: the protobuf messages of `proto/*.proto` and the JSON payloads they
//! carry (the metadata command of a Raft entry or a forwarded proposal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use raftka::metadata::{MetadataImage, MetadataRequest};
use raftka::rpc::pb;

fuzz_target!(|data: &[u8]| {
    let _ = pb::raft::RaftRequest::decode(data);
    let _ = pb::controller::ProposeRequest::decode(data);
    let _ = pb::replica::FetchRequest::decode(data);
    let _ = pb::replica::FetchReply::decode(data);
    let _ = pb::raft::SnapshotChunk::decode(data);
    let _ = serde_json::from_slice::<MetadataRequest>(data);
    let _ = serde_json::from_slice::<MetadataImage>(data);
});

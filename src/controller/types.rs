//! The openraft type configuration of the metadata quorum and the id mapping between the
//! broker's [`NodeId`] and openraft's `u64` node id.

use crate::metadata::{ApplyOutcome, MetadataRequest};
use crate::types::NodeId;
use std::io::Cursor;

pub use openraft::BasicNode;

openraft::declare_raft_types!(
    /// Raft types of the controller quorum: the log carries [`MetadataRequest`]s, applying one
    /// yields an [`ApplyOutcome`], nodes are addressed by their gRPC `host:port`.
    pub TypeConfig:
        D = MetadataRequest,
        R = ApplyOutcome,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// openraft's node id.
pub type RaftNodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<RaftNodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<RaftNodeId>;
pub type StoredMembership = openraft::StoredMembership<RaftNodeId, BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<RaftNodeId, BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// openraft's storage error (distinct from [`crate::storage::StorageError`]).
pub type RaftStorageError = openraft::StorageError<RaftNodeId>;

/// The openraft id of a broker id. Broker ids are validated non-negative by the config, so
/// this fails only for a negative id.
pub fn to_raft_id(id: NodeId) -> Option<RaftNodeId> {
    u64::try_from(id.0).ok()
}

/// The broker id of an openraft id (peers are validated: an id that does not fit is refused).
pub fn from_raft_id(id: RaftNodeId) -> Option<NodeId> {
    i32::try_from(id).ok().map(NodeId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_mapping_round_trips_and_rejects_out_of_range() {
        assert_eq!(to_raft_id(NodeId(7)), Some(7));
        assert_eq!(to_raft_id(NodeId(-1)), None);
        assert_eq!(from_raft_id(7), Some(NodeId(7)));
        assert_eq!(from_raft_id(u64::from(u32::MAX)), None);
    }
}

//! Consumer groups and committed offsets: the classic rebalance protocol (Kafka's
//! `GroupCoordinator`) and offset storage in the internal compacted topic `__consumer_offsets`,
//! whose partition leader is a group's coordinator.
//!
//! | module | holds |
//! |---|---|
//! | `state/` | the pure per-group state machine (time is an argument, held answers come out as effects); its `mod.rs` says which file owns what |
//! | `records.rs` | the `__consumer_offsets` key/value schemas (Kafka's own) |
//! | `coordinator/` | the driver: partition loading and unloading as leadership moves, held JoinGroup/SyncGroup responses, deadlines, and durable appends through the replication layer's one replicated write; its `mod.rs` has the file table |
//! | `service.rs` | `GroupService` (gRPC): other nodes read this node's committed offsets (the ZooKeeper facade's `/consumers`) |
//!
//! Must not import `kafka`, `zk`, `broker` or `controller`. Uses `rpc` for its own service
//! and client, as `replication` does.

mod coordinator;
pub mod records;
pub mod service;
pub mod state;

pub use coordinator::{
    leadership_changes, partition_for, Committed, CommittedOffsetView, ConsumerOffsets,
    GroupCoordinator, GroupDescription, GroupListing, GroupOffsets, GroupSummary,
    MemberDescription, OffsetCommitEntry, OFFSETS_TOPIC,
};
pub use state::{GroupState, JoinParams, JoinResult, JoinedMember, SyncParams, SyncResult};

/// Why a group operation failed. Mapped to Kafka codes by the broker and `kafka/error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("The coordinator is not aware of this member.")]
    UnknownMemberId,
    #[error("The provided generation id is not the current generation.")]
    IllegalGeneration,
    #[error("The group is rebalancing, so a rejoin is needed.")]
    RebalanceInProgress,
    #[error("The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.")]
    FencedInstanceId,
    #[error("The session timeout is not within the range allowed by the broker.")]
    InvalidSessionTimeout,
    #[error(
        "The group member's supported protocols are incompatible with those of existing members."
    )]
    InconsistentGroupProtocol,
    /// JoinGroup v4+: the member must rejoin with the id issued here.
    #[error("The group member needs to have a valid member id before actually entering a consumer group.")]
    MemberIdRequired(String),
    #[error("The consumer group has reached its max size.")]
    GroupMaxSizeReached,
    #[error("The coordinator is not available.")]
    CoordinatorNotAvailable,
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    #[error("The coordinator is loading and hence can't process requests.")]
    CoordinatorLoadInProgress,
    #[error("The group id does not exist.")]
    GroupIdNotFound,
    #[error("The group is not empty.")]
    NonEmptyGroup,
    #[error("The consumer group is actively subscribed to the topic.")]
    GroupSubscribedToTopic,
    #[error("The configured groupId is invalid.")]
    InvalidGroupId,
    #[error("The metadata field of the offset request was too large.")]
    OffsetMetadataTooLarge,
    /// TxnOffsetCommit from a producer whose epoch was bumped since.
    #[error(
        "There is a newer producer with the same transactionalId which fences the current one."
    )]
    ProducerFenced,
    /// OffsetFetch with `require_stable` of a partition with transactional offsets pending.
    #[error("There are unstable offsets that need to be cleared.")]
    UnstableOffsetCommit,
    #[error("{0}")]
    InvalidRequest(String),
}

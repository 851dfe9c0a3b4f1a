//! Domain errors of the broker API. `kafka/error.rs` maps each to a Kafka error code with one
//! exhaustive match; `zk/error.rs` does the same for ZooKeeper.

/// A failure of a broker verb.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("This server is not the leader for that topic-partition.")]
    NotLeaderOrFollower,
    #[error("There is no leader for this topic-partition as we are in the middle of a leadership election.")]
    LeaderNotAvailable,
    #[error("Leader election not needed for topic partition.")]
    ElectionNotNeeded,
    #[error("The preferred leader was not available.")]
    PreferredLeaderNotAvailable,
    #[error("Eligible topic partition leaders are not available.")]
    EligibleLeadersNotAvailable,
    #[error("No partition reassignment is in progress.")]
    NoReassignmentInProgress,
    #[error("The leader epoch in the request is older than the epoch on the broker.")]
    FencedLeaderEpoch,
    #[error("The leader epoch in the request is newer than the epoch on the broker.")]
    UnknownLeaderEpoch,
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Topic deletion is disabled.")]
    TopicDeletionDisabled,
    #[error("{0}")]
    CorruptMessage(String),
    #[error("{0}")]
    InvalidRecord(String),
    /// Some records of a batch break a per-record rule (KIP-467 lists each one).
    #[error("{}", .0.message)]
    InvalidRecords(RecordErrors),
    /// Record timestamps out of the topic's allowed range, or a producer-set LogAppendTime.
    #[error("{0}")]
    InvalidTimestamp(String),
    #[error("{}", .0.message)]
    InvalidTimestamps(RecordErrors),
    #[error(
        "The request included a message larger than the max message size the server will accept."
    )]
    MessageTooLarge,
    #[error("The message format version does not support the request.")]
    UnsupportedForMessageFormat,
    /// A request version this partition will not serve (down-conversion disabled by
    /// `message.downconversion.enable=false`).
    #[error("{0}")]
    UnsupportedVersion(String),
    /// Records a client's version cannot carry (zstd for Fetch below v10).
    #[error("{0}")]
    UnsupportedCompressionType(String),
    #[error("{0}")]
    OutOfOrderSequence(String),
    #[error("Producer attempted to produce with an old epoch.")]
    InvalidProducerEpoch,
    #[error("Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer")]
    TransactionCoordinatorFenced,
    #[error("The requested offset is not within the range of offsets maintained by the server.")]
    OffsetOutOfRange,
    #[error("The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.")]
    OffsetNotAvailable,
    #[error("Produce request specified an invalid value for required acks.")]
    InvalidRequiredAcks,
    #[error("Messages are rejected since there are fewer in-sync replicas than required.")]
    NotEnoughReplicas,
    #[error("Messages are written to the log, but to fewer in-sync replicas than required.")]
    NotEnoughReplicasAfterAppend,
    #[error("The request timed out.")]
    RequestTimedOut,
    #[error("This is not the correct controller for this cluster.")]
    NotController,
    #[error("The broker is shutting down.")]
    ShuttingDown,
    #[error("Disk error: {0}")]
    Storage(String),
    #[error("Internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    UnacceptableCredential(String),
    #[error("{0}")]
    UnsupportedSaslMechanism(String),
    #[error("{0}")]
    DuplicateResource(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("No Authorizer is configured on the broker")]
    SecurityDisabled,
    #[error("Cluster authorization failed.")]
    ClusterAuthorizationFailed,
    /// The controller mutation quota (KIP-599) is exhausted; retry after the throttle.
    #[error("The throttling quota has been exceeded.")]
    ThrottlingQuotaExceeded,
    #[error("Topic authorization failed.")]
    TopicAuthorizationFailed,
    #[error("Group authorization failed.")]
    GroupAuthorizationFailed,
    #[error("Transactional Id authorization failed.")]
    TransactionalIdAuthorizationFailed,
    /// A consumer-group failure (its codes are mapped in `kafka/error.rs`).
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
    /// A transaction coordinator failure (its codes are mapped in `kafka/error.rs`).
    #[error(transparent)]
    Txn(crate::txn::TxnError),
}

/// The records of one batch that were rejected, by index within the batch, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    pub message: String,
    pub records: Vec<(i32, String)>,
}

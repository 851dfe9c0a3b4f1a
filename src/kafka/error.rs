//! The one mapping from domain errors to Kafka error codes. Exhaustive on purpose: a new
//! `BrokerError` variant must be given a code here.

use crate::broker::BrokerError;
use kafka_protocol::ResponseError as E;

/// The Kafka error code for `e` at request `version` of an API (older versions lack some codes).
pub(crate) fn code(e: &BrokerError) -> i16 {
    let r = match e {
        BrokerError::UnknownTopicOrPartition => E::UnknownTopicOrPartition,
        BrokerError::UnknownTopicId => E::UnknownTopicId,
        BrokerError::NotLeaderOrFollower => E::NotLeaderOrFollower,
        BrokerError::LeaderNotAvailable => E::LeaderNotAvailable,
        BrokerError::FencedLeaderEpoch => E::FencedLeaderEpoch,
        BrokerError::UnknownLeaderEpoch => E::UnknownLeaderEpoch,
        BrokerError::TopicAlreadyExists(_) => E::TopicAlreadyExists,
        BrokerError::InvalidTopic(_) => E::InvalidTopicException,
        BrokerError::InvalidPartitions(_) => E::InvalidPartitions,
        BrokerError::InvalidReplicationFactor(_) => E::InvalidReplicationFactor,
        BrokerError::InvalidReplicaAssignment(_) => E::InvalidReplicaAssignment,
        BrokerError::InvalidConfig(_) => E::InvalidConfig,
        BrokerError::InvalidRequest(_) => E::InvalidRequest,
        BrokerError::TopicDeletionDisabled => E::TopicDeletionDisabled,
        BrokerError::CorruptMessage(_) => E::CorruptMessage,
        BrokerError::InvalidRecord(_) => E::InvalidRecord,
        BrokerError::MessageTooLarge => E::MessageTooLarge,
        BrokerError::UnsupportedForMessageFormat => E::UnsupportedForMessageFormat,
        BrokerError::TransactionsUnsupported => E::TransactionalIdAuthorizationFailed,
        BrokerError::OutOfOrderSequence(_) => E::OutOfOrderSequenceNumber,
        BrokerError::InvalidProducerEpoch => E::InvalidProducerEpoch,
        BrokerError::OffsetOutOfRange => E::OffsetOutOfRange,
        BrokerError::InvalidRequiredAcks => E::InvalidRequiredAcks,
        BrokerError::NotEnoughReplicas => E::NotEnoughReplicas,
        BrokerError::NotEnoughReplicasAfterAppend => E::NotEnoughReplicasAfterAppend,
        BrokerError::RequestTimedOut => E::RequestTimedOut,
        BrokerError::NotController => E::NotController,
        BrokerError::ShuttingDown => E::NotLeaderOrFollower,
        BrokerError::Storage(_) => E::KafkaStorageError,
        BrokerError::Internal(_) => E::UnknownServerError,
        BrokerError::UnknownMemberId => E::UnknownMemberId,
        BrokerError::IllegalGeneration => E::IllegalGeneration,
        BrokerError::RebalanceInProgress => E::RebalanceInProgress,
        BrokerError::FencedInstanceId => E::FencedInstanceId,
        BrokerError::InvalidSessionTimeout => E::InvalidSessionTimeout,
        BrokerError::InconsistentGroupProtocol => E::InconsistentGroupProtocol,
        BrokerError::MemberIdRequired(_) => E::MemberIdRequired,
        BrokerError::GroupMaxSizeReached => E::GroupMaxSizeReached,
        BrokerError::CoordinatorNotAvailable => E::CoordinatorNotAvailable,
        BrokerError::NotCoordinator => E::NotCoordinator,
        BrokerError::CoordinatorLoadInProgress => E::CoordinatorLoadInProgress,
        BrokerError::GroupIdNotFound => E::GroupIdNotFound,
        BrokerError::NonEmptyGroup => E::NonEmptyGroup,
        BrokerError::GroupSubscribedToTopic => E::GroupSubscribedToTopic,
        BrokerError::InvalidGroupId => E::InvalidGroupId,
        BrokerError::OffsetMetadataTooLarge => E::OffsetMetadataTooLarge,
    };
    r.code()
}

/// Produce v8+ has INVALID_RECORD; older clients get CORRUPT_MESSAGE.
pub(crate) fn produce_code(e: &BrokerError, version: i16) -> i16 {
    match e {
        BrokerError::InvalidRecord(_) if version < 8 => E::CorruptMessage.code(),
        _ => code(e),
    }
}

//! The one mapping from domain errors to Kafka error codes. Exhaustive on purpose: a new
//! `BrokerError` variant must be given a code here.

use crate::broker::{BrokerError, GroupError};
use crate::txn::TxnError;
use kafka_protocol::ResponseError as E;

/// The Kafka error code for `e` at request `version` of an API (older versions lack some codes).
pub(crate) fn code(e: &BrokerError) -> i16 {
    let r = match e {
        BrokerError::UnknownTopicOrPartition => E::UnknownTopicOrPartition,
        BrokerError::UnknownTopicId => E::UnknownTopicId,
        BrokerError::NotLeaderOrFollower => E::NotLeaderOrFollower,
        BrokerError::LeaderNotAvailable => E::LeaderNotAvailable,
        BrokerError::ElectionNotNeeded => E::ElectionNotNeeded,
        BrokerError::NoReassignmentInProgress => E::NoReassignmentInProgress,
        BrokerError::PreferredLeaderNotAvailable => E::PreferredLeaderNotAvailable,
        BrokerError::EligibleLeadersNotAvailable => E::EligibleLeadersNotAvailable,
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
        BrokerError::InvalidRecord(_) | BrokerError::InvalidRecords(_) => E::InvalidRecord,
        BrokerError::InvalidTimestamp(_) | BrokerError::InvalidTimestamps(_) => E::InvalidTimestamp,
        BrokerError::MessageTooLarge => E::MessageTooLarge,
        BrokerError::UnsupportedForMessageFormat => E::UnsupportedForMessageFormat,
        BrokerError::UnsupportedCompressionType(_) => E::UnsupportedCompressionType,
        BrokerError::UnsupportedVersion(_) => E::UnsupportedVersion,
        BrokerError::OutOfOrderSequence(_) => E::OutOfOrderSequenceNumber,
        BrokerError::InvalidProducerEpoch => E::InvalidProducerEpoch,
        BrokerError::TransactionCoordinatorFenced => E::TransactionCoordinatorFenced,
        BrokerError::OffsetOutOfRange => E::OffsetOutOfRange,
        BrokerError::OffsetNotAvailable => E::OffsetNotAvailable,
        BrokerError::InvalidRequiredAcks => E::InvalidRequiredAcks,
        BrokerError::NotEnoughReplicas => E::NotEnoughReplicas,
        BrokerError::NotEnoughReplicasAfterAppend => E::NotEnoughReplicasAfterAppend,
        BrokerError::RequestTimedOut => E::RequestTimedOut,
        BrokerError::NotController => E::NotController,
        BrokerError::ShuttingDown => E::NotLeaderOrFollower,
        BrokerError::Storage(_) => E::KafkaStorageError,
        BrokerError::Internal(_) => E::UnknownServerError,
        BrokerError::UnacceptableCredential(_) => E::UnacceptableCredential,
        BrokerError::UnsupportedSaslMechanism(_) => E::UnsupportedSaslMechanism,
        BrokerError::DuplicateResource(_) => E::DuplicateResource,
        BrokerError::ResourceNotFound(_) => E::ResourceNotFound,
        BrokerError::SecurityDisabled => E::SecurityDisabled,
        BrokerError::ClusterAuthorizationFailed => E::ClusterAuthorizationFailed,
        BrokerError::ThrottlingQuotaExceeded => E::ThrottlingQuotaExceeded,
        BrokerError::TopicAuthorizationFailed => E::TopicAuthorizationFailed,
        BrokerError::GroupAuthorizationFailed => E::GroupAuthorizationFailed,
        BrokerError::TransactionalIdAuthorizationFailed => E::TransactionalIdAuthorizationFailed,
        BrokerError::Group(g) => group_error(g),
        BrokerError::Txn(t) => txn_error(t),
    };
    r.code()
}

/// Produce v8+ has INVALID_RECORD; older clients get CORRUPT_MESSAGE.
pub(crate) fn produce_code(e: &BrokerError, version: i16) -> i16 {
    match e {
        BrokerError::InvalidRecord(_) | BrokerError::InvalidRecords(_) if version < 8 => {
            E::CorruptMessage.code()
        }
        _ => code(e),
    }
}

/// Transaction coordinator failures, mapped exhaustively.
fn txn_error(t: &TxnError) -> E {
    match t {
        TxnError::NotCoordinator => E::NotCoordinator,
        TxnError::CoordinatorLoadInProgress => E::CoordinatorLoadInProgress,
        TxnError::CoordinatorNotAvailable => E::CoordinatorNotAvailable,
        TxnError::ConcurrentTransactions => E::ConcurrentTransactions,
        TxnError::InvalidProducerIdMapping => E::InvalidProducerIdMapping,
        TxnError::ProducerFenced => E::ProducerFenced,
        TxnError::InvalidTxnState => E::InvalidTxnState,
        TxnError::TransactionAbortable => E::TransactionAbortable,
        TxnError::InvalidTransactionTimeout => E::InvalidTransactionTimeout,
        TxnError::TransactionalIdNotFound => E::TransactionalIdNotFound,
        TxnError::InvalidRequest(_) => E::InvalidRequest,
    }
}

/// PRODUCER_FENCED (Kafka 2.7+) for the versions that know it; INVALID_PRODUCER_EPOCH for
/// older ones, as Kafka answers them (`fenced_since`: the first version with the new code).
pub(crate) fn fenced_code(e: &BrokerError, version: i16, fenced_since: i16) -> i16 {
    let c = code(e);
    if c == E::ProducerFenced.code() && version < fenced_since {
        E::InvalidProducerEpoch.code()
    } else {
        c
    }
}

/// Consumer-group failures, mapped exhaustively.
fn group_error(g: &GroupError) -> E {
    match g {
        GroupError::UnknownMemberId => E::UnknownMemberId,
        GroupError::IllegalGeneration => E::IllegalGeneration,
        GroupError::RebalanceInProgress => E::RebalanceInProgress,
        GroupError::FencedInstanceId => E::FencedInstanceId,
        GroupError::InvalidSessionTimeout => E::InvalidSessionTimeout,
        GroupError::InconsistentGroupProtocol => E::InconsistentGroupProtocol,
        GroupError::MemberIdRequired(_) => E::MemberIdRequired,
        GroupError::GroupMaxSizeReached => E::GroupMaxSizeReached,
        GroupError::CoordinatorNotAvailable => E::CoordinatorNotAvailable,
        GroupError::NotCoordinator => E::NotCoordinator,
        GroupError::CoordinatorLoadInProgress => E::CoordinatorLoadInProgress,
        GroupError::GroupIdNotFound => E::GroupIdNotFound,
        GroupError::NonEmptyGroup => E::NonEmptyGroup,
        GroupError::GroupSubscribedToTopic => E::GroupSubscribedToTopic,
        GroupError::InvalidGroupId => E::InvalidGroupId,
        GroupError::OffsetMetadataTooLarge => E::OffsetMetadataTooLarge,
        GroupError::ProducerFenced => E::ProducerFenced,
        GroupError::UnstableOffsetCommit => E::UnstableOffsetCommit,
        GroupError::InvalidRequest(_) => E::InvalidRequest,
    }
}

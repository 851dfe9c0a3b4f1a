//! Domain errors → ZooKeeper error codes: one exhaustive match per source, no `_` arm, so a new
//! domain error forces a decision here.

use crate::broker::BrokerError;
use crate::codec::jute::ErrorCode;
use crate::metadata::ZkOpError;

/// The code for a znode op failure.
pub fn op_error(e: ZkOpError) -> ErrorCode {
    match e {
        ZkOpError::RolledBack => ErrorCode::Ok,
        ZkOpError::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
        ZkOpError::NoNode => ErrorCode::NoNode,
        ZkOpError::NodeExists => ErrorCode::NodeExists,
        ZkOpError::BadVersion => ErrorCode::BadVersion,
        ZkOpError::NotEmpty => ErrorCode::NotEmpty,
        ZkOpError::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
        ZkOpError::BadArguments => ErrorCode::BadArguments,
        ZkOpError::SessionExpired => ErrorCode::SessionExpired,
        ZkOpError::QuotaExceeded => ErrorCode::QuotaExceeded,
    }
}

/// The code for a failed broker verb.
pub fn broker_error(e: &BrokerError) -> ErrorCode {
    match e {
        BrokerError::TopicAlreadyExists(_) => ErrorCode::NodeExists,
        BrokerError::UnknownTopicOrPartition | BrokerError::UnknownTopicId => ErrorCode::NoNode,
        BrokerError::InvalidTopic(_)
        | BrokerError::InvalidPartitions(_)
        | BrokerError::InvalidReplicationFactor(_)
        | BrokerError::InvalidReplicaAssignment(_)
        | BrokerError::InvalidConfig(_)
        | BrokerError::InvalidRequest(_)
        | BrokerError::CorruptMessage(_)
        | BrokerError::InvalidRecord(_)
        | BrokerError::InvalidRecords(_)
        | BrokerError::InvalidTimestamp(_)
        | BrokerError::InvalidTimestamps(_)
        | BrokerError::MessageTooLarge
        | BrokerError::UnsupportedForMessageFormat
        | BrokerError::UnsupportedCompressionType(_)
        | BrokerError::UnsupportedVersion(_)
        | BrokerError::InvalidRequiredAcks
        | BrokerError::OffsetOutOfRange
        | BrokerError::OutOfOrderSequence(_)
        | BrokerError::InvalidProducerEpoch
        | BrokerError::TransactionCoordinatorFenced
        | BrokerError::FencedLeaderEpoch
        | BrokerError::UnknownLeaderEpoch
        | BrokerError::UnacceptableCredential(_)
        | BrokerError::UnsupportedSaslMechanism(_)
        | BrokerError::DuplicateResource(_)
        | BrokerError::ElectionNotNeeded
        | BrokerError::NoReassignmentInProgress
        | BrokerError::PreferredLeaderNotAvailable
        | BrokerError::EligibleLeadersNotAvailable => ErrorCode::BadArguments,
        BrokerError::ResourceNotFound(_) => ErrorCode::NoNode,
        BrokerError::SecurityDisabled
        | BrokerError::ClusterAuthorizationFailed
        | BrokerError::TopicAuthorizationFailed
        | BrokerError::GroupAuthorizationFailed
        | BrokerError::TransactionalIdAuthorizationFailed => ErrorCode::NoAuth,
        BrokerError::TopicDeletionDisabled => ErrorCode::Unimplemented,
        BrokerError::RequestTimedOut
        | BrokerError::NotController
        | BrokerError::NotLeaderOrFollower
        | BrokerError::LeaderNotAvailable
        | BrokerError::OffsetNotAvailable
        | BrokerError::NotEnoughReplicas
        | BrokerError::NotEnoughReplicasAfterAppend
        | BrokerError::ShuttingDown => ErrorCode::OperationTimeout,
        BrokerError::Storage(_) | BrokerError::Internal(_) => ErrorCode::SystemError,
        // Coordinator errors and the Kafka clients' mutation quota never come out of the
        // verbs the facade calls.
        BrokerError::Group(_) | BrokerError::Txn(_) | BrokerError::ThrottlingQuotaExceeded => {
            ErrorCode::SystemError
        }
    }
}
